"""Fuse one instant's views from several cameras into one set of hands and objects (world).

Steps: associate (`associate`), reject outliers in each group (`robust.reject_outliers`),
fuse the kept views (joints: robust anisotropic weighted mean; object rotation: weighted
chordal mean; object translation: anisotropic weighted mean), then link hands and objects
into pairs through the cameras' own pair ids.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from homae_model.fusion.associate import associate
from homae_model.fusion.robust import (
    fuse_points,
    mean_rotation,
    reject_outliers,
    rotation_angle_deg,
    view_rays,
    weighted_points,
)
from homae_model.fusion.settings import FusionSettings
from homae_model.fusion.views import HandView, ObjectView
from homae_model.fusion.weights import ray_discount


@dataclass(frozen=True)
class FusedHand:
    """A hand fused from one or more views, world frame.

    Attributes:
        side: "right" or "left".
        score: highest score among the kept views.
        joints: (21, 3) world frame, metres.
        mano_pose: (48,) world-frame global orientation + weighted mean articulation, or None
            when no kept view had one.
        mano_shape: (10,) weighted mean, or None.
        pair_id: fused pair index (matches FusedObject.pair_id).
        cameras: cameras whose views were fused (decreasing weight).
        rejected: cameras whose views were dropped as outliers.
    """

    side: str
    score: float
    joints: np.ndarray
    mano_pose: np.ndarray | None
    mano_shape: np.ndarray | None
    pair_id: int
    cameras: tuple[str, ...]
    rejected: tuple[str, ...]


@dataclass(frozen=True)
class FusedObject:
    """An object fused from one or more views, world frame (X_world = R X_obj + t).

    Attributes:
        name: object library name.
        score: highest score among the kept views.
        R: (3, 3) rotation object -> world.
        t: (3,) metres.
        pair_id: fused pair index.
        cameras: cameras whose views were fused.
        rejected: cameras whose views were dropped as outliers.
    """

    name: str
    score: float
    R: np.ndarray
    t: np.ndarray
    pair_id: int
    cameras: tuple[str, ...]
    rejected: tuple[str, ...]


@dataclass(frozen=True)
class FusedFrame:
    """Everything fused at one instant."""

    hands: list[FusedHand]
    objects: list[FusedObject]


def fuse_hands(views: Sequence[HandView], settings: FusionSettings) -> FusedHand:
    """Fuse views of one hand (pair_id is set to -1; `fuse_frame` assigns it).

    Raises:
        ValueError: no view with a positive weight.
    """
    views = [v for v in views if v.weight > 0]
    if not views:
        raise ValueError("no hand view with a positive weight to fuse")
    rho = settings.depth_ratio
    points = np.stack([v.joints for v in views])
    centres = np.stack([v.centre for v in views])
    rays = view_rays(points, centres)
    weights = np.array([v.weight for v in views])

    def disagreement(k: int, others: list[int]) -> float:
        consensus = weighted_points(points[others], rays[others], weights[others], rho)
        dist = ray_discount(rays[k], points[k] - consensus, rho).mean()
        return float(dist / settings.hand_outlier_m)

    kept, dropped = reject_outliers(len(views), disagreement)
    joints = fuse_points(
        points[kept], centres[kept], weights[kept], rho, settings.huber_m,
        settings.irls_iterations,
    )  # fmt: skip
    kept_views = [views[k] for k in kept]
    pose, shape = _fuse_mano(kept_views)
    return FusedHand(
        side=views[kept[0]].side,
        score=max(v.score for v in kept_views),
        joints=joints,
        mano_pose=pose,
        mano_shape=shape,
        pair_id=-1,
        cameras=tuple(v.camera for v in kept_views),
        rejected=tuple(views[k].camera for k in dropped),
    )


def fuse_objects(views: Sequence[ObjectView], settings: FusionSettings) -> FusedObject:
    """Fuse views of one object (pair_id is set to -1; `fuse_frame` assigns it).

    Raises:
        ValueError: no view with a positive weight.
    """
    views = [v for v in views if v.weight > 0]
    if not views:
        raise ValueError("no object view with a positive weight to fuse")
    rho = settings.depth_ratio
    points = np.stack([v.t for v in views])[:, None]  # (K, 1, 3)
    centres = np.stack([v.centre for v in views])
    rays = view_rays(points, centres)
    rotations = np.stack([v.R for v in views])
    weights = np.array([v.weight for v in views])

    def disagreement(k: int, others: list[int]) -> float:
        t = weighted_points(points[others], rays[others], weights[others], rho)
        dist = float(ray_discount(rays[k], points[k] - t, rho)[0])
        angle = rotation_angle_deg(rotations[k], mean_rotation(rotations[others], weights[others]))
        return max(dist / settings.object_outlier_m, angle / settings.object_outlier_deg)

    kept, dropped = reject_outliers(len(views), disagreement)
    t = fuse_points(
        points[kept], centres[kept], weights[kept], rho, settings.huber_m,
        settings.irls_iterations,
    )[0]  # fmt: skip
    kept_views = [views[k] for k in kept]
    return FusedObject(
        name=views[kept[0]].name,
        score=max(v.score for v in kept_views),
        R=mean_rotation(rotations[kept], weights[kept]),
        t=t,
        pair_id=-1,
        cameras=tuple(v.camera for v in kept_views),
        rejected=tuple(views[k].camera for k in dropped),
    )


def _fuse_mano(views: list[HandView]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """World-frame MANO pose (per-joint weighted chordal mean) and weighted mean shape."""
    with_pose = [v for v in views if v.mano_pose is not None]
    pose = None
    if with_pose:
        w = np.array([v.weight for v in with_pose])
        rotvecs = np.stack([v.mano_pose for v in with_pose]).reshape(len(with_pose), 16, 3)
        pose = np.empty((16, 3))
        for j in range(16):
            mats = Rotation.from_rotvec(rotvecs[:, j]).as_matrix()
            pose[j] = Rotation.from_matrix(mean_rotation(mats, w)).as_rotvec()
        pose = pose.reshape(48)
    with_shape = [v for v in views if v.mano_shape is not None]
    shape = None
    if with_shape:
        w = np.array([v.weight for v in with_shape])
        shape = np.einsum("k,ka->a", w, np.stack([v.mano_shape for v in with_shape])) / w.sum()
    return pose, shape


def fuse_frame(
    hands: Sequence[HandView], objects: Sequence[ObjectView], settings: FusionSettings
) -> FusedFrame:
    """Associate, reject outliers and fuse all views of one instant.

    Pairs: a fused hand and a fused object are linked when views of both came from the same
    camera with the same per-camera pair id; each object joins the hand it shares the most
    such links with (ties: the heavier hand). Fused hands get pair ids 0..H-1 in the order of
    decreasing total weight; an object linked to no hand gets the next free id.

    Args:
        hands: hand views from all cameras (world frame).
        objects: object views from all cameras.
        settings: fusion settings.

    Returns:
        the fused hands and objects (views of weight 0 are ignored).
    """
    rho = settings.depth_ratio
    hand_groups = associate(hands, lambda v: v.side, settings.hand_gate_m, rho)
    obj_groups = associate(objects, lambda v: v.name, settings.object_gate_m, rho)
    fused_hands = []
    for pid, group in enumerate(hand_groups):
        h = fuse_hands([hands[i] for i in group], settings)
        fused_hands.append(_with_pair(h, pid))
    hand_keys = [{(hands[i].camera, hands[i].pair_id) for i in g} for g in hand_groups]
    next_id = len(hand_groups)
    fused_objects = []
    for group in obj_groups:
        links = Counter()
        for i in group:
            for hi, keys in enumerate(hand_keys):
                if (objects[i].camera, objects[i].pair_id) in keys:
                    links[hi] += 1
        if links:
            pid = min(links, key=lambda hi: (-links[hi], hi))
        else:
            pid, next_id = next_id, next_id + 1
        o = fuse_objects([objects[i] for i in group], settings)
        fused_objects.append(_with_pair(o, pid))
    return FusedFrame(fused_hands, fused_objects)


def _with_pair(item: FusedHand | FusedObject, pair_id: int) -> FusedHand | FusedObject:
    from dataclasses import replace

    return replace(item, pair_id=pair_id)
