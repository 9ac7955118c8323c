"""`Node` action of the launch_ros stand-in: records the evaluated command, starts nothing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml
from launch.utilities import normalize_to_list_of_substitutions, perform_substitutions

from launch import Action, LaunchContext, Substitution

__all__ = ["Node"]


def _is_subs(value: Any) -> bool:
    return isinstance(value, (str, Substitution)) or (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(isinstance(v, (str, Substitution)) for v in value)
    )


def _parameter_value(context: LaunchContext, value: Any) -> Any:
    """Evaluate a parameter value; substituted strings are typed the way YAML would."""
    if isinstance(value, Substitution) or (
        isinstance(value, (list, tuple))
        and value
        and any(isinstance(v, Substitution) for v in value)
    ):
        text = perform_substitutions(context, value)
        try:
            typed = yaml.safe_load(text)
        except yaml.YAMLError:
            return text
        return typed if isinstance(typed, (bool, int, float, str, list)) else text
    if isinstance(value, (list, tuple)):
        return [_parameter_value(context, v) for v in value]
    return value


def _flatten(params: dict[Any, Any], context: LaunchContext, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = prefix + (perform_substitutions(context, key) if not isinstance(key, str) else key)
        if isinstance(value, dict):
            out.update(_flatten(value, context, name + "."))
        else:
            out[name] = _parameter_value(context, value)
    return out


class Node(Action):
    """A ROS node to start (the stand-in only evaluates its arguments)."""

    def __init__(self, *, executable: Any, package: Any = None, name: Any = None,
                 namespace: Any = None, exec_name: Any = None,
                 parameters: Iterable[Any] | None = None,
                 remappings: Iterable[tuple[Any, Any]] | None = None,
                 ros_arguments: Iterable[Any] | None = None, arguments: Iterable[Any] | None = None,
                 output: Any = "log", emulate_tty: bool = False, respawn: Any = False,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(condition=kwargs.pop("condition", None))
        self.__package = package
        self.__executable = executable
        self.__name = name
        self.__namespace = namespace
        self.__parameters = list(parameters or [])
        self.__remappings = list(remappings or [])
        self.__arguments = list(arguments or [])
        self.__ros_arguments = list(ros_arguments or [])
        self.output = output
        self.emulate_tty = emulate_tty
        self.respawn = respawn
        self.extra_kwargs = kwargs
        self.__evaluated = False
        self.__expanded: dict[str, Any] = {}

    @property
    def node_package(self) -> Any:
        """Package given at construction (unevaluated)."""
        return self.__package

    @property
    def node_executable(self) -> Any:
        """Executable given at construction (unevaluated)."""
        return self.__executable

    def _need(self) -> None:
        if not self.__evaluated:
            raise RuntimeError("Node not evaluated yet: visit it (launch.evaluate) first")

    @property
    def node_name(self) -> str:
        """Evaluated node name ('<unknown>' when not given)."""
        self._need()
        return self.__expanded["name"]

    @property
    def expanded_node_namespace(self) -> str:
        """Evaluated namespace, absolute ('/' when empty)."""
        self._need()
        return self.__expanded["namespace"]

    @property
    def expanded_remapping_rules(self) -> list[tuple[str, str]]:
        """Evaluated (from, to) remappings."""
        self._need()
        return self.__expanded["remappings"]

    @property
    def expanded_parameter_arguments(self) -> list[tuple[str | dict[str, Any], bool]]:
        """Stand-in helper: evaluated parameters, (file path, True) or (dict, False)."""
        self._need()
        return self.__expanded["parameters"]

    @property
    def expanded_arguments(self) -> list[str]:
        """Stand-in helper: evaluated command-line arguments."""
        self._need()
        return self.__expanded["arguments"]

    @property
    def expanded_package(self) -> str:
        """Stand-in helper: evaluated package name."""
        self._need()
        return self.__expanded["package"]

    @property
    def expanded_executable(self) -> str:
        """Stand-in helper: evaluated executable name."""
        self._need()
        return self.__expanded["executable"]

    def _perform_substitutions(self, context: LaunchContext) -> None:
        ev = {}
        ev["package"] = (
            perform_substitutions(context, self.__package) if self.__package is not None else ""
        )
        ev["executable"] = perform_substitutions(context, self.__executable)
        ev["name"] = (
            perform_substitutions(context, self.__name) if self.__name is not None else "<unknown>"
        )
        ns = perform_substitutions(context, self.__namespace) if self.__namespace else ""
        ev["namespace"] = "/" + ns.strip("/")
        ev["remappings"] = [
            (perform_substitutions(context, a), perform_substitutions(context, b))
            for a, b in self.__remappings
        ]
        params: list[tuple[str | dict[str, Any], bool]] = []
        for item in self.__parameters:
            if isinstance(item, dict):
                params.append((_flatten(item, context), False))
            elif _is_subs(item):
                params.append((perform_substitutions(context, item), True))
            else:
                raise TypeError(f"unsupported parameters entry {item!r}")
        ev["parameters"] = params
        ev["arguments"] = [
            perform_substitutions(context, normalize_to_list_of_substitutions(a))
            for a in self.__arguments + self.__ros_arguments
        ]
        self.__expanded = ev
        self.__evaluated = True

    def execute(self, context: LaunchContext) -> None:
        """Evaluate every argument (the stand-in never starts a process)."""
        self._perform_substitutions(context)
        return None
