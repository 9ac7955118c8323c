"""homae_fusion over loopback (real rclpy): association, a silent camera, late results,
unknown frames, TF and calibration frames."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from homae_model.fusion.calibration import calibration_yaml
from homae_model.fusion.frames import invert, look_at, transform_points
from tests.ros.nodeutil import stamp_of
from tests.ros.rosutil import require_ros

pytestmark = pytest.mark.ros

TOPICS = ["/cam0/homae_node/hand_object", "/cam1/homae_node/hand_object"]
TARGET = np.array([0.0, 0.0, 0.5])
T_CAM = {
    "cam0_optical": look_at([0.0, -0.6, 0.5], TARGET),
    "cam1_optical": look_at([0.6, 0.0, 0.5], TARGET),
}
JOINTS = np.random.default_rng(0).normal(0.0, 0.03, (21, 3)) + TARGET


@dataclass
class Rig:
    context: Any
    node: Any
    client: Any
    executor: Any
    thread: threading.Thread
    pubs: list
    fused: list = field(default_factory=list)
    markers: list = field(default_factory=list)

    def wait_for(self, predicate, timeout_s: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def send(self, cam: int, t: float, frame: str | None = None, joints=JOINTS, more=()):
        """Camera `cam` reports the right hand `joints` (world) and `more` (joints, side) hands
        in its optical frame at time t."""
        from geometry_msgs.msg import Point
        from std_msgs.msg import Header

        from homae_ros.msg import HandObjectResult, HandPose

        own = f"cam{cam}_optical"
        hands = []
        for i, (world, side) in enumerate([(joints, "right"), *more]):
            jc = transform_points(invert(T_CAM[own]), world)
            hands.append(
                HandPose(
                    side=side, score=0.9, pair_id=i,
                    joints=[Point(x=x, y=y, z=z) for x, y, z in jc.tolist()],
                    box=np.array([10.0, 10.0, 110.0, 110.0], dtype=np.float32),
                )
            )  # fmt: skip
        header = Header(frame_id=frame if frame is not None else own)
        header.stamp = stamp_of(t)
        self.pubs[cam].publish(HandObjectResult(header=header, hands=hands))

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=2.0)
        self.thread.join(timeout=5.0)
        self.node.destroy_node()
        self.client.destroy_node()
        rclpy.try_shutdown(context=self.context)


def start_rig(tmp_path: Path, frames=("cam0_optical", "cam1_optical"), **overrides) -> Rig:
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from visualization_msgs.msg import MarkerArray

    from homae_ros.fusion.node import FusionNode
    from homae_ros.msg import HandObjectResult

    calib = tmp_path / "extrinsics.yaml"
    calib.write_text(calibration_yaml("world", {f: (f, T_CAM[f], "") for f in frames}))
    values = {"result_topics": TOPICS, "calibration_file": str(calib), "max_wait_s": 0.3,
              "stale_after_s": 1.5, "log_throttle_s": 0.0}  # fmt: skip
    values.update(overrides)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = FusionNode(
        context=context, parameter_overrides=[Parameter(k, value=v) for k, v in values.items()]
    )
    client = rclpy.create_node("fusion_test_client", context=context)
    qos = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
    pubs = [client.create_publisher(HandObjectResult, t, qos) for t in TOPICS]
    executor = MultiThreadedExecutor(num_threads=2, context=context)
    executor.add_node(node)
    executor.add_node(client)
    thread = threading.Thread(target=executor.spin, daemon=True)
    rig = Rig(context, node, client, executor, thread, pubs)
    client.create_subscription(HandObjectResult, "/homae_fusion/hand_object", rig.fused.append, qos)
    client.create_subscription(MarkerArray, "/homae_fusion/markers", rig.markers.append, qos)
    thread.start()
    assert rig.wait_for(
        lambda: (
            all(p.get_subscription_count() > 0 for p in pubs)
            and node.result_pub.get_subscription_count() > 0
        )
    )
    return rig


@pytest.fixture
def rig_factory(tmp_path: Path):
    require_ros()
    rigs = []

    def make(**kw) -> Rig:
        rigs.append(start_rig(tmp_path, **kw))
        return rigs[-1]

    yield make
    for r in rigs:
        r.close()


def joints_of(msg) -> np.ndarray:
    return np.array([[p.x, p.y, p.z] for p in msg.joints])


def test_two_cameras_fuse_into_one_world_hand(rig_factory) -> None:
    rig = rig_factory()
    other = JOINTS + np.r_[0.0, 0.3, 0.0]
    for cam in (0, 1):
        rig.send(cam, 1.0, more=[(other, "left")])
    assert rig.wait_for(lambda: len(rig.fused) >= 1)
    msg = rig.fused[0]
    assert msg.header.frame_id == "world"
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1, 0)
    by_side = {h.side: h for h in msg.hands}
    assert sorted(by_side) == ["left", "right"]
    np.testing.assert_allclose(joints_of(by_side["right"]), JOINTS, atol=1e-5)
    np.testing.assert_allclose(joints_of(by_side["left"]), other, atol=1e-5)
    assert list(by_side["right"].box) == [0.0, 0.0, 0.0, 0.0]
    assert rig.node.counts[TOPICS[0]]["fused"] == rig.node.counts[TOPICS[1]]["fused"] == 1
    assert rig.wait_for(lambda: len(rig.markers) >= 1)
    assert rig.markers[0].markers[-1].header.frame_id == "world"


def test_a_silent_camera_degrades_but_never_blocks(rig_factory) -> None:
    rig = rig_factory()
    rig.send(0, 1.0)
    rig.send(1, 1.0)
    assert rig.wait_for(lambda: len(rig.fused) >= 1)
    for i in range(3):  # camera 1 goes silent
        rig.send(0, 2.0 + i, joints=JOINTS + np.r_[0.01 * i, 0.0, 0.0])
    assert rig.wait_for(lambda: len(rig.fused) >= 4)
    for i, msg in enumerate(rig.fused[1:4]):
        assert msg.header.stamp.sec == 2 + i
        np.testing.assert_allclose(joints_of(msg.hands[0]), JOINTS + np.r_[0.01 * i, 0.0, 0.0],
                                   atol=1e-5)  # fmt: skip
    assert rig.node.counts[TOPICS[0]]["fused"] == 4
    assert rig.node.counts[TOPICS[1]]["fused"] == 1


def test_late_results_are_dropped_not_published_out_of_order(rig_factory) -> None:
    rig = rig_factory(max_wait_s=0.2)
    rig.send(0, 1.0)
    assert rig.wait_for(lambda: len(rig.fused) >= 1)  # fused without camera 1 after 0.2 s
    rig.send(1, 1.0)  # camera 1's answer for t = 1 s comes too late
    assert rig.wait_for(lambda: rig.node.counts[TOPICS[1]]["late"] == 1)
    rig.send(0, 2.0)
    rig.send(1, 2.0)
    assert rig.wait_for(lambda: len(rig.fused) >= 2)
    stamps = [m.header.stamp.sec for m in rig.fused]
    assert stamps == sorted(stamps) and stamps.count(1) == 1
    assert rig.node.counts[TOPICS[1]]["fused"] == 1  # only its t = 2 s result


def test_unknown_frame_is_counted_and_named_and_the_rest_still_fuses(rig_factory, capfd) -> None:
    rig = rig_factory()
    rig.send(0, 1.0)
    rig.send(1, 1.0, frame="mystery_optical_frame")
    assert rig.wait_for(lambda: len(rig.fused) >= 1)
    assert rig.node.counts[TOPICS[1]]["unknown_frame"] == 1
    assert rig.node.counts[TOPICS[1]]["fused"] == 0
    np.testing.assert_allclose(joints_of(rig.fused[0].hands[0]), JOINTS, atol=1e-5)
    assert rig.node.world_transform("mystery_optical_frame", stamp_of(1.0)) is None
    err = capfd.readouterr().err
    assert f"result on {TOPICS[1]} is in frame 'mystery_optical_frame'" in err


def test_frames_come_from_tf_where_the_calibration_lacks_them(rig_factory) -> None:
    from tf2_ros import StaticTransformBroadcaster

    from homae_ros.messages.conversions import transform_stamped

    rig = rig_factory(frames=("cam0_optical",))  # cam1 only through TF
    broadcaster = StaticTransformBroadcaster(rig.client)
    T = T_CAM["cam1_optical"]
    broadcaster.sendTransform(
        transform_stamped("world", "cam1_optical", stamp_of(0.0), T[:3, :3], T[:3, 3])
    )
    assert rig.wait_for(lambda: rig.node.world_transform("cam1_optical", stamp_of(1.0)) is not None)
    rig.send(0, 1.0)
    rig.send(1, 1.0, joints=JOINTS + np.r_[0.0, 0.0, 0.0])
    assert rig.wait_for(lambda: len(rig.fused) >= 1)
    assert rig.node.counts[TOPICS[1]]["unknown_frame"] == 0
    assert rig.node.counts[TOPICS[1]]["fused"] == 1
    np.testing.assert_allclose(joints_of(rig.fused[0].hands[0]), JOINTS, atol=1e-5)


def test_fused_tf_frames_and_per_camera_diagnostics(rig_factory) -> None:
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from tf2_msgs.msg import TFMessage

    rig = rig_factory(diagnostics_period_s=0.2, stale_after_s=1.0)
    tfs, diags = [], []
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    rig.client.create_subscription(TFMessage, "/tf", tfs.append, qos)
    rig.client.create_subscription(DiagnosticArray, "/diagnostics", diags.append, qos)
    assert rig.wait_for(lambda: rig.node.count_subscribers("/tf") > 0 and len(diags) > 0)
    other = JOINTS + np.r_[0.0, 0.3, 0.0]
    for cam in (0, 1):
        rig.send(cam, 1.0, more=[(other, "right")])  # two right hands: suffixed child frames
    assert rig.wait_for(lambda: any(len(m.transforms) == 2 for m in tfs))
    sent = next(m for m in tfs if len(m.transforms) == 2).transforms
    by_child = {t.child_frame_id: t for t in sent}
    assert sorted(by_child) == ["homae_fused/hand_right_0", "homae_fused/hand_right_1"]
    for t in sent:
        assert t.header.frame_id == "world" and t.header.stamp.sec == 1
    wrists = sorted([t.transform.translation.y for t in sent])
    np.testing.assert_allclose(wrists, sorted([JOINTS[0, 1], other[0, 1]]), atol=1e-5)

    def status(topic: str):
        for array in reversed(diags):
            for s in array.status:
                if s.name == f"homae_fusion: {topic}":
                    return s
        return None

    # camera 1 goes silent and reports once in an unknown frame; camera 0 keeps answering.
    # Wait for a diagnostics update that shows both (on a loaded 2-core machine a stall of the
    # node's executor can make one update call camera 0 silent too; the next one recovers).
    rig.send(1, 2.0, frame="mystery_optical_frame")
    for i in range(100):
        rig.send(0, 3.0 + 0.1 * i)
        time.sleep(0.05)
        s0, s1 = status(TOPICS[0]), status(TOPICS[1])
        if s1 is not None and s1.message.startswith("silent") and s0 is not None:
            if s0.message == "ok":
                break
    s0, s1 = status(TOPICS[0]), status(TOPICS[1])
    assert s0.level == bytes([0]) and s0.message == "ok", s0
    assert s1.level == bytes([1]) and s1.message.startswith("silent for"), s1
    values = {kv.key: kv.value for kv in s1.values}
    assert values["unknown_frame"] == "1" and values["fused"] == "1"
    assert any(
        any(s.message == "results dropped since the last update: 1 unknown frame"
            for s in a.status)
        for a in diags
    )  # fmt: skip
    fused = next(s for s in diags[-1].status if s.name == "homae_fusion: fused")
    assert int({kv.key: kv.value for kv in fused.values}["fused_frames"]) >= 2


def test_parameters_are_checked_with_their_names() -> None:
    from homae_ros.fusion.params import FusionParameterError, params_from_values

    with pytest.raises(FusionParameterError, match="'result_topics' is empty"):
        params_from_values({})
    with pytest.raises(FusionParameterError, match="'world_frame'"):
        params_from_values({"result_topics": ["/a"], "world_frame": "/world"})
    with pytest.raises(FusionParameterError, match=r"fusion\.depth_ratio"):
        params_from_values({"result_topics": ["/a"], "fusion.depth_ratio": 0.5})
    with pytest.raises(FusionParameterError, match="'frame_prefix'"):
        params_from_values({"result_topics": ["/a"], "frame_prefix": "/homae"})
    with pytest.raises(FusionParameterError, match="'diagnostics_period_s'"):
        params_from_values({"result_topics": ["/a"], "diagnostics_period_s": -1.0})
    with pytest.raises(FusionParameterError, match="unknown homae_fusion parameters: bogus"):
        params_from_values({"result_topics": ["/a"], "bogus": 1})
    p = params_from_values({"result_topics": ["/a", "/b"], "fusion.hand_gate_m": 0.4})
    assert p.settings.hand_gate_m == 0.4 and p.result_topics == ["/a", "/b"]
