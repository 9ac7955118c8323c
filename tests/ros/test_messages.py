"""The generated frame-result message travels between two real rclpy nodes."""

from __future__ import annotations

import pytest

from tests.ros.rosutil import require_ros, spin_until

pytestmark = pytest.mark.ros


@pytest.fixture()
def ros_context():
    require_ros()
    import rclpy

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.shutdown(context=ctx)


def _result_msg():
    from geometry_msgs.msg import Point

    from homae_ros.msg import HandObjectResult, HandPose, ObjectPose

    hand = HandPose(side="right", score=0.9, pair_id=0, track_id=4)
    hand.joints = [Point(x=0.01 * i, y=-0.02 * i, z=0.5 + 0.001 * i) for i in range(21)]
    hand.mano_pose = [0.1] * 48
    hand.mano_shape = [0.0] * 10
    hand.box = [10.0, 20.0, 110.0, 140.0]
    hand.mano_transl = [0.01, 0.02, 0.5]
    hand.wrist_pose.position.z = 0.5
    hand.wrist_pose.orientation.z = 1.0
    hand.wrist_pose.orientation.w = 0.0
    obj = ObjectPose(name="006_mustard_bottle", score=0.8, pair_id=0, track_id=9)
    obj.pose.position.z = 0.55
    obj.pose.orientation.w = 1.0
    obj.box = [50.0, 40.0, 150.0, 200.0]
    msg = HandObjectResult(hands=[hand], objects=[obj])
    msg.header.frame_id = "camera_color_optical_frame"
    msg.header.stamp.sec = 1234
    msg.header.stamp.nanosec = 5678
    return msg


def test_message_definitions() -> None:
    require_ros()
    from homae_ros.msg import HandObjectResult, HandPose, ObjectPose

    assert HandPose.get_fields_and_field_types() == {
        "side": "string",
        "score": "float",
        "track_id": "int32",
        "joints": "geometry_msgs/Point[21]",
        "wrist_pose": "geometry_msgs/Pose",
        "mano_pose": "float[48]",
        "mano_shape": "float[10]",
        "mano_transl": "float[3]",
        "box": "float[4]",
        "pair_id": "int32",
    }
    assert ObjectPose.get_fields_and_field_types()["pose"] == "geometry_msgs/Pose"
    assert ObjectPose.get_fields_and_field_types()["track_id"] == "int32"
    # Telemetry is on /diagnostics, not in the data message.
    assert HandObjectResult.get_fields_and_field_types() == {
        "header": "std_msgs/Header",
        "hands": "sequence<homae_ros/HandPose>",
        "objects": "sequence<homae_ros/ObjectPose>",
    }


def test_joint_names_are_constants_of_the_definition() -> None:
    require_ros()
    from homae_model.hand.constants import JOINT_NAMES
    from homae_ros.msg import HandPose

    assert HandPose.NUM_JOINTS == len(JOINT_NAMES) == 21
    for i, name in enumerate(JOINT_NAMES):
        assert getattr(HandPose, f"JOINT_{name.upper()}") == i


def test_frame_result_round_trip_between_nodes(ros_context) -> None:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from homae_ros.msg import HandObjectResult

    pub_node = rclpy.create_node("homae_test_pub", context=ros_context)
    sub_node = rclpy.create_node("homae_test_sub", context=ros_context)
    received: list = []
    sub_node.create_subscription(HandObjectResult, "/homae_test/result", received.append, 10)
    pub = pub_node.create_publisher(HandObjectResult, "/homae_test/result", 10)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(pub_node)
    executor.add_node(sub_node)
    sent = _result_msg()
    try:
        assert spin_until(executor, lambda: pub.get_subscription_count() > 0)
        pub.publish(sent)
        assert spin_until(executor, lambda: len(received) > 0), "no result received over loopback"
    finally:
        executor.shutdown()
        pub_node.destroy_node()
        sub_node.destroy_node()
    got = received[0]
    assert got.header.stamp.sec == 1234 and got.header.stamp.nanosec == 5678
    assert got.header.frame_id == "camera_color_optical_frame"
    assert len(got.hands) == 1 and len(got.objects) == 1
    assert got.hands[0].joints[20].z == pytest.approx(0.52)
    assert list(got.hands[0].box) == [10.0, 20.0, 110.0, 140.0]
    assert got.objects[0].name == "006_mustard_bottle"
    assert (got.hands[0].track_id, got.objects[0].track_id) == (4, 9)
    assert list(got.hands[0].mano_transl) == pytest.approx([0.01, 0.02, 0.5])
    assert got.hands[0].wrist_pose.position.z == pytest.approx(0.5)
    assert got.hands[0].wrist_pose.orientation.z == pytest.approx(1.0)
