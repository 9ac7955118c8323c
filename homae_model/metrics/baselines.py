"""Constant predictions from labels: the mean hand and the mean object pose of some frames.

What a model that knows nothing but the true hand root would predict (camera frame, metres):
the mean root-relative 21 joints, the generalised-Procrustes mean hand (the constant
articulation), the chordal L2 mean object rotation and the mean object offset from the root.
Pure numpy over labels; `evaluation.baselines` scores them with the evaluation's accumulator,
`training.monitor` on its held-out crops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from homae_model.hand.constants import NUM_JOINTS, ROOT_JOINT
from homae_model.metrics.hand import align_joints


@dataclass
class GroundTruthFrame:
    """The labels a baseline needs from one frame (camera frame, metres).

    Attributes:
        joints: (21, 3) GT joints, project order.
        obj_rot: (3, 3) GT object rotation.
        obj_trans: (3,) GT object translation.
        obj_name: object library name.
        occluded: whether the frame is in the occluded subset.
    """

    joints: np.ndarray
    obj_rot: np.ndarray
    obj_trans: np.ndarray
    obj_name: str
    occluded: bool = False


@dataclass
class BaselineMeans:
    """The constant predictions.

    Attributes:
        root_relative_joints: (21, 3) mean of ``joints - joints[root]``, metres.
        obj_rot: (3, 3) chordal mean rotation.
        obj_offset: (3,) mean of ``obj_trans - joints[root]``, metres.
        frames: number of frames averaged.
        articulation: (21, 3) Procrustes-mean hand (`procrustes_mean_hand`), root at 0, or
            None (then PA-MJE of a constant articulation is not measured).
    """

    root_relative_joints: np.ndarray
    obj_rot: np.ndarray
    obj_offset: np.ndarray
    frames: int
    articulation: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "root_relative_joints_m": self.root_relative_joints.tolist(),
            "obj_rotation": self.obj_rot.tolist(),
            "obj_offset_from_root_m": self.obj_offset.tolist(),
            "frames": self.frames,
            "articulation_m": None if self.articulation is None else self.articulation.tolist(),
        }


def chordal_mean_rotation(rotations: np.ndarray) -> np.ndarray:
    """The rotation closest (Frobenius) to the mean of rotation matrices: chordal L2 mean.

    Args:
        rotations: (N, 3, 3) rotation matrices, N >= 1.

    Returns:
        (3, 3) rotation matrix (det +1).

    Raises:
        ValueError: empty or wrongly shaped input.
    """
    r = np.asarray(rotations, dtype=np.float64)
    if r.ndim != 3 or r.shape[1:] != (3, 3) or r.shape[0] == 0:
        raise ValueError(f"rotations: expected (N, 3, 3) with N >= 1, got {r.shape}")
    u, _, vt = np.linalg.svd(r.mean(axis=0))
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    return u @ np.diag([1.0, 1.0, d]) @ vt


def procrustes_mean_hand(joints: np.ndarray, iterations: int = 5) -> np.ndarray:
    """The generalised-Procrustes mean of hands: the best constant under PA-MJE, roughly.

    The mean root-relative hand in the camera frame averages hands of many orientations into a
    shrunken, distorted hand, so its PA-MJE overstates what knowing nothing is worth (a flat
    MANO hand scores better). This mean aligns every hand (similarity) to the running mean
    before averaging, so its PA-MJE is what a constant articulation scores.

    Args:
        joints: (N, 21, 3) hands, metres.
        iterations: alignment / averaging rounds.

    Returns:
        (21, 3) the mean hand, root at the origin, scaled to the hands' mean size.
    """
    j = np.asarray(joints, dtype=np.float64)
    j = j - j[:, ROOT_JOINT : ROOT_JOINT + 1]
    size = float(np.linalg.norm(j - j.mean(axis=1, keepdims=True), axis=-1).mean())
    ref = j[0]
    for _ in range(iterations):
        aligned = align_joints(j, np.broadcast_to(ref, j.shape).copy(), "procrustes", False)
        ref = aligned.mean(axis=0)
        ref = ref - ref[ROOT_JOINT]
        spread = float(np.linalg.norm(ref - ref.mean(axis=0), axis=-1).mean())
        ref = ref * (size / max(spread, 1e-9))
    return ref


def baseline_means(frames: Sequence[GroundTruthFrame]) -> BaselineMeans:
    """Mean root-relative hand and mean object pose of some frames.

    Raises:
        ValueError: no frames.
    """
    if not frames:
        raise ValueError("baseline_means: no labelled frames to average")
    joints = np.stack([np.asarray(f.joints, np.float64) for f in frames])
    if joints.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints: expected (N, {NUM_JOINTS}, 3), got {joints.shape}")
    roots = joints[:, ROOT_JOINT]
    offsets = np.stack([np.asarray(f.obj_trans, np.float64) for f in frames]) - roots
    return BaselineMeans(
        root_relative_joints=(joints - roots[:, None]).mean(axis=0),
        obj_rot=chordal_mean_rotation(np.stack([f.obj_rot for f in frames])),
        obj_offset=offsets.mean(axis=0),
        frames=len(frames),
        articulation=procrustes_mean_hand(joints),
    )
