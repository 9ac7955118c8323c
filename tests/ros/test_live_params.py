"""Every changeable homae_node parameter takes effect on the next frame (real rclpy, loopback).

The node runs a real (tiny, seeded) Predictor behind the torchvision backend whose detector is
scripted: two hands (scores 0.8 and 0.7), each holding a mustard bottle. Parameters are set
through the node's parameter service, as `ros2 param set` does; each change is observed in the
next result, TF or marker message. Bad values are refused with a reason a person understands.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.ros.rosutil import require_ros

pytestmark = pytest.mark.ros

W, H = 160, 120
OBJECT = "006_mustard_bottle"


class ScriptedDetector:
    """Two hands with their objects; honours `configure(threshold, max_detections)`."""

    def __init__(self) -> None:
        from homae_model.detector.pairing import HAND_LABEL, Detection

        boxes = [np.array([10.0, 20.0, 60.0, 90.0]), np.array([90.0, 20.0, 150.0, 90.0])]
        self.all = [
            Detection(HAND_LABEL, 0.8, boxes[0]),
            Detection(OBJECT, 0.8, boxes[0] + [10, 10, 10, 10]),
            Detection(HAND_LABEL, 0.7, boxes[1]),
            Detection(OBJECT, 0.7, boxes[1] + [10, 10, 0, 10]),
        ]
        self.threshold, self.max_detections = 0.0, 100
        self.visible = True

    def configure(self, score_threshold: float, max_detections: int) -> None:
        self.threshold, self.max_detections = score_threshold, max_detections

    def detect(self, image):
        if not self.visible:
            return []
        kept = [d for d in self.all if d.score >= self.threshold]
        return sorted(kept, key=lambda d: -d.score)[: self.max_detections]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    require_ros()
    from tests.ros.nodeutil import tiny_checkpoint

    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture()
def live(checkpoint):
    from homae_model.estimation.detection import TorchvisionBackend
    from homae_model.estimation.estimator import FrameEstimator
    from homae_model.inference import Predictor
    from homae_model.objects.library import ObjectLibrary
    from tests.ros.nodeutil import start_harness

    detector = ScriptedDetector()
    predictor = Predictor.from_checkpoint(checkpoint, "cpu")
    backend = TorchvisionBackend(detector, max_pairs=4, min_score=0.3)
    estimator = FrameEstimator(predictor, backend, ObjectLibrary.procedural(), 4, 0.3)
    h = start_harness(
        checkpoint,
        {"detector.backend": "torchvision", "objects.allowed": [""]},
        estimator=estimator,
    )
    assert h.wait_connected(), "node and test camera did not discover each other"
    h.detector = detector
    from rclpy.parameter_client import AsyncParameterClient

    h.params = AsyncParameterClient(h.camera, "homae_node")
    assert h.params.wait_for_services(timeout_sec=20.0)
    h.t = 1000.0
    yield h
    h.close()


def _set(h, **values):
    """Set parameters through the service (dots spelled as __); returns the results."""
    from rclpy.parameter import Parameter

    params = [Parameter(k.replace("__", "."), value=v) for k, v in values.items()]
    future = h.params.set_parameters(params)
    assert h.wait_for(future.done, 20), "no answer from the parameter service"
    return future.result().results


def _ok(h, **values) -> None:
    results = _set(h, **values)
    assert all(r.successful for r in results), [r.reason for r in results]


def _frame(h, seed: int = 0, want: tuple[str, ...] = ()):
    """Publish one frame; return (result, markers and TF messages that came with it).

    `want` names the outputs ("markers", "tf") the caller expects: they are waited for (they
    travel on other topics than the result, so they may arrive after it on a loaded machine);
    anything else gets a short grace period, enough for an absence check.
    """
    n_res, n_mk, n_tf = len(h.results), len(h.markers), len(h.tf)
    h.t += 0.1
    h.publish(np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8), h.t)
    assert h.wait_for(lambda: len(h.results) > n_res, 30), "no result"
    counts = {"markers": lambda: len(h.markers) > n_mk, "tf": lambda: len(h.tf) > n_tf}
    h.wait_for(lambda: all(counts[w]() for w in want), 30)
    h.wait_for(lambda: False, 0.3)  # markers / TF of this frame, if any, arrive meanwhile
    return h.results[-1], h.markers[n_mk:], h.tf[n_tf:]


def _names(result) -> list[str]:
    return [o.name for o in result.objects]


def test_each_changeable_parameter_takes_effect_on_the_next_frame(live) -> None:
    h = live
    res, mk, tf = _frame(h, want=("markers", "tf"))
    assert len(res.hands) == 2 and mk and tf

    _ok(h, max_batch_pairs=1)
    assert len(_frame(h)[0].hands) == 1
    _ok(h, max_batch_pairs=4, detector__max_detections=2)  # the best hand and its object
    assert len(_frame(h)[0].hands) == 1 and h.detector.max_detections == 2
    _ok(h, detector__max_detections=10, detector__score_threshold=0.95)
    assert len(_frame(h)[0].hands) == 0
    _ok(h, detector__score_threshold=0.3, min_hand_score=0.75)
    res = _frame(h)[0]
    assert len(res.hands) == 1 and res.hands[0].score == pytest.approx(0.8)
    _ok(h, min_hand_score=0.95)
    assert len(_frame(h)[0].hands) == 0
    _ok(h, min_hand_score=0.3, objects__allowed=["025_mug"])  # names the in-hand object
    res = _frame(h)[0]
    assert res.objects and set(_names(res)) == {"025_mug"}
    _ok(h, objects__allowed=[""])
    assert set(_names(_frame(h)[0])) == {OBJECT}

    _ok(h, publish_markers=False)
    res, mk, tf = _frame(h, want=("tf",))
    assert len(res.hands) == 2 and not mk and tf
    _ok(h, publish_markers=True, publish_tf=False)
    res, mk, tf = _frame(h, want=("markers",))
    assert mk and not tf
    _ok(h, publish_tf=True, markers__hand_mesh=False)
    res, mk, tf = _frame(h, want=("markers", "tf"))
    namespaces = {m.ns for m in mk[-1].markers}
    assert tf and "hand_mesh" not in namespaces and "hand_skeleton" in namespaces
    _ok(h, markers__skeleton=False, markers__object_mesh=False)
    namespaces = {m.ns for m in _frame(h, want=("markers",))[1][-1].markers}
    assert not namespaces & {"hand_mesh", "hand_skeleton", "hand_joints", "object_mesh"}
    _ok(h, markers__hand_mesh=True, markers__skeleton=True, markers__object_mesh=True)
    namespaces = {m.ns for m in _frame(h, want=("markers",))[1][-1].markers}
    assert {"hand_mesh", "hand_skeleton", "object_mesh", "object_axes"} <= namespaces

    # Values with no visible output without a target frame / error / subscriber: applied.
    _ok(h, tf_timeout_s=0.2, log_throttle_s=1.0, debug_image=False, diagnostics_period_s=0.5)
    _frame(h)
    p = h.node.params
    assert (p.tf_timeout_s, p.log_throttle_s, p.debug_image) == (0.2, 1.0, False)
    assert h.node._diag_timer.timer_period_ns == 500_000_000


def test_track_memory_and_ended_tracks_delete_their_markers(live) -> None:
    h = live
    res = _frame(h)[0]
    ids = sorted(x.track_id for x in res.hands)
    assert len(ids) == 2
    h.detector.visible = False
    res, mk, _ = _frame(h)  # one miss: within the memory (default 5 frames)
    assert not res.hands and not any(m.action == 2 for a in mk for m in a.markers)
    h.detector.visible = True
    res = _frame(h)[0]
    assert sorted(x.track_id for x in res.hands) == ids, "a short miss keeps the identity"
    children = {t.child_frame_id for msg in _frame(h, want=("tf",))[2] for t in msg.transforms}
    assert {"homae/hand_right", f"homae/hand_right_{ids[1]}", f"homae/{OBJECT}"} <= children

    _ok(h, tracking__max_misses=0)
    h.detector.visible = False
    res, mk, _ = _frame(h, want=("markers",))  # no memory: both hand tracks end now
    deleted = {(m.ns, m.id) for a in mk for m in a.markers if m.action == 2}
    assert {("hand_mesh", ids[0]), ("hand_skeleton", ids[1]), ("hand_joints", ids[0])} <= deleted
    assert any(ns == "object_mesh" for ns, _ in deleted)
    h.detector.visible = True
    res = _frame(h)[0]
    assert not set(x.track_id for x in res.hands) & set(ids), "ended tracks get new ids"


def test_smoothing_switches_on_and_its_constants_apply(live) -> None:
    h = live

    def joints(res):
        return np.array([[[p.x, p.y, p.z] for p in hand.joints] for hand in res.hands])

    _frame(h, seed=1)
    raw_b = joints(_frame(h, seed=2)[0])
    _frame(h, seed=1)
    _ok(h, smoothing__enabled=True)
    _frame(h, seed=1)  # the filters start on this frame
    smooth_b = joints(_frame(h, seed=2)[0])
    assert not np.allclose(smooth_b, raw_b, atol=1e-6), "smoothing changed nothing"
    _ok(h, smoothing__min_cutoff_hz=100.0)  # a cutoff far above the frame rate: almost raw
    _frame(h, seed=1)
    fast_b = joints(_frame(h, seed=2)[0])
    assert np.abs(fast_b - raw_b).max() < np.abs(smooth_b - raw_b).max()
    _ok(h, smoothing__beta=0.0, smoothing__d_cutoff_hz=2.0, smoothing__max_gap_s=0.05)
    _frame(h, seed=1)
    gap_b = joints(_frame(h, seed=2)[0])  # frames 0.1 s apart > max_gap: filters restart
    np.testing.assert_allclose(gap_b, raw_b, atol=1e-6)
    _ok(h, smoothing__enabled=False)
    np.testing.assert_allclose(joints(_frame(h, seed=2)[0]), raw_b, atol=1e-6)


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"detector__roi": [1.0, 2.0]}, "'detector.roi' needs exactly 4 values"),
        ({"detector__roi": [100.0, 100.0, 50.0, 50.0]}, "x_min < x_max"),
        ({"detector__roi": [100, 100, 150, 150]}, "decimal point"),
        ({"detector__score_threshold": 1}, "must be of type double (a decimal number), got 1"),
        ({"publish_markers": "no"}, "'publish_markers' must be of type bool"),
        ({"detector__score_threshold": 1.5}, "out of range"),
        ({"max_batch_pairs": 0}, "out of range"),
        ({"device": "cuda"}, "read-only"),
        ({"objects__allowed": ["025_mug", 3]}, ""),  # a mixed list is not even sent
    ],
)
def test_bad_values_are_refused_with_a_reason(live, values, reason) -> None:
    h = live
    before = h.node.params
    try:
        results = _set(h, **values)
    except (TypeError, ValueError, AssertionError):
        assert reason == ""  # rclpy refuses to build such a parameter at all
        return
    assert not results[0].successful
    assert reason in results[0].reason, results[0].reason
    assert "expected '" not in results[0].reason  # not rclpy's "expected '3' got '4'"
    res = _frame(h)[0]
    assert len(res.hands) == 2 and h.node.params == before  # nothing changed


def test_diagnostics_level_comes_from_a_recent_window(live) -> None:
    from tests.ros.nodeutil import camera_info, image_msg, stamp_of

    h = live
    _ok(h, diagnostics_window_s=0.5)
    stamp = stamp_of(h.t + 0.05)
    info = camera_info(W, H, stamp)
    info.k = [0.0] * 9  # a bad frame
    h.info_pub.publish(info)
    h.image_pub.publish(image_msg(np.zeros((H, W, 3), np.uint8), stamp))
    assert h.wait_for(lambda: h.node.diagnostics().get("errors.bad_intrinsics", 0) >= 1, 15)
    assert h.node.diagnostic_level()[0] == b"\x01"  # WARN right after the bad frame
    assert h.wait_for(lambda: h.node.diagnostic_level()[0] == b"\x00", 10), "WARN forever"
    _frame(h)
    n = len(h.diagnostics)
    assert h.wait_for(lambda: len(h.diagnostics) > n + 1, 10)
    status = h.diagnostics[-1].status[0]
    values = {kv.key: float(kv.value) for kv in status.values}
    assert status.level == b"\x00" and values["errors.bad_intrinsics"] == 1.0  # still counted
    assert {"frames_processed", "frames_dropped", "latency_ms_median"} <= set(values)
