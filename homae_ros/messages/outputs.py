"""One frame's estimates -> what HOMAE publishes: result message, TF and markers (and overlay).

The one place that turns `PairEstimate`s into output messages, shared by the node (live topics)
and `homae-bag` (a results bag), so both write the same thing for the same frame:

- `build_frame_messages`: homae_ros/HandObjectResult, the TransformStamped list (one per object
  track `<prefix>/<object name>` and one per hand track `<prefix>/hand_<side>`, with
  `_<track id>` when several share a name; the hand frame sits at the wrist, oriented as MANO's
  global orientation) and the visualization_msgs/MarkerArray (marker id = track id; DELETE
  markers for ended tracks), all with the given header (stamp + frame).
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
from scipy.spatial.transform import Rotation

from homae_model.estimation.estimator import PairEstimate
from homae_model.tracking.frame import FrameTracker, TrackedFrame
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
"""TF child frames are `<prefix>/<object name>` and `<prefix>/hand_<side>` (see the module)."""
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
        markers: visualization_msgs/MarkerArray (DELETEALL first, then DELETEs of ended
            tracks), or None when not requested.
    """

    result: Any
    transforms: list[Any]
    markers: Any | None


def build_frame_messages(
    frame: TrackedFrame | Sequence[PairEstimate],
    header: Any,
    hand_faces: np.ndarray,
    *,
    R_tf: np.ndarray | None = None,
    t_tf: np.ndarray | None = None,
    frame_prefix: str = DEFAULT_FRAME_PREFIX,
    marker_options: markers.MarkerOptions | None = DEFAULT_MARKER_OPTIONS,
) -> FrameMessages:
    """Build the result message, transforms and markers of one frame.

    Args:
        frame: the frame after `FrameTracker.update` (track ids, voted names, child frames,
            maybe smoothed), or plain estimates (tracked as a one-frame sequence). Image
            optical frame, metres.
        header: std_msgs/Header of the outputs (stamp = image stamp; frame_id = the frame
            R_tf/t_tf map into, i.e. the image's optical frame when they are omitted).
        hand_faces: (1538, 3) int MANO faces (`FrameEstimator.hand_faces`).
        R_tf: (3, 3) rotation image frame -> header frame; None = identity.
        t_tf: (3,) translation image frame -> header frame, metres; None = zero.
        frame_prefix: TF child frame prefix (no leading slash).
        marker_options: what to draw; None = no MarkerArray (`markers` is None).

    Returns:
        FrameMessages. Every field of the result is in the header's frame: joints, wrist pose,
        MANO global orientation (mano_pose[:3]) and translation, object poses. Transforms: one
        per object (`<prefix>/<object child>`) and one per hand (`<prefix>/<hand child>`, at
        the wrist, oriented as MANO's global orientation). With no estimates: an empty
        result, no transforms and a MarkerArray holding the DELETEALL marker (and DELETEs of
        ended tracks).

    Raises:
        homae_ros.messages.conversions.ConversionError: a non-finite estimate (NaN joints or pose).
    """
    if not isinstance(frame, TrackedFrame):
        frame = FrameTracker().update(list(frame), 0.0)
    R = np.eye(3) if R_tf is None else np.asarray(R_tf, dtype=np.float64)
    t = np.zeros(3) if t_tf is None else np.asarray(t_tf, dtype=np.float64)
    hands, objects, transforms = [], [], []
    hand_draw: list[markers.HandDrawing] = []
    obj_draw: list[markers.ObjectDrawing] = []
    for i, tp in enumerate(frame.pairs):
        est, pair = tp.estimate, tp.estimate.pair
        joints = tp.joints @ R.T + t
        wrist_R = R @ tp.wrist_R
        mano_pose = np.array(tp.mano_pose, dtype=np.float64)
        mano_pose[:3] = Rotation.from_matrix(wrist_R).as_rotvec()
        # MANO rotates about its root J0 = wrist - transl (shape-only), so the transformed
        # translation keeps J0 + transl' on the transformed wrist.
        transl = joints[0] - (tp.joints[0] - tp.hand_transl)
        R_obj = R @ tp.obj_R
        t_obj = R @ tp.obj_t + t
        hands.append(
            messages.hand_pose_msg(
                tp.side, pair.hand.score, joints, mano_pose, est.prediction.mano_shape,
                pair.hand.box, i, track_id=tp.hand_id, mano_transl=transl,
            )
        )  # fmt: skip
        objects.append(
            messages.object_pose_msg(
                tp.object_name, est.score, R_obj, t_obj, pair.obj.box, i, track_id=tp.object_id
            )
        )
        transforms.append(
            conversions.transform_stamped(
                header.frame_id, f"{frame_prefix}/{tp.object_child}", header.stamp, R_obj, t_obj
            )
        )
        transforms.append(
            conversions.transform_stamped(
                header.frame_id, f"{frame_prefix}/{tp.hand_child}", header.stamp, wrist_R,
                joints[0],
            )
        )  # fmt: skip
        if marker_options is not None:
            mesh = est.obj_mesh
            hand_draw.append(
                markers.HandDrawing(
                    tp.hand_id, joints, tp.vertices @ R.T + t, _faces(hand_faces, tp.side), tp.side
                )
            )
            obj_draw.append(
                markers.ObjectDrawing(
                    tp.object_id, R_obj, t_obj,
                    mesh.vertices if mesh is not None else None,
                    mesh.faces if mesh is not None else None,
                    mesh.color if mesh is not None else None,
                    tp.object_name,
                )
            )  # fmt: skip
    result = messages.result_msg(header, hands, objects)
    marker_array = (
        markers.build_marker_array(
            header, hand_draw, obj_draw, marker_options, frame.ended_hands, frame.ended_objects
        )
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


def _faces(right_faces: np.ndarray, side: str) -> np.ndarray:
    """MANO faces for a side: a left hand is the mirrored right one, so its winding is reversed."""
    return right_faces if side == "right" else np.ascontiguousarray(right_faces[:, ::-1])
