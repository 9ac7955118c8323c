"""homae_lifecycle_node: homae_node as a managed (lifecycle) node, like yolo_ros' nodes.

The same frame pipeline as homae_node (`pipeline.FramePipeline`), driven by the ROS 2 node
lifecycle (`ros2 lifecycle set /homae_node configure`, a lifecycle manager, or `--autostart`):

- unconfigured: parameters are declared (and may be set); no model, no topics;
- configure: reads the parameters, loads the model, creates the publishers (-> inactive);
  a bad parameter or file fails the transition with one line naming it (stays unconfigured);
- activate: subscribes to the camera, starts the worker and /diagnostics (-> active);
- deactivate: unsubscribes and stops the worker; nothing is published while inactive, and a
  frame still in the model when it comes is not published either;
- cleanup: drops the model (its GPU memory with it: the CUDA cache is emptied) and the
  publishers (-> unconfigured); configure again reloads it, with the parameters in force then;
- shutdown (from any state): as deactivate + cleanup.

The node's name is homae_node as well (rename it with `__node:=`), so parameter files apply
to either executable.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.utilities import remove_ros_args

from homae_model.estimation.estimator import FrameEstimator
from homae_ros.node.entry import run_node, start_error
from homae_ros.node.params import CAMERA_INFO_TOPIC, declare_parameters, read_params
from homae_ros.node.pipeline import FramePipeline

__all__ = ["AUTOSTART_FLAG", "HomaeLifecycleNode", "main"]

AUTOSTART_FLAG = "--autostart"
"""Command-line flag of homae_lifecycle_node: configure and activate right after starting."""

SUCCESS = TransitionCallbackReturn.SUCCESS
FAILURE = TransitionCallbackReturn.FAILURE


class HomaeLifecycleNode(FramePipeline, LifecycleNode):
    """The HOMAE perception node as a managed node (see the module docstring).

    Args:
        estimator: a ready FrameEstimator used by the first configure instead of loading one
            (tests); later configures load from the parameters.
        **node_kwargs: passed to rclpy's LifecycleNode (context, parameter_overrides, ...).

    Raises:
        ParameterError: a parameter given at start has a bad type or value (names it).
    """

    def __init__(self, estimator: FrameEstimator | None = None, **node_kwargs: Any) -> None:
        super().__init__("homae_node", **node_kwargs)
        declare_parameters(self)
        self.params = read_params(self)
        self._given_estimator = estimator
        self._configured = False
        self._active = False
        self.configure_error = ""
        """Why the last configure failed ("" = it did not)."""
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info("homae_node (lifecycle) unconfigured: waiting for configure")

    # ---------------------------------------------------------------- transitions
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Read the parameters, load the model, create the publishers."""
        try:
            self.params = read_params(self)
            estimator, self._given_estimator = self._given_estimator, None
            if estimator is None:
                estimator = self._load_estimator()
            self._init_state(estimator)
            self._create_outputs()
        except Exception as err:
            self.configure_error = start_error(err)
            self.get_logger().error(f"configure failed: {self.configure_error}")
            self._release()
            return FAILURE
        self.configure_error = ""
        self._configured = True
        p = self.params
        self.get_logger().info(
            f"homae_node configured: device {self.device} ({p.device} requested), detector "
            f"{p.detector_backend}"
        )
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the camera and start the worker."""
        self._start_flow()
        self._active = True
        self.get_logger().info(
            f"homae_node active: listening on {self._image_topic()} + "
            f"{self.resolve_topic_name(CAMERA_INFO_TOPIC)}"
        )
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe and stop the worker (waiting for a frame in the model to finish)."""
        self._stop_flow(join_timeout_s=60.0)
        self._active = False
        self.get_logger().info("homae_node inactive")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Drop the model and the publishers."""
        self._release()
        self._configured = False
        gc.collect()
        self.get_logger().info("homae_node cleaned up: model released")
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop and release whatever the state."""
        self.close()
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """After a failed transition: stop and release, back to unconfigured."""
        self.close()
        return SUCCESS

    # ---------------------------------------------------------------- process exit
    def _release(self) -> None:
        if hasattr(self, "_slot"):
            super()._release()
        else:
            self.estimator = None

    def close(self) -> None:
        """Stop the flow and release the model, from any state (process shutdown)."""
        if self._active:
            self._stop_flow(join_timeout_s=2.0)
            self._active = False
        if self._configured:
            self._release()
            self._configured = False


def _make_node(autostart: bool) -> HomaeLifecycleNode:
    node = HomaeLifecycleNode()
    if autostart:
        if node.trigger_configure() != SUCCESS:
            raise RuntimeError(node.configure_error or "configure failed")
        if node.trigger_activate() != SUCCESS:
            raise RuntimeError("activate failed")
    return node


def main(argv: list[str] | None = None) -> int:
    """Run homae_lifecycle_node until SIGINT/SIGTERM (`--autostart`: configure + activate).

    Returns:
        0 after a signal; 1 when `--autostart` cannot configure (one line names the parameter)
        or a parameter given at start is bad.
    """
    args = list(argv if argv is not None else sys.argv)
    autostart = AUTOSTART_FLAG in remove_ros_args(args)
    return run_node(lambda: _make_node(autostart), "homae_node", args)
