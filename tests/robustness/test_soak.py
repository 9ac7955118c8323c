"""Soak: 2,000 frames as fast as possible; memory, threads, queues and latency stay flat.

The node runs in this process (real rclpy over loopback, the tiny checkpoint, the roi backend,
64x48 images), so the process RSS (/proc/self/status VmRSS) is the node's memory. The camera
publishes far faster than the model runs (a few ms apart: just enough to let the executor's
threads have the GIL in between, else nearly every message is overwritten in the depth-1
input queues before the node sees it). After a warm-up of 500 frames the remaining 1,500 must
not grow the RSS by more than a few MB, nor add a thread, nor let any of the node's queues grow
past its bound.

Only what holds on any machine is asserted (issue 17: how many frames a 2-core machine gets
through depends on how torch's threads, the executor and the worker share the cores): every
frame the node received is accounted for as processed, dropped (a newer one replaced it) or
skipped with a reason; each processed frame gave one result, in stamp order; the newest frame
of each burst is processed; memory, threads and queues stay bounded. Rates and latencies are
printed, not asserted.
"""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.ros.rosutil import require_ros

pytestmark = [pytest.mark.ros, pytest.mark.slow]

W, H = 64, 48
TOTAL = 2000
WARMUP = 500
PERIOD_S = 0.004
"""Time between two published frames (about 250 Hz; the tiny model runs at 20-40 Hz)."""
RSS_GROWTH_LIMIT_MB = 8.0


def rss_mb() -> float:
    """Resident set size of this process (MB) from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    pytest.skip("no VmRSS in /proc/self/status (not Linux)")


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    require_ros()
    from tests.ros.nodeutil import start_harness, tiny_checkpoint

    ckpt = tiny_checkpoint(tmp_path_factory.mktemp("ckpt"))
    h = start_harness(ckpt, {"diagnostics_period_s": 0.5, "log_throttle_s": 5.0})
    _count_only(h)
    assert h.wait_connected(), "node and test camera did not discover each other"
    yield h
    h.close()


def _count_only(h) -> None:
    """Make the recorder keep latencies and counts, not every message (its memory is ours)."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from tf2_msgs.msg import TFMessage
    from visualization_msgs.msg import MarkerArray

    from homae_ros.msg import HandObjectResult

    old = list(h.camera.subscriptions)
    before = h.node.result_pub.get_subscription_count()
    h.counts = {"markers": 0, "tf": 0}
    # Deep enough that no result is lost while this process's executor is starved for a while
    # (the node publishes at most one result per processed frame, far fewer than this).
    qos = QoSProfile(depth=TOTAL, reliability=ReliabilityPolicy.RELIABLE)

    def count(key):
        return lambda _msg: h.counts.__setitem__(key, h.counts[key] + 1)

    h.camera.create_subscription(
        HandObjectResult,
        "/homae_node/hand_object",
        lambda m: h.results.append((m.header.stamp.sec, m.header.stamp.nanosec, len(m.hands))),
        qos,
    )
    h.camera.create_subscription(MarkerArray, "/homae_node/markers", count("markers"), qos)
    h.camera.create_subscription(TFMessage, "/tf", count("tf"), qos)
    # The node's result publisher must have matched the new recorder before the old one goes:
    # destroyed first, the publisher's count could still show the old one for a moment, the
    # first results would go out before the new subscription matched, and the counts of
    # processed frames and recorded results would never agree (seen twice on CI: 2 missing).
    assert h.wait_for(lambda: h.node.result_pub.get_subscription_count() > before), (
        "the soak recorder's subscription was not matched"
    )
    for sub in old:
        h.camera.destroy_subscription(sub)


def _stamp(i: int):
    from tests.ros.nodeutil import stamp_of

    return stamp_of(1000.0 + i / 30.0)


def _publish(h, frames: range, images: list[np.ndarray]) -> None:
    from tests.ros.nodeutil import camera_info, image_msg

    for i in frames:
        stamp = _stamp(i)
        h.info_pub.publish(camera_info(W, H, stamp))
        h.image_pub.publish(image_msg(images[i % len(images)], stamp))
        time.sleep(PERIOD_S)


def _settle(h, timeout_s: float = 90.0) -> dict[str, float]:
    """Wait until no frame arrives for 1 s and the worker has finished the last one."""
    last, since = -1.0, time.monotonic()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        d = h.node.diagnostics()
        if d["frames_received"] != last:
            last, since = d["frames_received"], time.monotonic()
        done = d["frames_processed"] + d["frames_dropped"] + _skipped(d) == d["frames_received"]
        delivered = len(h.results) == d["frames_processed"]
        if done and delivered and time.monotonic() - since > 1.0:
            return d
        time.sleep(0.05)
    raise AssertionError(
        f"the node did not settle: {h.node.diagnostics()}, {len(h.results)} results recorded"
    )


def _skipped(d: dict[str, float]) -> float:
    return sum(v for k, v in d.items() if k.startswith("errors."))


def _check_bounded(node) -> None:
    for name in ("_latencies", "_arrivals", "_done_times"):
        q = getattr(node, name)
        assert q.maxlen is not None and len(q) <= q.maxlen, name
    assert len(node._last_warn) <= 20 and len(node._errors) <= 20
    assert len(node._recent_errors) <= node._recent_errors.maxlen
    assert len(node._tracker.hands.tracks) <= 1 and len(node._tracker.objects.tracks) <= 1
    if node._pairer is not None:
        assert node._pairer.waiting() <= 20


def test_two_thousand_frames_keep_memory_threads_and_latency_flat(harness) -> None:
    h = harness
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (H, W, 3), dtype=np.uint8) for _ in range(16)]
    start = time.monotonic()

    _publish(h, range(WARMUP), images)
    _settle(h)
    gc.collect()
    rss_warm, threads_warm = rss_mb(), threading.active_count()
    results_warm = len(h.results)
    assert results_warm > 0
    _check_newest_processed(h, WARMUP - 1)

    _publish(h, range(WARMUP, TOTAL), images)
    d = _settle(h)
    gc.collect()
    rss_end, threads_end = rss_mb(), threading.active_count()
    elapsed = time.monotonic() - start

    # Every received frame is accounted for; each processed one gave exactly one result.
    assert 0 < d["frames_received"] <= TOTAL, d
    assert d["frames_processed"] + d["frames_dropped"] + _skipped(d) == d["frames_received"], d
    assert len(h.results) == d["frames_processed"] >= 2, d
    assert _skipped(d) == 0, d
    _check_newest_processed(h, TOTAL - 1)
    stamps = [(sec, nsec) for sec, nsec, _ in h.results]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), "order / duplicates"
    assert all(n_hands == 1 for _, _, n_hands in h.results), "a result for each processed frame"
    growth = rss_end - rss_warm
    latencies = np.asarray(h.node._latencies)
    print(
        f"soak: {d['frames_received']:.0f} received, {d['frames_processed']:.0f} processed, "
        f"{d['frames_dropped']:.0f} dropped, RSS {rss_warm:.1f} -> {rss_end:.1f} MB, threads "
        f"{threads_warm} -> {threads_end}, {elapsed:.0f} s, latency median of the last "
        f"{latencies.size}: {np.median(latencies):.0f} ms, torch threads {h.node.torch_threads}"
    )
    assert growth < RSS_GROWTH_LIMIT_MB, (
        f"RSS grew {growth:.1f} MB ({rss_warm:.0f} -> {rss_end:.0f})"
    )
    assert threads_end <= threads_warm, (threads_warm, threading.enumerate())
    _check_bounded(h.node)
    assert h.counts["markers"] > 0 and h.counts["tf"] > 0, h.counts


def _check_newest_processed(h, index: int) -> None:
    """The last frame of a burst is processed: nothing newer can replace it in the slot."""
    stamp = _stamp(index)
    sec, nsec, _ = h.results[-1]
    assert (sec, nsec) == (stamp.sec, stamp.nanosec), "the newest frame must be processed"
