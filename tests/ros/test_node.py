"""homae_node with real rclpy over loopback: results, TF, markers, dropping, bad input."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.ros.rosutil import require_ros

pytestmark = pytest.mark.ros

W, H = 160, 120


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    require_ros()
    from tests.ros.nodeutil import tiny_checkpoint

    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture()
def harness(checkpoint):
    from tests.ros.nodeutil import start_harness

    h = start_harness(checkpoint)
    assert h.wait_connected(), "node and test camera did not discover each other"
    yield h
    h.close()


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)


def test_result_stamped_with_image_stamp_tf_and_markers(harness) -> None:
    harness.publish(_image(), 100.25)
    assert harness.wait_for(lambda: len(harness.results) >= 1), "no result"
    res = harness.results[0]
    assert (res.header.stamp.sec, res.header.stamp.nanosec) == (100, 250_000_000)
    assert res.header.frame_id == "test_camera_optical_frame"
    assert len(res.hands) == 1 and len(res.objects) == 1
    assert res.objects[0].name == "006_mustard_bottle"
    joints = np.array([[p.x, p.y, p.z] for p in res.hands[0].joints])
    assert joints.shape == (21, 3) and np.all(np.isfinite(joints))
    assert harness.node.diagnostics()["frames_processed"] == 1  # telemetry: /diagnostics
    assert res.hands[0].track_id >= 1 and res.objects[0].track_id >= 1
    assert harness.wait_for(lambda: len(harness.tf) >= 1 and len(harness.markers) >= 1)
    children = {t.child_frame_id for t in harness.tf[0].transforms}
    assert children == {"homae/006_mustard_bottle", "homae/hand_right"}
    assert all(t.header.frame_id == "test_camera_optical_frame" for t in harness.tf[0].transforms)
    marker_types = [m.type for m in harness.markers[0].markers]
    assert harness.markers[0].markers[0].action == 3  # DELETEALL first
    assert 11 in marker_types  # TRIANGLE_LIST (hand and object meshes)
    hand_mesh = next(m for m in harness.markers[0].markers if m.ns == "hand_mesh")
    assert len(hand_mesh.points) == 1538 * 3


def test_fast_publisher_drops_frames_without_growing_latency(harness) -> None:
    """Frames sent faster than the model runs: only the newest waits, each one is accounted.

    What must hold on any machine, however the threads are scheduled: every frame the node
    received was processed or dropped (never queued: the slot holds one frame), every
    processed frame gave exactly one result, results come in stamp order (a newer frame never
    overtakes an older one), the last frame sent is processed (the newest one wins), and the
    node's queues stay within their bounds. How many are dropped depends on the machine.
    """
    n = 100
    stamps = [200.0 + i / 1000.0 for i in range(n)]
    for i, t in enumerate(stamps):
        harness.publish(_image(i), t)
        time.sleep(0.002)

    def settled() -> bool:
        """No new frame for 0.5 s, each one published or dropped, every result delivered."""
        before = harness.node.diagnostics()
        time.sleep(0.5)
        d = harness.node.diagnostics()
        return (
            d["frames_received"] == before["frames_received"] > 0
            and d["frames_processed"] + d["frames_dropped"] == d["frames_received"]
            and len(harness.results) == int(d["frames_processed"])
        )

    assert harness.wait_for(settled, 90), harness.node.diagnostics()
    d = harness.node.diagnostics()
    assert d["frames_skipped"] == 0, d
    assert 1 <= d["frames_received"] <= n
    got = [r.header.stamp.sec + 1e-9 * r.header.stamp.nanosec for r in harness.results]
    assert got == sorted(got) and len(set(got)) == len(got), "results out of order or repeated"
    assert got[-1] == pytest.approx(stamps[-1], abs=1e-6), "the newest frame must be processed"
    assert all(len(r.hands) == 1 for r in harness.results), "a result for each processed frame"
    node = harness.node
    for name in ("_latencies", "_arrivals", "_done_times"):
        q = getattr(node, name)
        assert q.maxlen is not None and len(q) <= q.maxlen, name
    assert len(node._recent_errors) <= node._recent_errors.maxlen


def _publish_raw(harness, t: float, mutate) -> None:
    from tests.ros.nodeutil import camera_info, image_msg, stamp_of

    stamp = stamp_of(t)
    img = image_msg(_image(), stamp)
    info = camera_info(W, H, stamp)
    mutate(img, info)
    harness.info_pub.publish(info)
    harness.image_pub.publish(img)


def _unknown_encoding(img, info):
    img.encoding = "weird16"


def _size_mismatch(img, info):
    info.width, info.height = 640, 480


def _zero_k(img, info):
    info.k = [0.0] * 9


def _empty(img, info):
    img.width = img.height = img.step = 0
    img.data = []


def _truncated(img, info):
    img.data = bytes(img.data)[: len(img.data) // 2]


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (_unknown_encoding, "unknown_encoding"),
        (_size_mismatch, "size_mismatch"),
        (_zero_k, "bad_intrinsics"),
        (_empty, "empty_image"),
        (_truncated, "truncated_data"),
    ],
)
def test_bad_frame_is_skipped_and_next_good_frame_processed(harness, mutate, reason) -> None:
    _publish_raw(harness, 400.0, mutate)
    assert harness.wait_for(
        lambda: harness.node.diagnostics().get(f"errors.{reason}", 0) >= 1, 15
    ), harness.node.diagnostics()
    assert not harness.results, "no output for a bad frame"
    harness.publish(_image(), 401.0)
    assert harness.wait_for(lambda: len(harness.results) >= 1), "good frame after a bad one"
    assert harness.results[0].header.stamp.sec == 401


def test_detector_box_outside_image_gives_no_output(checkpoint) -> None:
    from tests.ros.nodeutil import start_harness

    h = start_harness(checkpoint, {"detector.roi": [1000.0, 1000.0, 1100.0, 1100.0]})
    try:
        assert h.wait_connected()
        h.publish(_image(), 500.0)
        assert h.wait_for(lambda: h.node.diagnostics().get("errors.bad_input", 0) >= 1, 15)
        assert not h.results
    finally:
        h.close()


def test_diagnostics_report_rates_and_counters(harness) -> None:
    for i in range(3):
        harness.publish(_image(i), 600.0 + i)
        harness.wait_for(lambda n=i: len(harness.results) >= n + 1)
    assert harness.wait_for(lambda: len(harness.diagnostics) >= 1)
    keys = {kv.key for kv in harness.diagnostics[-1].status[0].values}
    assert {"input_rate_hz", "processed_rate_hz", "frames_dropped", "latency_ms_median"} <= keys
