"""TF output: tf2_ros' broadcaster, or a plain /tf publisher where tf2_ros is not installed."""

from __future__ import annotations

from typing import Any

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy


class TopicTfBroadcaster:
    """`sendTransform` as tf2_ros does it: tf2_msgs/TFMessage on /tf (fallback publisher)."""

    def __init__(self, node: Node) -> None:
        """Publish on /tf with tf2's QoS (reliable, depth 100)."""
        from tf2_msgs.msg import TFMessage

        self._type = TFMessage
        self._pub = node.create_publisher(
            TFMessage, "/tf", QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        )

    def sendTransform(self, transforms: Any) -> None:
        """Publish one TransformStamped or a list of them as one TFMessage."""
        items = list(transforms) if isinstance(transforms, (list, tuple)) else [transforms]
        self._pub.publish(self._type(transforms=items))


def tf_broadcaster(node: Node) -> Any | None:
    """tf2_ros.TransformBroadcaster, else `TopicTfBroadcaster`, else None (warned)."""
    try:
        from tf2_ros import TransformBroadcaster

        return TransformBroadcaster(node)
    except ImportError:
        pass
    try:
        return TopicTfBroadcaster(node)
    except ImportError:
        node.get_logger().warning(
            "parameter 'publish_tf' is true but neither tf2_ros nor tf2_msgs is installed: "
            "no /tf output"
        )
        return None
