"""homae_ros.demo.temporal: the `tracking` block of the demo's summary.json."""

from __future__ import annotations

import numpy as np
import pytest

from tests.ros.rosutil import require_ros

pytestmark = pytest.mark.ros


def _result(ns: int, track_id: int, name: str, joints: np.ndarray):
    from std_msgs.msg import Header

    from homae_ros.messages import build

    header = Header(frame_id="cam")
    header.stamp.sec, header.stamp.nanosec = divmod(ns, 1_000_000_000)
    hand = build.hand_pose_msg(
        "right", 0.9, joints, np.zeros(48), np.zeros(10), [0, 0, 1, 1], 0, track_id=track_id
    )
    obj = build.object_pose_msg(name, 0.5, np.eye(3), [0, 0, 0.5], [0, 0, 1, 1], 0, track_id=1)
    return build.result_msg(header, [hand], [obj])


def test_tracking_summary_counts_switches_names_jitter_and_mje() -> None:
    require_ros()
    from homae_ros.demo.temporal import play_series, tracking_summary

    n = 6
    gt = [np.zeros((21, 3)) + np.array([0.01 * i, 0.0, 0.5]) for i in range(n)]
    rng = np.random.default_rng(0)
    noisy = [g + rng.normal(0, 0.004, (21, 3)) for g in gt]
    stamps = [10**9 * (100 + i) for i in range(n)]
    raw = [
        _result(stamps[i], 1 if i < 4 else 2, "a" if i != 2 else "b", noisy[i])
        for i in range(n)
        if i != 3  # frame 3 gave no result
    ]
    smooth = [_result(stamps[i], 7, "a", gt[i]) for i in range(n)]
    s = tracking_summary(
        play_series(raw, stamps), play_series(smooth, stamps), gt, {"homae/a", "homae/hand_right"},
        {"smoothing.enabled": True},
    )  # fmt: skip
    assert s["hand_id_switches"] == 1  # 1 -> 2 in the raw play, none in the smoothed one
    assert s["object_name_changes"] == 2  # a -> b -> a
    assert s["tf_child_frames"] == ["homae/a", "homae/hand_right"]
    assert s["frames_compared"] == n - 1
    assert s["jitter_mm"]["filtered"] == pytest.approx(0.0, abs=1e-6)  # constant velocity
    assert s["jitter_mm"]["raw"] > 1.0
    assert s["mje_mm"]["filtered"] == pytest.approx(0.0, abs=1e-4)
    assert s["mje_mm"]["raw"] > 1.0
