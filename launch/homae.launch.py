"""Launch homae_node (or its managed variant) and optionally RViz.

ros2 launch homae_ros homae.launch.py image:=/camera/color/image_raw \
        camera_info:=/camera/color/camera_info device:=cuda use_rviz:=true
ros2 launch homae_ros homae.launch.py lifecycle:=true autostart:=false   # a manager drives it

- `lifecycle:=true` runs homae_lifecycle_node (configure loads the model, activate subscribes,
  deactivate stops, cleanup frees the model); `autostart:=true` (default) configures and
  activates it at start, `false` leaves it unconfigured for a lifecycle manager.
- `use_rviz:=true` starts RViz only where rviz2 is installed; otherwise a warning is logged and
  the node runs alone (nothing is started that launch would have to abandon).
- RViz gets a copy of rviz/homae.rviz whose topics follow `namespace` and `image`.
- `use_sim_time` is passed to the node (and RViz).
"""

import os
import tempfile

import yaml
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

NODE_NAME = "homae_node"

ARGUMENTS = (
    ("namespace", "", "Namespace of the node (moves its topics)."),
    (
        "params_file",
        PathJoinSubstitution([FindPackageShare("homae_ros"), "config", "homae.yaml"]),
        "YAML file with homae_node parameters.",
    ),
    ("image", "image", "Input image topic (sensor_msgs/Image; <image>/compressed with "
     "image_transport: compressed)."),
    ("camera_info", "camera_info", "Input camera info topic (sensor_msgs/CameraInfo)."),
    ("device", "auto", "Inference device: auto, cuda or cpu."),
    ("use_rviz", "false", "Start RViz with rviz/homae.rviz (only if rviz2 is installed)."),
    ("use_sim_time", "false", "Use /clock for the node's time (simulation, bags with --clock)."),
    ("lifecycle", "false", "Run the managed node homae_lifecycle_node instead of homae_node."),
    ("autostart", "true", "lifecycle:=true only: configure and activate the node at start."),
)  # fmt: skip


def _true(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise ValueError(f"launch argument '{name}' is '{text}': use true or false")


def find_rviz2() -> str | None:
    """Path of the installed rviz2 executable (ament index), or None when it is missing."""
    try:
        from ament_index_python.packages import get_package_prefix

        prefix = get_package_prefix("rviz2")
    except Exception:  # PackageNotFoundError, or no ament index at all
        return None
    exe = os.path.join(prefix, "lib", "rviz2", "rviz2")
    return exe if os.path.isfile(exe) and os.access(exe, os.X_OK) else None


def _absolute(topic: str, namespace: str) -> str:
    if topic.startswith("/"):
        return topic
    ns = namespace.strip("/")
    return f"/{ns}/{topic}" if ns else f"/{topic}"


def rviz_config_text(template: str, namespace: str, image: str) -> str:
    """rviz/homae.rviz with its topics for this launch's namespace and image topic.

    Args:
        template: the installed rviz/homae.rviz (YAML).
        namespace: the node's namespace ("" = none).
        image: the node's image topic as remapped (relative = inside the namespace).

    Returns:
        The RViz config: the camera display on the image topic, the debug image and marker
        displays on `/<namespace>/homae_node/...`.
    """
    config = yaml.safe_load(template)
    node = _absolute(NODE_NAME, namespace)
    for display in config["Visualization Manager"]["Displays"]:
        topic = display.get("Topic")
        if not isinstance(topic, dict) or "Value" not in topic:
            continue
        value = str(topic["Value"])
        if value.endswith("/debug_image"):
            topic["Value"] = f"{node}/debug_image"
        elif value.endswith("/markers"):
            topic["Value"] = f"{node}/markers"
        else:
            topic["Value"] = _absolute(image, namespace)
    return yaml.safe_dump(config, sort_keys=False)


def _setup(context, *args, **kwargs):
    """The node (plain or managed) and, where rviz2 exists, RViz with a matching config."""

    def get(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    lifecycle = _true(get("lifecycle"), "lifecycle")
    sim_time = _true(get("use_sim_time"), "use_sim_time")
    node = Node(
        package="homae_ros",
        executable="homae_lifecycle_node" if lifecycle else "homae_node",
        name=NODE_NAME,
        namespace=LaunchConfiguration("namespace"),
        parameters=[
            LaunchConfiguration("params_file"),
            {"device": LaunchConfiguration("device")},
            {"use_sim_time": sim_time},
        ],
        remappings=[
            ("image", LaunchConfiguration("image")),
            ("camera_info", LaunchConfiguration("camera_info")),
        ],
        arguments=["--autostart"] if lifecycle and _true(get("autostart"), "autostart") else [],
        output="screen",
        emulate_tty=True,
    )
    actions = [node]
    if not _true(get("use_rviz"), "use_rviz"):
        return actions
    if find_rviz2() is None:
        return [
            LogInfo(msg="WARNING: use_rviz:=true but rviz2 is not installed (no package "
                    "'rviz2' with lib/rviz2/rviz2 in AMENT_PREFIX_PATH): starting homae_node "
                    "without RViz"),
            *actions,
        ]  # fmt: skip
    share = PathJoinSubstitution([FindPackageShare("homae_ros"), "rviz", "homae.rviz"])
    with open(share.perform(context), encoding="utf-8") as f:
        text = rviz_config_text(f.read(), get("namespace"), get("image"))
    fd, path = tempfile.mkstemp(prefix="homae_", suffix=".rviz")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        arguments=["-d", path],
        parameters=[{"use_sim_time": sim_time}],
        output="screen",
    )
    return [*actions, rviz]


def generate_launch_description() -> LaunchDescription:
    """Build the launch description: arguments -> one homae node (+ RViz where installed)."""
    declared = [
        DeclareLaunchArgument(name, default_value=default, description=doc)
        for name, default, doc in ARGUMENTS
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_setup)])
