"""Stand-in for the ROS 2 `launch` package (not on PyPI): enough to import and evaluate a
Python launch file without starting anything.

Real names: `LaunchDescription`, `LaunchContext`, `Substitution`, `Action`, `Condition`,
`actions.{DeclareLaunchArgument, IncludeLaunchDescription, GroupAction, LogInfo,
OpaqueFunction}`,
`conditions.{IfCondition, UnlessCondition}`, `substitutions.{LaunchConfiguration,
PathJoinSubstitution, TextSubstitution, EnvironmentVariable}`,
`launch_description_sources.PythonLaunchDescriptionSource`, `utilities.perform_substitutions`.
Stand-in only: `launch.evaluate(description, launch_arguments) -> executed actions`.
Used only where the real package cannot be imported.
"""

from launch import actions, conditions, launch_description_sources, substitutions, utilities
from launch._core import (
    Action,
    Condition,
    LaunchContext,
    LaunchDescription,
    Substitution,
    SubstitutionFailure,
    evaluate,
)

__all__ = [
    "Action",
    "Condition",
    "LaunchContext",
    "LaunchDescription",
    "Substitution",
    "SubstitutionFailure",
    "actions",
    "conditions",
    "evaluate",
    "launch_description_sources",
    "substitutions",
    "utilities",
]
