"""Rotation conversions: axis-angle, rotation matrices and the continuous 6D representation.

All torch functions are batched over any leading dimensions, differentiable, and keep the
input's dtype and device. Conventions:

- Axis-angle (rotation vector): (..., 3), direction = unit axis, norm = angle in radians
  (right-hand rule). The matrix rotates column vectors: ``x' = R @ x``.
- 6D (Zhou et al., CVPR 2019, "On the continuity of rotation representations"): the FIRST TWO
  COLUMNS of the rotation matrix, concatenated: ``rot6d = [R[:, 0], R[:, 1]]`` (..., 6).
  `rot6d_to_matrix` maps any 6 numbers (with non-parallel halves) to a rotation by
  Gram-Schmidt, so `rot6d_to_matrix(matrix_to_rot6d(R)) == R`.

`matrix_to_axis_angle` goes through a quaternion chosen by Shepperd's rule (the largest of the
four diagonal combinations), so it is accurate near 0 and near pi; the returned angle lies in
[0, pi].

Numpy helpers (`*_np`) wrap the torch functions in float64 for data code; `rotvec_of_matrix`
is the same conversion for one matrix in plain Python floats (data loading calls it per sample,
where a torch or scipy call costs more than the arithmetic).
"""

from __future__ import annotations

import math

import numpy as np
import torch

_SMALL_ANGLE2 = 1e-8
"""Squared angle (rad^2) below which Taylor series replace sin/cos quotients."""


def _check_last_dim(x: torch.Tensor, size: int, name: str) -> None:
    if x.shape[-1:] != (size,):
        raise ValueError(f"{name}: expected shape (..., {size}), got {tuple(x.shape)}")


def _check_matrix(m: torch.Tensor, name: str) -> None:
    if m.shape[-2:] != (3, 3):
        raise ValueError(f"{name}: expected shape (..., 3, 3), got {tuple(m.shape)}")


def skew(v: torch.Tensor) -> torch.Tensor:
    """Cross-product matrix: ``skew(v) @ x == cross(v, x)``.

    Args:
        v: (..., 3) vectors.

    Returns:
        (..., 3, 3) skew-symmetric matrices.
    """
    _check_last_dim(v, 3, "skew")
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    rows = (
        torch.stack([o, -z, y], dim=-1),
        torch.stack([z, o, -x], dim=-1),
        torch.stack([-y, x, o], dim=-1),
    )
    return torch.stack(rows, dim=-2)


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula, exact and differentiable at angle 0.

    Args:
        axis_angle: (..., 3) rotation vectors (radians).

    Returns:
        (..., 3, 3) rotation matrices.
    """
    _check_last_dim(axis_angle, 3, "axis_angle_to_matrix")
    theta2 = (axis_angle * axis_angle).sum(-1)
    small = theta2 < _SMALL_ANGLE2
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
    # sin(t)/t and (1 - cos t)/t^2 with their Taylor series near 0.
    a = torch.where(small, 1.0 - theta2 / 6.0 + theta2 * theta2 / 120.0, torch.sin(theta) / theta)
    b = torch.where(
        small,
        0.5 - theta2 / 24.0 + theta2 * theta2 / 720.0,
        (1.0 - torch.cos(theta)) / (theta * theta),
    )
    k = skew(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to unit quaternions (w, x, y, z) with w >= 0 (Shepperd's method).

    Args:
        matrix: (..., 3, 3) rotation matrices.

    Returns:
        (..., 4) unit quaternions, scalar first.
    """
    _check_matrix(matrix, "matrix_to_quaternion")
    m = matrix
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # 4 * q_i^2 for i = w, x, y, z.
    sq = torch.stack(
        [
            1.0 + m00 + m11 + m22,
            1.0 + m00 - m11 - m22,
            1.0 - m00 + m11 - m22,
            1.0 - m00 - m11 + m22,
        ],
        dim=-1,
    )
    # Each candidate divides by its own (clamped) component; the chosen one has 4 q_i^2 >= 1.
    r = 2.0 * torch.sqrt(sq.clamp(min=1e-6))  # 4 * |q_i|; candidate i is 4 q_i q / (4 |q_i|)
    cand = torch.stack(
        [
            torch.stack([sq[..., 0], m21 - m12, m02 - m20, m10 - m01], -1) / r[..., 0:1],
            torch.stack([m21 - m12, sq[..., 1], m01 + m10, m02 + m20], -1) / r[..., 1:2],
            torch.stack([m02 - m20, m01 + m10, sq[..., 2], m12 + m21], -1) / r[..., 2:3],
            torch.stack([m10 - m01, m02 + m20, m12 + m21, sq[..., 3]], -1) / r[..., 3:4],
        ],
        dim=-2,
    )  # (..., 4 candidates, 4)
    best = sq.argmax(dim=-1)
    idx = best[..., None, None].expand(*best.shape, 1, 4)
    q = cand.gather(-2, idx).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def quaternion_to_axis_angle(quaternion: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (w, x, y, z) to rotation vectors with angle in [0, pi].

    Args:
        quaternion: (..., 4) unit quaternions, scalar first (any sign).

    Returns:
        (..., 3) rotation vectors.
    """
    _check_last_dim(quaternion, 4, "quaternion_to_axis_angle")
    q = torch.where(quaternion[..., :1] < 0, -quaternion, quaternion)
    w, v = q[..., 0], q[..., 1:]
    s2 = (v * v).sum(-1)
    small = s2 < _SMALL_ANGLE2
    s = torch.sqrt(torch.where(small, torch.ones_like(s2), s2))
    angle = 2.0 * torch.atan2(s, w)
    # angle / sin(angle / 2); near 0 it tends to 2 / w (Taylor in s).
    w_safe = torch.where(small, w, torch.ones_like(w))
    factor = torch.where(small, 2.0 / w_safe - 2.0 * s2 / (3.0 * w_safe**3), angle / s)
    return v * factor[..., None]


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to rotation vectors, robust near angles 0 and pi.

    Args:
        matrix: (..., 3, 3) rotation matrices.

    Returns:
        (..., 3) rotation vectors with angle in [0, pi].
    """
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def rot6d_to_matrix(rot6d: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """6D representation (first two columns) to rotation matrices by Gram-Schmidt.

    Args:
        rot6d: (..., 6) ``[a1 (3), a2 (3)]``; a1 gives the first column, a2 (made orthogonal to
            a1) the second, their cross product the third.
        eps: Floor on the norms, avoiding division by zero for degenerate inputs.

    Returns:
        (..., 3, 3) rotation matrices (columns b1, b2, b3).
    """
    _check_last_dim(rot6d, 6, "rot6d_to_matrix")
    a1, a2 = rot6d[..., :3], rot6d[..., 3:]
    b1 = a1 / a1.norm(dim=-1, keepdim=True).clamp(min=eps)
    a2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = a2 / a2.norm(dim=-1, keepdim=True).clamp(min=eps)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rot6d(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to the 6D representation (first two columns, concatenated).

    Args:
        matrix: (..., 3, 3) rotation matrices.

    Returns:
        (..., 6) ``[R[..., :, 0], R[..., :, 1]]``.
    """
    _check_matrix(matrix, "matrix_to_rot6d")
    return torch.cat([matrix[..., :, 0], matrix[..., :, 1]], dim=-1)


def axis_angle_to_rot6d(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation vectors (..., 3) to the 6D representation (..., 6)."""
    return matrix_to_rot6d(axis_angle_to_matrix(axis_angle))


def rot6d_to_axis_angle(rot6d: torch.Tensor) -> torch.Tensor:
    """6D representation (..., 6) to rotation vectors (..., 3), angle in [0, pi]."""
    return matrix_to_axis_angle(rot6d_to_matrix(rot6d))


def axis_angle_to_matrix_np(axis_angle: np.ndarray) -> np.ndarray:
    """Numpy `axis_angle_to_matrix`: (..., 3) rotation vectors -> (..., 3, 3) float64."""
    t = torch.as_tensor(np.asarray(axis_angle, dtype=np.float64))
    return axis_angle_to_matrix(t).numpy()


def matrix_to_axis_angle_np(matrix: np.ndarray) -> np.ndarray:
    """Numpy `matrix_to_axis_angle`: (..., 3, 3) -> (..., 3) float64, angle in [0, pi]."""
    t = torch.as_tensor(np.asarray(matrix, dtype=np.float64))
    return matrix_to_axis_angle(t).numpy()


def rotvec_of_matrix(matrix: np.ndarray) -> np.ndarray:
    """One (3, 3) rotation matrix -> (3,) float64 rotation vector, angle in [0, pi].

    The same Shepperd quaternion route as `matrix_to_axis_angle`, in scalar arithmetic.
    """
    rows = np.asarray(matrix, dtype=np.float64).tolist()
    (m00, m01, m02), (m10, m11, m12), (m20, m21, m22) = rows
    sq = (1.0 + m00 + m11 + m22, 1.0 + m00 - m11 - m22, 1.0 - m00 + m11 - m22,
          1.0 - m00 - m11 + m22)  # fmt: skip
    i = max(range(4), key=sq.__getitem__)
    r = 2.0 * math.sqrt(max(sq[i], 1e-12))
    if i == 0:
        q = (sq[0], m21 - m12, m02 - m20, m10 - m01)
    elif i == 1:
        q = (m21 - m12, sq[1], m01 + m10, m02 + m20)
    elif i == 2:
        q = (m02 - m20, m01 + m10, sq[2], m12 + m21)
    else:
        q = (m10 - m01, m02 + m20, m12 + m21, sq[3])
    w, x, y, z = (c / r for c in q)
    if w < 0.0:
        w, x, y, z = -w, -x, -y, -z
    s = math.sqrt(x * x + y * y + z * z)
    if s * s < _SMALL_ANGLE2:
        factor = 2.0 / w - 2.0 * s * s / (3.0 * w**3)
    else:
        factor = 2.0 * math.atan2(s, w) / s
    return np.array([x * factor, y * factor, z * factor])
