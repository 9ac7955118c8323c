"""visualization_msgs/MarkerArray builders for hands and objects (numpy in, no torch).

Every array starts with one DELETEALL marker, then one DELETE marker per namespace for each
track that ended (for consumers that follow markers by ns/id), then redraws everything with
stable `ns` / `id` (id = track id), lifetime 0: nothing blinks (no short lifetimes) and
nothing lingers from a previous frame with more pairs. All markers carry the image header
(stamp + optical frame), and all coordinates are metres in that frame.

Namespaces: "hand_mesh" (TRIANGLE_LIST, 778 vertices / 1538 faces -> 4614 points, scale 1),
"hand_skeleton" (LINE_LIST, 20 bones -> 40 points), "hand_joints" (SPHERE_LIST, 21 joints),
"object_mesh" (TRIANGLE_LIST in the object frame, placed by the marker pose), "object_axes"
(LINE_LIST, x/y/z axes coloured red/green/blue).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from homae_model.hand.constants import SKELETON_EDGES
from homae_ros.messages.conversions import BadInputError, pose_to_msg

__all__ = [
    "HAND_BONES",
    "NS_HAND_JOINTS",
    "NS_HAND_MESH",
    "NS_HAND_SKELETON",
    "NS_OBJECT_AXES",
    "NS_OBJECT_MESH",
    "HandDrawing",
    "MarkerOptions",
    "ObjectDrawing",
    "build_marker_array",
    "delete_all_marker",
    "delete_markers",
    "hand_mesh_marker",
    "object_axes_marker",
    "object_mesh_marker",
    "skeleton_markers",
]

NS_HAND_MESH = "hand_mesh"
NS_HAND_SKELETON = "hand_skeleton"
NS_HAND_JOINTS = "hand_joints"
NS_OBJECT_MESH = "object_mesh"
NS_OBJECT_AXES = "object_axes"

HAND_BONES: tuple[tuple[int, int], ...] = SKELETON_EDGES
"""The 20 (parent, child) joint index pairs of the hand skeleton (`SKELETON_EDGES`)."""

_RIGHT_HAND_RGB = (0.93, 0.71, 0.55)
_LEFT_HAND_RGB = (0.55, 0.71, 0.93)
_SKELETON_RGB = (1.0, 0.85, 0.1)
_JOINT_RGB = (0.9, 0.2, 0.2)
_OBJECT_RGB = (0.3, 0.8, 0.3)


@dataclass(frozen=True)
class MarkerOptions:
    """What to draw and how (sizes in metres)."""

    hand_mesh: bool = True
    skeleton: bool = True
    object_mesh: bool = True
    object_axes: bool = True
    bone_width: float = 0.004  # m, LINE_LIST line width
    joint_diameter: float = 0.008  # m, SPHERE_LIST sphere size
    axes_length: float = 0.05  # m
    axes_width: float = 0.003  # m
    alpha: float = 0.8


@dataclass(frozen=True)
class HandDrawing:
    """One hand to draw, camera (image) frame, metres.

    Attributes:
        pair_id: marker id (the track id, or the pair index when untracked).
        joints: (21, 3) joints in the project order.
        vertices: (778, 3) MANO mesh vertices, or None to skip the mesh.
        faces: (1538, 3) int triangle indices into `vertices` (None with no mesh).
        side: "right" or "left" (colour only).
    """

    pair_id: int
    joints: np.ndarray
    vertices: np.ndarray | None = None
    faces: np.ndarray | None = None
    side: str = "right"


@dataclass(frozen=True)
class ObjectDrawing:
    """One object to draw.

    Attributes:
        pair_id: marker id (the track id, or the pair index when untracked).
        R: (3, 3) rotation object -> camera frame.
        t: (3,) translation, metres, camera frame (X_cam = R @ X_obj + t).
        vertices: (V, 3) model vertices, metres, object frame, or None to skip the mesh.
        faces: (F, 3) int triangle indices (None with no mesh).
        color: (3,) RGB in [0, 1] or [0, 255], or None for the default.
        name: object library name (for the marker's text field `text`).
    """

    pair_id: int
    R: np.ndarray
    t: np.ndarray
    vertices: np.ndarray | None = None
    faces: np.ndarray | None = None
    color: np.ndarray | Sequence[float] | None = None
    name: str = ""


def _points(xyz: np.ndarray) -> list[Any]:
    """(N, 3) float array -> list of geometry_msgs/Point (bulk, via one tolist())."""
    from geometry_msgs.msg import Point

    return [Point(x=x, y=y, z=z) for x, y, z in np.asarray(xyz, dtype=np.float64).tolist()]


def _rgba(rgb: Sequence[float] | np.ndarray, alpha: float) -> Any:
    from std_msgs.msg import ColorRGBA

    c = np.asarray(rgb, dtype=np.float64).ravel()[:3]
    if c.max(initial=0.0) > 1.0:
        c = c / 255.0
    r, g, b = (float(v) for v in np.clip(c, 0.0, 1.0))
    return ColorRGBA(r=r, g=g, b=b, a=float(alpha))


def _marker(header: Any, ns: str, marker_id: int, marker_type: int) -> Any:
    """A Marker with the image header, identity pose, lifetime 0 (until replaced/deleted)."""
    from visualization_msgs.msg import Marker

    m = Marker()
    m.header = header
    m.ns = ns
    m.id = int(marker_id)
    m.type = marker_type
    m.action = Marker.ADD
    m.pose.orientation.w = 1.0
    return m


def _triangle_points(vertices: np.ndarray, faces: np.ndarray, what: str) -> np.ndarray:
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3:
        raise BadInputError(
            f"{what}: vertices (V,3) and faces (F,3) expected, got {v.shape}, {f.shape}"
        )
    if f.size and (f.min() < 0 or f.max() >= len(v)):
        raise BadInputError(f"{what}: face indices outside 0..{len(v) - 1}")
    return v[f.reshape(-1)]


def delete_all_marker(header: Any) -> Any:
    """The DELETEALL marker (action 3) that starts every array: clears the previous frame."""
    from visualization_msgs.msg import Marker

    m = Marker()
    m.header = header
    m.action = Marker.DELETEALL
    return m


def delete_markers(header: Any, hand_ids: Sequence[int], object_ids: Sequence[int]) -> list[Any]:
    """DELETE markers (action 2) for every namespace of the given hand and object track ids."""
    from visualization_msgs.msg import Marker

    out = []
    for ids, namespaces in (
        (hand_ids, (NS_HAND_MESH, NS_HAND_SKELETON, NS_HAND_JOINTS)),
        (object_ids, (NS_OBJECT_MESH, NS_OBJECT_AXES)),
    ):
        for tid in ids:
            for ns in namespaces:
                m = Marker()
                m.header = header
                m.ns = ns
                m.id = int(tid)
                m.action = Marker.DELETE
                out.append(m)
    return out


def hand_mesh_marker(
    header: Any, hand: HandDrawing, options: MarkerOptions = MarkerOptions()
) -> Any:
    """TRIANGLE_LIST of the hand mesh: 3 points per face (4614 for MANO), scale 1."""
    from visualization_msgs.msg import Marker

    if hand.vertices is None or hand.faces is None:
        raise BadInputError("hand_mesh_marker needs vertices and faces")
    m = _marker(header, NS_HAND_MESH, hand.pair_id, Marker.TRIANGLE_LIST)
    m.scale.x = m.scale.y = m.scale.z = 1.0
    rgb = _LEFT_HAND_RGB if hand.side == "left" else _RIGHT_HAND_RGB
    m.color = _rgba(rgb, options.alpha)
    m.points = _points(_triangle_points(hand.vertices, hand.faces, "hand mesh"))
    return m


def skeleton_markers(
    header: Any, hand: HandDrawing, options: MarkerOptions = MarkerOptions()
) -> tuple[Any, Any]:
    """LINE_LIST of the 20 bones (40 points) and SPHERE_LIST of the 21 joints."""
    from visualization_msgs.msg import Marker

    joints = np.asarray(hand.joints, dtype=np.float64)
    if joints.shape != (21, 3):
        raise BadInputError(f"hand joints must be (21, 3), got {joints.shape}")
    bones = _marker(header, NS_HAND_SKELETON, hand.pair_id, Marker.LINE_LIST)
    bones.scale.x = float(options.bone_width)
    bones.color = _rgba(_SKELETON_RGB, 1.0)
    bones.points = _points(joints[np.asarray(HAND_BONES).reshape(-1)])
    spheres = _marker(header, NS_HAND_JOINTS, hand.pair_id, Marker.SPHERE_LIST)
    spheres.scale.x = spheres.scale.y = spheres.scale.z = float(options.joint_diameter)
    spheres.color = _rgba(_JOINT_RGB, 1.0)
    spheres.points = _points(joints)
    return bones, spheres


def object_mesh_marker(
    header: Any,
    obj: ObjectDrawing,
    options: MarkerOptions = MarkerOptions(),
    points: list[Any] | None = None,
) -> Any:
    """TRIANGLE_LIST of the object model in its own frame, placed by the marker pose (R, t).

    Args:
        header: image header.
        obj: the object (vertices/faces in the object frame).
        options: drawing options.
        points: precomputed triangle points for this model (see `build_marker_array`'s
            cache); built from obj.vertices/faces when None.
    """
    from visualization_msgs.msg import Marker

    if points is None:
        if obj.vertices is None or obj.faces is None:
            raise BadInputError("object_mesh_marker needs vertices and faces")
        points = _points(_triangle_points(obj.vertices, obj.faces, f"object '{obj.name}' mesh"))
    m = _marker(header, NS_OBJECT_MESH, obj.pair_id, Marker.TRIANGLE_LIST)
    m.pose = pose_to_msg(obj.R, obj.t)
    m.scale.x = m.scale.y = m.scale.z = 1.0
    m.color = _rgba(_OBJECT_RGB if obj.color is None else obj.color, options.alpha)
    m.text = obj.name
    m.points = points
    return m


def object_axes_marker(
    header: Any, obj: ObjectDrawing, options: MarkerOptions = MarkerOptions()
) -> Any:
    """LINE_LIST of the object frame's axes (x red, y green, z blue), placed by (R, t)."""
    from visualization_msgs.msg import Marker

    m = _marker(header, NS_OBJECT_AXES, obj.pair_id, Marker.LINE_LIST)
    m.pose = pose_to_msg(obj.R, obj.t)
    m.scale.x = float(options.axes_width)
    m.color = _rgba((1.0, 1.0, 1.0), 1.0)
    ends = np.zeros((6, 3))
    ends[1::2] = np.eye(3) * float(options.axes_length)
    m.points = _points(ends)
    axis_rgb = np.repeat(np.eye(3), 2, axis=0)
    m.colors = [_rgba(c, 1.0) for c in axis_rgb]
    return m


class _PointsCache:
    """Triangle points of object models, keyed by (name, V, F): built once per model."""

    def __init__(self, max_items: int = 32) -> None:
        self._items: dict[tuple[str, int, int], list[Any]] = {}
        self._max = max_items

    def get(self, obj: ObjectDrawing) -> list[Any] | None:
        if obj.vertices is None or obj.faces is None:
            return None
        if not obj.name:
            return _points(_triangle_points(obj.vertices, obj.faces, "object mesh"))
        key = (obj.name, len(obj.vertices), len(obj.faces))
        if key not in self._items:
            if len(self._items) >= self._max:
                self._items.pop(next(iter(self._items)))
            self._items[key] = _points(
                _triangle_points(obj.vertices, obj.faces, f"object '{obj.name}' mesh")
            )
        return self._items[key]


_OBJECT_POINTS = _PointsCache()


def build_marker_array(
    header: Any,
    hands: Sequence[HandDrawing] = (),
    objects: Sequence[ObjectDrawing] = (),
    options: MarkerOptions = MarkerOptions(),
    ended_hands: Sequence[int] = (),
    ended_objects: Sequence[int] = (),
) -> Any:
    """Build the MarkerArray of one frame.

    Order: DELETEALL, DELETE markers of the ended tracks, then per hand (mesh, skeleton,
    joints), then per object (mesh, axes), each enabled by `options`. Object model points
    are cached per (name, V, F), so a named object costs only its pose after the first frame.

    Args:
        header: std_msgs/Header of the image (stamp + optical frame).
        hands: hands to draw (ids = `pair_id`, the hand's track id).
        objects: objects to draw (ids = `pair_id`, the object's track id).
        options: what to draw.
        ended_hands: hand track ids whose markers are deleted.
        ended_objects: object track ids whose markers are deleted.

    Returns:
        visualization_msgs/MarkerArray.
    """
    from visualization_msgs.msg import MarkerArray

    markers = [delete_all_marker(header)]
    markers.extend(delete_markers(header, ended_hands, ended_objects))
    for hand in hands:
        if options.hand_mesh and hand.vertices is not None and hand.faces is not None:
            markers.append(hand_mesh_marker(header, hand, options))
        if options.skeleton:
            markers.extend(skeleton_markers(header, hand, options))
    for obj in objects:
        if options.object_mesh:
            points = _OBJECT_POINTS.get(obj)
            if points is not None:
                markers.append(object_mesh_marker(header, obj, options, points))
        if options.object_axes:
            markers.append(object_axes_marker(header, obj, options))
    return MarkerArray(markers=markers)
