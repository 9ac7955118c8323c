"""Parameters of homae_fusion: declared once here, validated with errors naming the parameter.

The fusion maths' settings (`homae_model.fusion.settings.FusionSettings`) are the parameters
`fusion.<field>`, with the same defaults.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from homae_model.fusion.settings import FusionSettings

_FRAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")

BASIC: tuple[tuple[str, Any, str], ...] = (
    ("result_topics", [""], "HandObjectResult topics of the cameras (one per camera)"),
    ("world_frame", "world", "fixed frame of the fused result"),
    ("calibration_file", "", "calibration YAML used where tf2 has no transform ('' = none)"),
    ("use_tf", True, "look frames up in tf2 first (where tf2_ros is installed)"),
    ("sync_slop_s", 0.02, "largest stamp difference between results of one instant (s)"),
    ("max_wait_s", 0.3, "longest wait for missing cameras before fusing without them (s)"),
    ("stale_after_s", 1.0, "a camera silent this long is no longer waited for (s)"),
    ("publish_markers", True, "publish ~/markers (skeletons and object axes)"),
    (
        "publish_tf",
        True,
        "broadcast <frame_prefix>/hand_<side> and <frame_prefix>/<object> in world_frame",
    ),
    ("frame_prefix", "homae_fused", "prefix of the fused TF child frames (no leading slash)"),
    (
        "diagnostics_period_s",
        1.0,
        "period of /diagnostics (per-camera counts, last-result age; 0 = off) (s)",
    ),
    ("log_throttle_s", 5.0, "minimum time between two identical warnings (s)"),
)


class FusionParameterError(ValueError):
    """A bad parameter value; the message names the parameter."""


@dataclass(frozen=True)
class FusionParams:
    """Validated parameters of homae_fusion (see `BASIC` and `FusionSettings`)."""

    result_topics: list[str]
    world_frame: str
    calibration_file: str
    use_tf: bool
    sync_slop_s: float
    max_wait_s: float
    stale_after_s: float
    publish_markers: bool
    log_throttle_s: float
    settings: FusionSettings
    publish_tf: bool = True
    frame_prefix: str = "homae_fused"
    diagnostics_period_s: float = 1.0


def _settings_fields() -> list[tuple[str, Any]]:
    defaults = FusionSettings()
    return [(f.name, getattr(defaults, f.name)) for f in dataclasses.fields(FusionSettings)]


def params_from_values(values: dict[str, Any]) -> FusionParams:
    """Validate raw parameter values (missing ones take their defaults).

    Raises:
        FusionParameterError: naming the parameter and what is wrong.
    """
    v = {name: default for name, default, _ in BASIC}
    v.update({f"fusion.{n}": d for n, d in _settings_fields()})
    unknown = sorted(set(values) - set(v))
    if unknown:
        raise FusionParameterError(f"unknown homae_fusion parameters: {', '.join(unknown)}")
    v.update(values)
    topics = [str(t) for t in v["result_topics"] if str(t)]
    if not topics:
        raise FusionParameterError(
            "parameter 'result_topics' is empty: list the cameras' HandObjectResult topics, "
            "e.g. ['/cam0/homae_node/hand_object', '/cam1/homae_node/hand_object']"
        )
    if len(set(topics)) != len(topics):
        raise FusionParameterError(f"parameter 'result_topics' repeats a topic: {topics}")
    world = str(v["world_frame"])
    if not _FRAME_RE.match(world):
        raise FusionParameterError(
            f"parameter 'world_frame' is {world!r}: expected a tf2 frame id (no leading slash)"
        )
    prefix = str(v["frame_prefix"])
    if not _FRAME_RE.match(prefix):
        raise FusionParameterError(
            f"parameter 'frame_prefix' is {prefix!r}: expected a tf2 frame id prefix "
            "(no leading slash)"
        )
    for name in ("sync_slop_s", "max_wait_s", "log_throttle_s", "diagnostics_period_s"):
        if float(v[name]) < 0:
            raise FusionParameterError(f"parameter '{name}' must be >= 0, got {v[name]}")
    if float(v["stale_after_s"]) <= 0:
        raise FusionParameterError(
            f"parameter 'stale_after_s' must be > 0, got {v['stale_after_s']}"
        )
    try:
        settings = FusionSettings(**{n: v[f"fusion.{n}"] for n, _ in _settings_fields()})
    except ValueError as err:
        raise FusionParameterError(f"parameter 'fusion.{str(err).split()[2]}': {err}") from err
    return FusionParams(
        topics, world, str(v["calibration_file"]), bool(v["use_tf"]), float(v["sync_slop_s"]),
        float(v["max_wait_s"]), float(v["stale_after_s"]), bool(v["publish_markers"]),
        float(v["log_throttle_s"]), settings, bool(v["publish_tf"]), prefix,
        float(v["diagnostics_period_s"]),
    )  # fmt: skip


def declare_and_read(node: Any) -> FusionParams:
    """Declare every parameter on `node` (with its description) and return them validated."""
    from rcl_interfaces.msg import ParameterDescriptor

    names = []
    for name, default, doc in BASIC:
        node.declare_parameter(name, default, ParameterDescriptor(description=doc))
        names.append(name)
    for name, default in _settings_fields():
        doc = f"FusionSettings.{name} (homae_model/fusion/settings.py)"
        node.declare_parameter(f"fusion.{name}", default, ParameterDescriptor(description=doc))
        names.append(f"fusion.{name}")
    return params_from_values({n: node.get_parameter(n).value for n in names})
