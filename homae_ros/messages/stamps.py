"""Input plumbing: the newest-frame mailbox and the image / camera_info pairing rule (no model).

`LatestFrame` is how the node keeps latency bounded: one slot, the newest frame replaces an
unprocessed older one (counted as dropped).

Image and camera_info are paired by ONE rule, `nearest_stamp`: the camera_info whose header
stamp is nearest the image's, if it lies within the slop (0 = equal stamps only). The node
applies it live with `StampPairer` (where message_filters is not installed: ROS 2 from PyPI
wheels); `homae-bag` applies it to a whole recording with `StampIndex`, which also offers the
bag tool's loose fallback (the latest camera_info logged before the image), reported as such.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class Frame:
    """One synchronised input, as received."""

    image: Any  # sensor_msgs/Image
    info: Any  # sensor_msgs/CameraInfo
    received: float  # time.monotonic() at arrival


class LatestFrame:
    """A one-slot mailbox: `put` replaces what waits (counting it dropped), `take` blocks."""

    def __init__(self) -> None:
        """Empty slot."""
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._closed = False
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        """Offer the newest frame; an unprocessed older one is dropped."""
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify()

    def take(self, timeout: float = 0.5) -> Frame | None:
        """The waiting frame (emptying the slot), or None after `timeout` or when closed."""
        with self._cond:
            if self._frame is None and not self._closed:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            return frame

    def close(self) -> None:
        """Wake the worker for shutdown."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        """Accept frames again after `close` (a frame still waiting counts as dropped)."""
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = None
            self._closed = False


def stamp_ns(header: Any) -> int:
    """A std_msgs/Header's stamp in integer nanoseconds (rclpy or rosbags messages alike)."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def nearest_stamp(stamps: Sequence[int], t: int, slop_ns: int) -> int | None:
    """The pairing rule: index of the stamp nearest `t` if within `slop_ns`, else None.

    Args:
        stamps: candidate stamps (ns), in any order; on a tie the first one wins.
        t: the stamp to pair (ns).
        slop_ns: largest |stamp - t| accepted (ns); 0 pairs equal stamps only.

    Returns:
        The index into `stamps`, or None when no stamp is close enough.
    """
    best = min(range(len(stamps)), key=lambda i: abs(stamps[i] - t), default=None)
    if best is None or abs(stamps[best] - t) > slop_ns:
        return None
    return best


class StampPairer:
    """Pairs each image with the camera_info of the same stamp (within `slop_s`).

    The stand-in for message_filters' synchronisers where that package is not installed. Up to
    `depth` unpaired messages of each kind wait (older ones are forgotten); a match forgets
    everything older than it.
    """

    def __init__(self, slop_s: float, callback: Any, depth: int = 10) -> None:
        """`callback(image, info)` is called (outside the lock) for every pair."""
        self._slop_ns = round(slop_s * 1e9)
        self._callback = callback
        self._waiting: dict[str, deque[Any]] = {
            "image": deque(maxlen=depth),
            "info": deque(maxlen=depth),
        }
        self._lock = threading.Lock()

    def add_image(self, msg: Any) -> None:
        """Offer an image."""
        self._add("image", "info", msg)

    def add_info(self, msg: Any) -> None:
        """Offer a camera_info."""
        self._add("info", "image", msg)

    def waiting(self) -> int:
        """Unpaired messages held (bounded by 2 x depth)."""
        return sum(len(q) for q in self._waiting.values())

    def _add(self, kind: str, other: str, msg: Any) -> None:
        t = stamp_ns(msg.header)
        with self._lock:
            candidates = list(self._waiting[other])
            i = nearest_stamp([stamp_ns(m.header) for m in candidates], t, self._slop_ns)
            if i is None:
                self._waiting[kind].append(msg)
                return
            best = candidates[i]
            newest = max(t, stamp_ns(best.header))
            for queue in self._waiting.values():  # forget the match and everything older
                kept = [m for m in queue if stamp_ns(m.header) > newest]
                queue.clear()
                queue.extend(kept)
        image, info = (msg, best) if kind == "image" else (best, msg)
        self._callback(image, info)


SYNC_RULES = ("approximate", "exact", "latest_camera_info", "approximate_or_latest")
"""How `StampIndex.match` pairs: the node's three `sync` modes, and a loose offline one."""


class StampIndex:
    """Messages of a whole recording by header stamp and log time, paired by `nearest_stamp`.

    The offline counterpart of `StampPairer` (homae-bag): `match` gives the message the node's
    rule pairs with an image ("exact" for an equal stamp, "nearest" within the tolerance), or
    with rule "approximate_or_latest", failing that, the latest one logged before the image
    ("latest": a loose pairing, which the caller reports).
    """

    def __init__(self, entries: Sequence[tuple[int, int, Any]], tolerance_ns: int) -> None:
        """Index (stamp_ns, log_time_ns, msg) entries; `tolerance_ns` is the rule's slop."""
        by_stamp = sorted(entries, key=lambda e: e[0])
        self._stamps = [e[0] for e in by_stamp]
        self._by_stamp = [e[2] for e in by_stamp]
        by_log = sorted(entries, key=lambda e: e[1])
        self._logs = [e[1] for e in by_log]
        self._by_log = [e[2] for e in by_log]
        self.tolerance_ns = tolerance_ns

    def __len__(self) -> int:
        """Number of indexed messages."""
        return len(self._stamps)

    def match(
        self, stamp_ns: int, log_ns: int, rule: str = "approximate_or_latest"
    ) -> tuple[Any, str] | None:
        """(message, "exact" | "nearest" | "latest") for an image stamped `stamp_ns`, or None.

        Args:
            stamp_ns: the image's header stamp (ns).
            log_ns: the image's log (receive) time in the recording (ns).
            rule: one of `SYNC_RULES`: the node's "approximate" (nearest stamp within the
                tolerance), "exact" (equal stamps) and "latest_camera_info" (the latest one
                logged before the image, whatever its stamp), or "approximate_or_latest"
                (approximate, failing that the latest logged before: a loose pairing).

        Raises:
            ValueError: an unknown rule.
        """
        if rule not in SYNC_RULES:
            raise ValueError(f"sync rule {rule!r}; valid: {', '.join(SYNC_RULES)}")
        if rule != "latest_camera_info":
            i = bisect_left(self._stamps, stamp_ns)
            near = [j for j in (i - 1, i) if 0 <= j < len(self._stamps)]  # the neighbours
            tolerance = 0 if rule == "exact" else self.tolerance_ns
            k = nearest_stamp([self._stamps[j] for j in near], stamp_ns, tolerance)
            if k is not None:
                j = near[k]
                return self._by_stamp[j], "exact" if self._stamps[j] == stamp_ns else "nearest"
            if rule != "approximate_or_latest":
                return None
        k = bisect_right(self._logs, log_ns) - 1
        if k >= 0:
            return self._by_log[k], "latest"
        return None

    def nearest_offset_ns(self, stamp_ns: int) -> int | None:
        """Signed stamp difference (ns) of the nearest indexed message to `stamp_ns`, or None."""
        if not self._stamps:
            return None
        i = bisect_left(self._stamps, stamp_ns)
        near = [self._stamps[j] - stamp_ns for j in (i - 1, i) if 0 <= j < len(self._stamps)]
        return min(near, key=abs)
