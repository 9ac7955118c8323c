"""homae_fusion: fuse the `~/hand_object` results of N homae_node cameras in a fixed frame.

Subscribes to every topic of `result_topics` (homae_ros/HandObjectResult, each in its camera's
frame), brings each result into `world_frame` (tf2 at the result's stamp where tf2_ros is
installed and `use_tf` is true, else / failing that the `calibration_file`), groups results of
one instant across cameras (`homae_model.fusion.sync`: stamp slop, `max_wait_s` for missing
cameras, cameras silent for `stale_after_s` are not waited for), fuses each group
(`homae_model.fusion.fuse`) and publishes:

- `~/hand_object` (homae_ros/HandObjectResult): the fused hands and objects, header = the
  group's stamp and `world_frame`; boxes are zeros (no image);
- `~/markers` (visualization_msgs/MarkerArray): skeletons and object axes in `world_frame`;
- TF (`publish_tf`): `<frame_prefix>/hand_<side>` at each fused wrist and
  `<frame_prefix>/<object name>` at each fused object, children of `world_frame`;
- `/diagnostics` (every `diagnostics_period_s`): one status per camera (OK, or WARN when it is
  silent, never answered, or had results dropped) and one for the fused output
  (`homae_ros.fusion.diagnostics`).

Nothing waits on a camera: a silent or slow one only leaves the groups it misses. Results that
arrive after their instant was published are counted as late and dropped; results in a frame
that neither tf2 nor the calibration file knows are counted and named in a throttled warning.
Counts per topic: `FusionNode.counts`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from typing import Any

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from homae_model.fusion.calibration import Calibration, load_calibration
from homae_model.fusion.fuse import fuse_frame
from homae_model.fusion.sync import StampGroup, StampGrouper
from homae_ros.fusion.convert import (
    fused_markers,
    fused_result_msg,
    fused_transforms,
    views_from_result,
)
from homae_ros.fusion.diagnostics import diagnostic_array
from homae_ros.fusion.params import declare_and_read
from homae_ros.messages.conversions import quaternion_to_rotation_matrix
from homae_ros.messages.stamps import stamp_ns
from homae_ros.node.tf_output import tf_broadcaster

FLUSH_PERIOD_S = 0.01
"""How often ready groups are looked for (s)."""
QOS_DEPTH = 20


class FusionNode(Node):
    """The fusion node (see the module docstring).

    Attributes:
        counts: per resolved topic: received, fused, late, unknown_frame, bad_result.
        fused_frames: fused results published.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("homae_fusion", **kwargs)
        p = self.params = declare_and_read(self)
        self.calibration: Calibration | None = (
            load_calibration(p.calibration_file) if p.calibration_file else None
        )
        self._tf_buffer = None
        self._tf_errors: tuple[type[BaseException], ...] = ()
        if p.use_tf:
            try:
                from tf2_ros import Buffer, TransformException, TransformListener
            except ImportError:
                if self.calibration is None:
                    self.get_logger().warning(
                        "tf2_ros is not installed and parameter 'calibration_file' is empty: "
                        "only results already in the world frame can be fused"
                    )
            else:
                self._tf_buffer = Buffer()
                self._tf_errors = (TransformException,)
                self._tf_listener = TransformListener(self._tf_buffer, self)
        self.topics = [self.resolve_topic_name(t) for t in p.result_topics]
        self._grouper = StampGrouper(
            self.topics, round(p.sync_slop_s * 1e9), p.max_wait_s, p.stale_after_s
        )
        self._lock = threading.Lock()
        self.counts: dict[str, Counter] = {t: Counter() for t in self.topics}
        self.fused_frames = 0
        self._last_warn: dict[str, float] = {}
        self._last_result: dict[str, float] = {}  # topic -> monotonic time of its last result
        self._diag_previous: dict[str, Counter] = {t: Counter() for t in self.topics}
        self._diag_fused = 0
        self._diag_time = time.monotonic()
        self._tf = tf_broadcaster(self) if p.publish_tf else None
        qos = QoSProfile(depth=QOS_DEPTH, reliability=ReliabilityPolicy.RELIABLE)
        from homae_ros.msg import HandObjectResult

        self.result_pub = self.create_publisher(HandObjectResult, "~/hand_object", qos)
        self.marker_pub = self.create_publisher(MarkerArray, "~/markers", qos)
        for topic in self.topics:
            self.create_subscription(
                HandObjectResult, topic, lambda msg, t=topic: self._on_result(t, msg), qos
            )
        self.create_timer(FLUSH_PERIOD_S, self._flush)
        if p.diagnostics_period_s > 0:
            from diagnostic_msgs.msg import DiagnosticArray

            self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QOS_DEPTH)
            self.create_timer(p.diagnostics_period_s, self._publish_diagnostics)
        self.get_logger().info(
            f"homae_fusion started: {len(self.topics)} cameras ({', '.join(self.topics)}) -> "
            f"{self.resolve_topic_name('~/hand_object')} in frame '{p.world_frame}'"
        )

    # ------------------------------------------------------------------ input

    def _warn(self, key: str, text: str) -> None:
        now = time.monotonic()
        if now - self._last_warn.get(key, -1e9) >= self.params.log_throttle_s:
            self._last_warn[key] = now
            self.get_logger().warning(text)

    def world_transform(self, frame_id: str, stamp: Any) -> np.ndarray | None:
        """(4, 4) frame_id -> world_frame at `stamp` (tf2, then the calibration), or None."""
        world = self.params.world_frame
        if frame_id == world:
            return np.eye(4)
        if self._tf_buffer is not None and frame_id:
            try:
                tf = self._tf_buffer.lookup_transform(world, frame_id, Time.from_msg(stamp))
            except self._tf_errors:
                pass
            else:
                q, t = tf.transform.rotation, tf.transform.translation
                T = np.eye(4)
                T[:3, :3] = quaternion_to_rotation_matrix(np.array([q.x, q.y, q.z, q.w]))
                T[:3, 3] = [t.x, t.y, t.z]
                return T
        if self.calibration is not None and self.calibration.world_frame == world:
            try:
                return self.calibration.transform(frame_id)
            except KeyError:
                return None
        return None

    def _on_result(self, topic: str, msg: Any) -> None:
        counts = self.counts[topic]
        counts["received"] += 1
        self._last_result[topic] = time.monotonic()
        frame = msg.header.frame_id
        T = self.world_transform(frame, msg.header.stamp)
        if T is None:
            counts["unknown_frame"] += 1
            where = "tf2" if self._tf_buffer is not None else ""
            if self.calibration is not None:
                where += (" or " if where else "") + self.calibration.source
            self._warn(
                f"frame:{topic}:{frame}",
                f"result on {topic} is in frame '{frame}', which {where or 'nothing'} can "
                f"bring into '{self.params.world_frame}': dropped (publish the camera's TF or "
                "add the frame to the calibration file)",
            )
            return
        try:
            views = views_from_result(msg, topic, T, self.params.settings)
        except ValueError as err:
            counts["bad_result"] += 1
            self._warn(f"bad:{topic}", f"result on {topic} dropped: {err}")
            return
        with self._lock:
            accepted = self._grouper.add(topic, stamp_ns(msg.header), views, time.monotonic())
        if not accepted:
            counts["late"] += 1
            self._warn(
                f"late:{topic}",
                f"result on {topic} arrived after its instant was fused (max_wait_s "
                f"{self.params.max_wait_s:g} s): dropped ({counts['late']} so far)",
            )

    # ------------------------------------------------------------------ output

    def _flush(self) -> None:
        with self._lock:
            groups = self._grouper.pop_ready(time.monotonic())
        for group in groups:
            self._publish(group)

    def _publish(self, group: StampGroup) -> None:
        hands = [v for hs, _ in group.items.values() for v in hs]
        objects = [v for _, os in group.items.values() for v in os]
        frame = fuse_frame(hands, objects, self.params.settings)
        for topic in group.items:
            self.counts[topic]["fused"] += 1
        header = Header(frame_id=self.params.world_frame)
        header.stamp.sec, header.stamp.nanosec = divmod(group.stamp_ns, 1_000_000_000)
        self.result_pub.publish(fused_result_msg(header, frame))
        if self.params.publish_markers:
            self.marker_pub.publish(fused_markers(header, frame))
        if self._tf is not None and (frame.hands or frame.objects):
            self._tf.sendTransform(fused_transforms(header, frame, self.params.frame_prefix))
        self.fused_frames += 1

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        ages = {t: (now - self._last_result[t]) if t in self._last_result else None
                for t in self.topics}  # fmt: skip
        counts = {t: Counter(c) for t, c in self.counts.items()}
        array = diagnostic_array(
            self.get_clock().now().to_msg(), self.get_name(), counts, self._diag_previous, ages,
            self.params.stale_after_s, self.fused_frames, self.fused_frames - self._diag_fused,
            now - self._diag_time,
        )  # fmt: skip
        self.diag_pub.publish(array)
        self._diag_previous, self._diag_fused, self._diag_time = counts, self.fused_frames, now


def main(argv: list[str] | None = None) -> int:
    """Run homae_fusion until SIGINT/SIGTERM; exit code 1 when it cannot start."""
    rclpy.init(args=argv if argv is not None else sys.argv)
    try:
        node = FusionNode()
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        rclpy.logging.get_logger("homae_fusion").error(f"cannot start: {err}")
        rclpy.try_shutdown()
        return 1
    executor = SingleThreadedExecutor()
    try:
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
