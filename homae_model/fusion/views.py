"""One camera's estimate of one hand or object, expressed in the world frame.

Built from the per-camera (optical frame) values and the camera's extrinsics T_world_cam
(`frames`). Each view remembers where its camera is (for the viewing rays of the anisotropic
fusion) and its scalar weight (`weights.view_weight`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from homae_model.fusion.frames import check_extrinsics, transform_points, viewing_ray
from homae_model.fusion.settings import FusionSettings
from homae_model.fusion.weights import view_weight

NUM_JOINTS = 21
MANO_POSE_DIM = 48
MANO_SHAPE_DIM = 10


@dataclass(frozen=True)
class HandView:
    """A hand seen by one camera, world frame.

    Attributes:
        camera: camera name (unique per camera, e.g. its result topic).
        side: "right" or "left".
        score: the camera's confidence in [0, 1].
        joints: (21, 3) joints, world frame, metres.
        box: (4,) box in the camera's image, pixels.
        pair_id: the camera's hand-object pair index.
        centre: (3,) the camera's optical centre, world frame, metres.
        weight: scalar weight (`weights.view_weight`), >= 0.
        mano_pose: (48,) axis-angle with the global orientation re-expressed in the world
            frame, or None.
        mano_shape: (10,) MANO shape, or None.
    """

    camera: str
    side: str
    score: float
    joints: np.ndarray
    box: np.ndarray
    pair_id: int
    centre: np.ndarray
    weight: float
    mano_pose: np.ndarray | None = None
    mano_shape: np.ndarray | None = None

    @property
    def position(self) -> np.ndarray:
        """(3,) joint centroid, world frame, metres (used for association)."""
        return self.joints.mean(axis=0)


@dataclass(frozen=True)
class ObjectView:
    """An object seen by one camera, world frame (X_world = R X_obj + t).

    Attributes:
        camera: camera name.
        name: object library name.
        score: confidence in [0, 1].
        R: (3, 3) rotation object -> world.
        t: (3,) translation, world frame, metres.
        box: (4,) box in the camera's image, pixels.
        pair_id: the camera's hand-object pair index.
        centre: (3,) the camera's optical centre, world frame, metres.
        weight: scalar weight, >= 0.
    """

    camera: str
    name: str
    score: float
    R: np.ndarray
    t: np.ndarray
    box: np.ndarray
    pair_id: int
    centre: np.ndarray
    weight: float

    @property
    def position(self) -> np.ndarray:
        """(3,) object origin, world frame, metres."""
        return self.t


def hand_view(
    camera: str,
    T_world_cam: np.ndarray,
    side: str,
    score: float,
    joints_cam: np.ndarray,
    box: np.ndarray,
    pair_id: int,
    settings: FusionSettings,
    mano_pose: np.ndarray | None = None,
    mano_shape: np.ndarray | None = None,
) -> HandView:
    """A HandView from one camera's optical-frame estimate.

    Args:
        camera: camera name.
        T_world_cam: (4, 4) camera optical frame -> world.
        side: "right" or "left".
        score: confidence in [0, 1].
        joints_cam: (21, 3) joints in the camera optical frame, metres.
        box: (4,) pixels.
        pair_id: the camera's pair index.
        settings: fusion settings (for the weight).
        mano_pose: (48,) camera-frame MANO pose (global orientation first), or None.
        mano_shape: (10,) or None.

    Raises:
        ValueError: bad shapes or a bad transform (names the camera).
    """
    T = check_extrinsics(T_world_cam, f"camera {camera!r}")
    j = np.asarray(joints_cam, dtype=np.float64)
    if j.shape != (NUM_JOINTS, 3):
        raise ValueError(f"camera {camera!r}: hand joints must be (21, 3), got {j.shape}")
    joints = transform_points(T, j)
    _, depth = viewing_ray(T, joints.mean(axis=0))
    box_arr = np.asarray(box, dtype=np.float64).reshape(4)
    weight = view_weight(score, box_arr, depth, settings) if np.isfinite(j).all() else 0.0
    pose = None
    if mano_pose is not None:
        pose = np.asarray(mano_pose, dtype=np.float64).reshape(MANO_POSE_DIM).copy()
        global_rot = Rotation.from_matrix(T[:3, :3]) * Rotation.from_rotvec(pose[:3])
        pose[:3] = global_rot.as_rotvec()
    shape = None
    if mano_shape is not None:
        shape = np.asarray(mano_shape, dtype=np.float64).reshape(MANO_SHAPE_DIM)
    return HandView(
        camera, side, float(score), joints, box_arr, int(pair_id), T[:3, 3].copy(), weight,
        pose, shape,
    )  # fmt: skip


def object_view(
    camera: str,
    T_world_cam: np.ndarray,
    name: str,
    score: float,
    R_cam: np.ndarray,
    t_cam: np.ndarray,
    box: np.ndarray,
    pair_id: int,
    settings: FusionSettings,
) -> ObjectView:
    """An ObjectView from one camera's optical-frame pose (X_cam = R_cam X_obj + t_cam).

    Raises:
        ValueError: bad shapes or a bad transform (names the camera).
    """
    T = check_extrinsics(T_world_cam, f"camera {camera!r}")
    R = np.asarray(R_cam, dtype=np.float64)
    t = np.asarray(t_cam, dtype=np.float64).reshape(-1)
    if R.shape != (3, 3) or t.shape != (3,):
        raise ValueError(f"camera {camera!r}: object pose must be R (3, 3), t (3,)")
    R_w = T[:3, :3] @ R
    t_w = transform_points(T, t)
    _, depth = viewing_ray(T, t_w)
    box_arr = np.asarray(box, dtype=np.float64).reshape(4)
    ok = np.isfinite(R).all() and np.isfinite(t).all()
    weight = view_weight(score, box_arr, depth, settings) if ok else 0.0
    return ObjectView(
        camera, str(name), float(score), R_w, t_w, box_arr, int(pair_id), T[:3, 3].copy(), weight
    )
