"""Pinhole projection / back-projection (torch and numpy) and intrinsics validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from homae_model.geometry.camera import backproject, project_points, validate_intrinsics

K = np.array([[600.0, 0.0, 320.0], [0.0, 610.0, 240.0], [0.0, 0.0, 1.0]])


def test_project_known_point():
    uv = project_points(np.array([[0.1, -0.05, 0.5]]), K)
    np.testing.assert_allclose(uv, [[320 + 600 * 0.2, 240 - 610 * 0.1]])


def test_round_trip_numpy_and_torch():
    rng = np.random.default_rng(0)
    pts = rng.uniform([-0.3, -0.3, 0.2], [0.3, 0.3, 1.5], size=(5, 50, 3))
    uv = project_points(pts, K)
    back = backproject(uv, pts[..., 2], K)
    np.testing.assert_allclose(back, pts, atol=1e-9)
    pt = torch.as_tensor(pts)
    uv_t = project_points(pt, torch.as_tensor(K))
    torch.testing.assert_close(uv_t, torch.as_tensor(uv))
    torch.testing.assert_close(backproject(uv_t, pt[..., 2], torch.as_tensor(K)), pt)


def test_batched_intrinsics_torch():
    k2 = torch.as_tensor(np.stack([K, K * np.array([[2, 1, 1], [1, 2, 1], [1, 1, 1]])]))
    pts = torch.tensor([[[0.1, 0.1, 1.0]], [[0.1, 0.1, 1.0]]], dtype=torch.float64)
    uv = project_points(pts, k2)
    torch.testing.assert_close(uv[1, 0] - k2[1, :2, 2], 2 * (uv[0, 0] - k2[0, :2, 2]))


def test_validate_accepts_good_k():
    validate_intrinsics(K)
    validate_intrinsics(torch.as_tensor(K)[None].repeat(2, 1, 1))


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        (np.zeros((3, 3)), "focal"),
        (np.where(np.eye(3) == 1, np.nan, K), "NaN"),
        (np.eye(2), "shape"),
        (K * np.array([[1, 1, 1], [1, -1, 1], [1, 1, 1]]), "focal"),
        (K + np.array([[0, 0, 0], [0, 0, 0], [0, 1, 0]]), "last row"),
    ],
)
def test_validate_rejects(bad, needle):
    with pytest.raises(ValueError, match=needle) as err:
        validate_intrinsics(bad, name="camera_info.K")
    assert "camera_info.K" in str(err.value)
