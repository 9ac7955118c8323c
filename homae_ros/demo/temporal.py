"""The demo's `tracking` summary: identities, names, TF child frames, jitter, MJE raw vs filtered.

The demo plays its clip twice through the same running node: first as configured (smoothing
off, the raw per-frame estimates), then after `smoothing.enabled := true` is set on the running
node. `tracking_summary` compares the two plays frame by frame against the clip's ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from homae_model.tracking.metrics import id_switches, jitter_mm, value_changes

__all__ = ["play_series", "tracking_summary"]


def play_series(results: Sequence[Any], stamps_ns: Sequence[int]) -> dict[str, list[Any]]:
    """The followed hand (the first one) of each frame of one play.

    Args:
        results: HandObjectResult messages of the play (any order).
        stamps_ns: the stamps sent in this play, in order (frame i = stamps_ns[i]).

    Returns:
        {"hand_ids", "object_names", "joints"} lists with one entry per sent frame (None
        where that frame has no result or no hand).
    """
    from homae_ros.messages.build import hand_from_msg
    from homae_ros.messages.stamps import stamp_ns

    index = {ns: i for i, ns in enumerate(stamps_ns)}
    n = len(stamps_ns)
    out: dict[str, list[Any]] = {"hand_ids": [None] * n, "object_names": [None] * n}
    out["joints"] = [None] * n
    for msg in results:
        i = index.get(stamp_ns(msg.header))
        if i is None or not msg.hands:
            continue
        hand = hand_from_msg(msg.hands[0])
        out["hand_ids"][i] = hand.track_id
        out["joints"][i] = hand.joints
        if msg.objects:
            out["object_names"][i] = msg.objects[0].name
    return out


def _mje_mm(joints: Sequence[np.ndarray | None], gt: Sequence[np.ndarray]) -> float | None:
    from homae_model.metrics.hand import mje

    errs = [float(mje(j, g)) for j, g in zip(joints, gt, strict=True) if j is not None]
    return float(np.mean(errs)) if errs else None


def tracking_summary(
    raw: dict[str, list[Any]],
    filtered: dict[str, list[Any]],
    gt_joints: Sequence[np.ndarray],
    tf_children: set[str],
    smoothing: dict[str, Any],
) -> dict[str, Any]:
    """The `tracking` block of summary.json.

    Args:
        raw: `play_series` of the first play (smoothing off).
        filtered: `play_series` of the second play (smoothing on).
        gt_joints: (21, 3) ground-truth joints per frame, metres.
        tf_children: every TF child frame id the node published.
        smoothing: the smoothing settings of the second play (reported as they were).

    Returns:
        {"hand_id_switches", "object_name_changes" (both plays together), "tf_child_frames"
        (sorted), "jitter_mm": {"raw", "filtered"} (mean joint acceleration, mm per frame²,
        over frames present in BOTH plays), "mje_mm": {"raw", "filtered"} (same frames),
        "frames_compared", "smoothing"}.
    """
    both = [
        i for i, (a, b) in enumerate(zip(raw["joints"], filtered["joints"], strict=True))
        if a is not None and b is not None
    ]  # fmt: skip
    keep = set(both)
    stamps = list(range(len(gt_joints)))

    def only(series):
        return [j if i in keep else None for i, j in enumerate(series)]

    return {
        "hand_id_switches": id_switches(raw["hand_ids"]) + id_switches(filtered["hand_ids"]),
        "object_name_changes": value_changes(raw["object_names"])
        + value_changes(filtered["object_names"]),
        "tf_child_frames": sorted(tf_children),
        "jitter_mm": {
            "raw": jitter_mm(only(raw["joints"]), stamps),
            "filtered": jitter_mm(only(filtered["joints"]), stamps),
        },
        "mje_mm": {
            "raw": _mje_mm(only(raw["joints"]), gt_joints),
            "filtered": _mje_mm(only(filtered["joints"]), gt_joints),
        },
        "frames_compared": len(both),
        "smoothing": dict(smoothing),
    }
