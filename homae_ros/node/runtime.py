"""CPU threading of homae_node: torch's intra-op pool and the executor's threads.

On a small machine torch's intra-op threads, the executor's threads and the worker compete
for the same cores; the camera callbacks then starve and frames are lost before the node sees
them. `torch_threads` leaves one core to the executor and callbacks; the executor gets one
thread per callback group of the node (`EXECUTOR_THREADS`), as more threads cannot run the
node's mutually exclusive groups any faster.
"""

from __future__ import annotations

import os

__all__ = ["EXECUTOR_THREADS", "configure_torch_threads", "torch_threads"]

EXECUTOR_THREADS = 2
"""The node's callback groups: input (image + camera_info) and the rest (timer, parameters)."""


def torch_threads(requested: int, cpu_count: int | None = None) -> int:
    """Threads for torch's intra-op pool.

    Args:
        requested: the `torch_threads` parameter; 0 = auto.
        cpu_count: cores available (None = this process's affinity, else os.cpu_count()).

    Returns:
        `requested` when > 0, else all cores but one, at least 1.
    """
    if requested > 0:
        return int(requested)
    if cpu_count is None:
        try:
            cpu_count = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # pragma: no cover - not Linux
            cpu_count = os.cpu_count() or 1
    return max(1, int(cpu_count) - 1)


def configure_torch_threads(requested: int) -> int:
    """Set torch's intra-op threads (before the model loads); returns the number set."""
    import torch

    n = torch_threads(requested)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
