"""Core of the launch stand-in: context, substitutions, actions, conditions, descriptions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class SubstitutionFailure(RuntimeError):
    """A substitution could not be evaluated (e.g. an undeclared launch configuration)."""


class LaunchContext:
    """What substitutions are evaluated against: `launch_configurations` (name -> str)."""

    def __init__(self, *, argv: list[str] | None = None) -> None:
        self.argv = list(argv or [])
        self.launch_configurations: dict[str, str] = {}
        self.locals: dict[str, Any] = {}

    def perform_substitution(self, substitution: Substitution) -> str:
        """Evaluate one substitution in this context."""
        return substitution.perform(self)


class Substitution:
    """Something that becomes a string once a context is known."""

    def perform(self, context: LaunchContext) -> str:
        """Evaluate to a string."""
        raise NotImplementedError

    def describe(self) -> str:
        """Human-readable form."""
        return type(self).__name__


class Condition:
    """Decides whether an action is visited."""

    def __init__(self, *, predicate: Any = None) -> None:
        self._predicate = predicate

    def evaluate(self, context: LaunchContext) -> bool:
        """True when the action should run."""
        return bool(self._predicate(context)) if self._predicate else True


class Action:
    """A launch entity; `visit(context)` runs `execute` when the condition holds."""

    def __init__(self, *, condition: Condition | None = None) -> None:
        self.__condition = condition

    @property
    def condition(self) -> Condition | None:
        """The condition given at construction (None = always)."""
        return self.__condition

    def visit(self, context: LaunchContext) -> list[Any] | None:
        """Execute if the condition allows; returns sub-entities to visit (or None)."""
        if self.__condition is None or self.__condition.evaluate(context):
            return self.execute(context)
        return None

    def execute(self, context: LaunchContext) -> list[Any] | None:
        """Do the action (nothing by default)."""
        return None

    def describe_sub_entities(self) -> list[Any]:
        """Entities this action contains (none by default)."""
        return []


class LaunchDescription:
    """An ordered list of launch entities."""

    def __init__(self, initial_entities: Iterable[Any] | None = None, *,
                 deprecated_reason: str | None = None) -> None:  # fmt: skip
        self.__entities = list(initial_entities or [])
        self.deprecated_reason = deprecated_reason

    @property
    def entities(self) -> list[Any]:
        """The entities, in order."""
        return self.__entities

    def add_action(self, action: Any) -> None:
        """Append an action."""
        self.__entities.append(action)

    def add_entity(self, entity: Any) -> None:
        """Append an entity."""
        self.__entities.append(entity)

    def visit(self, context: LaunchContext) -> list[Any]:
        """Entities to visit."""
        return list(self.__entities)

    def get_launch_arguments(self) -> list[Any]:
        """Every DeclareLaunchArgument of this description (not of includes), in order."""
        from launch.actions import DeclareLaunchArgument

        return [e for e in self.__entities if isinstance(e, DeclareLaunchArgument)]


def evaluate(
    description: LaunchDescription, launch_arguments: dict[str, str] | None = None
) -> list[Action]:
    """Stand-in-only helper: visit `description` like `ros2 launch` would, starting nothing.

    Launch arguments are set first, then every entity is visited in order (declarations fill
    defaults and check choices; conditions are evaluated; includes are expanded; nodes perform
    their substitutions).

    Returns:
        Every action that was executed (conditions true), in visiting order.
    """
    context = LaunchContext()
    context.launch_configurations.update({k: str(v) for k, v in (launch_arguments or {}).items()})
    executed: list[Action] = []

    def walk(entities: list[Any]) -> None:
        for entity in entities:
            if isinstance(entity, LaunchDescription):
                walk(entity.visit(context))
                continue
            cond = entity.condition if isinstance(entity, Action) else None
            if cond is not None and not cond.evaluate(context):
                continue
            sub = entity.visit(context)
            if isinstance(entity, Action):
                executed.append(entity)
            if sub:
                walk(list(sub))

    walk(description.visit(context))
    return executed
