"""Contact sheet of RawSamples: image + 2D skeleton + object axes, and the mask overlay.

Each tile shows a sample three times: the full image, then a zoom on the hand+object box, with
the projected 21-joint skeleton (wrist white, thumb red .. pinky magenta), the object's axes
(x red, y green, z blue, half the object diameter long) and the hand/object boxes (green,
blue); last the same zoom blended with the mask (hand green, object blue, distractors yellow),
the object id and the visible fractions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from homae_model.data.schema import RawSample
from homae_model.geometry.camera import project_points
from homae_model.hand.constants import SKELETON_EDGES
from homae_model.objects.library import ObjectLibrary

FINGER_COLORS = ((230, 60, 60), (240, 160, 40), (230, 230, 40), (60, 200, 80), (200, 70, 220))
"""RGB per finger (thumb, index, middle, ring, pinky)."""

MASK_COLORS = {1: (40, 220, 60), 2: (50, 110, 255), 3: (250, 220, 40)}
"""RGB overlay colour per mask label."""


def _finger_of(joint: int) -> int:
    return max(0, (joint - 1) // 4)


def zoom_affine(sample: RawSample, size: int, margin: float = 1.3) -> np.ndarray:
    """(2, 3) affine mapping full-image pixels onto a size x size zoom of the hand+object box."""
    lo = np.minimum(sample.hand_box[:2], sample.obj_box[:2])
    hi = np.maximum(sample.hand_box[2:], sample.obj_box[2:])
    centre = (lo + hi) / 2.0
    scale = size / max(float(np.max(hi - lo)) * margin, 8.0)
    offset = (size - 1) / 2.0 - scale * centre
    return np.array([[scale, 0.0, offset[0]], [0.0, scale, offset[1]]])


def _warp(
    image: np.ndarray, affine: np.ndarray, size: tuple[int, int], nearest: bool
) -> np.ndarray:
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.warpAffine(image, affine, size, flags=flags, borderValue=(30, 30, 30))


def _pt(p: np.ndarray, affine: np.ndarray) -> tuple[int, int]:
    q = affine[:, :2] @ p + affine[:, 2]
    return int(np.clip(round(q[0]), -10000, 10000)), int(np.clip(round(q[1]), -10000, 10000))


def draw_annotations(
    sample: RawSample,
    library: ObjectLibrary | None = None,
    affine: np.ndarray | None = None,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Image with skeleton, object axes and boxes drawn on it, (h, w, 3) uint8 RGB.

    Args:
        sample: the sample.
        library: object library for the axes length (axes skipped without it).
        affine: optional (2, 3) full-image -> output pixel map (e.g. `zoom_affine`).
        size: (w, h) of the output when `affine` is given.
    """
    if affine is None:
        affine = np.array([[1.0, 0, 0], [0, 1.0, 0]])
        size = (sample.image.shape[1], sample.image.shape[0])
        img = np.ascontiguousarray(sample.image.copy())
    else:
        img = np.ascontiguousarray(_warp(sample.image, affine, size, nearest=False))
    scale = max(1, round(max(img.shape[:2]) / 256))
    for box, color in ((sample.hand_box, (40, 220, 60)), (sample.obj_box, (50, 110, 255))):
        cv2.rectangle(img, _pt(box[:2], affine), _pt(box[2:], affine), color, 1)
    if library is not None and sample.obj_name in library:
        mesh = library.get(sample.obj_name)
        R = Rotation.from_rotvec(sample.obj_rot).as_matrix()
        axes = np.vstack([np.zeros(3), np.eye(3) * 0.5 * mesh.diameter]) @ R.T + sample.obj_trans
        if np.all(axes[:, 2] > 0.01):
            uv = project_points(axes, sample.K)
            for k, color in enumerate(((255, 40, 40), (40, 255, 40), (40, 80, 255))):
                cv2.line(img, _pt(uv[0], affine), _pt(uv[k + 1], affine), color, scale, cv2.LINE_AA)
    pts = [_pt(p, affine) for p in sample.hand_joints_2d]
    for a, b in SKELETON_EDGES:
        color = FINGER_COLORS[_finger_of(max(a, b))]
        cv2.line(img, pts[a], pts[b], color, scale, cv2.LINE_AA)
    for j, p in enumerate(pts):
        cv2.circle(img, p, scale + 1, FINGER_COLORS[_finger_of(j)] if j else (255, 255, 255), -1)
    return img


def mask_overlay(
    sample: RawSample,
    alpha: float = 0.5,
    affine: np.ndarray | None = None,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Image blended with the mask colours (h, w, 3) uint8 (optionally warped by `affine`)."""
    img = sample.image.astype(np.float32)
    if sample.masks is not None:
        for label, color in MASK_COLORS.items():
            sel = sample.masks == label
            img[sel] = (1 - alpha) * img[sel] + alpha * np.asarray(color, np.float32)
    out = np.clip(img, 0, 255).astype(np.uint8)
    if affine is not None:
        out = np.ascontiguousarray(_warp(out, affine, size, nearest=True))
    text = f"{sample.obj_name[:3]} h {sample.hand_visible:.2f} o {sample.obj_visible:.2f}"
    font = max(0.3, out.shape[1] / 600)
    cv2.putText(
        out, text, (3, out.shape[0] - 5), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255), 1
    )
    return out


def contact_sheet(
    samples: Sequence[RawSample], library: ObjectLibrary | None = None, columns: int = 3
) -> np.ndarray:
    """Grid of tiles, each (full annotated image | zoomed annotations | zoomed mask overlay).

    Returns:
        (rows * H, columns * 3W, 3) uint8 RGB (tiles separated by thin dark lines); W, H of
        the first sample.
    """
    if not samples:
        raise ValueError("contact_sheet needs at least one sample")
    h, w = samples[0].image.shape[:2]
    rows = -(-len(samples) // columns)
    sheet = np.full((rows * (h + 4), columns * (3 * w + 8), 3), 30, np.uint8)
    for i, sample in enumerate(samples):
        r, c = divmod(i, columns)
        full = draw_annotations(sample, library)
        full = cv2.resize(full, (w, h)) if full.shape[:2] != (h, w) else full
        affine = zoom_affine(sample, h)
        zoom = draw_annotations(sample, library, affine, (h, h))
        over = mask_overlay(sample, affine=affine, size=(h, h))
        tile = np.concatenate([full, cv2.resize(zoom, (w, h)), cv2.resize(over, (w, h))], axis=1)
        y, x = r * (h + 4), c * (3 * w + 8)
        sheet[y : y + h, x : x + 3 * w] = tile
    return sheet


def write_contact_sheet(
    path: str | Path,
    samples: Sequence[RawSample],
    library: ObjectLibrary | None = None,
    columns: int = 3,
) -> Path:
    """Write `contact_sheet(samples)` as a PNG and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet = contact_sheet(samples, library, columns)
    if not cv2.imwrite(str(path), np.ascontiguousarray(sheet[..., ::-1])):
        raise OSError(f"could not write contact sheet {path}")
    return path
