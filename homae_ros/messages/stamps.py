"""Input plumbing of the node: the newest-frame mailbox and a stamp pairer (no model code).

`LatestFrame` is how the node keeps latency bounded: one slot, the newest frame replaces an
unprocessed older one (counted as dropped). `StampPairer` pairs image and camera_info by stamp
where message_filters is not installed (ROS 2 from PyPI wheels).
"""

from __future__ import annotations

import threading
from collections import deque
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


def stamp_ns(header: Any) -> int:
    """A std_msgs/Header's stamp in integer nanoseconds (rclpy or rosbags messages alike)."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


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
            candidates = self._waiting[other]
            best = min(candidates, key=lambda m: abs(stamp_ns(m.header) - t), default=None)
            if best is None or abs(stamp_ns(best.header) - t) > self._slop_ns:
                self._waiting[kind].append(msg)
                return
            newest = max(t, stamp_ns(best.header))
            for queue in self._waiting.values():  # forget the match and everything older
                kept = [m for m in queue if stamp_ns(m.header) > newest]
                queue.clear()
                queue.extend(kept)
        image, info = (msg, best) if kind == "image" else (best, msg)
        self._callback(image, info)
