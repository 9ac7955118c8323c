"""homae_node with `runtime: onnxruntime` over loopback gives the torch node's result.

The node exports the checkpoint's graphs on first use (into `HOMAE_ONNX_CACHE`, a temporary
folder in tests) and runs them with onnxruntime's CPU provider; the same frame sent to a torch
node and to an onnxruntime node must give the same joints and object pose (0.5 mm, the
export's equivalence goal).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.ros.rosutil import require_ros

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    require_ros()
    from tests.ros.nodeutil import tiny_checkpoint

    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt"))


def _result(checkpoint, rgb: np.ndarray, overrides: dict) -> tuple[np.ndarray, np.ndarray]:
    from tests.ros.nodeutil import start_harness

    h = start_harness(checkpoint, overrides)
    try:
        assert h.wait_connected()
        assert h.node.estimator.predictor.runtime == overrides["runtime"]
        h.publish(rgb, 5.0)
        assert h.wait_for(lambda: len(h.results) >= 1), h.node.diagnostics()
        msg = h.results[0]
        joints = np.array([[p.x, p.y, p.z] for p in msg.hands[0].joints])
        t = msg.objects[0].pose.position
        return joints, np.array([t.x, t.y, t.z])
    finally:
        h.close()


def test_onnxruntime_node_matches_the_torch_node(checkpoint) -> None:
    rgb = np.random.default_rng(7).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    joints_t, obj_t = _result(checkpoint, rgb, {"runtime": "torch"})
    joints_o, obj_o = _result(checkpoint, rgb, {"runtime": "onnxruntime"})
    assert np.abs(joints_o - joints_t).max() < 5e-4, np.abs(joints_o - joints_t).max()
    assert np.abs(obj_o - obj_t).max() < 5e-4


def test_unknown_runtime_is_refused_by_name(checkpoint) -> None:
    from tests.ros.nodeutil import start_harness

    with pytest.raises(Exception, match="runtime"):
        start_harness(checkpoint, {"runtime": "tensorflow"}).close()
