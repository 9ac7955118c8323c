"""Running homae_node in-process against a test camera over loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CAMERA_FRAME = "test_camera_optical_frame"


def tiny_checkpoint(directory: Path) -> Path:
    """Save a randomly initialised tiny-config HOMAE (seeded) and return its folder."""
    import torch

    from homae_model.checkpoint import save_checkpoint
    from homae_model.config import load_config
    from homae_model.model import HomaeModel

    repo = Path(__file__).resolve().parents[2]
    cfg = load_config(repo / "config" / "model" / "tiny.yaml")
    torch.manual_seed(0)
    save_checkpoint(directory, HomaeModel(cfg), cfg)
    return directory


def camera_info(width: int, height: int, stamp: Any, f: float = 300.0, K: Any = None):
    """A plumb_bob CameraInfo: focal `f` with the principal point at the centre, or `K`."""
    from sensor_msgs.msg import CameraInfo

    if K is None:
        K = [[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]]
    K = np.asarray(K, dtype=np.float64)
    info = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
    info.header.stamp = stamp
    info.header.frame_id = CAMERA_FRAME
    info.k = K.reshape(-1).tolist()
    info.d = [0.0] * 5
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = np.hstack([K, np.zeros((3, 1))]).reshape(-1).tolist()
    return info


def image_msg(rgb: np.ndarray, stamp: Any, encoding: str = "rgb8"):
    """sensor_msgs/Image from an RGB array (rgb8) stamped `stamp` in CAMERA_FRAME."""
    from std_msgs.msg import Header

    from homae_ros.messages.conversions import rgb_to_image

    header = Header(frame_id=CAMERA_FRAME)
    header.stamp = stamp
    return rgb_to_image(rgb, header, encoding)


def stamp_of(seconds: float):
    """builtin_interfaces/Time from seconds."""
    from builtin_interfaces.msg import Time

    sec = int(seconds)
    return Time(sec=sec, nanosec=round((seconds - sec) * 1e9))


@dataclass
class Harness:
    """homae_node + a camera/recorder node spinning in a background executor."""

    context: Any
    node: Any
    camera: Any
    executor: Any
    thread: threading.Thread
    image_pub: Any
    info_pub: Any
    results: list = field(default_factory=list)
    markers: list = field(default_factory=list)
    tf: list = field(default_factory=list)
    diagnostics: list = field(default_factory=list)
    received_at: list = field(default_factory=list)

    def publish(self, rgb: np.ndarray, t: float, info=None, encoding: str = "rgb8", K=None) -> None:
        """Publish one image and its camera_info (`info`, or one made from `K`) stamped `t` (s)."""
        stamp = stamp_of(t)
        h, w = rgb.shape[:2]
        self.info_pub.publish(info if info is not None else camera_info(w, h, stamp, K=K))
        self.image_pub.publish(image_msg(rgb, stamp, encoding))

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 30.0) -> bool:
        """Wait (the executor spins in its thread) until `predicate()` or the timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def wait_connected(self, timeout_s: float = 20.0) -> bool:
        """Wait until the node subscribes to the camera and the recorder hears the node."""
        return self.wait_for(
            lambda: (
                self.image_pub.get_subscription_count() > 0
                and self.info_pub.get_subscription_count() > 0
                and self.node.result_pub.get_subscription_count() > 0
            ),
            timeout_s,
        )

    def close(self) -> None:
        """Stop everything and shut the context down."""
        import rclpy

        self.node.close()
        self.executor.shutdown(timeout_sec=2.0)
        self.thread.join(timeout=5.0)
        self.node.destroy_node()
        self.camera.destroy_node()
        rclpy.try_shutdown(context=self.context)


def start_harness(
    checkpoint: Path,
    overrides: dict[str, Any] | None = None,
    estimator: Any = None,
    remap_image: bool = False,
) -> Harness:
    """Start homae_node (roi backend by default) and a camera/recorder node over loopback.

    `estimator`: a ready FrameEstimator for the node (None = load from the parameters).
    `remap_image`: remap the node's `image` to /cam/color/image_raw (as a launch file would).
    """
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from tf2_msgs.msg import TFMessage
    from visualization_msgs.msg import MarkerArray

    from homae_ros.msg import HandObjectResult
    from homae_ros.node.homae_node import HomaeNode

    values = {
        "checkpoint": str(checkpoint),
        "device": "cpu",
        "detector.backend": "roi",
        "objects.allowed": ["006_mustard_bottle"],
        "qos": "reliable",
        "sync": "exact",
        "diagnostics_period_s": 0.2,
        "log_throttle_s": 0.0,
    }
    values.update(overrides or {})
    context = rclpy.Context()
    rclpy.init(context=context)
    node = HomaeNode(
        estimator,
        context=context,
        parameter_overrides=[Parameter(k, value=v) for k, v in values.items()],
        cli_args=["--ros-args", "-r", "image:=/cam/color/image_raw"] if remap_image else None,
    )
    camera = rclpy.create_node("test_camera", context=context)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    image_pub = camera.create_publisher(Image, "/image", qos)
    info_pub = camera.create_publisher(CameraInfo, "/camera_info", qos)
    executor = MultiThreadedExecutor(num_threads=3, context=context)
    executor.add_node(node)
    executor.add_node(camera)
    thread = threading.Thread(target=executor.spin, daemon=True)
    h = Harness(context, node, camera, executor, thread, image_pub, info_pub)

    def on_result(msg):
        h.results.append(msg)
        h.received_at.append(time.monotonic())

    camera.create_subscription(HandObjectResult, "/homae_node/hand_object", on_result, qos)
    camera.create_subscription(MarkerArray, "/homae_node/markers", h.markers.append, qos)
    camera.create_subscription(TFMessage, "/tf", h.tf.append, qos)
    camera.create_subscription(DiagnosticArray, "/diagnostics", h.diagnostics.append, qos)
    thread.start()
    return h
