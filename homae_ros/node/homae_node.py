"""homae_node: camera image in, hand joints + object poses out (messages, TF, markers).

The plain rclpy node: it loads its model and starts processing when it is made. The frame
pipeline it runs (inputs, worker, outputs, diagnostics) is `pipeline.FramePipeline`, shared
with the managed node `homae_lifecycle_node` (lifecycle.py). `main` runs it until SIGINT /
SIGTERM (entry.py: a second signal during shutdown is absorbed).
"""

from __future__ import annotations

import sys
from typing import Any

from rclpy.node import Node

from homae_model.estimation.estimator import FrameEstimator, empty_cuda_cache
from homae_ros.node.entry import run_node
from homae_ros.node.params import CAMERA_INFO_TOPIC, declare_and_read
from homae_ros.node.pipeline import CAMERA_INFO_STALE_S, OUTPUT_QOS_DEPTH, FramePipeline

__all__ = ["CAMERA_INFO_STALE_S", "OUTPUT_QOS_DEPTH", "HomaeNode", "main"]


class HomaeNode(FramePipeline, Node):
    """The HOMAE perception node (see `pipeline` for what it does with each frame)."""

    def __init__(self, estimator: FrameEstimator | None = None, **node_kwargs: Any) -> None:
        """Declare parameters, load the model (unless `estimator` is given), wire topics.

        Raises:
            FileNotFoundError, ValueError, RuntimeError: bad parameters or files; the message
                names the parameter (main() logs it and exits non-zero).
        """
        super().__init__("homae_node", **node_kwargs)
        self.params = declare_and_read(self)
        if estimator is None:
            estimator = self._load_estimator()
        self._init_state(estimator)
        self._create_outputs()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._start_flow()
        p = self.params
        # Last: whoever waits for this line finds the node ready.
        self.get_logger().info(
            f"homae_node started: device {self.device} ({p.device} requested), detector "
            f"{p.detector_backend}, listening on {self._image_topic()} + "
            f"{self.resolve_topic_name(CAMERA_INFO_TOPIC)}"
        )

    def close(self) -> None:
        """Stop the worker and release the model (and its GPU memory)."""
        self._stop_flow(join_timeout_s=2.0)
        self.estimator = None
        empty_cuda_cache()


def main(argv: list[str] | None = None) -> int:
    """Run homae_node until SIGINT/SIGTERM; exit code 1 when it cannot start."""
    return run_node(HomaeNode, "homae_node", argv if argv is not None else sys.argv)
