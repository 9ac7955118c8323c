"""homae_node with `detector.side_net`: a left hand is published left, its mirror twin right."""

from __future__ import annotations

import pytest

from tests.ros.rosutil import require_ros

pytestmark = pytest.mark.ros


def test_node_publishes_the_side_the_side_net_gives() -> None:
    require_ros()
    from homae_model.bundled import demo_checkpoint, demo_side_net
    from homae_model.data.synth_scene import DEFAULT_MANO_PATH, SceneGenerator, SynthConfig
    from tests.ros.nodeutil import start_harness

    if not (demo_checkpoint().is_file() and demo_side_net().is_file()):
        pytest.skip("no bundled weights")
    if not DEFAULT_MANO_PATH.is_file():
        pytest.skip(f"bundled hand model missing: {DEFAULT_MANO_PATH}")
    # scene 3 of seed 21 and its mirrored twin: the bundled side network gets both right
    # (tests/model/test_side_net.py checks the same frames through FrameEstimator)
    right = SceneGenerator(SynthConfig(width=256, height=256)).generate(3, seed=21).raw
    left = SceneGenerator(SynthConfig(width=256, height=256, left_fraction=1.0))
    left = left.generate(3, seed=21).raw
    overrides = {
        "detector.backend": "torchvision",
        "detector.side_net": str(demo_side_net()),
        "objects.allowed": [""],
    }
    h = start_harness("", overrides)
    try:
        assert h.wait_connected(), "node and test camera did not discover each other"
        for k, scene in enumerate((right, left)):
            h.publish(scene.image, 10.0 + k, K=scene.K)
            assert h.wait_for(lambda k=k: len(h.results) > k and len(h.results[k].hands) > 0)
        assert [r.hands[0].side for r in h.results[:2]] == ["right", "left"]
    finally:
        h.close()
