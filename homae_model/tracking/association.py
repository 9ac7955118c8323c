"""Association of observations to tracks by box overlap and 3D distance (pure numpy)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["box_iou", "greedy_match", "match_cost"]


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (4,) xyxy boxes (pixels); 0 when either is empty."""
    ax0, ay0, ax1, ay1 = (float(v) for v in a)
    bx0, by0, bx1, by1 = (float(v) for v in b)
    iw = max(0.0, min(ax1, bx1) - max(ax0, bx0))
    ih = max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    union = (
        max(0.0, ax1 - ax0) * max(0.0, ay1 - ay0)
        + max(0.0, bx1 - bx0) * max(0.0, by1 - by0)
        - inter
    )
    return inter / union if union > 0.0 else 0.0


def match_cost(
    box_a: Sequence[float],
    pos_a: np.ndarray,
    box_b: Sequence[float],
    pos_b: np.ndarray,
    min_iou: float,
    max_distance_m: float,
) -> float | None:
    """Cost of associating two observations, or None when they cannot be the same thing.

    They may match when their boxes overlap by at least `min_iou` or their 3D positions are
    within `max_distance_m`. Cost = (1 - IoU) + distance / max_distance_m (lower is better).

    Args:
        box_a: (4,) xyxy box of the first, pixels.
        pos_a: (3,) position of the first, metres.
        box_b: (4,) xyxy box of the second, pixels.
        pos_b: (3,) position of the second, metres (same frame as `pos_a`).
        min_iou: smallest overlap that alone allows a match.
        max_distance_m: largest 3D distance that alone allows a match (metres, > 0).
    """
    iou = box_iou(box_a, box_b)
    dist = float(np.linalg.norm(np.asarray(pos_a, float) - np.asarray(pos_b, float)))
    if not np.isfinite(dist):
        dist = float("inf")
    if iou < min_iou and dist > max_distance_m:
        return None
    return (1.0 - iou) + min(dist / max_distance_m, 10.0)


def greedy_match(costs: dict[tuple[int, int], float]) -> dict[int, int]:
    """Lowest-cost-first one-to-one assignment.

    Args:
        costs: {(row, column): cost} of the allowed pairs only.

    Returns:
        {row: column}; each row and each column used at most once. Ties are broken by
        (row, column) so the result does not depend on dict order.
    """
    out: dict[int, int] = {}
    used_cols: set[int] = set()
    for (r, c), _ in sorted(costs.items(), key=lambda kv: (kv[1], kv[0])):
        if r in out or c in used_cols:
            continue
        out[r] = c
        used_cols.add(c)
    return out
