"""Association and whole-frame fusion with known answers (homae_model.fusion.fuse)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from homae_model.fusion.associate import associate
from homae_model.fusion.frames import invert, transform_points
from homae_model.fusion.fuse import fuse_frame, fuse_hands, fuse_objects
from homae_model.fusion.settings import FusionSettings
from homae_model.fusion.views import hand_view, object_view
from tests.fusion.test_fusion_math import BOX, look_at

SETTINGS = FusionSettings()
TARGET = np.array([0.0, 0.0, 0.5])
CAMERAS = {
    "cam0": look_at([0.0, -0.6, 0.5], TARGET),
    "cam1": look_at([0.6, 0.0, 0.5], TARGET),
    "cam2": look_at([-0.45, -0.45, 0.7], TARGET),
}


def hand_joints(centre, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 0.03, (21, 3)) + centre


def seen_hand(camera, joints_world, side="right", score=0.9, pair_id=0, offset_cam=(0, 0, 0)):
    """The hand as `camera` would report it, with an error `offset_cam` in its optical frame."""
    T = CAMERAS[camera]
    joints_cam = transform_points(invert(T), joints_world) + np.asarray(offset_cam)
    return hand_view(camera, T, side, score, joints_cam, BOX, pair_id, SETTINGS)


def seen_object(camera, R_w, t_w, name="box", score=0.8, pair_id=0, offset_cam=(0, 0, 0)):
    T = CAMERAS[camera]
    Tinv = invert(T)
    t_cam = transform_points(Tinv, t_w) + np.asarray(offset_cam)
    return object_view(camera, T, name, score, Tinv[:3, :3] @ R_w, t_cam, BOX, pair_id, SETTINGS)


def test_exact_views_fuse_to_the_truth():
    truth = hand_joints(TARGET)
    views = [seen_hand(c, truth) for c in CAMERAS]
    fused = fuse_hands(views, SETTINGS)
    np.testing.assert_allclose(fused.joints, truth, atol=1e-9)
    assert set(fused.cameras) == set(CAMERAS) and fused.rejected == ()


def test_depth_errors_of_two_views_cancel_each_other():
    """Each camera errs 6 cm along its own optical axis; fused error is far below 6 cm."""
    truth = hand_joints(TARGET)
    views = [seen_hand("cam0", truth, offset_cam=(0, 0, 0.06)),
             seen_hand("cam1", truth, offset_cam=(0, 0, -0.06))]  # fmt: skip
    fused = fuse_hands(views, SETTINGS)
    err = np.linalg.norm(fused.joints - truth, axis=1).mean()
    single = np.linalg.norm(views[0].joints - truth, axis=1).mean()
    assert single == pytest.approx(0.06, abs=1e-9)
    assert err < 0.02


def test_outlier_view_is_dropped():
    truth = hand_joints(TARGET)
    views = [seen_hand("cam0", truth), seen_hand("cam1", truth),
             seen_hand("cam2", truth, offset_cam=(0.3, 0.0, 0.0))]  # fmt: skip
    fused = fuse_hands(views, SETTINGS)
    assert fused.rejected == ("cam2",)
    np.testing.assert_allclose(fused.joints, truth, atol=1e-9)


def test_object_rotation_and_translation_fusion():
    R = Rotation.from_euler("xyz", [20, -10, 40], degrees=True).as_matrix()
    t = TARGET.copy()  # at the same depth from both cameras: equal weights
    tilt = Rotation.from_euler("z", 8, degrees=True).as_matrix()
    views = [seen_object("cam0", R @ tilt, t), seen_object("cam1", R @ tilt.T, t)]
    fused = fuse_objects(views, SETTINGS)
    np.testing.assert_allclose(fused.R, R, atol=1e-9)  # equal weights: the middle rotation
    np.testing.assert_allclose(fused.t, t, atol=1e-9)
    flipped = Rotation.from_euler("x", 180, degrees=True).as_matrix()
    views.append(seen_object("cam2", R @ flipped, t, score=0.2))
    assert fuse_objects(views, SETTINGS).rejected == ("cam2",)


def test_associate_two_hands_across_cameras():
    right, left = hand_joints(TARGET, 1), hand_joints(TARGET + np.r_[0.0, 0.3, 0.0], 2)
    views = [
        seen_hand("cam0", right, "right", pair_id=0),
        seen_hand("cam0", left, "left", pair_id=1),
        seen_hand("cam1", left, "left", pair_id=0, offset_cam=(0, 0, 0.05)),
        seen_hand("cam1", right, "right", pair_id=1, offset_cam=(0, 0, -0.05)),
    ]
    groups = associate(views, lambda v: v.side, SETTINGS.hand_gate_m, SETTINGS.depth_ratio)
    assert sorted(sorted(g) for g in groups) == [[0, 3], [1, 2]]
    # Two right hands 40 cm apart stay apart.
    other = hand_joints(TARGET + np.r_[0.0, 0.0, 0.4], 3)
    views = [seen_hand("cam0", right), seen_hand("cam0", other),
             seen_hand("cam1", other), seen_hand("cam1", right)]  # fmt: skip
    groups = associate(views, lambda v: v.side, SETTINGS.hand_gate_m, SETTINGS.depth_ratio)
    assert sorted(sorted(g) for g in groups) == [[0, 3], [1, 2]]


def test_fuse_frame_pairs_hands_and_objects_through_camera_pair_ids():
    right, left = hand_joints(TARGET, 1), hand_joints(TARGET + np.r_[0.0, 0.3, 0.0], 2)
    R = np.eye(3)
    mug_t, box_t = TARGET + np.r_[0.05, 0.0, 0.0], TARGET + np.r_[0.05, 0.3, 0.0]
    hands = [seen_hand("cam0", right, "right", score=0.9, pair_id=0),
             seen_hand("cam0", left, "left", score=0.5, pair_id=1),
             seen_hand("cam1", left, "left", score=0.5, pair_id=0),
             seen_hand("cam1", right, "right", score=0.9, pair_id=1)]  # fmt: skip
    objects = [seen_object("cam0", R, mug_t, "mug", pair_id=0),
               seen_object("cam0", R, box_t, "box", pair_id=1),
               seen_object("cam1", R, box_t, "box", pair_id=0),
               seen_object("cam1", R, mug_t, "mug", pair_id=1),
               seen_object("cam1", R, TARGET + np.r_[0.0, 0.0, 0.3], "can", pair_id=7)]  # fmt: skip
    frame = fuse_frame(hands, objects, SETTINGS)
    by_side = {h.side: h for h in frame.hands}
    assert [h.side for h in frame.hands] == ["right", "left"]  # heavier group first
    by_name = {o.name: o for o in frame.objects}
    assert by_name["mug"].pair_id == by_side["right"].pair_id == 0
    assert by_name["box"].pair_id == by_side["left"].pair_id == 1
    assert by_name["can"].pair_id == 2  # no hand shares its pair: a fresh id
    np.testing.assert_allclose(by_side["left"].joints, left, atol=1e-9)
    assert sorted(by_side["left"].cameras) == ["cam0", "cam1"]


def test_zero_weight_views_are_ignored():
    truth = hand_joints(TARGET)
    hidden = seen_hand("cam1", truth, score=0.0, offset_cam=(0.5, 0, 0))
    frame = fuse_frame([seen_hand("cam0", truth), hidden], [], SETTINGS)
    assert len(frame.hands) == 1 and frame.hands[0].cameras == ("cam0",)
    with pytest.raises(ValueError, match="positive weight"):
        fuse_hands([hidden], SETTINGS)


def test_settings_reject_bad_values():
    with pytest.raises(ValueError, match="depth_ratio"):
        FusionSettings(depth_ratio=0.5)
    with pytest.raises(ValueError, match="hand_gate_m"):
        FusionSettings(hand_gate_m=0.0)
