"""Launch homae_node (and optionally RViz).

ros2 launch homae_ros homae.launch.py image:=/camera/color/image_raw \
        camera_info:=/camera/color/camera_info device:=cuda use_rviz:=true
"""

from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

ARGUMENTS = (
    ("namespace", "", "Namespace of the node (moves its topics)."),
    (
        "params_file",
        PathJoinSubstitution([FindPackageShare("homae_ros"), "config", "homae.yaml"]),
        "YAML file with homae_node parameters.",
    ),
    ("image", "image", "Input image topic (sensor_msgs/Image)."),
    ("camera_info", "camera_info", "Input camera info topic (sensor_msgs/CameraInfo)."),
    ("device", "auto", "Inference device: auto, cuda or cpu."),
    ("use_rviz", "false", "Start RViz with rviz/homae.rviz."),
)


def generate_launch_description() -> LaunchDescription:
    """Build the launch description: arguments -> one homae_node (+ optional RViz)."""
    declared = [
        DeclareLaunchArgument(name, default_value=default, description=doc)
        for name, default, doc in ARGUMENTS
    ]
    node = Node(
        package="homae_ros",
        executable="homae_node",
        name="homae_node",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file"), {"device": LaunchConfiguration("device")}],
        remappings=[
            ("image", LaunchConfiguration("image")),
            ("camera_info", LaunchConfiguration("camera_info")),
        ],
        output="screen",
        emulate_tty=True,
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        arguments=[
            "-d",
            PathJoinSubstitution([FindPackageShare("homae_ros"), "rviz", "homae.rviz"]),
        ],
        condition=IfCondition(LaunchConfiguration("use_rviz")),
        output="screen",
    )
    return LaunchDescription([*declared, node, rviz])
