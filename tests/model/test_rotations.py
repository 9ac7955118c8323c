"""homae_model.geometry.rotations: round trips, edge angles (0, pi), gradients, 6D layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from homae_model.geometry.rotations import (
    axis_angle_to_matrix,
    axis_angle_to_matrix_np,
    axis_angle_to_rot6d,
    matrix_to_axis_angle,
    matrix_to_axis_angle_np,
    matrix_to_quaternion,
    matrix_to_rot6d,
    rot6d_to_axis_angle,
    rot6d_to_matrix,
    rotvec_of_matrix,
)


def _random_axes(n: int, gen: torch.Generator) -> torch.Tensor:
    axes = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    return axes / axes.norm(dim=-1, keepdim=True)


def _assert_rotation(r: torch.Tensor, atol: float = 1e-10) -> None:
    eye = torch.eye(3, dtype=r.dtype).expand_as(r)
    torch.testing.assert_close(r @ r.transpose(-1, -2), eye, atol=atol, rtol=0)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(r.shape[:-2], dtype=r.dtype))


def test_axis_angle_to_matrix_matches_scipy() -> None:
    gen = torch.Generator().manual_seed(0)
    aa = torch.randn(200, 3, generator=gen, dtype=torch.float64) * 1.5
    expected = torch.as_tensor(Rotation.from_rotvec(aa.numpy()).as_matrix())
    torch.testing.assert_close(axis_angle_to_matrix(aa), expected)


def test_matrix_is_rotation_and_batched_over_leading_dims() -> None:
    gen = torch.Generator().manual_seed(1)
    aa = torch.randn(4, 5, 3, generator=gen, dtype=torch.float64)
    r = axis_angle_to_matrix(aa)
    assert r.shape == (4, 5, 3, 3)
    _assert_rotation(r)
    torch.testing.assert_close(r[2, 3], axis_angle_to_matrix(aa[2, 3]))


@pytest.mark.parametrize(
    "angle", [0.0, 1e-12, 1e-7, 1e-4, 0.3, 1.0, 2.0, 3.0, math.pi - 1e-4, math.pi - 1e-7]
)
def test_round_trip_axis_angle_including_edge_angles(angle: float) -> None:
    gen = torch.Generator().manual_seed(2)
    axes = _random_axes(64, gen)
    aa = axes * angle
    back = matrix_to_axis_angle(axis_angle_to_matrix(aa))
    torch.testing.assert_close(back, aa, atol=1e-9, rtol=0)


def test_exactly_pi_gives_the_same_rotation() -> None:
    gen = torch.Generator().manual_seed(3)
    aa = _random_axes(64, gen) * math.pi
    r = axis_angle_to_matrix(aa)
    back = matrix_to_axis_angle(r)
    # At pi, +axis and -axis are the same rotation: compare matrices and the angle.
    torch.testing.assert_close(axis_angle_to_matrix(back), r, atol=1e-9, rtol=0)
    torch.testing.assert_close(back.norm(dim=-1), torch.full((64,), math.pi, dtype=torch.float64))
    flips = [np.diag([1.0, -1, -1]), np.diag([-1.0, 1, -1]), np.diag([-1.0, -1, 1])]
    for m in flips:
        out = matrix_to_axis_angle(torch.as_tensor(m))
        torch.testing.assert_close(
            axis_angle_to_matrix(out), torch.as_tensor(m), atol=1e-12, rtol=0
        )


def test_matrix_to_axis_angle_matches_scipy_on_random_rotations() -> None:
    rots = Rotation.random(300, random_state=4)
    out = matrix_to_axis_angle(torch.as_tensor(rots.as_matrix()))
    torch.testing.assert_close(out, torch.as_tensor(rots.as_rotvec()), atol=1e-9, rtol=0)


def test_quaternion_scalar_first_and_non_negative() -> None:
    rots = Rotation.random(50, random_state=5)
    q = matrix_to_quaternion(torch.as_tensor(rots.as_matrix()))
    xyzw = rots.as_quat()
    wxyz = np.concatenate([xyzw[:, 3:], xyzw[:, :3]], axis=1)
    wxyz *= np.sign(wxyz[:, :1])
    torch.testing.assert_close(q, torch.as_tensor(wxyz), atol=1e-10, rtol=0)
    assert (q[:, 0] >= 0).all()


def test_gradients_are_finite_at_zero_and_near_pi() -> None:
    aa = torch.tensor(
        [[0.0, 0.0, 0.0], [1e-9, 0.0, 0.0], [0.0, math.pi - 1e-3, 0.0], [0.3, -0.2, 0.5]],
        dtype=torch.float64,
        requires_grad=True,
    )
    out = matrix_to_axis_angle(axis_angle_to_matrix(aa))
    (out**2).sum().backward()
    assert torch.isfinite(aa.grad).all()
    # The round trip is the identity, so d(sum out^2)/d aa = 2 aa.
    torch.testing.assert_close(aa.grad, 2 * aa.detach(), atol=1e-5, rtol=1e-5)


def test_axis_angle_to_matrix_gradcheck() -> None:
    aa = torch.tensor([[0.2, -0.4, 0.1], [1e-10, 2e-10, 0.0]], dtype=torch.float64)
    aa.requires_grad_(True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (aa,))
    r = axis_angle_to_matrix(torch.tensor([[0.4, 0.9, -1.2]], dtype=torch.float64))
    r.requires_grad_(True)
    assert torch.autograd.gradcheck(matrix_to_axis_angle, (r,))


def test_rot6d_is_first_two_columns_and_round_trips() -> None:
    gen = torch.Generator().manual_seed(6)
    r = axis_angle_to_matrix(torch.randn(100, 3, generator=gen, dtype=torch.float64))
    six = matrix_to_rot6d(r)
    assert six.shape == (100, 6)
    torch.testing.assert_close(six[:, :3], r[:, :, 0])
    torch.testing.assert_close(six[:, 3:], r[:, :, 1])
    torch.testing.assert_close(rot6d_to_matrix(six), r)


def test_rot6d_gram_schmidt_on_arbitrary_input() -> None:
    gen = torch.Generator().manual_seed(7)
    six = torch.randn(3, 7, 6, generator=gen, dtype=torch.float64) * 3
    r = rot6d_to_matrix(six)
    _assert_rotation(r)
    # First column is the normalised first half; second lies in the span of both halves.
    a1 = six[..., :3] / six[..., :3].norm(dim=-1, keepdim=True)
    torch.testing.assert_close(r[..., :, 0], a1)
    normal = torch.linalg.cross(six[..., :3], six[..., 3:], dim=-1)
    torch.testing.assert_close((r[..., :, 1] * normal).sum(-1), torch.zeros(3, 7, dtype=r.dtype))
    assert ((r[..., :, 1] * six[..., 3:]).sum(-1) > 0).all()


def test_rot6d_axis_angle_helpers_and_dtype() -> None:
    aa = torch.tensor([[0.1, 0.2, 0.3]], dtype=torch.float32)
    six = axis_angle_to_rot6d(aa)
    assert six.dtype == torch.float32
    torch.testing.assert_close(rot6d_to_axis_angle(six), aa, atol=1e-5, rtol=0)


def test_numpy_helpers() -> None:
    aa = np.array([[0.5, -0.1, 0.7], [0.0, 0.0, 0.0]])
    m = axis_angle_to_matrix_np(aa)
    assert m.dtype == np.float64
    np.testing.assert_allclose(m, Rotation.from_rotvec(aa).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(matrix_to_axis_angle_np(m), aa, atol=1e-12)


def test_rotvec_of_one_matrix_matches_the_batched_conversion() -> None:
    mats = list(Rotation.random(200, random_state=3).as_matrix())
    for angle in (0.0, 1e-9, 1e-5, 1.0, math.pi - 1e-7, math.pi):
        for axis in ([1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1.0, -1.0]):
            axis = np.array(axis) / np.linalg.norm(axis)
            mats.append(Rotation.from_rotvec(axis * angle).as_matrix())
    for m in mats:
        r = rotvec_of_matrix(m)
        assert r.shape == (3,) and np.linalg.norm(r) <= math.pi + 1e-12
        np.testing.assert_allclose(Rotation.from_rotvec(r).as_matrix(), m, atol=1e-12)
        if np.linalg.norm(r) < math.pi - 1e-3:  # at pi, +-axis are the same rotation
            np.testing.assert_allclose(r, matrix_to_axis_angle_np(m), atol=1e-12)


def test_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match="axis_angle_to_matrix"):
        axis_angle_to_matrix(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="rot6d_to_matrix"):
        rot6d_to_matrix(torch.zeros(4, 5))
    with pytest.raises(ValueError, match="matrix_to_rot6d"):
        matrix_to_rot6d(torch.zeros(4, 3, 2))
