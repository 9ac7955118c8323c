"""Launch description sources of the launch stand-in (Python launch files)."""

from __future__ import annotations

import importlib.util
from typing import Any

from launch._core import LaunchContext, LaunchDescription
from launch.utilities import normalize_to_list_of_substitutions, perform_substitutions

__all__ = ["PythonLaunchDescriptionSource", "get_launch_description_from_python_launch_file"]


def get_launch_description_from_python_launch_file(path: str) -> LaunchDescription:
    """Import a .launch.py file and call its generate_launch_description()."""
    spec = importlib.util.spec_from_file_location("launch_file", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"cannot load launch file {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


class PythonLaunchDescriptionSource:
    """A Python launch file, loaded when first needed."""

    def __init__(self, launch_file_path: Any) -> None:
        self._path = normalize_to_list_of_substitutions(launch_file_path)
        self.location: str | None = None

    def get_launch_description(self, context: LaunchContext) -> LaunchDescription:
        """Evaluate the path and load the description."""
        self.location = perform_substitutions(context, self._path)
        return get_launch_description_from_python_launch_file(self.location)
