"""Substitutions of the launch stand-in."""

from __future__ import annotations

import os
from typing import Any

from launch._core import LaunchContext, Substitution, SubstitutionFailure
from launch.utilities import normalize_to_list_of_substitutions, perform_substitutions

__all__ = [
    "EnvironmentVariable",
    "LaunchConfiguration",
    "PathJoinSubstitution",
    "SubstitutionFailure",
    "TextSubstitution",
]


class TextSubstitution(Substitution):
    """A literal string."""

    def __init__(self, *, text: str) -> None:
        self.text = text

    def perform(self, context: LaunchContext) -> str:
        return self.text


class LaunchConfiguration(Substitution):
    """The value of a launch configuration (launch argument)."""

    def __init__(self, variable_name: Any, *, default: Any = None) -> None:
        self.variable_name = normalize_to_list_of_substitutions(variable_name)
        self.default = None if default is None else normalize_to_list_of_substitutions(default)

    def perform(self, context: LaunchContext) -> str:
        name = perform_substitutions(context, self.variable_name)
        if name in context.launch_configurations:
            return context.launch_configurations[name]
        if self.default is not None:
            return perform_substitutions(context, self.default)
        raise SubstitutionFailure(f"launch configuration '{name}' does not exist")

    def describe(self) -> str:
        return f"LaunchConfig({''.join(s.describe() for s in self.variable_name)})"


class PathJoinSubstitution(Substitution):
    """os.path.join of its parts (each a str, Substitution or list of them)."""

    def __init__(self, substitutions: list[Any]) -> None:
        self.substitutions = [normalize_to_list_of_substitutions(s) for s in substitutions]

    def perform(self, context: LaunchContext) -> str:
        return os.path.join(*[perform_substitutions(context, s) for s in self.substitutions])


class EnvironmentVariable(Substitution):
    """The value of an environment variable (default_value if unset)."""

    def __init__(self, name: Any, *, default_value: Any = "") -> None:
        self.name = normalize_to_list_of_substitutions(name)
        self.default_value = normalize_to_list_of_substitutions(default_value)

    def perform(self, context: LaunchContext) -> str:
        name = perform_substitutions(context, self.name)
        return os.environ.get(name, perform_substitutions(context, self.default_value))
