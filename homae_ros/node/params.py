"""Every homae_node parameter, declared once (descriptor, range, read-only) in one table.

`PARAMETERS` is pure data (usable without ROS, e.g. by scripts/gen_param_table.py);
`declare_and_read(node)` declares them all on an rclpy node and returns a validated, typed
`NodeParams`. Every parameter not marked read-only may change while the node runs:
`check_change(current, changes)` validates a set of changes together (types with a readable
message, ranges, lengths, choices, the ROI's ordering) and returns the new `NodeParams` that the
node applies from the next frame on (homae_ros/node/live.py). config/homae.yaml must list
exactly these parameters with these defaults (`scripts/gen_param_table.py --check`).

Topics are not parameters: the node subscribes to the node-relative names `image` and
`camera_info` (move them with a namespace or a remap).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from homae_ros.node.params_schema import IMAGE_TRANSPORTS, PARAMETERS, ParamSpec

__all__ = [
    "CAMERA_INFO_TOPIC",
    "IMAGE_TOPIC",
    "IMAGE_TRANSPORTS",
    "PARAMETERS",
    "NodeParams",
    "ParamSpec",
    "ParameterError",
    "check_change",
    "check_ros_type",
    "declare_and_read",
    "declare_parameters",
    "default_values",
    "markdown_table",
    "params_from_values",
    "read_params",
    "spec",
    "validate_parameter_change",
    "validate_value",
]

IMAGE_TOPIC = "image"
"""Input image topic (sensor_msgs/Image), node-relative."""
CAMERA_INFO_TOPIC = "camera_info"
"""Input camera info topic (sensor_msgs/CameraInfo), node-relative."""

_TYPES = ("string", "double", "integer", "bool", "string_array", "double_array")
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")
_FRAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")


class ParameterError(ValueError):
    """A parameter has a bad type or value; the message names the parameter."""


_BY_NAME: dict[str, ParamSpec] = {p.name: p for p in PARAMETERS}


def spec(name: str) -> ParamSpec:
    """The ParamSpec called `name`; unknown names raise ParameterError listing valid ones."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ParameterError(
            f"unknown parameter '{name}'; valid: {', '.join(sorted(_BY_NAME))}"
        ) from None


def default_values() -> dict[str, Any]:
    """{parameter name: default value} for every parameter (copies of lists)."""
    return {p.name: list(p.default) if isinstance(p.default, list) else p.default
            for p in PARAMETERS}  # fmt: skip


@dataclass(frozen=True)
class NodeParams:
    """Typed, validated node parameters (field = parameter name with dots as underscores)."""

    qos: str
    sync: str
    sync_slop_s: float
    image_transport: str
    undistort: bool
    device: str
    checkpoint: str
    mano_model_path: str
    object_library: str
    runtime: str
    runtime_provider: str
    onnx_dir: str
    torch_threads: int
    max_batch_pairs: int
    detector_backend: str
    detector_weights: str
    detector_side_net: str
    detector_score_threshold: float
    detector_max_detections: int
    detector_roi: tuple[float, float, float, float]
    objects_allowed: tuple[str, ...]  # empty = all objects
    min_hand_score: float
    tracking_min_iou: float
    tracking_max_distance_m: float
    tracking_max_misses: int
    tracking_name_frames: int
    smoothing_enabled: bool
    smoothing_min_cutoff_hz: float
    smoothing_beta: float
    smoothing_d_cutoff_hz: float
    smoothing_max_gap_s: float
    frame_prefix: str
    target_frame: str
    tf_timeout_s: float
    publish_tf: bool
    publish_markers: bool
    markers_hand_mesh: bool
    markers_skeleton: bool
    markers_object_mesh: bool
    debug_image: bool
    diagnostics_period_s: float
    diagnostics_window_s: float
    log_throttle_s: float


_TYPE_WORDS = {"string": "a string", "double": "a decimal number", "integer": "a whole number",
               "bool": "true or false", "string_array": "a list of strings",
               "double_array": "a list of decimal numbers"}  # fmt: skip
_PY_WORDS = {"str": "a string", "float": "a decimal number", "int": "a whole number",
             "bool": "a bool", "list": "a list", "tuple": "a list",
             "NoneType": "no value"}  # fmt: skip


def _type_error(p: ParamSpec, value: Any) -> ParameterError:
    got = _PY_WORDS.get(type(value).__name__, type(value).__name__)
    hint = ""
    if p.type in ("double", "double_array"):
        hint = " (write a decimal point, e.g. 1.0)"
    elif p.type == "bool":
        hint = " (write true or false)"
    return ParameterError(
        f"parameter '{p.name}' must be of type {p.type} ({_TYPE_WORDS[p.type]}), got {value!r} "
        f"({got}){hint}"
    )


def validate_value(p: ParamSpec, value: Any) -> Any:
    """Check one value against its spec and return it normalised (tuple for arrays).

    Raises:
        ParameterError: wrong type, value outside the range or not one of the choices
            (the message names the parameter and lists the valid choices).
    """
    if p.type == "string":
        if not isinstance(value, str):
            raise _type_error(p, value)
        if p.name == "device":
            if not _DEVICE_RE.match(value):
                raise ParameterError(
                    f"parameter 'device' is '{value}'; valid choices: auto, cuda, cuda:N, cpu"
                )
        elif p.choices and value not in p.choices:
            raise ParameterError(
                f"parameter '{p.name}' is '{value}'; valid choices: {', '.join(p.choices)}"
            )
        if p.name == "frame_prefix" and not (_FRAME_RE.match(value) and not value.endswith("/")):
            raise ParameterError(
                f"parameter 'frame_prefix' is '{value}': use letters, digits, _ . - and /, no "
                "leading or trailing slash (e.g. 'homae')"
            )
        if p.name == "target_frame" and value.startswith("/"):
            raise ParameterError(
                f"parameter 'target_frame' is '{value}': tf2 frame ids have no leading slash"
            )
        return value
    if p.type == "bool":
        if not isinstance(value, bool):
            raise _type_error(p, value)
        return value
    if p.type in ("double", "integer"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(p, value)
        if p.type == "integer" and not isinstance(value, int):
            raise _type_error(p, value)
        if p.type == "double":
            value = float(value)
            if not math.isfinite(value):
                raise ParameterError(f"parameter '{p.name}' must be finite, got {value}")
        lo, hi = p.min_value, p.max_value
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ParameterError(f"parameter '{p.name}' is {value}; valid range [{lo}, {hi}]")
        return value
    # arrays
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise _type_error(p, value)
    items = list(value)
    if p.type == "string_array":
        if not all(isinstance(v, str) for v in items):
            raise _type_error(p, value)
        out: tuple[Any, ...] = tuple(items)
    else:
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
            raise _type_error(p, value)
        out = tuple(float(v) for v in items)
        if not all(math.isfinite(v) for v in out):
            raise ParameterError(f"parameter '{p.name}' must be finite, got {list(out)}")
    if p.length is not None and len(out) != p.length:
        raise ParameterError(
            f"parameter '{p.name}' needs exactly {p.length} values, got {len(out)}: {list(out)}"
        )
    return out


def params_from_values(values: Mapping[str, Any]) -> NodeParams:
    """Validate {parameter name: value} (missing ones take their defaults) into NodeParams.

    Raises:
        ParameterError: an unknown name, or a bad value (see `validate_value`).
    """
    unknown = sorted(set(values) - set(_BY_NAME))
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(_BY_NAME))}"
        )
    merged = default_values()
    merged.update(values)
    out = {p.field: validate_value(p, merged[p.name]) for p in PARAMETERS}
    out["objects_allowed"] = tuple(n for n in out["objects_allowed"] if n)
    _check_roi(out["detector_roi"])
    return NodeParams(**out)


def _check_roi(roi: tuple[float, ...]) -> None:
    if any(roi) and (roi[2] <= roi[0] or roi[3] <= roi[1] or min(roi) < 0):
        raise ParameterError(
            f"parameter 'detector.roi' is {list(roi)}: need 0 <= x_min < x_max and "
            "0 <= y_min < y_max (pixels), or all zero for the whole image"
        )


def check_change(current: NodeParams, changes: Mapping[str, Any]) -> NodeParams:
    """Validate a run-time change of some parameters, all together, against `current`.

    Args:
        current: the parameters in force.
        changes: {parameter name: new value} (e.g. from `ros2 param set`).

    Returns:
        The new NodeParams (to apply from the next frame on).

    Raises:
        ParameterError: an unknown or read-only parameter, a wrong type, a value out of range
            or of the wrong length, an ROI whose x_min >= x_max or y_min >= y_max, or
            (backend roi) `objects.allowed` without exactly one name; the message names the
            parameter, what was given and what is valid.
    """
    values = {p.name: getattr(current, p.field) for p in PARAMETERS}
    for name, value in changes.items():
        p = spec(name)
        check_ros_type(p, value)
        if p.read_only and value != values[name]:
            raise ParameterError(
                f"parameter '{name}' is read-only: it is used when the node starts "
                "(restart the node with the new value)"
            )
        values[name] = validate_value(p, value)
    new = params_from_values(values)
    if new.detector_backend == "roi" and len(new.objects_allowed) != 1:
        raise ParameterError(
            f"parameter 'objects.allowed' is {list(new.objects_allowed)}: backend 'roi' needs "
            "exactly one object name"
        )
    return new


def declare_parameters(node: Any) -> None:
    """Declare every parameter on `node` with its descriptor and default.

    Raises:
        ParameterError: a value given at start (YAML, --ros-args -p) has the wrong type or is
            out of range; the message names the parameter and the expected type/range.
    """
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

    for p in PARAMETERS:
        try:
            # dynamic typing: rclpy's own type check would answer "expected '3' got '4'";
            # `validate_value` checks the type instead, with a readable message.
            node.declare_parameter(p.name, p.default, p.descriptor(dynamic_typing=True))
        except InvalidParameterTypeException as e:
            hint = (
                " (write a decimal point, e.g. 1.0)" if p.type in ("double", "double_array") else ""
            )
            raise ParameterError(
                f"parameter '{p.name}' must be of type {p.type}{hint}: {e}"
            ) from None
        except InvalidParameterValueException as e:
            raise ParameterError(
                f"parameter '{p.name}' is out of range ({p.constraints()}): {e}"
            ) from None


def check_ros_type(p: ParamSpec, value: Any) -> None:
    """A value from ROS (YAML, -p, ros2 param set) must have the declared ROS type exactly.

    Python code may pass 1 for 1.0 (`params_from_values`), but ROS stores a whole number as an
    integer parameter, so a double parameter given `1` is refused with a hint.

    Raises:
        ParameterError: e.g. "parameter 'sync_slop_s' must be of type double (a decimal
            number), got 1 (a whole number) (write a decimal point, e.g. 1.0)".
    """
    if p.type == "double" and type(value) is int:
        raise _type_error(p, value)
    if p.type == "double_array" and isinstance(value, Iterable) and not isinstance(value, str):
        items = list(value)  # rclpy gives arrays as list or array.array
        if any(type(v) is int for v in items):
            raise _type_error(p, items)
    validate_value(p, value)


def read_params(node: Any) -> NodeParams:
    """Read every (declared) parameter from `node` and validate it into NodeParams."""
    values = {p.name: node.get_parameter(p.name).value for p in PARAMETERS}
    for p in PARAMETERS:
        check_ros_type(p, values[p.name])
    return params_from_values(values)


def declare_and_read(node: Any) -> NodeParams:
    """Declare every parameter on `node` and return them validated.

    Raises:
        ParameterError: naming the parameter, the bad value and the valid choices / range.
    """
    declare_parameters(node)
    return read_params(node)


def validate_parameter_change(parameters: Iterable[Any]) -> Any:
    """`add_on_set_parameters_callback` hook: reject bad enum values / shapes at run time.

    rclpy enforces ranges and read_only (not types: the parameters are declared with dynamic
    typing); this checks the types, choices, lengths, frame-name rules of `validate_value` and
    the ROI's ordering, each parameter on its own. The node uses `check_change`, which also
    checks parameters against each other.

    Args:
        parameters: rclpy.parameter.Parameter objects about to be set.

    Returns:
        rcl_interfaces/SetParametersResult (successful=False with the reason on error).
    """
    from rcl_interfaces.msg import SetParametersResult

    for param in parameters:
        if param.name not in _BY_NAME:
            continue
        try:
            check_ros_type(_BY_NAME[param.name], param.value)
            value = validate_value(_BY_NAME[param.name], param.value)
            if param.name == "detector.roi":
                _check_roi(value)
        except ParameterError as e:
            return SetParametersResult(successful=False, reason=str(e))
    return SetParametersResult(successful=True)


def _format_default(value: Any) -> str:
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, str):
        return f'`"{value}"`' if value == "" else f"`{value}`"
    if isinstance(value, list):
        return "`[" + ", ".join(f'"{v}"' if isinstance(v, str) else repr(v) for v in value) + "]`"
    return f"`{value!r}`"


def markdown_table() -> str:
    """The README parameter table (Markdown), generated from `PARAMETERS`."""
    lines = [
        "| parameter | type | default | constraints | read-only | description |",
        "|---|---|---|---|---|---|",
    ]
    for p in PARAMETERS:
        desc = p.description.replace("|", "\\|")
        lines.append(
            f"| `{p.name}` | {p.type} | {_format_default(p.default)} | "
            f"{p.constraints().replace('|', '/') or '-'} | {'yes' if p.read_only else 'no'} | "
            f"{desc} |"
        )
    return "\n".join(lines) + "\n"
