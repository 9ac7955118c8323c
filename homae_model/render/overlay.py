"""Drawing hand and object estimates onto images: skeleton, mesh, object axes, boxes.

One set of drawing functions for everything a person looks at: the node's debug image, the
demo's overlays, `homae-infer`, training previews and the synthetic data's contact sheet.
Images are RGB uint8 (H,W,3) and are drawn on in place; 3D inputs are in the camera frame of
`K` (metres), pixels follow the OpenCV convention.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from homae_model.hand.constants import SKELETON_EDGES

FINGER_COLORS: tuple[tuple[int, int, int], ...] = (
    (230, 80, 60),  # thumb
    (250, 200, 40),  # index
    (70, 200, 90),  # middle
    (60, 150, 240),  # ring
    (190, 90, 220),  # pinky
)
"""RGB colour of each finger's bones and joints, thumb first."""
WRIST_COLOR = (255, 255, 255)
AXIS_COLORS: tuple[tuple[int, int, int], ...] = ((235, 50, 50), (50, 220, 50), (60, 90, 255))
"""RGB colours of the object's x, y, z axes."""


def finger_of(joint: int) -> int:
    """Finger index (0 thumb .. 4 pinky) of a joint in project order (the wrist counts as 0)."""
    return max(0, (joint - 1) // 4)


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Project camera-frame points to pixels; points at or behind the camera give NaN.

    Args:
        points: (N,3) camera frame, metres.
        K: (3,3) intrinsics.

    Returns:
        (N,2) pixel coordinates.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    z = pts[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (pts @ np.asarray(K, dtype=np.float64).T)[:, :2] / z[:, None]
    uv[z <= 1e-6] = np.nan
    return uv


def _line_width(img: np.ndarray) -> int:
    return max(1, round(max(img.shape[:2]) / 320))


def _pixel(p: np.ndarray) -> tuple[int, int] | None:
    if not np.all(np.isfinite(p)) or np.any(np.abs(p) > 1e5):
        return None
    return round(float(p[0])), round(float(p[1]))


def draw_box(img: np.ndarray, box: Sequence[float], color: tuple[int, int, int]) -> None:
    """Draw an xyxy pixel box."""
    x0, y0, x1, y1 = (round(float(v)) for v in box)
    cv2.rectangle(img, (x0, y0), (x1, y1), color, _line_width(img))


def draw_skeleton_2d(img: np.ndarray, uv: np.ndarray, color: tuple[int, int, int] | None = None):
    """Draw the 20 bones and 21 joints of a hand given its (21,2) pixel coordinates.

    Args:
        img: (H,W,3) uint8 RGB, drawn on.
        uv: (21,2) joints in project order, pixels.
        color: one colour for everything, or None for per-finger colours.
    """
    w = _line_width(img)
    pts = [_pixel(p) for p in np.asarray(uv, dtype=np.float64)]
    for a, b in SKELETON_EDGES:
        if pts[a] is not None and pts[b] is not None:
            c = color or FINGER_COLORS[finger_of(max(a, b))]
            cv2.line(img, pts[a], pts[b], c, w, cv2.LINE_AA)
    for j, p in enumerate(pts):
        if p is not None:
            c = color or (FINGER_COLORS[finger_of(j)] if j else WRIST_COLOR)
            cv2.circle(img, p, w + 1, c, -1, cv2.LINE_AA)


def draw_skeleton(
    img: np.ndarray, joints: np.ndarray, K: np.ndarray, color: tuple[int, int, int] | None = None
) -> None:
    """Project (21,3) camera-frame joints with K and draw the skeleton."""
    draw_skeleton_2d(img, project(joints, K), color)


def draw_axes(
    img: np.ndarray, R: np.ndarray, t: np.ndarray, K: np.ndarray, length_m: float = 0.05
) -> None:
    """Draw an object's x (red), y (green), z (blue) axes at its pose.

    Args:
        img: (H,W,3) uint8 RGB, drawn on.
        R: (3,3) rotation object -> camera.
        t: (3,) object origin in the camera frame, metres.
        K: (3,3) intrinsics.
        length_m: axis length, metres.
    """
    ends = np.vstack([np.zeros(3), np.eye(3) * length_m]) @ np.asarray(R).T + np.asarray(t)
    uv = project(ends, K)
    origin = _pixel(uv[0])
    if origin is None:
        return
    for k in range(3):
        tip = _pixel(uv[k + 1])
        if tip is not None:
            cv2.line(img, origin, tip, AXIS_COLORS[k], _line_width(img) + 1, cv2.LINE_AA)


def draw_mesh(
    img: np.ndarray,
    vertices: np.ndarray,
    faces: np.ndarray,
    K: np.ndarray,
    color: tuple[int, int, int],
    alpha: float = 0.45,
) -> None:
    """Blend a flat-shaded mesh into the image (painter's order, far triangles first).

    Args:
        img: (H,W,3) uint8 RGB, drawn on.
        vertices: (V,3) camera frame, metres.
        faces: (F,3) vertex indices.
        K: (3,3) intrinsics.
        color: RGB base colour; faces are shaded by how much they face the camera.
        alpha: opacity of the mesh layer.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    uv = project(v, K)
    tri = v[f]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    centres = tri.mean(axis=1)
    view = -centres / np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-9)
    lengths = np.maximum(np.linalg.norm(normals, axis=1), 1e-12)
    facing = np.einsum("ij,ij->i", normals, view) / lengths
    ok = np.all(np.isfinite(uv[f]), axis=(1, 2)) & (facing > 0)
    order = np.argsort(-centres[:, 2])
    layer = img.copy()
    base = np.asarray(color, dtype=np.float64)
    for i in order:
        if not ok[i]:
            continue
        shade = tuple(int(c) for c in np.clip(base * (0.35 + 0.65 * facing[i]), 0, 255))
        cv2.fillConvexPoly(layer, np.round(uv[f[i]]).astype(np.int32), shade, cv2.LINE_AA)
    cv2.addWeighted(layer, alpha, img, 1.0 - alpha, 0.0, dst=img)


def draw_hand_object(
    img: np.ndarray,
    K: np.ndarray,
    joints: np.ndarray,
    vertices: np.ndarray | None = None,
    hand_faces: np.ndarray | None = None,
    obj_R: np.ndarray | None = None,
    obj_t: np.ndarray | None = None,
    axis_length_m: float = 0.05,
    mesh_color: tuple[int, int, int] = (230, 170, 140),
) -> np.ndarray:
    """Draw one hand-object estimate: hand mesh (if given), skeleton, object axes.

    Args:
        img: (H,W,3) uint8 RGB, drawn on and returned.
        K: (3,3) intrinsics of `img`.
        joints: (21,3) camera frame, metres.
        vertices: (778,3) hand mesh, or None.
        hand_faces: (1538,3) mesh faces, or None.
        obj_R: (3,3) object rotation, or None.
        obj_t: (3,) object translation, or None.
        axis_length_m: length of the drawn object axes.
        mesh_color: RGB colour of the hand mesh.
    """
    if vertices is not None and hand_faces is not None:
        draw_mesh(img, vertices, hand_faces, K, mesh_color)
    draw_skeleton(img, joints, K)
    if obj_R is not None and obj_t is not None:
        draw_axes(img, obj_R, obj_t, K, axis_length_m)
    return img
