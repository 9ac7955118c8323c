"""homae_ros.messages.markers: counts, order, stable ids, DELETEALL first, cost per frame."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("visualization_msgs.msg")

from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from homae_ros.messages import markers as mk
from homae_ros.messages.conversions import quaternion_to_rotation_matrix

RNG = np.random.default_rng(0)
HEADER = Header(stamp=Time(sec=12, nanosec=34), frame_id="camera_color_optical_frame")
HAND_V = RNG.normal(scale=0.05, size=(778, 3)) + np.array([0.0, 0.0, 0.5])
HAND_F = RNG.integers(0, 778, size=(1538, 3))
JOINTS = RNG.normal(scale=0.05, size=(21, 3)) + np.array([0.0, 0.0, 0.5])
OBJ_V = RNG.normal(scale=0.03, size=(100, 3))
OBJ_F = RNG.integers(0, 100, size=(196, 3))


def rot_z(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def pair(i: int) -> tuple[mk.HandDrawing, mk.ObjectDrawing]:
    hand = mk.HandDrawing(pair_id=i, joints=JOINTS, vertices=HAND_V, faces=HAND_F)
    obj = mk.ObjectDrawing(
        pair_id=i, R=rot_z(30 * i), t=np.array([0.1, 0.0, 0.6]), vertices=OBJ_V, faces=OBJ_F,
        color=(255, 0, 0), name="006_mustard_bottle",
    )  # fmt: skip
    return hand, obj


def by_ns(arr: MarkerArray) -> dict[str, list[Marker]]:
    out: dict[str, list[Marker]] = {}
    for m in arr.markers[1:]:
        out.setdefault(m.ns, []).append(m)
    return out


def test_counts_types_and_delete_all_first() -> None:
    hand, obj = pair(0)
    arr = mk.build_marker_array(HEADER, [hand], [obj])
    first = arr.markers[0]
    assert first.action == Marker.DELETEALL == 3
    assert first.header.frame_id == HEADER.frame_id
    groups = by_ns(arr)
    assert set(groups) == {
        "hand_mesh",
        "hand_skeleton",
        "hand_joints",
        "object_mesh",
        "object_axes",
    }
    mesh = groups["hand_mesh"][0]
    assert mesh.type == Marker.TRIANGLE_LIST and len(mesh.points) == 4614
    assert (mesh.scale.x, mesh.scale.y, mesh.scale.z) == (1.0, 1.0, 1.0)
    # triangle points are the face vertices, in order
    np.testing.assert_allclose(
        [[p.x, p.y, p.z] for p in mesh.points[:6]], HAND_V[HAND_F[:2].reshape(-1)]
    )
    bones = groups["hand_skeleton"][0]
    assert bones.type == Marker.LINE_LIST and len(bones.points) == 40
    spheres = groups["hand_joints"][0]
    assert spheres.type == Marker.SPHERE_LIST and len(spheres.points) == 21
    np.testing.assert_allclose([[p.x, p.y, p.z] for p in spheres.points], JOINTS)
    omesh = groups["object_mesh"][0]
    assert omesh.type == Marker.TRIANGLE_LIST and len(omesh.points) == 3 * len(OBJ_F)
    assert omesh.color.r == 1.0 and omesh.color.g == 0.0
    axes = groups["object_axes"][0]
    assert axes.type == Marker.LINE_LIST and len(axes.points) == 6 and len(axes.colors) == 6
    for m in arr.markers[1:]:
        assert m.action == Marker.ADD
        assert m.header.stamp.sec == 12 and m.header.frame_id == HEADER.frame_id
        assert m.lifetime.sec == 0 and m.lifetime.nanosec == 0  # no blinking lifetimes


def test_object_pose_on_marker() -> None:
    _, obj = pair(3)
    arr = mk.build_marker_array(HEADER, [], [obj])
    m = by_ns(arr)["object_mesh"][0]
    q = m.pose.orientation
    np.testing.assert_allclose(
        quaternion_to_rotation_matrix([q.x, q.y, q.z, q.w]), rot_z(90), atol=1e-9
    )
    assert (m.pose.position.x, m.pose.position.z) == (0.1, 0.6)


def test_hand_bones_form_a_tree_over_21_joints() -> None:
    bones = np.array(mk.HAND_BONES)
    assert bones.shape == (20, 2)
    assert sorted(bones[:, 1].tolist()) == list(
        range(1, 21)
    )  # every joint but the wrist is a child once
    assert all(p < c for p, c in bones)
    assert (bones[:, 0] == 0).sum() == 5  # five fingers start at the wrist
    assert {(0, 1), (3, 4), (0, 17), (19, 20)} <= set(map(tuple, bones.tolist()))


def test_stable_ids_and_options() -> None:
    pairs = [pair(i) for i in range(3)]
    arr = mk.build_marker_array(HEADER, [h for h, _ in pairs], [o for _, o in pairs])
    keys = [(m.ns, m.id) for m in arr.markers[1:]]
    assert len(keys) == len(set(keys)) == 15
    assert sorted({i for _, i in keys}) == [0, 1, 2]
    again = mk.build_marker_array(HEADER, [h for h, _ in pairs], [o for _, o in pairs])
    assert [(m.ns, m.id) for m in again.markers[1:]] == keys
    only = mk.build_marker_array(
        HEADER, [pairs[0][0]], [pairs[0][1]],
        mk.MarkerOptions(hand_mesh=False, object_mesh=False, object_axes=False),
    )  # fmt: skip
    assert [m.ns for m in only.markers[1:]] == ["hand_skeleton", "hand_joints"]
    empty = mk.build_marker_array(HEADER)
    assert len(empty.markers) == 1 and empty.markers[0].action == Marker.DELETEALL


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="21, 3"):
        mk.build_marker_array(HEADER, [mk.HandDrawing(pair_id=0, joints=JOINTS[:20])])
    bad_faces = HAND_F.copy()
    bad_faces[0, 0] = 778
    with pytest.raises(ValueError, match="face indices"):
        mk.build_marker_array(
            HEADER, [mk.HandDrawing(pair_id=0, joints=JOINTS, vertices=HAND_V, faces=bad_faces)]
        )


def test_serialises_round_trip() -> None:
    # Timing lives in `make bench` (markers stage), not in a test.
    hand, obj = pair(0)
    arr = mk.build_marker_array(HEADER, [hand], [obj])
    back = deserialize_message(serialize_message(arr), MarkerArray)
    assert len(back.markers) == len(arr.markers) and len(back.markers[1].points) == 4614
