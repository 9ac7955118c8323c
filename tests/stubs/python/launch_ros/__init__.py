"""Stand-in for the ROS 2 `launch_ros` package (not on PyPI): `actions.Node` and
`substitutions.FindPackageShare` / `FindPackagePrefix`, enough to evaluate a launch file.
Used only where the real package cannot be imported.
"""

from launch_ros import actions, substitutions

__all__ = ["actions", "substitutions"]
