"""One frame's estimates -> what HOMAE publishes: result message, TF and markers (and overlay).

The one place that turns `PairEstimate`s into output messages, shared by the node (live topics)
and `homae-bag` (a results bag), so both write the same thing for the same frame:

- `build_frame_messages`: homae_ros/HandObjectResult, the TransformStamped list (one per object
  `<prefix>/<object name>` and one per hand `<prefix>/hand_<i>` at the wrist) and the
  visualization_msgs/MarkerArray, all with the given header (stamp + frame).
- `overlay_image`: the debug image drawing (boxes, hand mesh, skeleton, object axes).

Message classes come from `build`, `markers` and `conversions` of this package (imported there
at call time). Coordinates: the estimates are in the image's optical frame; an optional rigid
transform (R_tf, t_tf) maps them to the header's frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from homae_model.estimation.estimator import PairEstimate
from homae_ros.messages import build as messages
from homae_ros.messages import conversions, markers

__all__ = [
    "DEFAULT_FRAME_PREFIX",
    "DEFAULT_MARKER_OPTIONS",
    "HAND_BOX_COLOR",
    "OBJECT_BOX_COLOR",
    "FrameMessages",
    "build_frame_messages",
    "overlay_image",
]

DEFAULT_FRAME_PREFIX = "homae"
"""TF child frames are `<prefix>/<object name>` and `<prefix>/hand_<pair index>`."""
HAND_BOX_COLOR = (60, 220, 60)
"""RGB colour of hand boxes in overlays."""
OBJECT_BOX_COLOR = (60, 120, 255)
"""RGB colour of object boxes in overlays."""
DEFAULT_MARKER_OPTIONS = markers.MarkerOptions()
"""Everything drawn (hand mesh, skeleton, object mesh and axes)."""


@dataclass
class FrameMessages:
    """Everything published for one frame.

    Attributes:
        result: homae_ros/HandObjectResult (header = the given header).
        transforms: geometry_msgs/TransformStamped, 2 per pair (object, then hand); may be empty.
        markers: visualization_msgs/MarkerArray (DELETEALL first), or None when not requested.
    """

    result: Any
    transforms: list[Any]
    markers: Any | None


def build_frame_messages(
    estimates: Sequence[PairEstimate],
    header: Any,
    hand_faces: np.ndarray,
    *,
    R_tf: np.ndarray | None = None,
    t_tf: np.ndarray | None = None,
    frame_prefix: str = DEFAULT_FRAME_PREFIX,
    marker_options: markers.MarkerOptions | None = DEFAULT_MARKER_OPTIONS,
    side: str = "right",
    latency_ms: float = 0.0,
    dropped_frames: int = 0,
    processed_frames: int = 0,
) -> FrameMessages:
    """Build the result message, transforms and markers of one frame.

    Args:
        estimates: the frame's pair estimates (image optical frame, metres), best first.
        header: std_msgs/Header of the outputs (stamp = image stamp; frame_id = the frame
            R_tf/t_tf map into, i.e. the image's optical frame when they are omitted).
        hand_faces: (1538, 3) int MANO faces (`FrameEstimator.hand_faces`).
        R_tf: (3, 3) rotation image frame -> header frame; None = identity.
        t_tf: (3,) translation image frame -> header frame, metres; None = zero.
        frame_prefix: TF child frame prefix (no leading slash).
        marker_options: what to draw; None = no MarkerArray (`markers` is None).
        side: hand side written to HandPose ("right" or "left").
        latency_ms: receive-to-publish time written into the result (ms).
        dropped_frames: frames dropped so far (written into the result).
        processed_frames: frames processed so far, this one included.

    Returns:
        FrameMessages. With no estimates: an empty result, no transforms and a MarkerArray
        holding only the DELETEALL marker (clears the previous frame's drawing).

    Raises:
        homae_ros.messages.conversions.ConversionError: a non-finite estimate (NaN joints or pose).
    """
    R = np.eye(3) if R_tf is None else np.asarray(R_tf, dtype=np.float64)
    t = np.zeros(3) if t_tf is None else np.asarray(t_tf, dtype=np.float64)
    hands, objects, transforms = [], [], []
    hand_draw: list[markers.HandDrawing] = []
    obj_draw: list[markers.ObjectDrawing] = []
    for i, est in enumerate(estimates):
        pred, pair = est.prediction, est.pair
        joints = np.asarray(pred.joints, dtype=np.float64) @ R.T + t
        R_obj = R @ np.asarray(pred.obj_rot_matrix, dtype=np.float64)
        t_obj = R @ np.asarray(pred.obj_trans, dtype=np.float64) + t
        hands.append(
            messages.hand_pose_msg(
                side, pair.hand.score, joints, pred.mano_pose, pred.mano_shape, pair.hand.box, i
            )
        )
        objects.append(
            messages.object_pose_msg(pair.obj.label, est.score, R_obj, t_obj, pair.obj.box, i)
        )
        transforms.append(
            conversions.transform_stamped(
                header.frame_id, f"{frame_prefix}/{pair.obj.label}", header.stamp, R_obj, t_obj
            )
        )
        transforms.append(
            conversions.transform_stamped(
                header.frame_id, f"{frame_prefix}/hand_{i}", header.stamp, R, joints[0]
            )
        )
        if marker_options is not None:
            mesh = est.obj_mesh
            hand_draw.append(
                markers.HandDrawing(
                    i, joints, np.asarray(pred.vertices) @ R.T + t, hand_faces, side
                )
            )
            obj_draw.append(
                markers.ObjectDrawing(
                    i, R_obj, t_obj,
                    mesh.vertices if mesh is not None else None,
                    mesh.faces if mesh is not None else None,
                    mesh.color if mesh is not None else None,
                    pair.obj.label,
                )
            )  # fmt: skip
    result = messages.result_msg(
        header, hands, objects, latency_ms, dropped_frames, processed_frames
    )
    marker_array = (
        markers.build_marker_array(header, hand_draw, obj_draw, marker_options)
        if marker_options is not None
        else None
    )
    return FrameMessages(result, transforms, marker_array)


def overlay_image(
    rgb: np.ndarray,
    K: np.ndarray,
    estimates: Sequence[PairEstimate],
    hand_faces: np.ndarray | None,
    boxes: bool = True,
) -> np.ndarray:
    """Draw the estimates on a copy of the image (the node's debug image, homae-infer's PNGs).

    Args:
        rgb: (H, W, 3) uint8 RGB image the estimates belong to.
        K: (3, 3) intrinsics of `rgb`.
        estimates: pair estimates in the image's optical frame (metres).
        hand_faces: (1538, 3) MANO faces to draw the hand mesh; None = skeleton only.
        boxes: also draw the hand (green) and object (blue) boxes.

    Returns:
        (H, W, 3) uint8 RGB, a new array.
    """
    from homae_model.render.overlay import draw_box, draw_hand_object

    img = np.array(rgb, dtype=np.uint8, copy=True)
    for est in estimates:
        pred = est.prediction
        if boxes:
            draw_box(img, est.pair.hand.box, HAND_BOX_COLOR)
            draw_box(img, est.pair.obj.box, OBJECT_BOX_COLOR)
        draw_hand_object(
            img, K, pred.joints, pred.vertices, hand_faces, pred.obj_rot_matrix, pred.obj_trans
        )
    return img
