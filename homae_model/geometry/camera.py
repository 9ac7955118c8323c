"""Pinhole camera projection and back-projection, for torch tensors and numpy arrays alike.

Frames: camera optical frame (x right, y down, z forward), metres. Pixels: OpenCV convention
(pixel centres at integer coordinates). `K` is the (3,3) pinhole matrix
``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` (a skew term is honoured when present).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", torch.Tensor, np.ndarray)

MIN_DEPTH_M = 1e-6
"""Depths below this are clamped before dividing (points behind the camera stay finite)."""


MIN_FOCAL_PX = 1e-3
"""Smallest focal length (pixels) accepted: below it K is numerically singular."""
MAX_INTRINSIC_PX = 1e7
"""Largest |entry| (pixels) of K's first two rows (focal lengths, skew, principal point)
accepted: beyond it no real camera exists and the crop arithmetic overflows to inf/NaN."""


class IntrinsicsError(ValueError):
    """K is not a usable pinhole matrix (the message names it and what is wrong)."""


class NonFiniteIntrinsicsError(IntrinsicsError):
    """K holds NaN or infinite values."""


def validate_intrinsics(K: np.ndarray | torch.Tensor, name: str = "K") -> None:
    """Check that `K` is a usable pinhole matrix (the one definition of these checks).

    Checks, in order: shape (..., 3, 3), numbers, finite values, not all zero, fx, fy > 0,
    last row (0, 0, 1), plausible magnitudes (`MIN_FOCAL_PX` <= fx, fy; every value of the
    first two rows within +-`MAX_INTRINSIC_PX`).

    Args:
        K: (3,3) or batched (..., 3, 3) intrinsics.
        name: how the caller calls this value, used in the error message.

    Raises:
        NonFiniteIntrinsicsError: NaN or inf entries.
        IntrinsicsError: any other failed check (both are ValueErrors).
    """
    arr = K.detach().cpu().double().numpy() if isinstance(K, torch.Tensor) else np.asarray(K)
    if arr.ndim < 2 or arr.shape[-2:] != (3, 3):
        raise IntrinsicsError(f"{name}: expected a (3,3) intrinsics matrix, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise IntrinsicsError(f"{name}: expected numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise NonFiniteIntrinsicsError(f"{name}: contains NaN or inf: {arr.tolist()}")
    if not np.all(np.any(arr != 0.0, axis=(-2, -1))):
        raise IntrinsicsError(
            f"{name} is all zero (camera not calibrated?): focal lengths must be > 0"
        )
    fx, fy = arr[..., 0, 0], arr[..., 1, 1]
    if np.any(fx <= 0) or np.any(fy <= 0):
        raise IntrinsicsError(f"{name}: focal lengths must be > 0, got fx={fx}, fy={fy}")
    last = arr[..., 2, :]
    if not np.allclose(last, np.array([0.0, 0.0, 1.0])):
        raise IntrinsicsError(f"{name}: last row must be (0, 0, 1), got {last.tolist()}")
    if np.any(np.minimum(fx, fy) < MIN_FOCAL_PX) or np.any(
        np.abs(arr[..., :2, :]) > MAX_INTRINSIC_PX
    ):
        raise IntrinsicsError(
            f"{name} {arr[..., :2, :].tolist()} is implausible: focal lengths must lie in "
            f"[{MIN_FOCAL_PX:g}, {MAX_INTRINSIC_PX:g}] px and |skew|, |cx|, |cy| <= "
            f"{MAX_INTRINSIC_PX:g} px"
        )


def project_points(points: Array, K: Array) -> Array:
    """Project camera-frame points to pixels.

    Args:
        points: (..., N, 3) camera frame, metres.
        K: (3,3) or (..., 3, 3) intrinsics broadcasting against the leading dims of `points`.

    Returns:
        (..., N, 2) pixel coordinates (u, v). Depths are clamped to >= `MIN_DEPTH_M`.
    """
    if isinstance(points, torch.Tensor):
        K = torch.as_tensor(K, dtype=points.dtype, device=points.device)
        z = points[..., 2:3].clamp(min=MIN_DEPTH_M)
        xy1 = torch.cat([points[..., :2] / z, torch.ones_like(z)], dim=-1)
        uv = xy1 @ K.transpose(-1, -2)
        return uv[..., :2]
    pts = np.asarray(points, dtype=np.float64)
    Kn = np.asarray(K, dtype=np.float64)
    z = np.maximum(pts[..., 2:3], MIN_DEPTH_M)
    xy1 = np.concatenate([pts[..., :2] / z, np.ones_like(z)], axis=-1)
    uv = xy1 @ np.swapaxes(Kn, -1, -2)
    return uv[..., :2]


def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cross product of (..., 3) vectors, written out (exportable to ONNX)."""
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    return torch.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], dim=-1)


def inverse_3x3(m: torch.Tensor) -> torch.Tensor:
    """Inverse of (..., 3, 3) matrices by the adjugate (no `linalg.inv`: ONNX has no inverse op).

    Rows r0, r1, r2: the inverse's columns are r1 x r2, r2 x r0, r0 x r1 over det = r0 . (r1 x r2).
    Meant for well-conditioned matrices such as intrinsics; singular input gives inf/NaN.
    """
    r0, r1, r2 = m[..., 0, :], m[..., 1, :], m[..., 2, :]
    c0, c1, c2 = _cross(r1, r2), _cross(r2, r0), _cross(r0, r1)
    det = (r0 * c0).sum(dim=-1)
    return torch.stack([c0, c1, c2], dim=-1) / det[..., None, None]


def backproject(uv: Array, depth: Array, K: Array) -> Array:
    """Lift pixels with known depth to camera-frame points (inverse of `project_points`).

    Args:
        uv: (..., N, 2) pixels.
        depth: (..., N) z in metres.
        K: (3,3) or (..., 3, 3) intrinsics.

    Returns:
        (..., N, 3) camera frame, metres.
    """
    if isinstance(uv, torch.Tensor):
        K = torch.as_tensor(K, dtype=uv.dtype, device=uv.device)
        depth = torch.as_tensor(depth, dtype=uv.dtype, device=uv.device)
        uv1 = torch.cat([uv, torch.ones_like(uv[..., :1])], dim=-1)
        rays = uv1 @ inverse_3x3(K).transpose(-1, -2)
        return rays * depth[..., None]
    uvn = np.asarray(uv, dtype=np.float64)
    Kn = np.asarray(K, dtype=np.float64)
    uv1 = np.concatenate([uvn, np.ones_like(uvn[..., :1])], axis=-1)
    rays = uv1 @ np.swapaxes(np.linalg.inv(Kn), -1, -2)
    return rays * np.asarray(depth, dtype=np.float64)[..., None]
