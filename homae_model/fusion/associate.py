"""Associate the views of one instant across cameras: which hands (objects) are the same one.

Views are grouped camera by camera (in the order given): a camera's views are matched to the
existing groups by minimum total cost (Hungarian), where the cost of a view and a group is the
ray-discounted distance (`weights.ray_discount`, along the view's ray) between the view's
position and the group's weighted mean position; only groups with the same key (hand side,
object name) and without a view from that camera are candidates, and a cost over the gate
starts a new group. Views with weight 0 are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from scipy.optimize import linear_sum_assignment

from homae_model.fusion.weights import ray_discount

_UNMATCHABLE = 1e9


class Located(Protocol):
    """What association needs of a view."""

    camera: str
    centre: np.ndarray
    weight: float

    @property
    def position(self) -> np.ndarray:
        """(3,) world position, metres."""
        ...


def associate(
    views: Sequence[Located],
    key: Callable[[Located], str],
    gate_m: float,
    depth_ratio: float,
) -> list[list[int]]:
    """Group views of the same target across cameras.

    Args:
        views: hand or object views of one instant (several cameras).
        key: views with different keys never share a group (hand side, object name).
        gate_m: largest ray-discounted distance (m) from a view to a group's mean.
        depth_ratio: ρ of the ray discount.

    Returns:
        groups as lists of indices into `views` (at most one view per camera per group),
        ordered by decreasing total weight, each sorted by decreasing weight.
    """
    cameras: list[str] = []
    for v in views:
        if v.camera not in cameras:
            cameras.append(v.camera)
    groups: list[list[int]] = []
    for camera in cameras:
        mine = [i for i, v in enumerate(views) if v.camera == camera and v.weight > 0]
        if not mine:
            continue
        cost = np.full((len(mine), max(len(groups), 1)), _UNMATCHABLE)
        for gi, group in enumerate(groups):
            if any(views[m].camera == camera for m in group):
                continue
            centre = _group_position(views, group)
            for row, i in enumerate(mine):
                v = views[i]
                if key(v) != key(views[group[0]]):
                    continue
                ray = v.position - v.centre
                ray = ray / max(float(np.linalg.norm(ray)), 1e-12)
                cost[row, gi] = float(ray_discount(ray, v.position - centre, depth_ratio))
        matched: set[int] = set()
        if groups:
            rows, cols = linear_sum_assignment(cost)
            for row, col in zip(rows, cols, strict=True):
                if cost[row, col] <= gate_m:
                    groups[col].append(mine[row])
                    matched.add(mine[row])
        groups.extend([i] for i in mine if i not in matched)
    for group in groups:
        group.sort(key=lambda i: -views[i].weight)
    groups.sort(key=lambda g: -sum(views[i].weight for i in g))
    return groups


def _group_position(views: Sequence[Located], group: list[int]) -> np.ndarray:
    w = np.array([views[i].weight for i in group])
    p = np.stack([views[i].position for i in group])
    return (w[:, None] * p).sum(axis=0) / w.sum()
