"""homae_model.tracking: association, memory, name vote, child frames, One-Euro, time jumps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from homae_model.detector.pairing import Detection, Pair
from homae_model.estimation.estimator import PairEstimate
from homae_model.inference import PairPrediction
from homae_model.tracking.association import box_iou, greedy_match
from homae_model.tracking.frame import FrameTracker, TrackingSettings
from homae_model.tracking.metrics import id_switches, jitter_mm, value_changes
from homae_model.tracking.smoothing import OneEuroConfig, PointFilter, RotationFilter
from homae_model.tracking.tracks import LabelVote, Observation, Tracker, TrackerConfig

pytestmark = pytest.mark.ros  # part of the ROS node's behaviour (`pytest -m ros` covers it)


def _estimate(x: float, label: str = "006_mustard_bottle", score: float = 0.9, rot=None):
    box = np.array([x, 10.0, x + 40.0, 60.0])
    joints = np.zeros((21, 3)) + np.array([x / 1000.0, 0.0, 0.5])
    joints[1:, 1] = np.linspace(0.01, 0.08, 20)
    pose = np.zeros(48)
    pose[:3] = rot if rot is not None else [0.1, 0.2, 0.3]
    pred = PairPrediction(
        joints=joints, vertices=np.zeros((778, 3)) + joints[0], mano_pose=pose,
        mano_shape=np.zeros(10), hand_transl=np.array([0.01, 0.02, 0.03]), obj_rot=np.zeros(3),
        obj_trans=joints[0] + [0.05, 0.0, 0.0], obj_rot_matrix=np.eye(3), crop_box=box,
        anchor=joints[0], anchor_source="predicted", scores={"hand": 1.0},
    )  # fmt: skip
    return PairEstimate(
        Pair(Detection("hand", 0.9, box), Detection(label, score, box), 0), pred, None
    )


def test_box_iou_and_greedy_match() -> None:
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert box_iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(1 / 3)
    assert greedy_match({(0, 0): 0.5, (0, 1): 0.1, (1, 1): 0.2}) == {0: 1}
    assert greedy_match({(0, 0): 0.5, (1, 0): 0.1, (1, 1): 0.2}) == {1: 0}


def test_tracker_keeps_ids_through_short_misses_and_ends_after_memory() -> None:
    tr = Tracker(TrackerConfig(min_iou=0.3, max_distance_m=0.05, max_misses=2))

    def obs(x):
        return Observation(np.array([x, 0, x + 10, 10.0]), np.array([x / 100, 0, 0.5]))

    ids, ended = tr.update([obs(0), obs(100)])
    assert ids == [1, 2] and ended == []
    assert tr.update([obs(101), obs(1)])[0] == [2, 1]  # order of observations does not matter
    assert tr.update([]) == ([], [])  # miss 1
    assert tr.update([obs(2)]) == ([1], [])  # back within memory; 2 has missed twice
    assert tr.update([obs(2)]) == ([1], [2])  # third miss of 2: ended
    assert tr.update([obs(60)])[0] == [3]  # far away: new id, never a reused one
    assert tr.reset() == [1, 3]


def test_label_vote_resists_flicker_and_is_then_kept() -> None:
    vote = LabelVote(decide_after=6)
    for label in ["a", "b", "b", "a", "a"]:
        vote.add(label, 1.0)
        assert not vote.decided
    assert vote.label == "a"
    vote.add("b", 1.0)
    assert vote.label == "a" and vote.decided  # a tie (3:3) keeps the current name
    for _ in range(10):
        vote.add("b", 1.0)
    assert vote.label == "a", "decided: the name stays while the track lives"
    early = LabelVote(decide_after=3)
    early.add("a", 0.2)
    assert early.add("b", 0.5) == "b"  # before the decision the leader may change


def test_frame_tracker_names_children_and_votes_object_names() -> None:
    ft = FrameTracker()
    names = []
    for i in range(10):
        label = "025_mug" if i in (3, 7) else "006_mustard_bottle"  # the detector flickers
        frame = ft.update([_estimate(100 + i), _estimate(300 + i)], 0.1 * i)
        names.append([p.object_name for p in frame.pairs])
        frame = ft.update([_estimate(100 + i, label)], 0.1 * i + 0.05)
    assert value_changes([n[0] for n in names]) == 0
    tp = ft.update([_estimate(110), _estimate(310)], 2.0).pairs
    assert [p.hand_child for p in tp] == ["hand_right", f"hand_right_{tp[1].hand_id}"]
    assert tp[0].object_child == "006_mustard_bottle"
    assert tp[1].object_child == f"006_mustard_bottle_{tp[1].object_id}"
    np.testing.assert_allclose(tp[0].wrist_R, Rotation.from_rotvec([0.1, 0.2, 0.3]).as_matrix())
    assert tp[0].side == "right"


def test_time_backwards_ends_every_track_and_a_gap_restarts_filters() -> None:
    ft = FrameTracker(TrackingSettings(smoothing=True, max_gap_s=0.5))
    first = ft.update([_estimate(100)], 10.0)
    ft.update([_estimate(100)], 10.1)
    back = ft.update([_estimate(100)], 5.0)
    assert back.reset == "time_backwards"
    assert back.ended_hands == [first.pairs[0].hand_id]
    assert back.pairs[0].hand_id != first.pairs[0].hand_id
    ft.update([_estimate(100)], 5.1)
    gap = ft.update([_estimate(140)], 7.0)  # a jump forward: the raw value, no lag
    assert gap.reset == "time_gap" and gap.pairs[0].hand_id == back.pairs[0].hand_id
    np.testing.assert_allclose(gap.pairs[0].joints, _estimate(140).prediction.joints)


def test_smoothing_reduces_jitter_keeps_mano_consistent() -> None:
    rng = np.random.default_rng(0)
    ft = FrameTracker(TrackingSettings(smoothing=True))
    raw, smooth, stamps = [], [], []
    for i in range(40):
        est = _estimate(100.0, rot=np.array([0.1, 0.2, 0.3]) + rng.normal(0, 0.02, 3))
        est.prediction.joints[:] += rng.normal(0, 0.003, (21, 3))
        tp = ft.update([est], i / 30).pairs[0]
        raw.append(est.prediction.joints.copy())
        smooth.append(tp.joints)
        stamps.append(i / 30)
        # wrist pose, mano_pose[:3] and the MANO translation stay consistent when filtered
        np.testing.assert_allclose(Rotation.from_rotvec(tp.mano_pose[:3]).as_matrix(), tp.wrist_R)
        j0 = est.prediction.joints[0] - est.prediction.hand_transl
        np.testing.assert_allclose(tp.joints[0] - tp.hand_transl, j0, atol=1e-12)
    assert jitter_mm(smooth, stamps) < 0.5 * jitter_mm(raw, stamps)
    assert id_switches([1, 1, None, 1, 2]) == 1


def test_one_euro_points_and_rotations() -> None:
    cfg = OneEuroConfig(min_cutoff_hz=1.0, beta=10.0)
    f = PointFilter(cfg)
    x = np.ones((2, 3))
    assert np.array_equal(f(x, 0.1), x) and np.allclose(f(x, 0.1), x)  # constant stays
    ramp = [f(x + np.array([0.5 * k * 0.033, 0, 0]), 0.033)[0, 0] for k in range(1, 60)]
    assert abs(ramp[-1] - (1 + 0.5 * 59 * 0.033)) < 0.02  # fast motion: little lag (beta)
    r = RotationFilter(cfg)
    R0 = Rotation.from_rotvec([0.0, 0.0, 0.5]).as_matrix()
    np.testing.assert_allclose(r(R0, 0.1), R0)
    R1 = r(Rotation.from_rotvec([0.0, 0.0, 0.7]).as_matrix(), 0.1)
    angle = Rotation.from_matrix(R1).as_rotvec()[2]
    assert 0.5 < angle < 0.7  # between the previous estimate and the new sample
    with pytest.raises(ValueError, match="min_cutoff_hz"):
        OneEuroConfig(min_cutoff_hz=0.0)
    assert jitter_mm([None, np.zeros((21, 3))], [0.0, 1.0]) is None


def test_smoothing_keeps_the_keypoint_fit_nearest_the_tracks_orientation() -> None:
    """A frame whose chosen fit flipped takes its near alternative that continues the track."""
    from dataclasses import replace

    from homae_model.tracking.frame import nearest_fit

    first = _estimate(100.0, rot=[0.1, 0.2, 0.3])
    flipped = _estimate(101.0, rot=[0.1, 0.2 + np.pi * 0.9, 0.3])
    joints = flipped.prediction.joints.copy()
    joints[1:, 1] *= -1.0  # the continuing fit: different joints, so the choice is visible
    keep = replace(flipped.prediction, mano_pose=first.prediction.mano_pose.copy(), joints=joints)
    second = replace(flipped, prediction=replace(flipped.prediction, alternatives=[keep]))
    smooth = FrameTracker(TrackingSettings(smoothing=True))
    smooth.update([first], 0.0)
    out = smooth.update([second], 0.1).pairs[0]
    prev = Rotation.from_rotvec(first.prediction.mano_pose[:3]).as_matrix()
    assert nearest_fit(second.prediction, prev) is keep
    assert nearest_fit(second.prediction, None) is second.prediction
    assert out.joints[5, 1] < out.joints[0, 1]  # the alternative's joints (filtered) were used
    raw = FrameTracker()  # smoothing off: the Predictor's own choice, frame by frame
    raw.update([first], 0.0)
    np.testing.assert_allclose(raw.update([second], 0.1).pairs[0].joints, flipped.prediction.joints)
