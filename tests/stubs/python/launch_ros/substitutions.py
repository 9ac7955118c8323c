"""Substitutions of the launch_ros stand-in."""

from __future__ import annotations

from typing import Any

from launch.utilities import normalize_to_list_of_substitutions, perform_substitutions

from launch import LaunchContext, Substitution

__all__ = ["FindPackagePrefix", "FindPackageShare"]


class FindPackagePrefix(Substitution):
    """Install prefix of a package, from the ament index (AMENT_PREFIX_PATH)."""

    def __init__(self, package: Any) -> None:
        self.package = normalize_to_list_of_substitutions(package)

    def find(self, package_name: str) -> str:
        """Look the package up (raises ament_index_python's PackageNotFoundError)."""
        from ament_index_python.packages import get_package_prefix

        return get_package_prefix(package_name)

    def perform(self, context: LaunchContext) -> str:
        return self.find(perform_substitutions(context, self.package))


class FindPackageShare(FindPackagePrefix):
    """`<prefix>/share/<package>` of a package, from the ament index."""

    def find(self, package_name: str) -> str:
        from ament_index_python.packages import get_package_share_directory

        return get_package_share_directory(package_name)
