"""The /diagnostics level of homae_node from a recent window, not from cumulative counters.

`RecentErrors` remembers when each skipped frame happened (bounded); the level is WARN while
any happened within the last `window_s` seconds and OK again afterwards, so one bad frame does
not leave the node at WARN forever. The cumulative counters stay in the status values.
"""

from __future__ import annotations

import threading
from collections import Counter, deque

__all__ = ["RecentErrors"]


class RecentErrors:
    """Times and reasons of recent errors (at most `max_items`), thread-safe.

    Args:
        max_items: most remembered events (older ones are forgotten first).
    """

    def __init__(self, max_items: int = 256) -> None:
        self._events: deque[tuple[float, str]] = deque(maxlen=max_items)
        self._lock = threading.Lock()

    def add(self, now: float, reason: str) -> None:
        """Record one error at monotonic time `now` (s)."""
        with self._lock:
            self._events.append((now, reason))

    def recent(self, now: float, window_s: float) -> Counter[str]:
        """{reason: count} of the errors within the last `window_s` seconds before `now`."""
        with self._lock:
            return Counter(r for t, r in self._events if now - t <= window_s)

    def __len__(self) -> int:
        """Remembered events."""
        return len(self._events)

    @property
    def maxlen(self) -> int:
        """The bound on remembered events."""
        return int(self._events.maxlen or 0)
