"""Faults around the model and the camera: the node skips, counts, warns, and keeps going.

First the per-frame path (`FrameEstimator`, no ROS): CUDA out of memory is retried once with
the batch split, hundreds of detections are capped, time jumping back resets tracking, NaN
output is refused. Then the node itself (real rclpy): every failure becomes a throttled
warning and an `errors.<reason>` counter, never an exception out of the worker; camera_info
stopping is explained; the fallbacks for a ROS without tf2_ros / message_filters work.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homae_model.detector.pairing import HAND_LABEL, Detection
from homae_model.estimation.detection import TorchvisionBackend
from homae_model.estimation.estimator import FrameEstimator, NonFiniteOutputError
from homae_model.objects.library import ObjectLibrary
from tests.robustness.fakes import OBJECT, ScriptedBackend, ScriptedPredictor, oom, pair

IMG = np.zeros((48, 64, 3), np.uint8)
K = np.array([[60.0, 0.0, 31.5], [0.0, 60.0, 23.5], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def library() -> ObjectLibrary:
    return ObjectLibrary.procedural()


def _estimator(library, predictor, pairs=(), max_pairs=4) -> FrameEstimator:
    return FrameEstimator(predictor, ScriptedBackend(pairs), library, max_pairs=max_pairs)


# ------------------------------------------------------------------ FrameEstimator (no ROS)
def test_cuda_oom_retries_once_with_the_batch_split(library) -> None:
    def fail(boxes):
        return oom() if len(boxes) > 2 else None

    predictor = ScriptedPredictor(fail)
    est = _estimator(library, predictor, [pair(i, 0.9 - 0.1 * i) for i in range(4)])
    out = est.process(IMG, K, 1.0)
    assert predictor.calls == [4, 2, 2]
    # Every pair keeps its own prediction, in order, after the split.
    assert [e.prediction.joints[0, 0] for e in out] == [0.0, 1.0, 2.0, 3.0]
    assert [e.pair.pair_id for e in out] == [0, 1, 2, 3]


def test_cuda_oom_after_the_split_goes_to_the_caller(library) -> None:
    predictor = ScriptedPredictor(lambda boxes: oom())
    est = _estimator(library, predictor, [pair(i) for i in range(4)])
    with pytest.raises(RuntimeError, match="out of memory"):
        est.process(IMG, K, 1.0)
    assert predictor.calls == [4, 2], "retried once (first half), not again and again"
    single = ScriptedPredictor(lambda boxes: oom())
    with pytest.raises(RuntimeError, match="out of memory"):
        _estimator(library, single, [pair(0)]).process(IMG, K, 1.0)
    assert single.calls == [1], "one pair cannot be split"


def test_other_model_errors_are_not_retried(library) -> None:
    predictor = ScriptedPredictor(lambda boxes: RuntimeError("mat1 and mat2 shapes differ"))
    with pytest.raises(RuntimeError, match="shapes differ"):
        _estimator(library, predictor, [pair(i) for i in range(4)]).process(IMG, K, 1.0)
    assert predictor.calls == [4]


def test_no_detection_gives_no_estimate_and_clears_the_tracker(library) -> None:
    predictor = ScriptedPredictor()
    est = _estimator(library, predictor, [])
    assert est.process(IMG, K, 1.0) == []
    assert predictor.calls == [] and est.backend.updates == [0]


class _BoxFlood:
    """A detector that returns hundreds of boxes (an untrained network at threshold 0)."""

    def __init__(self, n: int) -> None:
        rng = np.random.default_rng(0)
        self.dets = []
        for i in range(n):
            x, y = rng.uniform(0, 50, 2)
            box = np.array([x, y, x + 10, y + 10])
            label = HAND_LABEL if i % 2 == 0 else OBJECT
            self.dets.append(Detection(label, float(rng.uniform(0.5, 1.0)), box))

    def detect(self, image):
        return list(self.dets)


@pytest.mark.parametrize("max_pairs", [1, 3])
def test_hundreds_of_detections_are_capped_to_max_batch_pairs(library, max_pairs) -> None:
    predictor = ScriptedPredictor()
    backend = TorchvisionBackend(_BoxFlood(400), max_pairs=64)
    est = FrameEstimator(predictor, backend, library, max_pairs=max_pairs)
    out = est.process(IMG, K, 1.0)
    assert predictor.calls == [max_pairs] and len(out) == max_pairs
    scores = [e.pair.score for e in out]
    assert scores == sorted(scores, reverse=True), "the best pairs are the ones kept"


def test_time_jumping_backwards_resets_tracking(library) -> None:
    est = _estimator(library, ScriptedPredictor(), [pair(0)])
    for t in (10.0, 10.1, 10.1, 10.2):
        est.process(IMG, K, t)
    assert est.backend.resets == 0, "equal or increasing stamps keep the tracks"
    est.process(IMG, K, 3.0)  # a bag looped
    assert est.backend.resets == 1
    est.process(IMG, K, 3.1)
    assert est.backend.resets == 1
    est.reset()
    assert est.backend.resets == 2


def test_non_finite_model_output_is_refused_not_published(library) -> None:
    predictor = ScriptedPredictor()
    predictor.finite = False
    est = _estimator(library, predictor, [pair(0), pair(1)])
    with pytest.raises(NonFiniteOutputError, match="joints") as err:
        est.process(IMG, K, 1.0)
    assert err.value.reason == "non_finite_output" and isinstance(err.value, ValueError)
    assert est.backend.updates == [0], "nothing to track from a NaN pose"


def test_cuda_requested_without_cuda_names_the_parameter() -> None:
    import torch

    pytest.importorskip("rclpy")
    from homae_model.estimation.estimator import resolve_device

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match=r"parameter 'device' = 'cuda:1'.*use cpu or auto"):
        resolve_device("cuda:1")
    assert resolve_device("auto") == "cpu"


# ------------------------------------------------------------------ the node (real rclpy)
class _Recorder:
    """A logger that records (level, text)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def _log(self, level):
        return lambda text, **_: self.lines.append((level, str(text)))

    def __getattr__(self, level):
        return self._log(level)

    def warnings(self, needle: str = "") -> list[str]:
        return [t for lv, t in self.lines if lv in ("warning", "warn", "error") and needle in t]


class _Estimator:
    """The node's view of an estimator, scripted: `behaviour(rgb)` returns or raises."""

    def __init__(self, behaviour) -> None:
        self.behaviour = behaviour
        self.hand_faces = np.zeros((1538, 3), np.int64)
        self.frames = 0

    def process(self, rgb, K, stamp_s):
        self.frames += 1
        return self.behaviour(rgb)


@pytest.fixture()
def bare_node(monkeypatch):
    """A HomaeNode with a scripted estimator, not spinning: frames are handed in directly."""
    from tests.ros.rosutil import require_ros

    require_ros()
    import rclpy
    from rclpy.parameter import Parameter

    from homae_ros.node.homae_node import HomaeNode

    made = []

    def make(behaviour, **overrides):
        values = {"detector.backend": "roi", "objects.allowed": [OBJECT], "log_throttle_s": 60.0}
        values.update(overrides)
        context = rclpy.Context()
        rclpy.init(context=context)
        node = HomaeNode(
            _Estimator(behaviour),
            context=context,
            parameter_overrides=[Parameter(k, value=v) for k, v in values.items()],
        )
        log = _Recorder()
        monkeypatch.setattr(node, "get_logger", lambda: log)
        published = []
        monkeypatch.setattr(node.result_pub, "publish", published.append)
        made.append((node, context))
        return node, log, published

    yield make
    for node, context in made:
        node.close()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def _frame(t: float = 1.0, w: int = 64, h: int = 48, mutate=None):
    from homae_ros.messages.stamps import Frame
    from tests.ros.nodeutil import camera_info, image_msg, stamp_of

    stamp = stamp_of(t)
    img = image_msg(np.zeros((h, w, 3), np.uint8), stamp)
    info = camera_info(w, h, stamp)
    if mutate is not None:
        mutate(img, info)
    return Frame(img, info, time.monotonic())


def _raise(err):
    def behaviour(rgb):
        raise err

    return behaviour


@pytest.mark.ros
@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (oom(), "out_of_memory"),
        (RuntimeError("cuDNN error: CUDNN_STATUS_INTERNAL_ERROR"), "model_error"),
        (KeyError("decoder.weight"), "model_error"),
        (ValueError("pairs[0].hand_box: expected finite"), "bad_input"),
        (NonFiniteOutputError("pair 0: the model output 'joints' holds NaN"), "non_finite_output"),
    ],
)
def test_model_failures_are_caught_counted_and_logged(bare_node, error, reason) -> None:
    node, log, published = bare_node(_raise(error))
    assert node.handle_frame(_frame()) is False
    assert node.diagnostics()[f"errors.{reason}"] == 1.0
    assert published == [], "a failed frame publishes nothing"
    (line,) = log.warnings()
    assert f"frame skipped ({reason})" in line and str(error.args[0])[:20] in line
    assert node._worker.is_alive()


def test_reasons_come_from_the_exception_type_not_its_text() -> None:
    from homae_model.estimation.errors import FrameSkipped, skip_reason
    from homae_ros.messages.conversions import UnknownEncodingError

    assert skip_reason(oom()).reason == "out_of_memory"
    # A message that merely says "out of memory" is not torch's out-of-memory error.
    assert skip_reason(RuntimeError("CUDA out of memory (a wrapped message)")).reason == (
        "model_error"
    )
    assert skip_reason(FileNotFoundError("x")).reason == "bad_input"
    known = UnknownEncodingError("encoding 'x'")
    assert skip_reason(known) is known and isinstance(known, FrameSkipped)
    assert skip_reason(FrameSkipped("tf_lookup_failed", "no tf")).reason == "tf_lookup_failed"


def test_a_runtime_error_mentioning_memory_is_not_retried_as_out_of_memory(library) -> None:
    predictor = ScriptedPredictor(lambda boxes: RuntimeError("CUDA out of memory (wrapped)"))
    with pytest.raises(RuntimeError, match="wrapped"):
        _estimator(library, predictor, [pair(i) for i in range(4)]).process(IMG, K, 1.0)
    assert predictor.calls == [4]


class _TfError(Exception):
    """Stands in for tf2_ros.TransformException."""


class _NoTransforms:
    def lookup_transform(self, *args, **kwargs):
        raise _TfError("frame 'world' does not exist")


@pytest.mark.ros
def test_a_missing_target_frame_transform_has_its_own_reason(bare_node) -> None:
    node, log, published = bare_node(lambda rgb: [])
    node._tf_buffer, node._tf_errors = _NoTransforms(), (_TfError,)
    node.params = dataclasses.replace(node.params, target_frame="world")
    assert node.handle_frame(_frame()) is False
    d = node.diagnostics()
    assert d["errors.tf_lookup_failed"] == 1.0 and "errors.model_error" not in d
    assert published == []
    assert any("frame skipped (tf_lookup_failed)" in w and "world" in w for w in log.warnings())


@pytest.mark.ros
def test_warnings_are_throttled_per_reason_while_counters_count_everything(bare_node) -> None:
    node, log, _ = bare_node(_raise(oom()), log_throttle_s=60.0)
    for t in range(5):
        node.handle_frame(_frame(float(t)))
    for t in range(3):
        node.handle_frame(_frame(float(t), mutate=lambda img, info: setattr(img, "encoding", "x")))
    d = node.diagnostics()
    assert d["errors.out_of_memory"] == 5 and d["errors.unknown_encoding"] == 3
    assert len(log.warnings("out_of_memory")) == 1
    assert len(log.warnings("unknown_encoding")) == 1 and "rgb8" in log.warnings()[-1]


@pytest.mark.ros
def test_no_detection_publishes_an_empty_result_and_counts_it(bare_node) -> None:
    node, log, published = bare_node(lambda rgb: [])
    assert node.handle_frame(_frame(7.5)) is True
    (msg,) = published
    assert len(msg.hands) == 0 and len(msg.objects) == 0 and msg.header.stamp.sec == 7
    assert node.diagnostics()["frames_without_detection"] == 1
    assert log.warnings("no hand-object pair detected")


_MUTATIONS = {
    "unknown_encoding": lambda img, info: setattr(img, "encoding", "jpeg"),
    "empty_image": lambda img, info: (
        setattr(img, "width", 0),
        setattr(img, "height", 0),
        setattr(img, "data", []),
    ),
    "bad_step": lambda img, info: setattr(img, "step", 3),
    "truncated_data": lambda img, info: setattr(img, "data", bytes(img.data)[:100]),
    "size_mismatch": lambda img, info: (setattr(info, "width", 640), setattr(info, "height", 480)),
    "nan_values": lambda img, info: info.k.__setitem__(0, float("nan")),
    "bad_intrinsics": lambda img, info: info.k.__setitem__(4, -60.0),
    "unsupported_distortion": lambda img, info: (
        setattr(info, "distortion_model", "fisheye"),
        setattr(info, "d", [0.1, 0.0, 0.0, 0.0]),
    ),
}


@pytest.mark.ros
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(faults=st.lists(st.sampled_from([*_MUTATIONS, "good"]), min_size=1, max_size=6))
def test_fuzzed_frames_never_escape_the_node(bare_node, faults) -> None:
    node, log, published = bare_node(lambda rgb: [])
    for i, fault in enumerate(faults):
        mutate = None if fault == "good" else _MUTATIONS[fault]
        node.handle_frame(_frame(float(i), mutate=mutate))  # must not raise
    d = node.diagnostics()
    for reason in _MUTATIONS:
        assert d.get(f"errors.{reason}", 0.0) == faults.count(reason), (reason, d)
        assert bool(log.warnings(f"({reason})")) == (reason in faults)
    assert len(published) == faults.count("good")
    assert node.estimator.frames == faults.count("good"), "bad frames never reach the model"


@pytest.mark.ros
def test_stale_camera_info_is_explained(bare_node) -> None:
    node, log, _ = bare_node(lambda rgb: [], log_throttle_s=0.0)
    now = time.monotonic()
    node._last_image_t, node._last_synced_t = now, now - 0.5
    node._check_camera_info_flow()
    assert log.warnings() == [], "a recent pair: nothing to say"
    node._last_synced_t = now - 3.0
    node._check_camera_info_flow()
    (line,) = log.warnings()
    assert "no camera_info matches them on /camera_info" in line and "sync:=" in line
    node._last_image_t = now - 10.0  # no images either: the camera is simply off
    node._check_camera_info_flow()
    assert len(log.warnings()) == 1


@pytest.mark.ros
def test_latest_camera_info_mode_counts_images_without_any_camera_info(bare_node) -> None:
    node, log, _ = bare_node(lambda rgb: [], sync="latest_camera_info")
    frame = _frame()
    node._on_image_only(frame.image)
    node._on_image_only(frame.image)
    assert node.diagnostics()["errors.no_camera_info"] == 2
    assert len(log.warnings("no camera_info yet on /camera_info")) == 1


# ------------------------------------------------------------------ over loopback
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from tests.ros.rosutil import require_ros

    require_ros()
    from tests.ros.nodeutil import tiny_checkpoint

    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt"))


def _rgb(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)


@pytest.mark.ros
def test_camera_info_stopping_stops_results_with_a_warning(checkpoint, monkeypatch) -> None:
    from tests.ros.nodeutil import image_msg, stamp_of, start_harness

    h = start_harness(checkpoint, {"log_throttle_s": 0.0})
    log = _Recorder()
    monkeypatch.setattr(h.node, "get_logger", lambda: log)
    try:
        assert h.wait_connected()
        h.publish(_rgb(), 50.0)
        assert h.wait_for(lambda: len(h.results) == 1), "a good pair first"
        deadline = time.monotonic() + 4.0
        t = 51.0
        while time.monotonic() < deadline:  # images keep coming, camera_info does not
            h.image_pub.publish(image_msg(_rgb(), stamp_of(t)))
            t += 0.1
            time.sleep(0.1)
        assert h.wait_for(lambda: bool(log.warnings("no camera_info matches")), 5.0), log.lines
        assert len(h.results) == 1, "no results without camera_info"
        h.publish(_rgb(), t + 1.0)  # camera_info is back
        assert h.wait_for(lambda: len(h.results) == 2)
    finally:
        h.close()


@pytest.mark.ros
def test_without_tf2_ros_and_message_filters_the_node_still_works(checkpoint, monkeypatch):
    """ROS 2 from PyPI wheels has neither: /tf goes out as TFMessage, StampPairer syncs."""
    from tests.ros.nodeutil import start_harness

    monkeypatch.setitem(sys.modules, "tf2_ros", None)  # import fails
    monkeypatch.setitem(sys.modules, "message_filters", None)
    h = start_harness(checkpoint)
    try:
        assert h.node._pairer is not None
        assert type(h.node._tf).__name__ == "TopicTfBroadcaster"
        assert h.wait_connected()
        h.publish(_rgb(), 70.0)
        h.publish(_rgb(1), 71.0)
        assert h.wait_for(lambda: len(h.results) >= 1 and len(h.tf) >= 1)
        assert h.results[0].header.stamp.sec in (70, 71)
        children = {t.child_frame_id for t in h.tf[0].transforms}
        assert children == {f"homae/{OBJECT}", "homae/hand_right"}
    finally:
        h.close()


# ------------------------------------------------------------------ StampPairer
def _msg(t: float):
    from types import SimpleNamespace

    sec = int(t)
    stamp = SimpleNamespace(sec=sec, nanosec=round((t - sec) * 1e9))
    return SimpleNamespace(header=SimpleNamespace(stamp=stamp), t=t)


def test_stamp_pairer_exact_approximate_and_bounded() -> None:
    pytest.importorskip("rclpy")
    from homae_ros.messages.stamps import StampPairer

    pairs = []
    exact = StampPairer(0.0, lambda i, c: pairs.append((i.t, c.t)), depth=5)
    exact.add_info(_msg(1.0))
    exact.add_image(_msg(1.0))  # info first
    exact.add_image(_msg(2.0))
    exact.add_info(_msg(2.0))  # image first
    exact.add_image(_msg(3.0))
    exact.add_info(_msg(3.001))  # no exact partner
    assert pairs == [(1.0, 1.0), (2.0, 2.0)]
    pairs.clear()
    approx = StampPairer(0.02, lambda i, c: pairs.append((i.t, c.t)), depth=5)
    for t in (1.0, 1.1, 1.2):
        approx.add_info(_msg(t + 0.01))
    approx.add_image(_msg(1.1))
    assert pairs == [(1.1, 1.11)]
    assert approx.waiting() == 1, "the match and everything older are forgotten"
    for i in range(2000):  # a camera without camera_info: nothing piles up
        approx.add_image(_msg(10.0 + i))
    assert approx.waiting() <= 10


def test_stamp_pairer_is_thread_safe() -> None:
    pytest.importorskip("rclpy")
    from homae_ros.messages.stamps import StampPairer

    pairs = []
    pairer = StampPairer(0.0, lambda i, c: pairs.append((i.t, c.t)), depth=50)

    def feed(add):
        for i in range(500):
            add(_msg(float(i)))

    threads = [
        threading.Thread(target=feed, args=(f,)) for f in (pairer.add_image, pairer.add_info)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(pairs) == len(set(pairs)) >= 50, "each stamp pairs at most once"
    assert all(a == b for a, b in pairs), "only equal stamps pair"
    assert pairer.waiting() <= 100
