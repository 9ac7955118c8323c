"""Training augmentations that keep 2D and 3D labels consistent, and the left-hand mirror.

Geometric augmentation (centre jitter, scale, in-plane rotation) only changes the crop box and
angle handed to `homae_model.geometry.crop.crop_image`; the crop returns the exact crop
intrinsics and the camera-frame rotation applied to every 3D label, so labels stay consistent
by construction (see the crop module). Photometric augmentation (blur, colour jitter) touches
only pixels. The left-hand mirror flips the image and reflects every label so that the model
always sees a right hand.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from homae_model.data.schema import RawSample
from homae_model.geometry.rotations import rotvec_of_matrix

if TYPE_CHECKING:
    from homae_model.config import DataConfig

BLUR_SIGMA_RANGE: tuple[float, float] = (0.5, 1.5)
"""Std (pixels of the crop) of the Gaussian blur, drawn uniformly when blur is applied."""

MIRROR: np.ndarray = np.diag([-1.0, 1.0, 1.0])
"""Reflection of the camera frame used for left hands: x -> -x."""


@dataclass
class AugmentParams:
    """One draw of the augmentation parameters (identity values mean no change).

    Attributes:
        center_offset: (2,) crop-centre shift in units of the crop side.
        scale: crop side multiplier.
        rotation_deg: in-plane rotation of the crop, degrees (see `crop_image`).
        blur_sigma: Gaussian blur std in crop pixels (0: no blur).
        brightness: brightness factor (1: unchanged).
        contrast: contrast factor (1: unchanged).
        saturation: saturation factor (1: unchanged).
        hue: hue shift as a fraction of the full colour circle (0: unchanged).
    """

    center_offset: np.ndarray
    scale: float = 1.0
    rotation_deg: float = 0.0
    blur_sigma: float = 0.0
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue: float = 0.0

    @classmethod
    def identity(cls) -> AugmentParams:
        """Parameters that change nothing (evaluation)."""
        return cls(center_offset=np.zeros(2))


def sample_augmentation(
    cfg: DataConfig, rng: np.random.Generator, enabled: bool = True
) -> AugmentParams:
    """Draw augmentation parameters as `DataConfig` specifies.

    Centre jitter U(-1, 1) * center_jitter (x crop side) per axis; scale N(1, scale_std) clipped
    to [1 - 2 std, 1 + 2 std]; rotation with probability rot_prob, N(0, rot_std_deg) clipped to
    +-rot_max_deg; blur with probability blur_prob (std in BLUR_SIGMA_RANGE); colour factors
    U(1 - x, 1 + x) for brightness, contrast, saturation and a hue shift U(-h, h).

    Args:
        cfg: the data configuration.
        rng: numpy random generator (the only source of randomness).
        enabled: False (or `cfg.augment` False) gives the identity.

    Returns:
        AugmentParams.
    """
    if not (enabled and cfg.augment):
        return AugmentParams.identity()
    offset = rng.uniform(-1.0, 1.0, size=2) * cfg.center_jitter
    std = cfg.scale_std
    scale = (
        float(np.clip(rng.normal(1.0, std), 1.0 - 2.0 * std, 1.0 + 2.0 * std)) if std > 0 else 1.0
    )
    rotation = 0.0
    if rng.random() < cfg.rot_prob:
        rotation = float(
            np.clip(rng.normal(0.0, cfg.rot_std_deg), -cfg.rot_max_deg, cfg.rot_max_deg)
        )
    blur = float(rng.uniform(*BLUR_SIGMA_RANGE)) if rng.random() < cfg.blur_prob else 0.0
    b, c, s, h = cfg.color_jitter
    return AugmentParams(
        center_offset=offset,
        scale=max(scale, 1e-3),
        rotation_deg=rotation,
        blur_sigma=blur,
        brightness=float(rng.uniform(max(0.0, 1.0 - b), 1.0 + b)),
        contrast=float(rng.uniform(max(0.0, 1.0 - c), 1.0 + c)),
        saturation=float(rng.uniform(max(0.0, 1.0 - s), 1.0 + s)),
        hue=float(rng.uniform(-h, h)),
    )


def jitter_box(box: np.ndarray, params: AugmentParams) -> np.ndarray:
    """Shift and scale a square crop box by the augmentation parameters.

    Args:
        box: (4,) square box in full-image pixels.
        params: the augmentation draw.

    Returns:
        (4,) float64 square box.
    """
    box = np.asarray(box, dtype=np.float64)
    side = float(np.max(box[2:] - box[:2]))
    centre = 0.5 * (box[:2] + box[2:]) + params.center_offset * side
    half = 0.5 * side * params.scale
    return np.concatenate([centre - half, centre + half])


def photometric(image: np.ndarray, params: AugmentParams) -> np.ndarray:
    """Blur and colour-jitter an RGB image (labels are unaffected).

    Order: blur, brightness, contrast (blend with the mean grey level), saturation (blend with
    the grey image), hue rotation.

    Args:
        image: (H, W, 3) uint8 RGB.
        params: the augmentation draw.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    out = image
    if params.blur_sigma > 0:
        out = cv2.GaussianBlur(out, (0, 0), params.blur_sigma)
    colour = (params.brightness, params.contrast, params.saturation) != (1.0, 1.0, 1.0)
    if not colour and params.hue == 0.0:
        return out
    x = out.astype(np.float32) * (1.0 / 255.0)
    if params.brightness != 1.0:
        x = x * params.brightness
    if params.contrast != 1.0:
        grey_mean = float(np.mean(x @ np.array([0.299, 0.587, 0.114], np.float32)))
        x = (x - grey_mean) * params.contrast + grey_mean
    if params.saturation != 1.0:
        grey = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        x = (x - grey) * params.saturation + grey
    x = np.clip(x, 0.0, 1.0)
    if params.hue != 0.0:
        hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)  # float input: H in [0, 360)
        hsv[..., 0] = np.mod(hsv[..., 0] + 360.0 * params.hue, 360.0)
        x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def mirror_axis_angle(rotvec: np.ndarray) -> np.ndarray:
    """Axis-angle of `MIRROR @ R @ MIRROR` for each (..., 3) rotation vector: (x, -y, -z)."""
    out = np.array(rotvec, dtype=np.float64, copy=True)
    out[..., 1:] *= -1.0
    return out


def mirror_sample(raw: RawSample) -> RawSample:
    """Reflect a left-hand sample into a right-hand one (x -> -x in the camera frame).

    The image is flipped horizontally (u -> W - 1 - u) and the intrinsics follow
    (cx -> W - 1 - cx), so `K' @ (MIRROR @ X)` projects onto the flipped pixel of `K @ X`.
    3D points: X -> MIRROR @ X. MANO: every joint's axis-angle (x, y, z) -> (x, -y, -z) and the
    translation -> MIRROR @ t, which turns the left MANO hand into the right one because MANO's
    left model is the mirror image of the right model. Object pose: R -> MIRROR R MIRROR,
    t -> MIRROR t; this pose refers to the object model mirrored in its own x axis
    (`mirror_mesh`), which the pipeline uses for corners and SDF samples of mirrored samples.

    Args:
        raw: a sample with `side == "left"` (a right-hand sample is returned unchanged).

    Returns:
        A new RawSample with `side == "right"`.
    """
    if raw.side == "right":
        return raw
    width = raw.image.shape[1] if raw.image.ndim == 3 else 0
    K = np.array(raw.K, dtype=np.float64, copy=True)
    K[0, 2] = width - 1 - K[0, 2]
    K[0, 1] = -K[0, 1]

    def flip_box(box: np.ndarray) -> np.ndarray:
        return np.array([width - 1 - box[2], box[1], width - 1 - box[0], box[3]], dtype=np.float64)

    uv = np.array(raw.hand_joints_2d, dtype=np.float64, copy=True)
    uv[:, 0] = width - 1 - uv[:, 0]
    return replace(
        raw,
        image=np.ascontiguousarray(raw.image[:, ::-1]) if width else raw.image,
        masks=None if raw.masks is None else np.ascontiguousarray(raw.masks[:, ::-1]),
        K=K,
        side="right",
        mano_pose=mirror_axis_angle(np.asarray(raw.mano_pose).reshape(16, 3)).reshape(48),
        mano_transl=MIRROR @ np.asarray(raw.mano_transl, dtype=np.float64),
        hand_joints=np.asarray(raw.hand_joints, dtype=np.float64) @ MIRROR,
        hand_joints_2d=uv,
        obj_rot=mirror_axis_angle(raw.obj_rot),
        obj_trans=MIRROR @ np.asarray(raw.obj_trans, dtype=np.float64),
        hand_box=flip_box(np.asarray(raw.hand_box)),
        obj_box=flip_box(np.asarray(raw.obj_box)),
    )


def mirror_corners(corners: np.ndarray) -> np.ndarray:
    """Bounding-box corners (8, 3) of the x-mirrored model, in the library's corner order.

    `ObjectMesh.corners[i]` takes the max of x when bit 2 of i is set; mirroring swaps the x
    extremes, so corner i of the mirrored model is the mirror of corner `i ^ 4`.
    """
    corners = np.asarray(corners, dtype=np.float64)
    return corners[[i ^ 4 for i in range(8)]] @ MIRROR


def mirror_mesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror a mesh in its x axis, reversing the winding so it stays outward oriented."""
    return np.asarray(vertices) @ MIRROR, np.asarray(faces)[:, ::-1].copy()


def rotate_mano(
    pose: np.ndarray, transl: np.ndarray, root: np.ndarray, rot: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Express MANO parameters in a rotated camera frame (`X' = rot @ X`).

    MANO rotates the hand about its rest-pose root joint `root` (shape dependent), then adds
    `transl`: `X = R_g (X_rest - root) + root + transl`. Hence `R_g' = rot @ R_g` and
    `transl' = rot @ (root + transl) - root`.

    Args:
        pose: (48,) axis-angle, global orientation first.
        transl: (3,) translation, metres.
        root: (3,) rest-pose root joint for the sample's shape (the posed root without transl).
        rot: (3, 3) frame rotation.

    Returns:
        `(pose' (48,), transl' (3,))`.
    """
    pose = np.array(pose, dtype=np.float64, copy=True)
    global_rot = rot @ Rotation.from_rotvec(pose[:3]).as_matrix()
    pose[:3] = rotvec_of_matrix(global_rot)
    return pose, rot @ (root + transl) - root
