"""Temporal quality of a tracked sequence: identity switches, name changes, jitter (numpy)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

__all__ = ["id_switches", "jitter_mm", "value_changes"]


def value_changes(values: Sequence[object | None]) -> int:
    """How often consecutive present values differ (None = absent, skipped)."""
    present = [v for v in values if v is not None]
    return sum(1 for a, b in itertools.pairwise(present) if a != b)


def id_switches(track_ids: Sequence[int | None]) -> int:
    """Changes of the track id of the one followed thing between frames where it is seen."""
    return value_changes(track_ids)


def jitter_mm(joints: Sequence[np.ndarray | None], stamps_s: Sequence[float]) -> float | None:
    """Mean frame-to-frame joint acceleration magnitude, in millimetres per frame squared.

    For three consecutive frames with joints (the same track) j0, j1, j2 the acceleration of
    each joint is |j2 - 2 j1 + j0|; the result is the mean over joints and triples. Triples
    with a missing frame in between are skipped.

    Args:
        joints: per frame (21, 3) joints in metres, or None where the hand is missing.
        stamps_s: per frame stamp (s); only used to keep the order.

    Returns:
        The mean acceleration in mm, or None when there is no triple.
    """
    order = np.argsort(np.asarray(stamps_s, dtype=np.float64), kind="stable")
    seq = [joints[i] for i in order]
    acc = []
    for a, b, c in zip(seq, seq[1:], seq[2:], strict=False):
        if a is None or b is None or c is None:
            continue
        d = np.asarray(c, float) - 2.0 * np.asarray(b, float) + np.asarray(a, float)
        acc.append(np.linalg.norm(d, axis=-1).mean())
    return 1e3 * float(np.mean(acc)) if acc else None
