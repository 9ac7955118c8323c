"""Rigid transforms between a camera's optical frame and the world frame (numpy only).

An extrinsics matrix `T_world_cam` is 4x4, maps camera-optical-frame points (REP-103: x right,
y down, z forward; metres) into the world frame: `X_world = T[:3, :3] @ X_cam + T[:3, 3]`.
The camera centre in the world is `T[:3, 3]` and its optical axis is `T[:3, 2]`.
"""

from __future__ import annotations

import numpy as np

ROTATION_TOLERANCE = 1e-4
"""Largest |R^T R - I| entry and |det R - 1| accepted for a rotation block."""


def check_extrinsics(T: np.ndarray, what: str = "extrinsics") -> np.ndarray:
    """Validate a 4x4 rigid transform and return it as float64.

    Args:
        T: (4, 4) homogeneous transform camera optical frame -> world.
        what: name used in error messages (e.g. the camera or file).

    Raises:
        ValueError: wrong shape, non-finite values, last row not [0, 0, 0, 1], or a rotation
            block that is not orthonormal with determinant +1.
    """
    M = np.asarray(T, dtype=np.float64)
    if M.shape != (4, 4):
        raise ValueError(f"{what}: expected a 4x4 transform, got shape {M.shape}")
    if not np.all(np.isfinite(M)):
        raise ValueError(f"{what}: transform contains NaN or infinite values")
    if not np.allclose(M[3], [0.0, 0.0, 0.0, 1.0], atol=1e-9):
        raise ValueError(f"{what}: last row must be [0, 0, 0, 1], got {M[3].tolist()}")
    R = M[:3, :3]
    if (
        np.abs(R.T @ R - np.eye(3)).max() > ROTATION_TOLERANCE
        or abs(np.linalg.det(R) - 1.0) > ROTATION_TOLERANCE
    ):
        raise ValueError(f"{what}: the 3x3 block is not a rotation (orthonormal, det +1)")
    return M


def make_transform(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(4, 4) transform from a rotation R (3, 3) and a translation t (3,) in metres."""
    T = np.eye(4)
    T[:3, :3] = np.asarray(R, dtype=np.float64)
    T[:3, 3] = np.asarray(t, dtype=np.float64).reshape(3)
    return T


def invert(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid (4, 4) transform."""
    R = T[:3, :3]
    return make_transform(R.T, -R.T @ T[:3, 3])


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply T (4, 4) to points (..., 3); returns (..., 3) float64."""
    p = np.asarray(points, dtype=np.float64)
    return p @ T[:3, :3].T + T[:3, 3]


def transform_pose(T: np.ndarray, R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Re-express an object pose (X_cam = R X_obj + t) in T's target frame.

    Returns:
        (R', t') with X_world = R' X_obj + t'.
    """
    return T[:3, :3] @ np.asarray(R, dtype=np.float64), transform_points(T, t)


def camera_centre(T: np.ndarray) -> np.ndarray:
    """The camera's optical centre in the world frame (3,), metres."""
    return np.asarray(T, dtype=np.float64)[:3, 3].copy()


def viewing_ray(T: np.ndarray, point_world: np.ndarray) -> tuple[np.ndarray, float]:
    """Unit direction from the camera centre to a world point, and its depth along the axis.

    Args:
        T: (4, 4) camera optical frame -> world.
        point_world: (3,) world point, metres.

    Returns:
        (d (3,) unit vector in the world frame, z = depth of the point along the camera's
        optical axis in metres; may be <= 0 for a point behind the camera).
    """
    offset = np.asarray(point_world, dtype=np.float64) - T[:3, 3]
    norm = float(np.linalg.norm(offset))
    d = offset / norm if norm > 1e-9 else T[:3, 2].copy()
    return d, float(offset @ T[:3, 2])


def look_at(centre: np.ndarray, target: np.ndarray, up: np.ndarray | None = None) -> np.ndarray:
    """T_world_cam of an optical frame at `centre` whose +z axis looks at `target`.

    The image's y axis (down) points as far against `up` (default world +z) as it can, so
    the world's up is up in the image.

    Raises:
        ValueError: target at the centre, or looking straight along `up`.
    """
    c = np.asarray(centre, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - c
    u = np.array([0.0, 0.0, 1.0]) if up is None else np.asarray(up, dtype=np.float64)
    if np.linalg.norm(z) < 1e-9:
        raise ValueError("look_at: target coincides with the camera centre")
    z /= np.linalg.norm(z)
    x = np.cross(-u, z)
    if np.linalg.norm(x) < 1e-6:
        raise ValueError("look_at: viewing direction parallel to the up vector")
    x /= np.linalg.norm(x)
    return make_transform(np.stack([x, np.cross(z, x), z], axis=1), c)
