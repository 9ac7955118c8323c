"""The ONE square crop used by training, evaluation, the Predictor and the ROS node.

Formulation (exact for a pinhole camera, no approximation):

The crop is a *virtual camera* with the same optical centre as the real camera, rotated by
`rot = Rz(rotation_deg)` about the real camera's optical (z) axis, with square pixels:

    K_crop = [[f, 0, cx], [0, f, cy], [0, 0, 1]],   f = (S / side) * sqrt(fx * fy).

A 3D point `X` (real camera frame) has coordinates `X' = rot @ X` in the crop frame and projects
to crop pixel `K_crop @ X' / z` (the depth z is unchanged by a rotation about z). Because that
rotation is about the optical axis, the full-image -> crop pixel map is the AFFINE map
`M = K_crop @ rot @ inv(K)` (only its top two rows are non-trivial), so the crop is one
`cv2.warpAffine`. The principal point (cx, cy) is chosen so that the box centre lands on the
crop centre ((S - 1) / 2, (S - 1) / 2) (pixel centres at integer coordinates). With
`rotation_deg = 0`, `rot` is the identity and the crop frame IS the camera frame of the full
image; with a rotation (training augmentation only) 3D labels must be rotated by `rot` and a
consumer maps crop-frame results back with `rot.T`. A positive angle rotates the scene
clockwise as seen in the image (x right, y down).

Areas of the crop outside the full image are filled with zeros (black). Crops that shrink the
image by more than 2x are area-filtered first (no aliasing); the geometry is the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

BORDER_VALUE: int = 0
"""Pixel value used where the crop reaches outside the full image."""

DOWNSAMPLE_BELOW: float = 0.5
"""Crops that shrink the image more than this (crop px per image px) are area pre-filtered."""


@dataclass
class CropResult:
    """A square crop of a full image and its camera.

    Attributes:
        image: (S, S, 3) uint8 RGB crop.
        K: (3, 3) float64 crop intrinsics (square pixels, fx == fy).
        affine: (2, 3) float64 map from full-image pixels to crop pixels,
            `uv_crop = affine[:, :2] @ uv + affine[:, 2]`.
        rot: (3, 3) float64 rotation from the full camera frame to the crop frame
            (`X_crop = rot @ X_cam`); the identity unless the crop is rotated.
        box: (4,) float64 the square box (full-image pixels, before rotation) that was cropped.
    """

    image: np.ndarray
    K: np.ndarray
    affine: np.ndarray
    rot: np.ndarray
    box: np.ndarray


def _as_box(box: np.ndarray, name: str) -> np.ndarray:
    box = np.asarray(box, dtype=np.float64).reshape(-1)
    if box.shape != (4,) or not np.all(np.isfinite(box)):
        raise ValueError(f"{name} must be 4 finite numbers (x_min, y_min, x_max, y_max), got {box}")
    if box[2] < box[0] or box[3] < box[1]:
        raise ValueError(f"{name} = {box.tolist()} has x_max < x_min or y_max < y_min")
    return box


def crop_box(box: np.ndarray, scale: float, min_size: float = 1.0) -> np.ndarray:
    """Square box with the same centre as `box` and side `scale * max(width, height)`.

    Args:
        box: (4,) `(x_min, y_min, x_max, y_max)` in pixels.
        scale: side multiplier (> 0), e.g. `DataConfig.crop_scale`.
        min_size: smallest allowed side in pixels (guards against degenerate boxes).

    Returns:
        (4,) float64 square box in pixels.
    """
    box = _as_box(box, "box")
    if not scale > 0:
        raise ValueError(f"crop scale must be > 0, got {scale}")
    centre = 0.5 * (box[:2] + box[2:])
    side = max(float(np.max(box[2:] - box[:2])) * scale, min_size)
    return np.concatenate([centre - 0.5 * side, centre + 0.5 * side])


def union_crop_box(hand_box: np.ndarray, obj_box: np.ndarray, scale: float) -> np.ndarray:
    """Square crop box around the union of the hand and object boxes.

    Args:
        hand_box: (4,) hand box in full-image pixels.
        obj_box: (4,) object box in full-image pixels.
        scale: crop side = scale * max side of the union box (`DataConfig.crop_scale`).

    Returns:
        (4,) float64 square box in full-image pixels.
    """
    hand_box = _as_box(hand_box, "hand_box")
    obj_box = _as_box(obj_box, "obj_box")
    union = np.concatenate(
        [np.minimum(hand_box[:2], obj_box[:2]), np.maximum(hand_box[2:], obj_box[2:])]
    )
    return crop_box(union, scale)


def rotation_z(angle_deg: float) -> np.ndarray:
    """(3, 3) rotation about the camera z (optical) axis by `angle_deg` degrees."""
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def crop_camera(
    K: np.ndarray, box: np.ndarray, out_size: int, rotation_deg: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop intrinsics, the full->crop affine map and the frame rotation (no image work).

    Args:
        K: (3, 3) full-image intrinsics.
        box: (4,) square crop box in full-image pixels (its larger side is used).
        out_size: crop side S in pixels.
        rotation_deg: in-plane rotation about the box centre, degrees.

    Returns:
        `(K_crop (3,3), affine (2,3), rot (3,3))`, see `CropResult`.
    """
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"K must be a finite (3, 3) matrix with fx, fy > 0, got {K.tolist()}")
    box = _as_box(box, "box")
    if out_size < 1:
        raise ValueError(f"out_size must be >= 1, got {out_size}")
    side = float(np.max(box[2:] - box[:2]))
    if not side > 0:
        raise ValueError(f"crop box {box.tolist()} has zero size")
    focal = out_size / side * float(np.sqrt(K[0, 0] * K[1, 1]))
    rot = rotation_z(rotation_deg)
    centre = 0.5 * (box[:2] + box[2:])
    ray = rot @ (np.linalg.inv(K) @ np.array([centre[0], centre[1], 1.0]))
    half = 0.5 * (out_size - 1)
    K_crop = np.array(
        [
            [focal, 0.0, half - focal * ray[0] / ray[2]],
            [0.0, focal, half - focal * ray[1] / ray[2]],
            [0.0, 0.0, 1.0],
        ]
    )
    full_to_crop = K_crop @ rot @ np.linalg.inv(K)
    return K_crop, full_to_crop[:2] / full_to_crop[2, 2], rot


def crop_image(
    image: np.ndarray,
    K: np.ndarray,
    box: np.ndarray,
    out_size: int,
    rotation_deg: float = 0.0,
) -> CropResult:
    """Crop a square region of `image`, resample it to `out_size` and give the crop camera.

    Args:
        image: (H, W, 3) uint8 RGB full image.
        K: (3, 3) full-image intrinsics.
        box: (4,) crop box in full-image pixels (made square about its centre if it is not).
        out_size: crop side S in pixels.
        rotation_deg: in-plane rotation about the box centre in degrees (see module docstring).

    Returns:
        CropResult with the (S, S, 3) uint8 crop, crop intrinsics, affine map and rotation.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or image.size == 0:
        raise ValueError(
            f"image must be a non-empty (H, W, 3) uint8 array, got {image.shape} {image.dtype}"
        )
    box = _as_box(box, "box")
    K_crop, affine, rot = crop_camera(K, box, out_size, rotation_deg)
    crop = _warp(np.ascontiguousarray(image), affine, int(out_size))
    return CropResult(image=crop, K=K_crop, affine=affine, rot=rot, box=box)


def _warp(image: np.ndarray, affine: np.ndarray, size: int) -> np.ndarray:
    """`cv2.warpAffine` with an area pre-filter when the crop shrinks the image by > 2x.

    Bilinear sampling alone aliases when shrinking; the crop's footprint in the full image
    (plus a margin) is first reduced with INTER_AREA to about the crop's resolution, and the
    affine map is composed with that reduction, so the geometry is unchanged.
    """
    border = (BORDER_VALUE, BORDER_VALUE, BORDER_VALUE)
    A = np.vstack([affine, [0.0, 0.0, 1.0]])
    scale = float(np.sqrt(abs(np.linalg.det(A[:2, :2]))))
    if scale < DOWNSAMPLE_BELOW:
        h, w = image.shape[:2]
        edge = np.array(
            [[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]]
        )
        foot = transform_points_2d(invert_affine(affine), edge)
        x0, y0 = (max(int(np.floor(v)) - 2, 0) for v in foot.min(axis=0))
        x1 = min(int(np.ceil(foot[:, 0].max())) + 3, w)
        y1 = min(int(np.ceil(foot[:, 1].max())) + 3, h)
        if x1 <= x0 or y1 <= y0:
            return np.full((size, size, 3), BORDER_VALUE, np.uint8)
        roi = image[y0:y1, x0:x1]
        ws = max(1, round((x1 - x0) * scale))
        hs = max(1, round((y1 - y0) * scale))
        image = cv2.resize(roi, (ws, hs), interpolation=cv2.INTER_AREA)
        sx, sy = (x1 - x0) / ws, (y1 - y0) / hs
        # small-image pixel -> full-image pixel (pixel centres at integers)
        T = np.array(
            [[sx, 0.0, x0 + 0.5 * sx - 0.5], [0.0, sy, y0 + 0.5 * sy - 0.5], [0.0, 0.0, 1.0]]
        )
        A = A @ T
    return cv2.warpAffine(
        image,
        A[:2],
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border,
    )


def transform_points_2d(affine: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine pixel map to points.

    Args:
        affine: (2, 3) map, e.g. `CropResult.affine` (full -> crop pixels).
        uv: (..., 2) pixel coordinates.

    Returns:
        (..., 2) transformed pixel coordinates (float64).
    """
    affine = np.asarray(affine, dtype=np.float64)
    uv = np.asarray(uv, dtype=np.float64)
    return uv @ affine[:, :2].T + affine[:, 2]


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine pixel map (e.g. crop -> full-image pixels)."""
    affine = np.asarray(affine, dtype=np.float64)
    full = np.vstack([affine, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def transform_box(affine: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Axis-aligned box around the four transformed corners of `box`.

    Exact for a crop without rotation; for a rotated crop the result encloses the rotated box.

    Args:
        affine: (2, 3) pixel map.
        box: (4,) `(x_min, y_min, x_max, y_max)`.

    Returns:
        (4,) float64 box in the target pixels.
    """
    box = _as_box(box, "box")
    corners = np.array([[box[0], box[1]], [box[2], box[1]], [box[0], box[3]], [box[2], box[3]]])
    uv = transform_points_2d(affine, corners)
    return np.concatenate([uv.min(axis=0), uv.max(axis=0)])
