"""Stand-in for message_filters (not on PyPI), used only where the real one is missing.

Same names and call signatures as the real ROS 2 Python API:

- `SimpleFilter`: `registerCallback(cb, *args) -> connection id`, `signalMessage(*msgs)`.
- `Subscriber(node, msg_type, topic, qos_profile=10, **kwargs)`: a filter fed by a
  subscription (note: the real default `qos_profile=10` is RELIABLE, depth 10: a camera that
  publishes BEST_EFFORT is never heard; pass sensor-data QoS). `getTopic()`, `.sub`.
- `TimeSynchronizer(fs, queue_size)`: emits one message per input when all inputs have a
  message with exactly the same header stamp. `connectInput(fs)` (re)connects the inputs.
- `ApproximateTimeSynchronizer(fs, queue_size, slop, allow_headerless=False)`: emits when,
  around the newest message, every other input has a message within `slop` seconds (the
  nearest one is taken) and the whole set spans at most `slop`. After a match the matched
  messages and everything older in each queue are dropped, so output stamps never go back in
  time. Headerless messages (allow_headerless=True) are stamped with the ROS clock's now.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "ApproximateTimeSynchronizer",
    "SimpleFilter",
    "Subscriber",
    "TimeSynchronizer",
]


class SimpleFilter:
    """A message source other filters and user callbacks can connect to."""

    def __init__(self) -> None:
        self.callbacks: dict[int, tuple[Callable[..., Any], tuple[Any, ...]]] = {}

    def registerCallback(self, cb: Callable[..., Any], *args: Any) -> int:
        """Call `cb(*msgs, *args)` for every output; returns a connection id."""
        conn = len(self.callbacks)
        self.callbacks[conn] = (cb, args)
        return conn

    def signalMessage(self, *msg: Any) -> None:
        """Deliver `msg` to every registered callback."""
        for cb, args in list(self.callbacks.values()):
            cb(*(msg + args))


class Subscriber(SimpleFilter):
    """A filter whose input is an rclpy subscription."""

    def __init__(self, node: Any, msg_type: Any, topic: str, **kwargs: Any) -> None:
        super().__init__()
        self.node = node
        self.topic = topic
        kwargs.setdefault("qos_profile", 10)
        self.sub = node.create_subscription(msg_type, topic, self.callback, **kwargs)

    def callback(self, msg: Any) -> None:
        """Subscription callback: pass the message on."""
        self.signalMessage(msg)

    def getTopic(self) -> str:
        """The topic name given at construction."""
        return self.topic

    def __getattr__(self, key: str) -> Any:
        """Everything else comes from the underlying subscription (like the real class)."""
        if key == "sub":
            raise AttributeError(key)
        return getattr(self.sub, key)


def _stamp_ns(msg: Any, allow_headerless: bool) -> int:
    header = getattr(msg, "header", None)
    if header is None:
        if not allow_headerless:
            raise ValueError(
                f"{type(msg).__name__} has no header; pass allow_headerless=True to stamp it "
                "with the arrival time"
            )
        from rclpy.clock import ROSClock

        return ROSClock().now().nanoseconds
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


class TimeSynchronizer(SimpleFilter):
    """Emits sets of messages (one per input) whose header stamps are exactly equal."""

    def __init__(self, fs: Sequence[SimpleFilter], queue_size: int) -> None:
        super().__init__()
        self.queue_size = int(queue_size)
        self.lock = threading.Lock()
        self.allow_headerless = False
        self.connectInput(fs)

    def connectInput(self, fs: Sequence[SimpleFilter]) -> None:
        """Use `fs` as the inputs (one queue each)."""
        self.queues: list[dict[int, Any]] = [{} for _ in fs]
        self.input_connections = [
            f.registerCallback(self.add, q, i)
            for i, (f, q) in enumerate(zip(fs, self.queues, strict=True))
        ]

    def _push(self, msg: Any, queue: dict[int, Any]) -> int:
        stamp = _stamp_ns(msg, self.allow_headerless)
        queue[stamp] = msg
        while len(queue) > self.queue_size:
            del queue[min(queue)]
        return stamp

    def add(self, msg: Any, my_queue: dict[int, Any], my_queue_index: int | None = None) -> None:
        """Input callback: queue `msg`, emit every complete set of equal stamps."""
        with self.lock:
            self._push(msg, my_queue)
            common = set(self.queues[0]).intersection(*self.queues[1:])
            ready = []
            for stamp in sorted(common):
                ready.append([q.pop(stamp) for q in self.queues])
        for msgs in ready:
            self.signalMessage(*msgs)


class ApproximateTimeSynchronizer(TimeSynchronizer):
    """Emits sets of messages whose stamps lie within `slop` seconds of each other."""

    def __init__(
        self,
        fs: Sequence[SimpleFilter],
        queue_size: int,
        slop: float,
        allow_headerless: bool = False,
    ) -> None:
        super().__init__(fs, queue_size)
        self.slop = float(slop)
        self.allow_headerless = allow_headerless

    def add(self, msg: Any, my_queue: dict[int, Any], my_queue_index: int | None = None) -> None:
        """Input callback: queue `msg`, emit the set around it if one is within slop."""
        slop_ns = round(self.slop * 1e9)
        with self.lock:
            pivot = self._push(msg, my_queue)
            if pivot not in my_queue:  # dropped at once: older than a full queue
                return
            chosen: list[int] = []
            for i, queue in enumerate(self.queues):
                if i == my_queue_index or queue is my_queue:
                    chosen.append(pivot)
                    continue
                near = [s for s in queue if abs(s - pivot) <= slop_ns]
                if not near:
                    return
                chosen.append(min(near, key=lambda s: abs(s - pivot)))
            if max(chosen) - min(chosen) > slop_ns:
                return
            msgs = [q[s] for q, s in zip(self.queues, chosen, strict=True)]
            for q, s in zip(self.queues, chosen, strict=True):
                for old in [k for k in q if k <= s]:
                    del q[old]
        self.signalMessage(*msgs)
