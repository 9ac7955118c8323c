"""Stand-in for tf2_ros (not on PyPI): broadcasters, a Buffer and a TransformListener.

Used only where the real tf2_ros cannot be imported. Same names and call signatures as the
real Python API for what homae_ros uses:

- `TransformBroadcaster(node, qos=QoSProfile(depth=100))` -> `sendTransform(t or [t, ...])`
  publishes tf2_msgs/TFMessage on /tf.
- `StaticTransformBroadcaster(node, qos=transient local, depth 1)`: latched /tf_static; every
  call republishes all static transforms sent so far (by child frame).
- `Buffer(cache_time=Duration(seconds=10))`: `set_transform`, `set_transform_static`,
  `lookup_transform(target, source, time, timeout=Duration())`, `can_transform(...)`,
  `all_frames_as_string()`.
- `TransformListener(buffer, node, *, spin_thread=False, qos=None, static_qos=None)`.

Simplification (documented): no interpolation. For each edge of the chain the stored sample
NEAREST to the requested time is used, provided the time lies within the stored range widened
by `Buffer.tolerance` (default 10 ms); otherwise ExtrapolationException. `Time()` (zero) means
"latest": the newest sample of every edge. Static transforms hold at every time.
A `timeout` only helps when another thread spins the listener's node (as with the real one).
"""

from __future__ import annotations

import threading
import time as _time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Buffer",
    "ConnectivityException",
    "ExtrapolationException",
    "InvalidArgumentException",
    "LookupException",
    "StaticTransformBroadcaster",
    "TimeoutException",
    "TransformBroadcaster",
    "TransformException",
    "TransformListener",
]


class TransformException(Exception):
    """Base of every tf2 lookup error."""


class LookupException(TransformException):
    """A frame is unknown to the buffer."""


class ConnectivityException(TransformException):
    """Both frames are known but not connected in one tree."""


class ExtrapolationException(TransformException):
    """The requested time is outside the stored data of an edge."""


class InvalidArgumentException(TransformException):
    """A bad frame id or time."""


class TimeoutException(TransformException):
    """Waited `timeout` without the transform becoming available."""


def _tf_msg_type() -> Any:
    try:
        from tf2_msgs.msg import TFMessage
    except ImportError as e:
        raise ImportError(
            "tf2_ros stand-in needs tf2_msgs: build tests/stubs/ros/tf2_msgs (make setup does "
            "this when no real tf2_msgs is installed) and source install/setup.bash"
        ) from e
    return TFMessage


def _stamp_ns(stamp: Any) -> int:
    """builtin_interfaces/Time, rclpy Time or int ns -> int nanoseconds."""
    if isinstance(stamp, int):
        return stamp
    if hasattr(stamp, "nanoseconds"):
        return int(stamp.nanoseconds)
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _duration_ns(d: Any) -> int:
    if d is None:
        return 0
    if isinstance(d, (int, float)):
        return int(d * 1e9)
    return int(d.nanoseconds)


# ----------------------------------------------------------------------------- broadcasters
class TransformBroadcaster:
    """Publishes transforms on /tf (tf2_msgs/TFMessage)."""

    def __init__(self, node: Any, qos: Any = None) -> None:
        from rclpy.qos import QoSProfile

        self._pub = node.create_publisher(
            _tf_msg_type(), "/tf", qos if qos is not None else QoSProfile(depth=100)
        )

    def sendTransform(self, transform: Any) -> None:
        """Publish one TransformStamped or a list of them in one TFMessage."""
        items = list(transform) if isinstance(transform, (list, tuple)) else [transform]
        self._pub.publish(_tf_msg_type()(transforms=items))


class StaticTransformBroadcaster:
    """Publishes latched transforms on /tf_static (transient local)."""

    def __init__(self, node: Any, qos: Any = None) -> None:
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile

        if qos is None:
            qos = QoSProfile(
                depth=1,
                durability=DurabilityPolicy.TRANSIENT_LOCAL,
                history=HistoryPolicy.KEEP_LAST,
            )
        self._pub = node.create_publisher(_tf_msg_type(), "/tf_static", qos)
        self._static: dict[str, Any] = {}

    def sendTransform(self, transform: Any) -> None:
        """Add/replace static transforms (by child frame) and republish all of them."""
        items = list(transform) if isinstance(transform, (list, tuple)) else [transform]
        for t in items:
            self._static[t.child_frame_id] = t
        self._pub.publish(_tf_msg_type()(transforms=list(self._static.values())))


# ----------------------------------------------------------------------------- math
def _qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def _qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    qv = np.array([v[0], v[1], v[2], 0.0])
    conj = np.array([-q[0], -q[1], -q[2], q[3]])
    return _qmul(_qmul(q, qv), conj)[:3]


@dataclass
class _Rigid:
    """x_parent = rotate(q, x_child) + t."""

    t: np.ndarray = field(default_factory=lambda: np.zeros(3))
    q: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 0.0, 1.0]))

    def compose(self, other: _Rigid) -> _Rigid:
        """self * other (apply other first)."""
        return _Rigid(self.t + _qrot(self.q, other.t), _qmul(self.q, other.q))

    def inverse(self) -> _Rigid:
        conj = np.array([-self.q[0], -self.q[1], -self.q[2], self.q[3]])
        return _Rigid(-_qrot(conj, self.t), conj)


@dataclass
class _Edge:
    parent: str
    static: bool
    samples: list[tuple[int, _Rigid]] = field(default_factory=list)  # sorted by stamp


# ----------------------------------------------------------------------------- buffer
class Buffer:
    """Stores transforms and answers lookups between frames (see module notes)."""

    def __init__(self, cache_time: Any = None, node: Any = None) -> None:
        self.cache_ns = _duration_ns(cache_time) if cache_time is not None else 10 * 10**9
        self.tolerance = 0.01  # s, how far outside the stored time range "nearest" still applies
        self._edges: dict[str, _Edge] = {}
        self._cond = threading.Condition()

    # -- filling
    def set_transform(self, transform: Any, authority: str) -> bool:
        """Store one TransformStamped (dynamic)."""
        return self._store(transform, static=False)

    def set_transform_static(self, transform: Any, authority: str) -> bool:
        """Store one TransformStamped valid at every time."""
        return self._store(transform, static=True)

    def _store(self, t: Any, static: bool) -> bool:
        parent = t.header.frame_id.lstrip("/")
        child = t.child_frame_id.lstrip("/")
        if not parent or not child or parent == child:
            return False
        tr, rot = t.transform.translation, t.transform.rotation
        q = np.array([rot.x, rot.y, rot.z, rot.w], dtype=np.float64)
        n = np.linalg.norm(q)
        if not np.isfinite(n) or n < 1e-9:
            return False
        rigid = _Rigid(np.array([tr.x, tr.y, tr.z], dtype=np.float64), q / n)
        stamp = _stamp_ns(t.header.stamp)
        with self._cond:
            edge = self._edges.get(child)
            if edge is None or edge.parent != parent or edge.static != static:
                edge = self._edges[child] = _Edge(parent, static)
            if static:
                edge.samples = [(0, rigid)]
            else:
                edge.samples = [s for s in edge.samples if s[0] != stamp]
                edge.samples.append((stamp, rigid))
                edge.samples.sort(key=lambda s: s[0])
                newest = edge.samples[-1][0]
                edge.samples = [s for s in edge.samples if s[0] >= newest - self.cache_ns]
            self._cond.notify_all()
        return True

    # -- queries
    def all_frames_as_string(self) -> str:
        """One line per known edge: 'Frame <child> exists with parent <parent>.'."""
        with self._cond:
            return "".join(
                f"Frame {c} exists with parent {e.parent}.\n"
                for c, e in sorted(self._edges.items())
            )

    def _chain(self, frame: str) -> list[str]:
        """frame, its parent, ..., the root."""
        chain = [frame]
        while chain[-1] in self._edges and len(chain) <= len(self._edges) + 1:
            chain.append(self._edges[chain[-1]].parent)
        return chain

    def _sample(self, child: str, when: int) -> _Rigid:
        edge = self._edges[child]
        if edge.static:
            return edge.samples[0][1]
        if when == 0:
            return edge.samples[-1][1]
        tol = int(self.tolerance * 1e9)
        oldest, newest = edge.samples[0][0], edge.samples[-1][0]
        if when < oldest - tol or when > newest + tol:
            raise ExtrapolationException(
                f"Lookup would require extrapolation: requested time {when * 1e-9:.9f} but the "
                f"data of '{child}' -> '{edge.parent}' spans [{oldest * 1e-9:.9f}, "
                f"{newest * 1e-9:.9f}]"
            )
        return min(edge.samples, key=lambda s: abs(s[0] - when))[1]

    def _to_root(self, chain: list[str], upto: str, when: int) -> _Rigid:
        """Transform from chain[0] to `upto` (an ancestor), x_upto = T x_frame."""
        out = _Rigid()
        for frame in chain:
            if frame == upto:
                return out
            out = self._sample(frame, when).compose(out)
        return out

    def _lookup_now(self, target: str, source: str, when: int) -> _Rigid:
        target, source = target.lstrip("/"), source.lstrip("/")
        if not target or not source:
            raise InvalidArgumentException("frame ids must not be empty")
        if target == source:
            return _Rigid()
        known = set(self._edges) | {e.parent for e in self._edges.values()}
        for f in (target, source):
            if f not in known:
                raise LookupException(f'"{f}" passed to lookupTransform argument does not exist.')
        tchain, schain = self._chain(target), self._chain(source)
        common = next((f for f in schain if f in tchain), None)
        if common is None:
            raise ConnectivityException(
                f"Could not find a connection between '{target}' and '{source}' because they "
                "are not part of the same tree."
            )
        source_to_common = self._to_root(schain, common, when)
        target_to_common = self._to_root(tchain, common, when)
        return target_to_common.inverse().compose(source_to_common)

    def lookup_transform(
        self, target_frame: str, source_frame: str, time: Any, timeout: Any = None
    ) -> Any:
        """TransformStamped taking points from `source_frame` to `target_frame` at `time`.

        Raises:
            LookupException, ConnectivityException, ExtrapolationException,
            InvalidArgumentException (after waiting up to `timeout`).
        """
        from geometry_msgs.msg import TransformStamped

        when = _stamp_ns(time)
        deadline = _time.monotonic() + _duration_ns(timeout) * 1e-9
        with self._cond:
            while True:
                try:
                    rigid = self._lookup_now(target_frame, source_frame, when)
                    break
                except TransformException:
                    remaining = deadline - _time.monotonic()
                    if remaining <= 0:
                        raise
                    self._cond.wait(min(remaining, 0.01))
        out = TransformStamped()
        out.header.frame_id = target_frame
        out.child_frame_id = source_frame
        out.header.stamp.sec, out.header.stamp.nanosec = divmod(when, 1_000_000_000)
        out.transform.translation.x, out.transform.translation.y, out.transform.translation.z = (
            float(v) for v in rigid.t
        )
        r = out.transform.rotation
        r.x, r.y, r.z, r.w = (float(v) for v in rigid.q)
        return out

    def can_transform(
        self,
        target_frame: str,
        source_frame: str,
        time: Any,
        timeout: Any = None,
        return_debug_tuple: bool = False,
    ) -> Any:
        """True if `lookup_transform` would succeed (within `timeout`)."""
        try:
            self.lookup_transform(target_frame, source_frame, time, timeout)
        except TransformException as e:
            return (False, str(e)) if return_debug_tuple else False
        return (True, "") if return_debug_tuple else True


# ----------------------------------------------------------------------------- listener
class TransformListener:
    """Subscribes to /tf and /tf_static and fills a Buffer."""

    def __init__(
        self,
        buffer: Buffer,
        node: Any,
        *,
        spin_thread: bool = False,
        qos: Any = None,
        static_qos: Any = None,
    ) -> None:
        from rclpy.qos import DurabilityPolicy, QoSProfile

        self.buffer = buffer
        self.node = node
        msg_type = _tf_msg_type()
        qos = qos if qos is not None else QoSProfile(depth=100)
        if static_qos is None:
            static_qos = QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.tf_sub = node.create_subscription(msg_type, "/tf", self._callback, qos)
        self.tf_static_sub = node.create_subscription(
            msg_type, "/tf_static", self._static_callback, static_qos
        )
        self._executor = None
        self._thread = None
        if spin_thread:
            from rclpy.executors import SingleThreadedExecutor

            self._executor = SingleThreadedExecutor(context=node.context)
            self._executor.add_node(node)
            self._thread = threading.Thread(target=self._executor.spin, daemon=True)
            self._thread.start()

    def _callback(self, msg: Any) -> None:
        for t in msg.transforms:
            self.buffer.set_transform(t, "default_authority")

    def _static_callback(self, msg: Any) -> None:
        for t in msg.transforms:
            self.buffer.set_transform_static(t, "default_authority")

    def unregister(self) -> None:
        """Destroy the subscriptions (and the spin thread's executor)."""
        if self._executor is not None:
            self._executor.shutdown()
        self.node.destroy_subscription(self.tf_sub)
        self.node.destroy_subscription(self.tf_static_sub)
