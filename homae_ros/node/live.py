"""Run-time parameter changes of homae_node: validate on set, apply from the next frame on.

`LiveParams` is registered on the node (`attach`):

- the on-set callback validates the change with `params.check_change` (types with a readable
  message, ranges, lengths, choices, the ROI's ordering, read-only) against the last accepted
  values and either rejects it with that reason or stores the new `NodeParams` as pending;
- the node's worker calls `take()` before each frame (and while idle) and applies what is
  pending in one step, so a frame sees either all of an atomic change or none of it.

`tracking_settings` and `marker_options` map NodeParams to the pure-code settings.
"""

from __future__ import annotations

import threading
from typing import Any

from homae_model.tracking.frame import TrackingSettings
from homae_model.tracking.smoothing import OneEuroConfig
from homae_model.tracking.tracks import TrackerConfig
from homae_ros.messages.markers import MarkerOptions
from homae_ros.node.params import NodeParams, ParameterError, check_change

__all__ = ["LiveParams", "marker_options", "tracking_settings"]


def tracking_settings(p: NodeParams) -> TrackingSettings:
    """The tracker and smoothing settings of `p`."""
    return TrackingSettings(
        tracker=TrackerConfig(
            p.tracking_min_iou,
            p.tracking_max_distance_m,
            p.tracking_max_misses,
            p.tracking_name_frames,
        ),
        smoothing=p.smoothing_enabled,
        filter=OneEuroConfig(
            min_cutoff_hz=p.smoothing_min_cutoff_hz,
            beta=p.smoothing_beta,
            d_cutoff_hz=p.smoothing_d_cutoff_hz,
        ),
        max_gap_s=p.smoothing_max_gap_s,
    )


def marker_options(p: NodeParams) -> MarkerOptions:
    """What the markers draw, from `p`."""
    return MarkerOptions(
        hand_mesh=p.markers_hand_mesh,
        skeleton=p.markers_skeleton,
        object_mesh=p.markers_object_mesh,
        object_axes=p.markers_object_mesh,
    )


class LiveParams:
    """Accepted-but-not-yet-applied parameters of a node (thread-safe)."""

    def __init__(self, params: NodeParams) -> None:
        """Start from the parameters the node started with."""
        self._lock = threading.Lock()
        self._accepted = params
        self._pending: NodeParams | None = None
        self.rejected = 0

    def attach(self, node: Any) -> None:
        """Register the on-set callback on the rclpy `node`."""
        node.add_on_set_parameters_callback(self.on_set)

    def on_set(self, parameters: list[Any]) -> Any:
        """Validate a change (all parameters together); keep it pending for the worker.

        Returns:
            rcl_interfaces/SetParametersResult; on failure `reason` names the parameter, the
            value given and what is valid.
        """
        from rcl_interfaces.msg import SetParametersResult

        changes = {param.name: param.value for param in parameters}
        with self._lock:
            try:
                new = check_change(self._accepted, changes)
            except ParameterError as err:
                self.rejected += 1
                return SetParametersResult(successful=False, reason=str(err))
            self._accepted = new
            self._pending = new
        return SetParametersResult(successful=True)

    def take(self) -> NodeParams | None:
        """The parameters accepted since the last call, or None when nothing changed."""
        with self._lock:
            pending, self._pending = self._pending, None
        return pending
