"""Object metrics: OCE, MCE, ADD-S, OME on hand-computed poses."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from homae_model.metrics import (
    ObjectPose,
    add_s,
    box_corners,
    mean_corner_error,
    object_centre_error,
    object_errors,
    object_mesh_error,
)

IDENTITY = np.eye(3)


def _ring(n: int = 24, radius: float = 0.04) -> np.ndarray:
    """Points of a cylinder (two rings), symmetric under rotations by 2 pi / n about z."""
    ang = 2 * np.pi * np.arange(n) / n
    ring = np.stack([radius * np.cos(ang), radius * np.sin(ang), np.zeros(n)], axis=1)
    return np.concatenate([ring + np.array([0, 0, -0.05]), ring + np.array([0, 0, 0.05])])


def _rz(angle: float) -> np.ndarray:
    return Rotation.from_rotvec([0.0, 0.0, angle]).as_matrix()


def test_symmetric_object_adds_zero_ome_positive() -> None:
    pts = _ring()
    t = np.array([0.05, -0.02, 0.7])
    gt = ObjectPose.create(IDENTITY, t)
    pred = ObjectPose.create(_rz(3 * 2 * np.pi / 24), t)  # symmetry rotation
    assert add_s(pred, gt, pts) == pytest.approx(0.0, abs=1e-9)
    assert object_mesh_error(pred, gt, pts) > 10.0
    off = ObjectPose.create(_rz(0.2), t)  # not a symmetry: ADD-S > 0 but below OME
    assert 0.0 < add_s(off, gt, pts) < object_mesh_error(off, gt, pts)


def test_pure_translation_everything_equals_norm() -> None:
    pts = _ring() + np.array([0.02, 0.0, 0.01])  # off-centre model so the centre modes differ
    rot = Rotation.from_rotvec([0.2, 0.5, -0.3]).as_matrix()
    gt = ObjectPose.create(rot, [0.0, 0.0, 0.6])
    pred = ObjectPose.create(rot, [0.012, 0.0, 0.6 + 0.016])  # |t| = 20 mm
    for centre in ("origin", "bbox", "centroid"):
        assert object_centre_error(pred, gt, pts, centre) == pytest.approx(20.0)
    for mode in ("object_box", "camera_aabb"):
        assert mean_corner_error(pred, gt, None, pts, mode) == pytest.approx(20.0)
    errs = object_errors(pred, gt, pts)
    assert errs.ome == pytest.approx(20.0)
    assert errs.add_s <= errs.ome + 1e-9


def test_centre_modes_under_rotation() -> None:
    corners = box_corners(np.array([[0.0, -0.05, -0.02], [0.2, 0.05, 0.02]]))  # centre x = 0.1
    gt = ObjectPose.create(IDENTITY, [0.0, 0.0, 0.5])
    pred = ObjectPose.create([0.0, 0.0, np.pi], [0.0, 0.0, 0.5])  # axis-angle input
    assert object_centre_error(pred, gt, corners, "origin") == pytest.approx(0.0)
    assert object_centre_error(pred, gt, corners, "bbox") == pytest.approx(200.0)


def test_mce_quarter_turn() -> None:
    a, b, c = 0.1, 0.05, 0.02
    corners = box_corners(np.array([[-a, -b, -c], [a, b, c]]))
    gt = ObjectPose.create(IDENTITY, [0.0, 0.0, 0.5])
    pred = ObjectPose.create(_rz(np.pi / 2), [0.0, 0.0, 0.5])
    # (x, y) -> (-y, x): every corner moves by sqrt(2 (a^2 + b^2)).
    expected = np.sqrt(2 * (a**2 + b**2)) * 1000
    assert mean_corner_error(pred, gt, corners) == pytest.approx(expected)


def test_pose_input_errors() -> None:
    with pytest.raises(ValueError, match="not orthonormal"):
        ObjectPose.create(2 * IDENTITY, [0, 0, 1])
    with pytest.raises(ValueError, match=r"pose must have shape \(3,\)"):
        ObjectPose.create(IDENTITY, [0, 0])
    with pytest.raises(ValueError, match="valid: origin, bbox, centroid"):
        object_centre_error(
            ObjectPose.create(IDENTITY, [0, 0, 1]),
            ObjectPose.create(IDENTITY, [0, 0, 1]),
            _ring(),
            "middle",  # type: ignore[arg-type]
        )


def test_add_s_direction_bop_versus_hoisdf() -> None:
    """BOP's adi averages over the GT-posed points, HOISDF over the predicted-posed ones."""
    gt_pts = np.random.default_rng(0).uniform(-0.05, 0.05, size=(40, 3))
    gt = ObjectPose.create(IDENTITY, [0.0, 0.0, 0.5])
    pred = ObjectPose.create(Rotation.from_rotvec([0.3, -0.5, 0.9]).as_matrix(), [0.01, 0, 0.5])
    p = pred.apply(gt_pts)
    g = gt.apply(gt_pts)
    d = np.linalg.norm(g[:, None] - p[None], axis=-1)  # (gt, pred)
    over_gt, over_pred = d.min(axis=1).mean() * 1000, d.min(axis=0).mean() * 1000
    assert add_s(pred, gt, gt_pts) == pytest.approx(over_gt)
    assert add_s(pred, gt, gt_pts, over="gt") == pytest.approx(over_gt)
    assert add_s(pred, gt, gt_pts, over="pred") == pytest.approx(over_pred)
    assert abs(over_gt - over_pred) > 0.1  # mm
    with pytest.raises(ValueError, match="over"):
        add_s(pred, gt, gt_pts, over="both")
