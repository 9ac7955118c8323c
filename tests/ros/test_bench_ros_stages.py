"""`make bench`'s ROS stages build today's messages (the bench broke once when they changed)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tests.ros.rosutil import require_ros

pytestmark = pytest.mark.ros


def test_ros_stages_run_on_the_current_messages() -> None:
    require_ros()
    from benchmarks.scene import Scene
    from benchmarks.stages import ros_stages

    rng = np.random.default_rng(0)
    verts = rng.normal(size=(8, 3)) * 0.02 + [0.0, 0.0, 0.5]
    faces = np.array([[0, 1, 2], [2, 3, 4], [4, 5, 6], [5, 6, 7]])
    scene = Scene(
        image=rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),
        K=np.array([[60.0, 0, 32], [0, 60.0, 24], [0, 0, 1]]),
        hand_box=np.array([10.0, 10, 30, 30]),
        obj_box=np.array([20.0, 15, 40, 35]),
        anchor=np.array([0.0, 0.0, 0.5]),
        hand_verts=verts, hand_faces=faces, obj_verts=verts + 0.05, obj_faces=faces,
    )  # fmt: skip
    pred = SimpleNamespace(
        joints=rng.normal(size=(21, 3)) * 0.03 + [0.0, 0.0, 0.5],
        vertices=verts,
        mano_pose=np.zeros(48),
        mano_shape=np.zeros(10),
        crop_box=np.array([5.0, 5, 45, 45]),
        obj_rot_matrix=np.eye(3),
        obj_trans=np.array([0.05, 0.0, 0.5]),
    )
    times = ros_stages(scene, pred, faces, repeats=1)
    assert "unavailable" not in times, times
    assert {"image_conversion", "message_building", "markers"} <= set(times), times
