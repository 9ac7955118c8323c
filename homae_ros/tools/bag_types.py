"""rosbags side of the bag tool: typestore, message stand-ins, message -> dataclass, writer.

`homae-bag` reads and writes rosbag2 files with the `rosbags` library, so it runs without a
ROS 2 install. The output messages are still built by the project's own builders
(`homae_ros.messages.outputs` -> messages.py / markers.py / conversions.py), which import message
classes such as `geometry_msgs.msg.Point` at call time:

- where the real (rclpy) message packages import, they are used as they are;
- where one does not (no ROS, or `homae_ros.msg` not built by colcon), `standin_messages`
  registers, for the duration of a `with` block, modules of the same names whose classes are
  the typestore's dataclasses with every field defaulted (`Point()` works, constants such as
  `Marker.DELETEALL` are there).

Either way `to_rosbags` copies the finished message, field by field as the typestore defines
them, into the typestore's dataclasses for `Typestore.serialize_cdr`; `BagWriter` writes them
(and copies input connections through with their own definitions).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.interfaces import MessageDefinitionFormat, Nodetype
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

__all__ = [
    "MSG_DIR",
    "BagWriter",
    "make_typestore",
    "message_class",
    "register_connection_types",
    "standin_messages",
    "to_rosbags",
]

MSG_DIR = Path(__file__).resolve().parents[2] / "msg"
"""The project's .msg files (homae_ros/msg/*)."""

_DTYPES: dict[str, type] = {
    "bool": np.bool_,
    "byte": np.uint8,
    "char": np.uint8,
    "octet": np.uint8,
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "uint16": np.uint16,
    "int32": np.int32,
    "uint32": np.uint32,
    "int64": np.int64,
    "uint64": np.uint64,
    "float32": np.float32,
    "float64": np.float64,
}
_STRINGS = ("string", "wstring")
_EMPTY_FIELD = "structure_needs_at_least_one_member"
_FIELD_DEFAULTS: dict[str, dict[str, Any]] = {
    "geometry_msgs/msg/Quaternion": {"w": 1.0},
    "sensor_msgs/msg/NavSatStatus": {"status": -2},
}
"""Non-zero defaults of .msg definitions (the typestore does not keep them); rclpy has them."""


def _msg_files() -> list[Path]:
    """The project's .msg files: the source tree's, else the installed share/ copy."""
    files = sorted(MSG_DIR.glob("*.msg"))
    if files:
        return files
    try:
        from ament_index_python.packages import get_package_share_directory

        share = Path(get_package_share_directory("homae_ros")) / "msg"
        return sorted(share.glob("*.msg"))
    except (ImportError, LookupError, ValueError, OSError):
        return []


def make_typestore() -> Typestore:
    """A ROS 2 Jazzy typestore with homae_ros/msg/{HandPose, ObjectPose, HandObjectResult}.

    Raises:
        FileNotFoundError: the project's .msg files are missing (names the folder).
    """
    store = get_typestore(Stores.ROS2_JAZZY)
    files = _msg_files()
    if not files:
        raise FileNotFoundError(f"no homae_ros message definitions (*.msg) in {MSG_DIR}")
    found: dict[str, Any] = {}
    for path in files:
        found.update(get_types_from_msg(path.read_text(), f"homae_ros/msg/{path.stem}"))
    store.register(found)
    return store


def register_connection_types(store: Typestore, msgtype: str, msgdef: str, fmt: str) -> bool:
    """Register a bag connection's message type (with its dependencies) if it is unknown.

    Args:
        store: typestore to extend.
        msgtype: e.g. "my_pkg/msg/Thing".
        msgdef: the connection's message definition text.
        fmt: "msg" or "idl" (the definition's format).

    Returns:
        True when `msgtype` is known afterwards.
    """
    if msgtype in store.types:
        return True
    try:
        if fmt == "idl":
            from rosbags.typesys import get_types_from_idl

            sep = "=" * 80 + "\n"
            found: dict[str, Any] = {}
            for part in msgdef.split(sep):
                idl = part.split("\n", 1)[1] if part.startswith("IDL: ") else part
                if idl.strip():
                    found.update(get_types_from_idl(idl))
        else:
            found = get_types_from_msg(msgdef, msgtype)
        store.register({k: v for k, v in found.items() if k not in store.types})
    except Exception:
        return False
    return msgtype in store.types


# --------------------------------------------------------------------------------------------
# Defaults and stand-in classes
# --------------------------------------------------------------------------------------------
def _default(store: Typestore, node: int, desc: Any, classes: dict[str, type]) -> Any:
    if node == Nodetype.BASE:
        name = desc[0]
        if name in _STRINGS:
            return ""
        return _DTYPES[name](0).item()
    if node == Nodetype.NAME:
        return classes[desc]() if desc in classes else _default_instance(store, desc, classes)
    sub_node, sub_desc = desc[0]
    length = int(desc[1]) if node == Nodetype.ARRAY else 0
    if sub_node == Nodetype.BASE and sub_desc[0] not in _STRINGS:
        return np.zeros(length, dtype=_DTYPES[sub_desc[0]])
    return [_default(store, sub_node, sub_desc, classes) for _ in range(length)]


def _default_instance(store: Typestore, msgtype: str, classes: dict[str, type]) -> Any:
    _, fields = store.fielddefs[msgtype]
    values = {name: _default(store, n, d, classes) for name, (n, d) in fields}
    values.update(_FIELD_DEFAULTS.get(msgtype, {}))
    return store.types[msgtype](**values)


def _standin_class(store: Typestore, msgtype: str, classes: dict[str, type]) -> type:
    """A subclass of the typestore dataclass whose constructor defaults every field."""
    base = store.types[msgtype]
    _, fields = store.fielddefs[msgtype]

    def __init__(self: Any, **kwargs: Any) -> None:
        unknown = set(kwargs) - {name for name, _ in fields}
        if unknown:
            raise TypeError(f"{msgtype} has no field(s) {sorted(unknown)}")
        defaults = _FIELD_DEFAULTS.get(msgtype, {})
        values = {
            name: kwargs[name]
            if name in kwargs
            else defaults.get(name, _default(store, n, d, classes))
            for name, (n, d) in fields
        }
        base.__init__(self, **values)

    return type(msgtype.rsplit("/", 1)[-1], (base,), {"__init__": __init__})


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@contextmanager
def standin_messages(store: Typestore, packages: tuple[str, ...] | None = None) -> Iterator[None]:
    """Make `<pkg>.msg` importable for every message package that is missing (see module doc).

    Registers stand-in modules in `sys.modules` only for packages whose real `<pkg>.msg`
    cannot be imported, and restores `sys.modules` for exactly those names on exit.

    Args:
        store: typestore whose types back the stand-ins.
        packages: package names to check; None = every package in the typestore.
    """
    by_pkg: dict[str, list[str]] = {}
    for msgtype in store.types:
        pkg, kind, _name = msgtype.split("/")
        if kind == "msg" and (packages is None or pkg in packages):
            by_pkg.setdefault(pkg, []).append(msgtype)
    saved: dict[str, Any] = {}  # module name -> what sys.modules held before (None: nothing)
    classes: dict[str, type] = {}
    try:
        for pkg, msgtypes in sorted(by_pkg.items()):
            if _importable(f"{pkg}.msg"):
                continue
            if pkg not in sys.modules and not _importable(pkg):
                saved[pkg] = None
                sys.modules[pkg] = types.ModuleType(pkg, f"stand-in for {pkg} (homae-bag)")
            module = types.ModuleType(f"{pkg}.msg", f"stand-in for {pkg}.msg (homae-bag)")
            for msgtype in msgtypes:
                cls = _standin_class(store, msgtype, classes)
                classes[msgtype] = cls
                setattr(module, cls.__name__, cls)
            saved[f"{pkg}.msg"] = sys.modules.get(f"{pkg}.msg")
            sys.modules[f"{pkg}.msg"] = module
        yield
    finally:
        for name, previous in reversed(saved.items()):
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


def message_class(msgtype: str) -> type:
    """The importable class of `msgtype` ("std_msgs/msg/Header"): real or stand-in."""
    pkg, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


# --------------------------------------------------------------------------------------------
# Any message -> typestore dataclass
# --------------------------------------------------------------------------------------------
def _field(store: Typestore, value: Any, node: int, desc: Any, where: str) -> Any:
    if node == Nodetype.BASE:
        name = desc[0]
        if name in _STRINGS:
            return str(value)
        if name == "bool":
            return bool(value)
        if name.startswith("float"):
            return float(value)
        if isinstance(value, (bytes, bytearray)):  # rclpy's `byte` fields
            return int.from_bytes(value, "little")
        return int(value)
    if node == Nodetype.NAME:
        return to_rosbags(value, desc, store, where)
    sub_node, sub_desc = desc[0]
    if sub_node == Nodetype.BASE and sub_desc[0] not in _STRINGS:
        if isinstance(value, (bytes, bytearray)):
            value = np.frombuffer(value, dtype=np.uint8)
        elif len(value) and isinstance(value[0], (bytes, bytearray)):  # rclpy `byte[]`
            value = np.frombuffer(b"".join(value), dtype=np.uint8)
        arr = np.asarray(value, dtype=_DTYPES[sub_desc[0]]).reshape(-1)
        if node == Nodetype.ARRAY and arr.size != int(desc[1]):
            raise ValueError(f"{where}: expected {desc[1]} values, got {arr.size}")
        return arr
    items = list(value)
    if node == Nodetype.ARRAY and len(items) != int(desc[1]):
        raise ValueError(f"{where}: expected {desc[1]} items, got {len(items)}")
    return [_field(store, v, sub_node, sub_desc, f"{where}[{i}]") for i, v in enumerate(items)]


def to_rosbags(msg: Any, msgtype: str, store: Typestore, where: str = "") -> Any:
    """Copy a message (rclpy, stand-in or typestore dataclass) into `store`'s dataclass.

    Args:
        msg: any object with the fields of `msgtype` as attributes.
        msgtype: e.g. "visualization_msgs/msg/MarkerArray".
        store: typestore defining `msgtype`.
        where: field path used in error messages.

    Returns:
        An instance of `store.types[msgtype]`, ready for `store.serialize_cdr`.

    Raises:
        ValueError: a field is missing or a fixed-size array has the wrong length.
    """
    _, fields = store.fielddefs[msgtype]
    values = {}
    for name, (node, desc) in fields:
        path = f"{where or msgtype}.{name}"
        if name == _EMPTY_FIELD:  # rosbags' placeholder member of empty messages
            values[name] = int(getattr(msg, name, 0))
            continue
        try:
            value = getattr(msg, name)
        except AttributeError as err:
            raise ValueError(f"{path}: missing field ({type(msg).__name__})") from err
        values[name] = _field(store, value, node, desc, path)
    return store.types[msgtype](**values)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
def _copy_definition(conn: Any, store: Typestore) -> tuple[str, str] | None:
    """(msgdef, rihs01) under which an input connection's raw messages can be written."""
    fmt = conn.msgdef.format
    if conn.digest and fmt != MessageDefinitionFormat.NONE:
        return conn.msgdef.data, conn.digest
    if fmt != MessageDefinitionFormat.NONE:  # e.g. a raw .mcap file: hash the bag's definition
        scratch = get_typestore(Stores.EMPTY)
        kind = "idl" if fmt == MessageDefinitionFormat.IDL else "msg"
        if register_connection_types(scratch, conn.msgtype, conn.msgdef.data, kind):
            return conn.msgdef.data, scratch.hash_rihs01(conn.msgtype)
    if conn.msgtype in store.types:  # no definition stored: assume the typestore's
        msgdef, _ = store.generate_msgdef(conn.msgtype, ros_version=2)
        return msgdef, store.hash_rihs01(conn.msgtype)
    return None


class BagWriter:
    """Connections of an open rosbags `Writer`: input topics copied through + new topics.

    Attributes:
        writer: the open rosbags Writer.
        store: typestore of the new messages.
        copied: input connection id -> output connection of its copy.
    """

    def __init__(self, writer: Any, store: Typestore) -> None:
        """Wrap an open `rosbags.rosbag2.Writer`."""
        self.writer, self.store = writer, store
        self.copied: dict[int, Any] = {}
        self._by_topic: dict[tuple[str, str], Any] = {}

    def copy_connections(
        self, connections: Iterable[Any], skip_topics: set[str], warn: Callable[[str], None]
    ) -> None:
        """Add an output connection for every input connection (one per topic and type).

        Args:
            connections: the input bag's connections (`Reader.connections`).
            skip_topics: topics not to copy (this tool's own outputs).
            warn: receives a line per topic that is not copied.
        """
        for conn in connections:
            if conn.topic in skip_topics:
                warn(f"input topic {conn.topic} is an output topic of homae-bag: not copied")
                continue
            key = (conn.topic, conn.msgtype)
            if key not in self._by_topic:
                definition = _copy_definition(conn, self.store)
                if definition is None:
                    warn(f"input topic {conn.topic}: no definition of {conn.msgtype}: not copied")
                    continue
                qos = list(getattr(conn.ext, "offered_qos_profiles", None) or [])
                self._by_topic[key] = self.writer.add_connection(
                    conn.topic,
                    conn.msgtype,
                    msgdef=definition[0],
                    rihs01=definition[1],
                    offered_qos_profiles=qos,
                )
            self.copied[conn.id] = self._by_topic[key]

    def write_raw(self, conn_id: int, log_ns: int, raw: bytes | memoryview) -> bool:
        """Copy one input message (by input connection id); False when not copied."""
        out = self.copied.get(conn_id)
        if out is None:
            return False
        self.writer.write(out, log_ns, raw)
        return True

    def write(self, topic: str, msgtype: str, msg: Any, log_ns: int) -> None:
        """Serialise `msg` (any message object, see `to_rosbags`) to `topic` at `log_ns`."""
        key = (topic, msgtype)
        if key not in self._by_topic:
            self._by_topic[key] = self.writer.add_connection(topic, msgtype, typestore=self.store)
        data = self.store.serialize_cdr(to_rosbags(msg, msgtype, self.store), msgtype)
        self.writer.write(self._by_topic[key], log_ns, data)

    def write_tf(self, topic: str, transforms: list[Any], log_ns: int) -> None:
        """Write geometry_msgs/TransformStamped objects as one tf2_msgs/msg/TFMessage."""
        tf = self.store.types["tf2_msgs/msg/TFMessage"](
            transforms=[
                to_rosbags(t, "geometry_msgs/msg/TransformStamped", self.store) for t in transforms
            ]
        )
        self.write(topic, "tf2_msgs/msg/TFMessage", tf, log_ns)
