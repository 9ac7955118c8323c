"""Detection backends of the node (pure Python, no rclpy)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from homae_model.detector.model import build_detector, detector_class_names, save_detector
from homae_model.detector.pairing import Detection
from homae_model.estimation.detection import (
    BACKENDS,
    DEFAULT_DETECTOR_WEIGHTS,
    DetectionConfig,
    RoiBackend,
    TorchvisionBackend,
    TrackBackend,
    create_backend,
    projected_box,
)

K = np.array([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
IMAGE = np.zeros((480, 640, 3), dtype=np.uint8)


class StubDetector:
    """Returns one hand and one mug; counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image):
        self.calls += 1
        return [
            Detection("hand", 0.9, np.array([100.0, 100.0, 200.0, 200.0])),
            Detection("025_mug", 0.8, np.array([150.0, 120.0, 260.0, 230.0])),
            Detection("011_banana", 0.99, np.array([500.0, 400.0, 520.0, 420.0])),
        ]


def square_pose(cx_m: float = 0.0, z: float = 0.5, half: float = 0.05):
    """Hand joints and object corners filling the square [cx-half, cx+half]^2 at depth z."""
    joints = np.zeros((21, 3))
    joints[:, 2] = z
    joints[:, 0] = np.linspace(cx_m - half, cx_m + half, 21)
    joints[:, 1] = np.linspace(-half, half, 21)
    corners = np.array([[x, y, z] for x in (-half, half) for y in (-half, half) for _ in (0, 1)])
    corners[:, 0] += cx_m
    return {"hand_joints": joints, "obj_corners": corners}


def test_unknown_backend_lists_names():
    with pytest.raises(ValueError) as err:
        create_backend("yolo", DetectionConfig())
    for name in BACKENDS:
        assert name in str(err.value)


def test_roi_backend_fixed_box_and_whole_image():
    cfg = DetectionConfig(roi=(10.0, 20.0, 300.0, 900.0), roi_object="025_mug")
    (pair,) = create_backend("roi", cfg).propose(IMAGE, K, 0.0)
    np.testing.assert_allclose(pair.hand.box, [10, 20, 300, 479])
    np.testing.assert_allclose(pair.obj.box, pair.hand.box)
    assert pair.obj.label == "025_mug" and pair.hand.label == "hand"
    (whole,) = RoiBackend((0, 0, 0, 0), "011_banana").propose(IMAGE, K, 0.0)
    np.testing.assert_allclose(whole.obj.box, [0, 0, 639, 479])
    with pytest.raises(ValueError, match=r"objects\.allowed"):
        create_backend("roi", DetectionConfig())
    with pytest.raises(ValueError, match="outside"):
        RoiBackend((700, 10, 800, 50), "025_mug").propose(IMAGE, K, 0.0)


def test_config_from_node_params():
    params = SimpleNamespace(
        detector_weights="w.safetensors", detector_side_net="s.safetensors",
        detector_score_threshold=0.4,
        detector_max_detections=7, max_batch_pairs=2, objects_allowed=("025_mug",),
        detector_roi=(1.0, 2.0, 3.0, 4.0),
    )  # fmt: skip
    cfg = DetectionConfig.from_params(params)
    assert cfg.side_net == "s.safetensors"
    assert (
        cfg.max_pairs == 2 and cfg.roi_object == "025_mug" and cfg.allowed_objects == ("025_mug",)
    )


def test_torchvision_backend_pairs_stub_detections():
    backend = create_backend("torchvision", DetectionConfig(max_pairs=4), detector=StubDetector())
    (pair,) = backend.propose(IMAGE, K, 0.0)  # the far-away banana has no hand
    assert pair.obj.label == "025_mug" and pair.pair_id == 0
    # Only the far-away banana is allowed: the hand keeps an in-hand fallback object named
    # after it, boxed by the enlarged hand box (pairing rule 4).
    cfg = DetectionConfig(allowed_objects=("011_banana",))
    (pair,) = create_backend("torchvision", cfg, detector=StubDetector()).propose(IMAGE, K, 0)
    assert pair.obj.label == "011_banana"
    np.testing.assert_allclose(pair.obj.box, [70.0, 70.0, 230.0, 230.0])


def test_torchvision_backend_loads_weights_and_caps(tmp_path):
    torch.manual_seed(0)
    classes = detector_class_names(["025_mug"])
    path = save_detector(
        build_detector(class_names=classes, input_size=96), tmp_path / "d.safetensors"
    )
    cfg = DetectionConfig(weights=str(path), score_threshold=0.0, max_detections=6, max_pairs=2)
    backend = create_backend("torchvision", cfg)
    assert isinstance(backend, TorchvisionBackend) and backend.detector.max_detections == 6
    pairs = backend.propose(IMAGE[:120, :160], K, 0.0)
    assert len(pairs) <= 2
    with pytest.raises(FileNotFoundError, match=r"nope\.safetensors"):
        create_backend("track", DetectionConfig(weights=str(tmp_path / "nope.safetensors")))


def test_projected_box_known_pose():
    pose = square_pose(half=0.05)
    # x, y in [-0.05, 0.05] m at z = 0.5 m -> u in [270, 370], v in [190, 290]; margin 10%.
    np.testing.assert_allclose(
        projected_box(pose["hand_joints"], K, 0.1, 480, 640), [260, 180, 380, 300]
    )
    behind = pose["hand_joints"] * np.array([1, 1, -1])
    assert projected_box(behind, K, 0.1, 480, 640) is None


def test_track_backend_follows_pose_then_redetects():
    stub = StubDetector()
    cfg = DetectionConfig(track_margin=0.1, track_decay=0.8, track_min_confidence=0.3)
    track = create_backend("track", cfg, detector=stub)
    assert isinstance(track, TrackBackend)
    pairs = track.propose(IMAGE, K, 1.0)  # no previous pose: detect
    assert stub.calls == 1 and track.last_source == "detect"
    track.update(pairs, [square_pose()])
    expected_scores = []
    for frame in range(1, 5):  # confidence 0.8, 0.64, 0.512, 0.41 >= 0.3: tracked
        pairs = track.propose(IMAGE, K, 1.0 + frame / 30)
        assert stub.calls == 1 and track.last_source == "track"
        np.testing.assert_allclose(pairs[0].hand.box, [260, 180, 380, 300])
        np.testing.assert_allclose(pairs[0].obj.box, [260, 180, 380, 300])
        assert pairs[0].obj.label == "025_mug"
        expected_scores.append(0.9 * 0.8**frame)
        assert pairs[0].hand.score == pytest.approx(expected_scores[-1])
        track.update(pairs, [square_pose()])
    track.propose(IMAGE, K, 1.2)  # 0.328 still >= 0.3
    track.update(pairs, [square_pose()])
    track.propose(IMAGE, K, 1.25)  # 0.26 < 0.3: re-detect
    assert stub.calls == 2 and track.last_source == "detect"


def test_track_backend_resets_on_time_jump_and_lost_pose():
    stub = StubDetector()
    track = create_backend("track", DetectionConfig(), detector=stub)
    pairs = track.propose(IMAGE, K, 5.0)
    track.update(pairs, [square_pose()])
    track.propose(IMAGE, K, 5.1)
    assert stub.calls == 1
    track.propose(IMAGE, K, 2.0)  # time went backwards: state dropped, re-detect
    assert stub.calls == 2
    pairs = track.propose(IMAGE, K, 2.1)  # update was not called: nothing to track
    assert stub.calls == 3
    track.update(pairs, [square_pose(cx_m=5.0)])  # far outside the view
    track.propose(IMAGE, K, 2.2)
    assert stub.calls == 4
    with pytest.raises(ValueError, match="predictions"):
        track.update(pairs, [])
    with pytest.raises(ValueError, match="obj_corners"):
        track.update(pairs, [{"hand_joints": np.zeros((21, 3)), "obj_corners": np.zeros((4, 3))}])
    track.reset()
    track.propose(IMAGE, K, 3.0)
    assert stub.calls == 5


def test_track_reads_predictor_style_pose():
    """`joints` + object pose (axis-angle or matrix) with library corners, as PairPrediction."""
    pose = square_pose()
    local = pose["obj_corners"] - np.array([0.0, 0.0, 0.5])  # object frame: centred box
    rot = np.array([0.0, 0.0, np.pi])  # 180 deg about z maps the square onto itself
    pred = SimpleNamespace(joints=pose["hand_joints"], obj_rot=rot, obj_trans=np.array([0, 0, 0.5]))
    stub = StubDetector()
    track = create_backend("track", DetectionConfig(track_margin=0.1), stub, {"025_mug": local})
    pairs = track.propose(IMAGE, K, 0.0)
    track.update(pairs, [pred])
    (tracked,) = track.propose(IMAGE, K, 0.1)
    np.testing.assert_allclose(tracked.obj.box, [260, 180, 380, 300], atol=1e-9)
    pred_m = {
        "joints": pose["hand_joints"],
        "obj_rot_matrix": np.eye(3),
        "obj_trans": [0.01, 0, 0.5],
    }
    track.update([tracked], [pred_m])
    (shifted,) = track.propose(IMAGE, K, 0.2)
    np.testing.assert_allclose(shifted.obj.box, [270, 180, 390, 300], atol=1e-9)
    no_corners = create_backend("track", DetectionConfig(), StubDetector())
    pairs = no_corners.propose(IMAGE, K, 0.0)
    with pytest.raises(ValueError, match="object_corners"):
        no_corners.update(pairs, [pred])


@pytest.mark.skipif(not DEFAULT_DETECTOR_WEIGHTS.is_file(), reason="no bundled demo detector")
def test_bundled_detector_matches_procedural_library():
    from homae_model.objects.library import ObjectLibrary

    backend = create_backend("torchvision", DetectionConfig(max_detections=5))
    expected = detector_class_names(ObjectLibrary.procedural().names)
    assert backend.detector.class_names == expected
    assert len(backend.detector.detect(IMAGE[:240, :320])) <= 5
