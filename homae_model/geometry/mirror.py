"""Left/right mirroring of images, intrinsics, boxes and camera-frame poses (numpy only).

A left hand is handled as the mirror image of a right hand, as HaMeR does: the mirror is the
reflection x -> -x of the camera frame (`M = diag(-1, 1, 1)`), which maps a right MANO hand
onto a left one (`homae_model.hand.mano`: ``left(mirror_pose(p), b, M t) == M right(p, b, t)``).

In the image the reflection is a horizontal flip about the principal point. Flipping an image
of width W (pixel u -> W-1-u) and setting ``cx' = W-1-cx`` (every other entry of K kept) makes
the flipped image exactly the view, through K', of the mirrored scene: a camera-frame point X
seen at pixel (u, v) in the original is seen at (W-1-u, v) as M X in the flipped image.

Rotations mirror as ``R -> M R M`` (a proper rotation again); axis-angle (x, y, z) ->
(x, -y, -z). An object posed as ``R X_obj + t`` appears mirrored as ``(M R M) (M X_obj) + M t``:
the mirrored pose applied to the mirrored mesh.
"""

from __future__ import annotations

import numpy as np

MIRROR = np.diag([-1.0, 1.0, 1.0])
"""(3,3) the reflection x -> -x of the camera frame."""


def flip_image(image: np.ndarray) -> np.ndarray:
    """Mirror an (H, W, ...) image left-right (pixel u -> W-1-u), contiguous copy."""
    return np.ascontiguousarray(np.asarray(image)[:, ::-1])


def flip_intrinsics(K: np.ndarray, width: int) -> np.ndarray:
    """K of the left-right flipped image: cx -> W-1-cx, skew negated.

    Args:
        K: (3,3) intrinsics of the original image (pixels).
        width: image width W in pixels.

    Returns:
        (3,3) float64 intrinsics K' with ``project(K', M X) = flip(project(K, X))``.
    """
    out = np.array(K, dtype=np.float64, copy=True)
    out[0, 2] = (width - 1.0) - out[0, 2]
    out[0, 1] = -out[0, 1]
    return out


def flip_box(box: np.ndarray, width: int) -> np.ndarray:
    """Mirror (..., 4) xyxy pixel boxes of an image of width W: x -> W-1-x (min/max swapped)."""
    b = np.asarray(box, dtype=np.float64)
    out = b.copy()
    out[..., 0] = (width - 1.0) - b[..., 2]
    out[..., 2] = (width - 1.0) - b[..., 0]
    return out


def mirror_points(points: np.ndarray) -> np.ndarray:
    """(..., 3) camera-frame points (metres) -> their mirror images (x negated)."""
    return np.asarray(points, dtype=np.float64) * np.array([-1.0, 1.0, 1.0])


def mirror_rotation(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> ``M R M`` (the same motion seen in the mirror)."""
    R = np.asarray(R, dtype=np.float64)
    return MIRROR @ R @ MIRROR


def mirror_axis_angle(rotvec: np.ndarray) -> np.ndarray:
    """(..., 3k) axis-angle vectors -> mirrored ones: (x, y, z) -> (x, -y, -z) per triple."""
    r = np.asarray(rotvec, dtype=np.float64)
    if r.shape[-1] % 3:
        raise ValueError(f"axis-angle: last dimension must be a multiple of 3, got {r.shape}")
    return (r.reshape(*r.shape[:-1], -1, 3) * np.array([1.0, -1.0, -1.0])).reshape(r.shape)


def symmetry_reflection(vertices: np.ndarray) -> tuple[np.ndarray, float]:
    """The object-frame coordinate plane a mesh is most nearly mirror-symmetric about.

    Tries the planes x = 0, y = 0 and z = 0 of the object frame; for each, the largest distance
    from a reflected vertex to the nearest original vertex.

    Args:
        vertices: (V, 3) object-frame mesh vertices, metres.

    Returns:
        (S, error): S (3,3) the reflection diag with one -1, error the largest
        reflected-vertex distance of that plane in metres (0 for an exactly symmetric mesh).
    """
    from scipy.spatial import cKDTree

    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    tree = cKDTree(v)
    best: tuple[np.ndarray, float] | None = None
    for axis in range(3):
        s = np.ones(3)
        s[axis] = -1.0
        err = float(tree.query(v * s)[0].max())
        if best is None or err < best[1]:
            best = (np.diag(s), err)
    assert best is not None
    return best
