"""Running a homae node process: start, spin until SIGINT/SIGTERM, shut down quietly.

Shared by `homae_node` and `homae_lifecycle_node`. Under `ros2 launch`, Ctrl-C sends SIGINT to
the whole process group and launch itself forwards one more, so the node usually gets two: the
first stops the executor, a second one arriving while the node shuts down is absorbed (SIGINT
and SIGTERM are ignored from then on, and a KeyboardInterrupt already raised is caught), so the
process exits 0 without a traceback.
"""

from __future__ import annotations

import gc
import signal
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

from homae_ros.node.runtime import EXECUTOR_THREADS

__all__ = ["absorb_signals", "run_node", "start_error"]


def absorb_signals() -> None:
    """Ignore SIGINT and SIGTERM from now on (the process is already shutting down)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, signal.SIG_IGN)
        except (ValueError, OSError):  # pragma: no cover - not the main thread
            pass


def _quietly(step: Callable[[], Any]) -> None:
    """Run one shutdown step; a signal that interrupts it does not stop the others."""
    try:
        step()
    except KeyboardInterrupt:
        pass


def start_error(err: BaseException) -> str:
    """One line for a failure to start: the message (it names the parameter), or the type."""
    if isinstance(err, (FileNotFoundError, ValueError, RuntimeError)):
        return str(err)
    return f"{type(err).__name__}: {err}"  # anything else: one clear line, not a traceback


def _run(make_node: Callable[[], Any], name: str, argv: list[str]) -> int:
    rclpy.init(args=argv)
    # Made before the node, so a signal during the (slow) model load finds it ready to stop.
    executor = MultiThreadedExecutor(num_threads=EXECUTOR_THREADS)
    try:
        node = make_node()
    except Exception as err:
        absorb_signals()
        if not rclpy.ok():  # SIGINT/SIGTERM arrived while starting: an ordinary stop
            _quietly(lambda: executor.shutdown(timeout_sec=1.0))
            return 0
        rclpy.logging.get_logger(name).error(f"cannot start: {start_error(err)}")
        _quietly(lambda: executor.shutdown(timeout_sec=1.0))
        _quietly(rclpy.try_shutdown)
        return 1
    try:
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():  # a real failure; after a signal, rclpy's own teardown errors are not
            raise
    finally:
        absorb_signals()
        _quietly(node.close)
        _quietly(lambda: executor.shutdown(timeout_sec=1.0))
        _quietly(node.destroy_node)
        _quietly(rclpy.try_shutdown)
        absorb_signals()  # rclpy's shutdown restores the handlers it replaced
        # Everything is released; keep the interpreter's teardown from walking every torch
        # object with the cyclic GC (seconds on a busy machine): exit within 2 s of SIGTERM.
        gc.freeze()
    return 0


def run_node(make_node: Callable[[], Any], name: str, argv: list[str]) -> int:
    """Run the node `make_node()` returns until SIGINT/SIGTERM.

    Args:
        make_node: builds the node (after rclpy.init); it must have `close()`.
        name: logger name for a start failure.
        argv: the process arguments (ROS arguments included).

    Returns:
        0 after a signal (however many arrive during shutdown), 1 when the node cannot start
        (one line naming the parameter is logged).
    """
    try:
        return _run(make_node, name, argv)
    except KeyboardInterrupt:  # a signal between two shutdown steps: still an ordinary stop
        absorb_signals()
        return 0
