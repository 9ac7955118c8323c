"""Left hands through the right-hand network, as HaMeR does: mirror in, estimate, mirror back.

The network (and its MANO layer) knows right hands only. A left hand's pair is estimated on the
mirror image: the image is flipped left-right with K adjusted (`cx -> W-1-cx`,
`geometry.mirror.flip_intrinsics`) and the boxes flipped, so the Predictor's crop of the
flipped image is exactly the flipped crop of the original with a consistent crop K (the crop
does not rotate). In the flipped view the left hand is a right hand; the estimate is then
mirrored back into the original camera frame (x -> -x):

- joints, vertices, anchor: x negated (the vertices are then those of the LEFT MANO model:
  ``ManoLayer(side="left")(mano_pose, mano_shape, hand_transl)`` gives them back, exactly for
  the mirrored model the project builds, `homae_model.hand.mano`);
- mano_pose: (x, y, z) -> (x, -y, -z) per joint (`hand.mano.mirror_pose`), hand_transl: x
  negated (the left-model convention ``left(mirror_pose(p), b, M t) == M right(p, b, t)``);
- object: what the network saw is the mirrored object ``M X``; its pose R_f mirrored back
  poses the real mesh as ``R = M R_f S`` with S the reflection of the object's symmetry plane
  (`geometry.mirror.symmetry_reflection`; default S = M, the object frame's x = 0 plane),
  ``t = M t_f``;
- crop_box: flipped back to the original image.

Right hands (side "right") go through the Predictor unchanged. A frame with both sides costs
two Predictor batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from homae_model.geometry.camera import validate_intrinsics
from homae_model.geometry.mirror import (
    MIRROR,
    flip_box,
    flip_image,
    flip_intrinsics,
    mirror_axis_angle,
    mirror_points,
)
from homae_model.geometry.rotations import matrix_to_axis_angle_np
from homae_model.inference import Box, PairPrediction, Predictor, validate_image

SIDES = ("right", "left")
"""Hand sides, as published (`HandPose.side`)."""

DEFAULT_SIDE = "right"
"""Side of a hand whose side is unknown (a single-class "hand" detector, a fixed ROI)."""


def resolve_side(side: str | None) -> str:
    """`side`, or `DEFAULT_SIDE` when it is None (unknown).

    Raises:
        ValueError: neither None, "right" nor "left".
    """
    if side is None:
        return DEFAULT_SIDE
    if side not in SIDES:
        raise ValueError(f"hand side must be 'right' or 'left', got {side!r}")
    return side


def _predict(
    predictor: Predictor,
    image: np.ndarray,
    K: np.ndarray,
    pairs: Sequence[tuple[Box, Box]],
    anchors: np.ndarray | Sequence[Sequence[float]] | None,
) -> list[PairPrediction]:
    """`predictor.predict`, called exactly as before sides existed when there are no anchors."""
    if anchors is None:
        return predictor.predict(image, K, pairs)
    return predictor.predict(image, K, pairs, anchors)


def mirror_prediction(
    pred: PairPrediction, width: int, obj_reflection: np.ndarray | None = None
) -> PairPrediction:
    """A prediction made on the flipped image, mirrored back into the original camera frame.

    Args:
        pred: estimate of a right hand in the flipped image (camera frame of the flipped
            image, metres; crop box in flipped-image pixels).
        width: image width W in pixels.
        obj_reflection: (3,3) reflection of the object mesh's symmetry plane in its own frame
            (`geometry.mirror.symmetry_reflection`); None: the x = 0 plane (MIRROR).

    Returns:
        The left-hand estimate in the original image (see the module for each field).
    """
    S = MIRROR if obj_reflection is None else np.asarray(obj_reflection, dtype=np.float64)
    rot = MIRROR @ np.asarray(pred.obj_rot_matrix, dtype=np.float64) @ S
    obj_rot = matrix_to_axis_angle_np(rot)
    return replace(
        pred,
        joints=mirror_points(pred.joints),
        vertices=mirror_points(pred.vertices),
        mano_pose=mirror_axis_angle(pred.mano_pose),
        mano_shape=np.array(pred.mano_shape, dtype=np.float64, copy=True),
        hand_transl=mirror_points(pred.hand_transl),
        obj_rot=obj_rot,
        obj_trans=mirror_points(pred.obj_trans),
        obj_rot_matrix=rot,
        crop_box=flip_box(pred.crop_box, width),
        anchor=mirror_points(pred.anchor),
        scores=dict(pred.scores),
        alternatives=[mirror_prediction(a, width, obj_reflection) for a in pred.alternatives],
    )


def predict_sided(
    predictor: Predictor,
    image: np.ndarray,
    K: np.ndarray,
    pairs: Sequence[tuple[Box, Box]],
    sides: Sequence[str | None],
    anchors: np.ndarray | Sequence[Sequence[float]] | None = None,
    obj_reflections: Sequence[np.ndarray | None] | None = None,
) -> list[PairPrediction]:
    """`Predictor.predict` for hands of either side (left ones through the mirror).

    Args:
        predictor: the right-hand Predictor.
        image: (H,W,3) uint8 RGB.
        K: (3,3) full-image intrinsics.
        pairs: (hand_box, obj_box) per pair, xyxy full-image pixels.
        sides: per pair "right", "left" or None (unknown: `DEFAULT_SIDE`).
        anchors: optional (P,3) voxel-grid centres, camera frame of `image` (metres).
        obj_reflections: per pair the object's symmetry reflection (see `mirror_prediction`)
            or None.

    Returns:
        One `PairPrediction` per pair, in order, camera frame of `image`.

    Raises:
        ValueError: bad sides (and whatever `Predictor.predict` rejects).
    """
    if len(sides) != len(pairs):
        raise ValueError(f"sides: expected {len(pairs)} entries (one per pair), got {len(sides)}")
    resolved = [resolve_side(s) for s in sides]
    left = [i for i, s in enumerate(resolved) if s == "left"]
    if not left:
        return _predict(predictor, image, K, pairs, anchors)
    validate_image(image)
    validate_intrinsics(K, "K")
    right = [i for i, s in enumerate(resolved) if s == "right"]
    given = None if anchors is None else np.asarray(anchors, dtype=np.float64)
    if given is not None and given.shape != (len(pairs), 3):
        raise ValueError(f"anchors: expected ({len(pairs)}, 3), got shape {given.shape}")
    out: list[PairPrediction | None] = [None] * len(pairs)
    if right:
        sub = None if given is None else given[right]
        found = _predict(predictor, image, K, [pairs[i] for i in right], sub)
        for i, p in zip(right, found, strict=True):
            out[i] = p
    width = int(image.shape[1])
    flipped_pairs = [
        (flip_box(np.asarray(pairs[i][0], np.float64), width),
         flip_box(np.asarray(pairs[i][1], np.float64), width))
        for i in left
    ]  # fmt: skip
    sub = None if given is None else mirror_points(given[left])
    flipped = _predict(predictor, flip_image(image), flip_intrinsics(K, width), flipped_pairs, sub)
    for i, p in zip(left, flipped, strict=True):
        refl = None if obj_reflections is None else obj_reflections[i]
        out[i] = mirror_prediction(p, width, refl)
    return [p for p in out if p is not None]
