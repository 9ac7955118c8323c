"""Substitution helpers of the launch stand-in."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from launch._core import LaunchContext, Substitution


def normalize_to_list_of_substitutions(subs: Any) -> list[Substitution]:
    """str | Substitution | iterable of them -> list of Substitution."""
    from launch.substitutions import TextSubstitution

    if isinstance(subs, (str, Substitution)):
        subs = [subs]
    out = []
    for s in subs:
        if isinstance(s, str):
            out.append(TextSubstitution(text=s))
        elif isinstance(s, Substitution):
            out.append(s)
        else:
            raise TypeError(f"expected str or Substitution, got {type(s).__name__}: {s!r}")
    return out


def perform_substitutions(context: LaunchContext, subs: Iterable[Substitution] | Any) -> str:
    """Evaluate and concatenate substitutions."""
    return "".join(s.perform(context) for s in normalize_to_list_of_substitutions(subs))
