"""Paths the packages compute from their own location still point into the repository.

The tree moved (homae_ros/tools/, homae_ros/demo/): a `parents[k]` that was right before the
move would now point inside the package and fail only where that path is used.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bag_tool_finds_the_message_definitions() -> None:
    from homae_ros.tools import bag_types

    assert bag_types.MSG_DIR == REPO / "msg"
    names = {p.name for p in bag_types.MSG_DIR.glob("*.msg")}
    assert {"HandPose.msg", "ObjectPose.msg", "HandObjectResult.msg"} <= names
