"""Helpers for tests that run real rclpy nodes over loopback."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import pytest


def require_ros() -> None:
    """Fail with a clear reason when rclpy or the generated messages are missing.

    Under `make test` both must exist; a plain pytest run outside the ROS environment skips.
    """
    try:
        import rclpy  # noqa: F401

        from homae_ros.msg import HandObjectResult  # noqa: F401
    except ImportError as err:  # pragma: no cover - depends on the environment
        pytest.skip(f"ROS environment not available ({err}); run through `make test`")


def spin_until(executor, predicate: Callable[[], bool], timeout_s: float = 15.0) -> bool:
    """Spin `executor` until `predicate()` is true or `timeout_s` passes; returns predicate()."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        executor.spin_once(timeout_sec=0.05)
    return predicate()


def read_until(proc: subprocess.Popen, needle: str, timeout_s: float = 90.0) -> list[str]:
    """Lines of a child's (text) stdout up to the first holding `needle`, its end or the timeout."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            break
    return lines
