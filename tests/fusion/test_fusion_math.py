"""Known-answer tests of the pure fusion maths (homae_model.fusion)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from homae_model.fusion.frames import (
    check_extrinsics,
    invert,
    look_at,
    make_transform,
    transform_points,
    viewing_ray,
)
from homae_model.fusion.robust import (
    fuse_points,
    mean_rotation,
    reject_outliers,
    rotation_angle_deg,
    view_rays,
    weighted_points,
)
from homae_model.fusion.settings import FusionSettings
from homae_model.fusion.views import hand_view, object_view
from homae_model.fusion.weights import ray_discount, view_weight

BOX = np.array([0.0, 0.0, 100.0, 100.0])


def test_transform_round_trip_and_ray():
    T = make_transform(Rotation.from_euler("xyz", [10, -20, 30], degrees=True).as_matrix(),
                       [0.1, -0.2, 0.3])  # fmt: skip
    p = np.random.default_rng(0).normal(size=(5, 3))
    back = transform_points(invert(T), transform_points(T, p))
    np.testing.assert_allclose(back, p, atol=1e-12)
    T2 = look_at([1.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    d, z = viewing_ray(T2, [0.0, 0.0, 0.0])
    np.testing.assert_allclose(d, [-1.0, 0.0, 0.0], atol=1e-12)
    assert z == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.eye(3), "4x4"),
        (np.diag([1.0, 1.0, 2.0, 1.0]), "not a rotation"),
        (np.diag([1.0, 1.0, -1.0, 1.0]), "not a rotation"),
        (np.vstack([np.eye(4)[:3], [0, 0, 1, 1]]), "last row"),
        (np.full((4, 4), np.nan), "NaN"),
    ],
)
def test_check_extrinsics_rejects(bad, match):
    with pytest.raises(ValueError, match=match):
        check_extrinsics(bad, "cam0")


def test_view_weight_terms():
    s = FusionSettings(reference_depth_m=0.5, min_box_px=40.0, min_score=0.1)
    assert view_weight(0.8, BOX, 1.0, s) == pytest.approx(0.8 * 0.25)
    small = np.array([0.0, 0.0, 12.0, 16.0])  # diagonal 20 px = half of min_box_px
    assert view_weight(0.8, small, 0.5, s) == pytest.approx(0.4)
    assert view_weight(0.8, BOX, -0.2, s) == 0.0  # behind the camera
    assert view_weight(0.05, BOX, 0.5, s) == 0.0  # under min_score
    assert view_weight(float("nan"), BOX, 0.5, s) == 0.0


def test_ray_discount_divides_along_ray_component():
    d = np.array([0.0, 0.0, 1.0])
    assert ray_discount(d, np.array([0.0, 0.0, 0.5]), 2.5) == pytest.approx(0.2)
    assert ray_discount(d, np.array([0.3, 0.4, 0.0]), 2.5) == pytest.approx(0.5)


def test_two_orthogonal_views_fix_each_others_depth():
    """Camera A looks along +z and errs 10 cm in depth; camera B looks along -x, exact."""
    truth = np.array([[0.0, 0.0, 1.0]])
    centres = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 1.0]])
    points = np.stack([truth + np.r_[0.0, 0.0, 0.1], truth])
    rho = 2.5
    fused = weighted_points(points, view_rays(points, centres), np.array([1.0, 1.0]), rho)
    # z: A's information along its ray is 1/ρ², B's (across its ray) is 1.
    expected_z = (1.1 / rho**2 + 1.0) / (1.0 / rho**2 + 1.0)
    np.testing.assert_allclose(fused[0], [0.0, 0.0, expected_z], atol=1e-12)
    # Isotropic (ρ = 1): the plain weighted mean.
    iso = weighted_points(points, view_rays(points, centres), np.array([3.0, 1.0]), 1.0)
    np.testing.assert_allclose(iso[0], [0.0, 0.0, (3 * 1.1 + 1.0) / 4], atol=1e-12)


def test_huber_reweighting_resists_one_wrong_joint():
    rng = np.random.default_rng(1)
    truth = rng.normal(0.0, 0.05, (21, 3)) + np.r_[0.0, 0.0, 0.6]
    centres = np.array([[0.0, 0.0, 0.0], [0.6, 0.0, 0.6], [-0.6, 0.0, 0.6]])
    points = np.stack([truth, truth, truth])
    points[2, 5] += [0.0, 0.3, 0.0]  # one joint of one view 30 cm off, across its ray
    plain = fuse_points(points, centres, np.ones(3), 2.5, 0.03, 0)
    robust = fuse_points(points, centres, np.ones(3), 2.5, 0.03, 5)
    assert np.linalg.norm(plain[5] - truth[5]) > 0.09
    assert np.linalg.norm(robust[5] - truth[5]) < 0.02
    np.testing.assert_allclose(np.delete(robust, 5, 0), np.delete(truth, 5, 0), atol=1e-9)


def test_mean_rotation_known_answers():
    rz = lambda deg: Rotation.from_euler("z", deg, degrees=True).as_matrix()  # noqa: E731
    np.testing.assert_allclose(mean_rotation(np.stack([rz(10), rz(-10)]), np.ones(2)),
                               np.eye(3), atol=1e-12)  # fmt: skip
    mean = mean_rotation(np.stack([rz(0), rz(90)]), np.array([3.0, 1.0]))
    # Chordal mean of two rotations about one axis: angle atan2(Σ w sin, Σ w cos).
    np.testing.assert_allclose(mean, rz(np.degrees(np.arctan2(1.0, 3.0))), atol=1e-12)
    assert rotation_angle_deg(rz(0), rz(90)) == pytest.approx(90.0)


def test_reject_outliers_three_four_and_two_views():
    values = [0.0, 0.01, 0.5]

    def disagreement(k, others):
        return abs(values[k] - np.mean([values[o] for o in others])) / 0.1

    kept, dropped = reject_outliers(3, disagreement)
    assert (kept, dropped) == ([0, 1], [2])
    values[:] = [0.0, 0.5]
    # two views are never split: geometry cannot name the wrong one (see the docstring)
    assert reject_outliers(2, disagreement) == ([0, 1], [])
    values[:] = [0.0, 0.01, 0.5, 0.6]
    assert reject_outliers(4, disagreement) == ([0, 1], [2, 3])
    values[:] = [0.0, 0.05]
    assert reject_outliers(2, disagreement) == ([0, 1], [])


def test_hand_view_world_frame_and_mano_global_rotation():
    T = look_at([0.5, 0.0, 0.5], [0.0, 0.0, 0.5])
    joints_world = np.random.default_rng(2).normal(0.0, 0.03, (21, 3)) + np.r_[0.0, 0.0, 0.5]
    joints_cam = transform_points(invert(T), joints_world)
    pose = np.zeros(48)
    pose[:3] = [0.0, 0.0, 0.3]
    v = hand_view("cam", T, "right", 0.9, joints_cam, BOX, 0, FusionSettings(), pose, np.ones(10))
    np.testing.assert_allclose(v.joints, joints_world, atol=1e-12)
    expected = Rotation.from_matrix(T[:3, :3]) * Rotation.from_rotvec([0.0, 0.0, 0.3])
    np.testing.assert_allclose(Rotation.from_rotvec(v.mano_pose[:3]).as_matrix(),
                               expected.as_matrix(), atol=1e-12)  # fmt: skip
    assert v.weight == pytest.approx(0.9 * (0.5 / 0.5) ** 2, rel=0.05)
    with pytest.raises(ValueError, match="cam"):
        hand_view("cam", T, "right", 0.9, joints_cam[:20], BOX, 0, FusionSettings())


def test_object_view_pose_in_world():
    T = look_at([0.0, -0.6, 0.4], [0.0, 0.0, 0.4])
    R_w = Rotation.from_euler("xyz", [5, 15, 25], degrees=True).as_matrix()
    t_w = np.array([0.02, 0.01, 0.41])
    Tinv = invert(T)
    v = object_view("cam", T, "box", 0.7, Tinv[:3, :3] @ R_w, transform_points(Tinv, t_w),
                    BOX, 0, FusionSettings())  # fmt: skip
    np.testing.assert_allclose(v.R, R_w, atol=1e-12)
    np.testing.assert_allclose(v.t, t_w, atol=1e-12)
