"""Stop a training run cleanly on SIGINT / SIGTERM: checkpoint between steps, then stop."""

from __future__ import annotations

import signal
from typing import Any


class StopRequest:
    """SIGINT / SIGTERM set a flag; the loop checkpoints between steps and stops."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        del frame
        if self.requested:  # second signal: give up immediately
            raise KeyboardInterrupt(f"signal {signum}")
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
