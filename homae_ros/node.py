"""homae_node: camera image in, hand and object poses out.

Placeholder until the node issue lands: it starts, says so and spins, so the whole install path
(colcon build, lib/homae_ros/homae_node, the launch file, the parameter file) is real.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the node until shutdown; returns the process exit code."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    rclpy.init(args=argv if argv is not None else sys.argv)
    node = rclpy.create_node("homae_node")
    node.get_logger().info("homae_node started (inference not wired yet)")
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
