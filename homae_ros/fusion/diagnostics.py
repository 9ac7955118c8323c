"""homae_fusion's /diagnostics: one status per camera topic and one for the fused output.

A camera is OK while it answers; WARN when it has been silent for `stale_after_s` (or never
answered since the node started), or when results of it were dropped since the previous update
(late, unknown frame, malformed). The fused status is WARN while nothing was fused in the last
period although a camera answered. Values are the counts since the node started and the age of
the camera's last result.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

DROPS = ("late", "unknown_frame", "bad_result")
"""Counters of dropped results (`FusionNode.counts`)."""


def camera_status(
    counts: Counter,
    previous: Counter,
    age_s: float | None,
    stale_after_s: float,
) -> tuple[int, str, dict[str, str]]:
    """Level (0 OK, 1 WARN), message and key values of one camera's status.

    Args:
        counts: its counters now (received, fused, late, unknown_frame, bad_result).
        previous: the same counters at the previous update.
        age_s: seconds since its last result arrived, None when none ever did.
        stale_after_s: silence after which the camera is not waited for (s).
    """
    values = {k: str(counts.get(k, 0)) for k in ("received", "fused", *DROPS)}
    values["last_result_age_s"] = "never" if age_s is None else f"{age_s:.2f}"
    if age_s is None:
        return 1, "no result received yet", values
    if age_s >= stale_after_s:
        return 1, f"silent for {age_s:.1f} s: fused without it", values
    dropped = {k: counts.get(k, 0) - previous.get(k, 0) for k in DROPS}
    dropped = {k: v for k, v in dropped.items() if v > 0}
    if dropped:
        listed = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in dropped.items())
        return 1, f"results dropped since the last update: {listed}", values
    return 0, "ok", values


def diagnostic_array(
    stamp: Any,
    node_name: str,
    counts: Mapping[str, Counter],
    previous: Mapping[str, Counter],
    ages: Mapping[str, float | None],
    stale_after_s: float,
    fused_frames: int,
    fused_since: int,
    period_s: float,
) -> Any:
    """diagnostic_msgs/DiagnosticArray of the fusion node (see the module docstring).

    Args:
        stamp: builtin_interfaces/Time of the array.
        node_name: the node's name.
        counts: per topic, counters now.
        previous: per topic, counters at the previous update.
        ages: per topic, seconds since its last result (None: never).
        stale_after_s: the node's stale_after_s.
        fused_frames: fused results published since the start.
        fused_since: fused results published since the previous update.
        period_s: time since the previous update (s), for the rate.
    """
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    statuses = []
    for topic, c in counts.items():
        level, message, values = camera_status(
            c, previous.get(topic, Counter()), ages.get(topic), stale_after_s
        )
        statuses.append(
            DiagnosticStatus(
                level=bytes([level]), name=f"{node_name}: {topic}", message=message,
                hardware_id=topic, values=[KeyValue(key=k, value=v) for k, v in values.items()],
            )
        )  # fmt: skip
    answering = any(a is not None and a < stale_after_s for a in ages.values())
    level = 1 if answering and fused_since == 0 else 0
    rate = fused_since / period_s if period_s > 0 else 0.0
    statuses.append(
        DiagnosticStatus(
            level=bytes([level]),
            name=f"{node_name}: fused",
            message="nothing fused in the last period" if level else "ok",
            hardware_id="fusion",
            values=[
                KeyValue(key="fused_frames", value=str(fused_frames)),
                KeyValue(key="rate_hz", value=f"{rate:.2f}"),
            ],
        )
    )
    array = DiagnosticArray(status=statuses)
    array.header.stamp = stamp
    return array
