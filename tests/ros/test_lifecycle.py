"""homae_lifecycle_node over loopback: configure / activate / deactivate / cleanup / shutdown.

The transitions go through the node's lifecycle services (what `ros2 lifecycle set` and
lifecycle managers call) and its trigger methods. What must hold on any machine: no model and
no subscription before configure; no subscription and no output while inactive (frames sent
then are never received); one result per frame while active; after cleanup the estimator is
gone and nothing holds the model any more (weak reference dead; CUDA memory back to 0 where
the node ran on a GPU); configure again reloads it.
"""

from __future__ import annotations

import gc
import threading
import time
import weakref

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


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture()
def managed(checkpoint):
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    from homae_ros.msg import HandObjectResult
    from homae_ros.node.lifecycle import HomaeLifecycleNode

    values = {
        "checkpoint": str(checkpoint),
        "device": _device(),
        "detector.backend": "roi",
        "objects.allowed": ["006_mustard_bottle"],
        "qos": "reliable",
        "sync": "exact",
        "diagnostics_period_s": 0.2,
        "log_throttle_s": 0.0,
    }
    context = rclpy.Context()
    rclpy.init(context=context)
    node = HomaeLifecycleNode(
        context=context, parameter_overrides=[Parameter(k, value=v) for k, v in values.items()]
    )
    camera = rclpy.create_node("test_camera", context=context)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    out = {
        "image_pub": camera.create_publisher(Image, "/image", qos),
        "info_pub": camera.create_publisher(CameraInfo, "/camera_info", qos),
        "results": [],
        "camera": camera,
        "node": node,
    }
    camera.create_subscription(
        HandObjectResult, "/homae_node/hand_object", out["results"].append, qos
    )
    executor = MultiThreadedExecutor(num_threads=3, context=context)
    executor.add_node(node)
    executor.add_node(camera)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield out
    node.close()
    executor.shutdown(timeout_sec=2.0)
    thread.join(timeout=5.0)
    node.destroy_node()
    camera.destroy_node()
    rclpy.try_shutdown(context=context)


def _wait(predicate, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _call(camera, srv_type, name: str, request):
    client = camera.create_client(srv_type, name)
    try:
        assert client.wait_for_service(timeout_sec=20.0), f"no service {name}"
        future = client.call_async(request)
        assert _wait(future.done), f"{name}: no answer"
        return future.result()
    finally:
        camera.destroy_client(client)


def _state(camera) -> str:
    from lifecycle_msgs.srv import GetState

    return _call(camera, GetState, "/homae_node/get_state", GetState.Request()).current_state.label


def _change(camera, transition_id: int) -> bool:
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    request = ChangeState.Request(transition=Transition(id=transition_id))
    return _call(camera, ChangeState, "/homae_node/change_state", request).success


def _send(m, t: float, n: int = 1) -> None:
    from tests.ros.nodeutil import camera_info, image_msg, stamp_of

    rgb = np.random.default_rng(int(t)).integers(0, 255, (H, W, 3), dtype=np.uint8)
    for i in range(n):
        stamp = stamp_of(t + i)
        m["info_pub"].publish(camera_info(W, H, stamp))
        m["image_pub"].publish(image_msg(rgb, stamp))


def _listening(m) -> bool:
    return m["image_pub"].get_subscription_count() > 0


def _result_once_active(m, t: float) -> None:
    before = len(m["results"])
    assert _wait(lambda: _listening(m) and m["node"].result_pub.get_subscription_count() > 0)
    _send(m, t)
    assert _wait(lambda: len(m["results"]) == before + 1), "no result while active"
    assert m["results"][-1].header.stamp.sec == int(t)


def test_lifecycle_walk_no_output_while_inactive_memory_released(managed) -> None:
    import torch
    from lifecycle_msgs.msg import Transition
    from rclpy.lifecycle import TransitionCallbackReturn

    m = managed
    node, camera = m["node"], m["camera"]
    assert _state(camera) == "unconfigured"
    assert node.estimator is None and not _listening(m)

    # configure (service): the model is loaded, nothing is subscribed yet
    assert _change(camera, Transition.TRANSITION_CONFIGURE)
    assert _state(camera) == "inactive"
    assert node.estimator is not None and node.result_pub is not None
    assert not _listening(m), "inactive: no camera subscription"
    model = weakref.ref(node.estimator.predictor.model)
    cuda = node.device.startswith("cuda")
    if cuda:
        assert torch.cuda.memory_allocated() > 0

    # activate (service): frames in, results out
    assert _change(camera, Transition.TRANSITION_ACTIVATE)
    assert _state(camera) == "active"
    _result_once_active(m, 10.0)
    assert node.diagnostics()["frames_processed"] == 1

    # deactivate (trigger): unsubscribed, no output, nothing received
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert _state(camera) == "inactive"
    assert _wait(lambda: not _listening(m)), "deactivate must drop the camera subscription"
    assert node._diag_timer is None and not node._worker.is_alive()
    received = node.diagnostics()["frames_received"]
    results = len(m["results"])
    _send(m, 20.0, n=3)
    time.sleep(0.5)  # would be plenty to see frames arrive; the counts below are exact anyway
    assert node.diagnostics()["frames_received"] == received, "no frame taken while inactive"
    assert len(m["results"]) == results, "no output while inactive"

    # activate again: the same model, the flow resumes
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    _result_once_active(m, 30.0)
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS

    # cleanup (service): the model and the publishers are released
    assert _change(camera, Transition.TRANSITION_CLEANUP)
    assert _state(camera) == "unconfigured"
    assert node.estimator is None and node.result_pub is None
    gc.collect()
    assert model() is None, "nothing holds the model (and its device memory) after cleanup"
    if cuda:
        assert torch.cuda.memory_allocated() == 0

    # configure + activate again: reloaded from the parameters
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.estimator is not None and model() is None, "a new model"
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    _result_once_active(m, 40.0)

    # shutdown from active: stopped and released
    assert _change(camera, Transition.TRANSITION_ACTIVE_SHUTDOWN)
    assert _state(camera) == "finalized"
    assert node.estimator is None and not _listening(m)


def test_configure_with_a_bad_checkpoint_fails_naming_it(managed, tmp_path) -> None:
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from homae_ros.node.lifecycle import HomaeLifecycleNode

    missing = tmp_path / "nope"
    bad = HomaeLifecycleNode(
        context=managed["node"].context,
        cli_args=["--ros-args", "-r", "__node:=homae_bad"],
        parameter_overrides=[Parameter("checkpoint", value=str(missing))],
    )
    try:
        assert bad.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert f"parameter 'checkpoint' = '{missing}'" in bad.configure_error
        assert bad.estimator is None
        assert bad._state_machine.current_state[1] == "unconfigured"
    finally:
        bad.destroy_node()
