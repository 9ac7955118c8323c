"""The stand-ins for tf2_ros, message_filters, launch and launch_ros (tests/stubs/python).

Each group is skipped where the real package is installed (the stand-in is then unused).
ROS graph tests use two real rclpy nodes over loopback (isolated by tests/conftest.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

STUBS = Path(__file__).resolve().parent / "python"


def standin(name: str):
    mod = pytest.importorskip(name)
    if not Path(mod.__file__).resolve().is_relative_to(STUBS):
        pytest.skip(f"real {name} installed; the stand-in is not used")
    return mod


rclpy = pytest.importorskip("rclpy")
from builtin_interfaces.msg import Time  # noqa: E402
from geometry_msgs.msg import TransformStamped  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402


def stamp(t: float) -> Time:
    sec = int(t)
    return Time(sec=sec, nanosec=round((t - sec) * 1e9))


def image(t: float) -> Image:
    m = Image()
    m.header.stamp = stamp(t)
    return m


def info(t: float) -> CameraInfo:
    m = CameraInfo()
    m.header.stamp = stamp(t)
    return m


def secs(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


# ------------------------------------------------------------------ message_filters (no DDS)
def test_time_synchronizer_exact_stamps() -> None:
    mf = standin("message_filters")
    a, b = mf.SimpleFilter(), mf.SimpleFilter()
    sync = mf.TimeSynchronizer([a, b], queue_size=5)
    got = []
    sync.registerCallback(lambda x, y, tag: got.append((secs(x), secs(y), tag)), "extra")
    a.signalMessage(image(1.0))
    b.signalMessage(info(1.001))
    assert got == []
    b.signalMessage(info(1.0))
    assert got == [(1.0, 1.0, "extra")]


def test_approximate_synchronizer_slop_and_queue() -> None:
    mf = standin("message_filters")
    a, b = mf.SimpleFilter(), mf.SimpleFilter()
    sync = mf.ApproximateTimeSynchronizer([a, b], queue_size=3, slop=0.01)
    got = []
    sync.registerCallback(lambda x, y: got.append((round(secs(x), 4), round(secs(y), 4))))
    a.signalMessage(image(1.000))
    b.signalMessage(info(1.030))  # 30 ms apart: beyond slop
    assert got == []
    a.signalMessage(image(1.033))  # 3 ms from the queued info: pair
    assert got == [(1.033, 1.03)]
    b.signalMessage(info(2.000))
    a.signalMessage(image(2.004))
    a.signalMessage(image(2.002))  # info 2.0 already used: no second pair
    assert got[-1] == (2.004, 2.0) and len(got) == 2
    # nearest candidate is chosen when several are within slop
    b.signalMessage(info(3.000))
    b.signalMessage(info(3.006))
    a.signalMessage(image(3.005))
    assert got[-1] == (3.005, 3.006)
    with pytest.raises(ValueError, match="allow_headerless"):
        a.signalMessage(object())


def test_approximate_synchronizer_headerless() -> None:
    mf = standin("message_filters")
    a, b = mf.SimpleFilter(), mf.SimpleFilter()
    sync = mf.ApproximateTimeSynchronizer([a, b], 2, 0.5, allow_headerless=True)
    got = []
    sync.registerCallback(lambda x, y: got.append((x, y)))
    a.signalMessage("left")
    b.signalMessage("right")
    assert got == [("left", "right")]


# ------------------------------------------------------------------ tf2 Buffer (no DDS)
def rot_z(deg: float) -> np.ndarray:
    r = np.deg2rad(deg)
    return np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])


def tf(parent: str, child: str, t: float, R: np.ndarray, p) -> TransformStamped:
    from homae_ros.messages.conversions import transform_stamped

    return transform_stamped(parent, child, stamp(t), R, np.asarray(p, float))


def as_matrix(msg: TransformStamped) -> np.ndarray:
    from homae_ros.messages.conversions import quaternion_to_rotation_matrix

    r, p = msg.transform.rotation, msg.transform.translation
    T = np.eye(4)
    T[:3, :3] = quaternion_to_rotation_matrix([r.x, r.y, r.z, r.w])
    T[:3, 3] = [p.x, p.y, p.z]
    return T


def homog(R, p) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, p
    return T


def test_buffer_chains_inverts_and_extrapolates() -> None:
    tf2 = standin("tf2_ros")
    buf = tf2.Buffer()
    T_wc = homog(rot_z(90), [1.0, 0.0, 0.5])
    T_co = homog(rot_z(-30), [0.0, 0.1, 0.6])
    T_wb = homog(rot_z(10), [0.0, 2.0, 0.0])
    buf.set_transform(tf("world", "camera", 5.0, T_wc[:3, :3], T_wc[:3, 3]), "test")
    buf.set_transform(tf("world", "camera", 6.0, rot_z(0), [9.0, 9.0, 9.0]), "test")
    buf.set_transform(tf("camera", "homae/mug", 5.0, T_co[:3, :3], T_co[:3, 3]), "test")
    buf.set_transform_static(tf("world", "base", 0.0, T_wb[:3, :3], T_wb[:3, 3]), "test")
    rclpy_time = rclpy.time.Time(seconds=5.0)
    got = as_matrix(buf.lookup_transform("world", "homae/mug", rclpy_time))
    np.testing.assert_allclose(got, T_wc @ T_co, atol=1e-9)
    got = as_matrix(buf.lookup_transform("homae/mug", "world", stamp(5.0)))
    np.testing.assert_allclose(got, np.linalg.inv(T_wc @ T_co), atol=1e-9)
    got = as_matrix(buf.lookup_transform("base", "homae/mug", stamp(5.002)))  # nearest sample
    np.testing.assert_allclose(got, np.linalg.inv(T_wb) @ T_wc @ T_co, atol=1e-9)
    assert buf.can_transform("world", "camera", stamp(5.9))  # nearest: the 6.0 sample
    np.testing.assert_allclose(
        as_matrix(buf.lookup_transform("world", "camera", Time()))[:3, 3], [9, 9, 9]
    )
    with pytest.raises(tf2.ExtrapolationException):
        buf.lookup_transform("world", "homae/mug", stamp(7.0))
    with pytest.raises(tf2.LookupException):
        buf.lookup_transform("world", "nowhere", stamp(5.0))
    buf.set_transform(tf("island", "rock", 5.0, rot_z(0), [0, 0, 0]), "test")
    with pytest.raises(tf2.ConnectivityException):
        buf.lookup_transform("world", "rock", stamp(5.0))
    assert issubclass(tf2.ExtrapolationException, tf2.TransformException)
    ok, why = buf.can_transform("world", "nowhere", stamp(5.0), return_debug_tuple=True)
    assert not ok and "nowhere" in why
    t0 = time.monotonic()
    with pytest.raises(tf2.TransformException):
        buf.lookup_transform("world", "nowhere", stamp(5.0), rclpy.duration.Duration(seconds=0.1))
    assert time.monotonic() - t0 >= 0.09
    assert "Frame homae/mug exists with parent camera." in buf.all_frames_as_string()


# ------------------------------------------------------------------ two nodes over loopback
@pytest.fixture
def graph():
    context = rclpy.Context()
    rclpy.init(context=context)
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=context)
    nodes = []

    def make(name: str):
        node = rclpy.create_node(name, context=context)
        executor.add_node(node)
        nodes.append(node)
        return node

    def spin_until(cond, timeout: float = 10.0, between=None) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if between is not None:
                between()
            executor.spin_once(timeout_sec=0.05)
            if cond():
                return True
        return False

    yield make, spin_until
    executor.shutdown()
    for n in nodes:
        n.destroy_node()
    rclpy.shutdown(context=context)


def test_tf_broadcast_received_by_listener(graph) -> None:
    tf2 = standin("tf2_ros")
    pytest.importorskip(
        "tf2_msgs.msg", reason="tf2_msgs not built (make setup builds the stand-in)"
    )
    make, spin_until = graph
    talker, listener_node = make("tf_talker"), make("tf_listener")
    broadcaster = tf2.TransformBroadcaster(talker)
    static = tf2.StaticTransformBroadcaster(talker)
    buf = tf2.Buffer()
    tf2.TransformListener(buf, listener_node)
    T_wc = homog(rot_z(45), [0.2, 0.0, 1.0])
    T_co = homog(rot_z(20), [0.0, 0.0, 0.5])
    static.sendTransform(tf("world", "camera", 0.0, T_wc[:3, :3], T_wc[:3, 3]))
    batch = [tf("camera", "homae/mug", 10.0, T_co[:3, :3], T_co[:3, 3]),
             tf("camera", "homae/box", 10.0, rot_z(0), [0.1, 0.0, 0.4])]  # fmt: skip
    assert spin_until(
        lambda: buf.can_transform("world", "homae/box", stamp(10.0)),
        between=lambda: broadcaster.sendTransform(batch),
    ), buf.all_frames_as_string()
    got = as_matrix(buf.lookup_transform("world", "homae/mug", stamp(10.0)))
    np.testing.assert_allclose(got, T_wc @ T_co, atol=1e-6)


def test_approximate_sync_over_loopback(graph) -> None:
    mf = standin("message_filters")
    from rclpy.qos import qos_profile_sensor_data

    make, spin_until = graph
    camera, consumer = make("fake_camera"), make("consumer")
    pub_img = camera.create_publisher(Image, "image", qos_profile_sensor_data)
    pub_info = camera.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)
    sub_img = mf.Subscriber(consumer, Image, "image", qos_profile=qos_profile_sensor_data)
    sub_info = mf.Subscriber(
        consumer, CameraInfo, "camera_info", qos_profile=qos_profile_sensor_data
    )
    assert sub_img.getTopic() == "image" and sub_img.topic_name == "/image"
    sync = mf.ApproximateTimeSynchronizer([sub_img, sub_info], queue_size=5, slop=0.01)
    pairs = []
    sync.registerCallback(lambda im, ci: pairs.append((secs(im), secs(ci))))
    k = [0]

    def publish() -> None:
        k[0] += 1
        if k[0] % 8:  # leave the executor time to take every message (one per spin_once)
            return
        t = 100.0 + 0.1 * k[0]
        pub_img.publish(image(t))
        pub_info.publish(info(t + 0.004))  # within slop
        pub_img.publish(image(t + 0.05))  # no partner within slop

    assert spin_until(lambda: len(pairs) >= 3, between=publish)
    for im, ci in pairs:
        assert abs(im - ci) <= 0.01 + 1e-9 and abs(ci - im - 0.004) < 1e-6


# ------------------------------------------------------------------ launch / launch_ros
def test_launch_description_evaluates(tmp_path: Path) -> None:
    launch = standin("launch")
    standin("launch_ros")
    from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
    from launch.conditions import IfCondition, UnlessCondition
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
    from launch_ros.actions import Node

    child = tmp_path / "child.launch.py"
    child.write_text(
        "from launch import LaunchDescription\n"
        "from launch_ros.actions import Node\n"
        "from launch.substitutions import LaunchConfiguration\n"
        "def generate_launch_description():\n"
        "    return LaunchDescription([Node(package='p', executable='child_exe',\n"
        "        name=LaunchConfiguration('child_name'))])\n"
    )
    viz = LaunchConfiguration("viz")
    cfg = PathJoinSubstitution(["/share", "cfg", "x.yaml"])
    ld = launch.LaunchDescription([
        DeclareLaunchArgument("ns", default_value=""),
        DeclareLaunchArgument("cfg", default_value=cfg),
        DeclareLaunchArgument("image", default_value="image"),
        DeclareLaunchArgument("rate", default_value="2.5"),
        DeclareLaunchArgument("mode", default_value="a", choices=["a", "b"]),
        DeclareLaunchArgument("viz", default_value="false"),
        Node(package="pkg", executable="exe", name="n", namespace=LaunchConfiguration("ns"),
             parameters=[LaunchConfiguration("cfg"), {"rate": LaunchConfiguration("rate"),
                                                       "group": {"flag": True}}],
             remappings=[("image", LaunchConfiguration("image"))]),
        Node(package="v", executable="viz_exe", condition=IfCondition(viz)),
        Node(package="v", executable="no_viz", condition=UnlessCondition(viz)),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(str(child)),
                                 launch_arguments={"child_name": "kid"}.items()),
    ])  # fmt: skip
    assert [a.name for a in ld.get_launch_arguments()][:2] == ["ns", "cfg"]
    nodes = [
        a for a in launch.evaluate(ld, {"image": "/cam/rgb", "ns": "left"}) if isinstance(a, Node)
    ]
    assert [n.expanded_executable for n in nodes] == ["exe", "no_viz", "child_exe"]
    main = nodes[0]
    assert main.node_package == "pkg" and main.node_name == "n"
    assert main.expanded_node_namespace == "/left"
    assert main.expanded_remapping_rules == [("image", "/cam/rgb")]
    assert main.expanded_parameter_arguments == [
        ("/share/cfg/x.yaml", True),
        ({"rate": 2.5, "group.flag": True}, False),
    ]
    assert nodes[2].node_name == "kid"
    nodes = [a for a in launch.evaluate(ld, {"viz": "true"}) if isinstance(a, Node)]
    assert [n.expanded_executable for n in nodes] == ["exe", "viz_exe", "child_exe"]
    with pytest.raises(RuntimeError, match="not valid"):
        launch.evaluate(ld, {"mode": "c"})
    with pytest.raises(Exception, match="true, false"):
        launch.evaluate(ld, {"viz": "maybe"})
