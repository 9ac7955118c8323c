"""Group per-camera results by stamp without ever waiting on a silent or slow camera.

Pure Python, time is passed in (`now`, seconds on any monotonic clock), so the rules are
testable without ROS:

- A result joins the pending group whose reference stamp is within `slop_ns` of its stamp and
  which has no result from that camera yet; otherwise it opens a group (reference = its stamp,
  deadline = now + `max_wait_s`).
- A camera is *active* while its last result arrived less than `stale_after_s` ago; a camera
  not heard from yet counts as heard at the first result of any camera (so a camera that never
  answers is waited for only during the first `stale_after_s`).
- A group is complete when every active camera is in it (a camera that went silent stops
  being waited for). A group is emitted when complete or when its deadline passes, with the
  cameras it has.
- Groups leave in stamp order: emitting a group first emits every older pending group.
- A result for a stamp at or before the last emitted group's (plus slop) is *late*: it is
  refused and counted, never published out of order.
- At most `max_pending` groups wait; beyond that the oldest is emitted as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StampGroup:
    """Results of several cameras for one instant.

    Attributes:
        stamp_ns: reference stamp (the first result's), nanoseconds.
        items: camera -> its result.
        deadline: time (s, the caller's clock) after which it is emitted regardless.
    """

    stamp_ns: int
    deadline: float
    items: dict[str, Any] = field(default_factory=dict)


class StampGrouper:
    """Collects results per stamp (see the module docstring for the rules).

    Args:
        cameras: camera names, in a fixed order.
        slop_ns: largest stamp difference within one group, nanoseconds.
        max_wait_s: how long a group waits for missing cameras, seconds.
        stale_after_s: a camera silent this long is not waited for, seconds.
        max_pending: most groups waiting at once.
    """

    def __init__(
        self,
        cameras: list[str],
        slop_ns: int,
        max_wait_s: float,
        stale_after_s: float,
        max_pending: int = 32,
    ) -> None:
        if not cameras or len(set(cameras)) != len(cameras):
            raise ValueError(f"cameras must be a non-empty list of unique names, got {cameras}")
        if slop_ns < 0 or max_wait_s < 0 or stale_after_s <= 0 or max_pending < 1:
            raise ValueError(
                "slop_ns >= 0, max_wait_s >= 0, stale_after_s > 0 and max_pending >= 1 needed, "
                f"got {slop_ns}, {max_wait_s}, {stale_after_s}, {max_pending}"
            )
        self.cameras = list(cameras)
        self.slop_ns = int(slop_ns)
        self.max_wait_s = float(max_wait_s)
        self.stale_after_s = float(stale_after_s)
        self.max_pending = int(max_pending)
        self._pending: list[StampGroup] = []
        self._last_seen: dict[str, float] = {}
        self._last_emitted_ns: int | None = None
        self.late = dict.fromkeys(self.cameras, 0)

    def active(self, now: float) -> list[str]:
        """Cameras heard from within `stale_after_s` of `now`."""
        return [
            c
            for c in self.cameras
            if c in self._last_seen and now - self._last_seen[c] < self.stale_after_s
        ]

    def add(self, camera: str, stamp_ns: int, item: Any, now: float) -> bool:
        """Offer one camera's result; returns False (and counts it) when it is late.

        Raises:
            KeyError: an unknown camera name.
        """
        if camera not in self.late:
            raise KeyError(f"unknown camera {camera!r}; known: {self.cameras}")
        if not self._last_seen:
            self._last_seen = dict.fromkeys(self.cameras, now)
        self._last_seen[camera] = now
        if self._last_emitted_ns is not None and stamp_ns <= self._last_emitted_ns + self.slop_ns:
            self.late[camera] += 1
            return False
        for group in self._pending:
            if abs(stamp_ns - group.stamp_ns) <= self.slop_ns and camera not in group.items:
                group.items[camera] = item
                return True
        self._pending.append(StampGroup(stamp_ns, now + self.max_wait_s, {camera: item}))
        self._pending.sort(key=lambda g: g.stamp_ns)
        return True

    def pop_ready(self, now: float) -> list[StampGroup]:
        """Groups to publish now, oldest first (see the module docstring)."""
        active = set(self.active(now))
        last_ready = -1
        for i, group in enumerate(self._pending):
            complete = active.issubset(group.items)
            if complete or now >= group.deadline:
                last_ready = i
        last_ready = max(last_ready, len(self._pending) - self.max_pending - 1)
        out = self._pending[: last_ready + 1]
        self._pending = self._pending[last_ready + 1 :]
        if out:
            self._last_emitted_ns = out[-1].stamp_ns
        return out

    @property
    def pending(self) -> int:
        """Groups waiting."""
        return len(self._pending)
