"""HandObjectResult <-> fusion views (messages in, world-frame views out, and back).

Only these message fields are read or written: header, hands[].side/score/joints/box/
mano_pose/mano_shape/pair_id, objects[].name/score/pose/box/pair_id. Messages are built by
keyword. A fused result has no image: its boxes are zeros.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from homae_model.fusion.fuse import FusedFrame
from homae_model.fusion.settings import FusionSettings
from homae_model.fusion.views import HandView, ObjectView, hand_view, object_view
from homae_ros.messages.conversions import pose_to_msg, quaternion_to_rotation_matrix


def views_from_result(
    msg: Any, camera: str, T_world_cam: np.ndarray, settings: FusionSettings
) -> tuple[list[HandView], list[ObjectView]]:
    """World-frame views of one camera's HandObjectResult.

    Args:
        msg: homae_ros/HandObjectResult in the camera's frame (header.frame_id).
        camera: camera name (its topic).
        T_world_cam: (4, 4) header.frame_id -> world.
        settings: fusion settings (view weights).

    Raises:
        ValueError: a hand or object with malformed values (names the camera).
    """
    hands = []
    for h in msg.hands:
        joints = np.array([[p.x, p.y, p.z] for p in h.joints], dtype=np.float64)
        hands.append(
            hand_view(
                camera, T_world_cam, h.side, float(h.score), joints,
                np.asarray(h.box, dtype=np.float64), int(h.pair_id), settings,
                np.asarray(h.mano_pose, dtype=np.float64),
                np.asarray(h.mano_shape, dtype=np.float64),
            )
        )  # fmt: skip
    objects = []
    for o in msg.objects:
        q, p = o.pose.orientation, o.pose.position
        R = quaternion_to_rotation_matrix(np.array([q.x, q.y, q.z, q.w]))
        objects.append(
            object_view(
                camera, T_world_cam, o.name, float(o.score), R, np.array([p.x, p.y, p.z]),
                np.asarray(o.box, dtype=np.float64), int(o.pair_id), settings,
            )
        )  # fmt: skip
    return hands, objects


def fused_result_msg(header: Any, frame: FusedFrame) -> Any:
    """The fused HandObjectResult (world frame, `header` = world frame + the group's stamp)."""
    from geometry_msgs.msg import Point

    from homae_ros.msg import HandObjectResult, HandPose, ObjectPose

    zeros4 = np.zeros(4, dtype=np.float32)
    hands = [
        HandPose(
            side=h.side,
            score=float(h.score),
            joints=[Point(x=x, y=y, z=z) for x, y, z in h.joints.tolist()],
            mano_pose=np.asarray(
                h.mano_pose if h.mano_pose is not None else np.zeros(48), dtype=np.float32
            ),
            mano_shape=np.asarray(
                h.mano_shape if h.mano_shape is not None else np.zeros(10), dtype=np.float32
            ),
            box=zeros4,
            pair_id=int(h.pair_id),
        )
        for h in frame.hands
    ]
    objects = [
        ObjectPose(
            name=o.name,
            score=float(o.score),
            pose=pose_to_msg(o.R, o.t),
            box=zeros4,
            pair_id=int(o.pair_id),
        )
        for o in frame.objects
    ]
    return HandObjectResult(header=header, hands=hands, objects=objects)


def fused_markers(header: Any, frame: FusedFrame) -> Any:
    """MarkerArray of the fused skeletons and object axes (world frame)."""
    from homae_ros.messages.markers import (
        HandDrawing,
        MarkerOptions,
        ObjectDrawing,
        build_marker_array,
    )

    hands = [HandDrawing(h.pair_id, h.joints, side=h.side) for h in frame.hands]
    objects = [ObjectDrawing(o.pair_id, o.R, o.t, name=o.name) for o in frame.objects]
    return build_marker_array(header, hands, objects, MarkerOptions(hand_mesh=False))


def fused_transforms(header: Any, frame: FusedFrame, prefix: str) -> list[Any]:
    """TF child frames of the fused hands and objects, in `header.frame_id` (the world frame).

    Hands: `<prefix>/hand_<side>` at the wrist (joint 0), oriented as the fused MANO global
    orientation (identity when no view carried a MANO pose). Objects: `<prefix>/<name>` at the
    object's pose. When several share a child name in one frame, every one of them gets
    `_<pair_id>` appended, so a frame id never names two things at once.

    Args:
        header: std_msgs/Header (world frame, the group's stamp).
        frame: the fused frame.
        prefix: child frame prefix, no leading slash.

    Returns:
        geometry_msgs/TransformStamped list: hands first, then objects.
    """
    from scipy.spatial.transform import Rotation

    from homae_ros.messages.conversions import transform_stamped

    items: list[tuple[str, int, np.ndarray, np.ndarray]] = []
    for h in frame.hands:
        R = (
            Rotation.from_rotvec(np.asarray(h.mano_pose[:3], dtype=np.float64)).as_matrix()
            if h.mano_pose is not None
            else np.eye(3)
        )
        items.append((f"hand_{h.side}", h.pair_id, R, h.joints[0]))
    items += [(o.name, o.pair_id, o.R, o.t) for o in frame.objects]
    names = [name for name, *_ in items]
    out = []
    for name, pair_id, R, t in items:
        child = name if names.count(name) == 1 else f"{name}_{pair_id}"
        out.append(transform_stamped(header.frame_id, f"{prefix}/{child}", header.stamp, R, t))
    return out
