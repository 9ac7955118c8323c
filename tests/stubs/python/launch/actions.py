"""Actions of the launch stand-in."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from launch._core import Action, Condition, LaunchContext
from launch.utilities import normalize_to_list_of_substitutions, perform_substitutions

__all__ = [
    "DeclareLaunchArgument",
    "GroupAction",
    "IncludeLaunchDescription",
    "LogInfo",
    "OpaqueFunction",
]


class DeclareLaunchArgument(Action):
    """Declare a launch argument: sets its default if not given, checks `choices`."""

    def __init__(self, name: str, *, default_value: Any = None, description: str | None = None,
                 choices: Iterable[str] | None = None, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.__name = name
        self.__default = (
            None if default_value is None else normalize_to_list_of_substitutions(default_value)
        )
        self.__description = description or "no description given"
        self.__choices = list(choices) if choices is not None else None

    @property
    def name(self) -> str:
        """Argument name."""
        return self.__name

    @property
    def default_value(self) -> list[Any] | None:
        """Default as a list of substitutions (None = required)."""
        return self.__default

    @property
    def description(self) -> str:
        """Help text."""
        return self.__description

    @property
    def choices(self) -> list[str] | None:
        """Allowed values (None = any)."""
        return self.__choices

    def execute(self, context: LaunchContext) -> None:
        if self.__name not in context.launch_configurations:
            if self.__default is None:
                raise RuntimeError(f"Required launch argument '{self.__name}' was not provided")
            context.launch_configurations[self.__name] = perform_substitutions(
                context, self.__default
            )
        value = context.launch_configurations[self.__name]
        if self.__choices is not None and value not in self.__choices:
            raise RuntimeError(
                f"Argument '{self.__name}' provided value '{value}' is not valid. "
                f"Valid options are: {self.__choices}"
            )
        return None


class LogInfo(Action):
    """Log a message (kept in `.evaluated_msg`)."""

    def __init__(self, *, msg: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.__msg = normalize_to_list_of_substitutions(msg)
        self.evaluated_msg: str | None = None

    def execute(self, context: LaunchContext) -> None:
        self.evaluated_msg = perform_substitutions(context, self.__msg)
        return None


class GroupAction(Action):
    """Visit a list of actions (scoping of configurations is not modelled)."""

    def __init__(self, actions: Iterable[Any], *, condition: Condition | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(condition=condition)
        self.__actions = list(actions)

    def execute(self, context: LaunchContext) -> list[Any]:
        return list(self.__actions)

    def get_sub_entities(self) -> list[Any]:
        """The grouped actions."""
        return list(self.__actions)


class IncludeLaunchDescription(Action):
    """Include another launch description, with launch arguments."""

    def __init__(self, launch_description_source: Any, *,
                 launch_arguments: Iterable[tuple[Any, Any]] | dict[Any, Any] | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.__source = launch_description_source
        items = launch_arguments.items() if isinstance(launch_arguments, dict) else launch_arguments
        self.__arguments = list(items or [])

    @property
    def launch_arguments(self) -> list[tuple[Any, Any]]:
        """(name, value) pairs, unevaluated."""
        return list(self.__arguments)

    def execute(self, context: LaunchContext) -> list[Any]:
        for name, value in self.__arguments:
            context.launch_configurations[perform_substitutions(context, name)] = (
                perform_substitutions(context, value)
            )
        from launch._core import LaunchDescription

        source = self.__source
        if isinstance(source, LaunchDescription):
            return [source]
        return [source.get_launch_description(context)]


class OpaqueFunction(Action):
    """Call `function(context, *args, **kwargs)` when visited; it returns actions (or None)."""

    def __init__(self, *, function: Any, args: Iterable[Any] | None = None,
                 kwargs: dict[str, Any] | None = None, **left_over: Any) -> None:  # fmt: skip
        super().__init__(**left_over)
        if not callable(function):
            raise TypeError("OpaqueFunction expected a callable for 'function'")
        self.__function = function
        self.__args = list(args or [])
        self.__kwargs = dict(kwargs or {})

    @property
    def function(self) -> Any:
        """The callable given at construction."""
        return self.__function

    def execute(self, context: LaunchContext) -> list[Any] | None:
        return self.__function(context, *self.__args, **self.__kwargs)
