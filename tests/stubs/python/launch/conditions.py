"""Conditions of the launch stand-in."""

from __future__ import annotations

from typing import Any

from launch._core import Condition, LaunchContext
from launch.utilities import normalize_to_list_of_substitutions, perform_substitutions

__all__ = ["IfCondition", "InvalidConditionExpressionError", "UnlessCondition"]


class InvalidConditionExpressionError(ValueError):
    """A condition expression is not one of true/false/1/0."""


def _truth(context: LaunchContext, subs: list[Any]) -> bool:
    text = perform_substitutions(context, subs).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise InvalidConditionExpressionError(
        f"condition expression '{text}' must be one of: true, false, 1, 0"
    )


class IfCondition(Condition):
    """True when the expression evaluates to true/1."""

    def __init__(self, predicate_expression: Any) -> None:
        self._subs = normalize_to_list_of_substitutions(predicate_expression)
        super().__init__(predicate=lambda ctx: _truth(ctx, self._subs))


class UnlessCondition(Condition):
    """True when the expression evaluates to false/0."""

    def __init__(self, predicate_expression: Any) -> None:
        self._subs = normalize_to_list_of_substitutions(predicate_expression)
        super().__init__(predicate=lambda ctx: not _truth(ctx, self._subs))
