"""One frame's `PairEstimate`s -> `TrackedPair`s: track ids, voted names, child frames, smoothing.

`FrameTracker` is what the node and `homae-bag` run after the estimator:

- hands and objects are tracked separately (`Tracker`: box overlap and 3D position, memory for
  short misses); each gets an id that stays the same while it is seen;
- the object's name is the vote over its track's first observations (`LabelVote`), then
  kept, not the frame's label;
- each track gets a TF child-frame name (without the prefix), kept for its life:
  `hand_<side>` / `<object name>`, or with `_<track id>` appended when another live track of
  the same kind already holds that name (an object whose voted name changes gets a new one);
- the wrist orientation is MANO's global orientation (`mano_pose[:3]`, axis-angle, camera
  frame);
- with smoothing on, joints, vertices, wrist rotation and object pose go through One-Euro
  filters per track; a new track starts a new filter. Before filtering, a hand whose
  orientation was refit to 2D keypoints (`PairPrediction.alternatives`: the other near fits)
  takes the fit nearest the track's previous raw orientation, so that the per-frame choice
  between mirror-view fits does not flip the hand from frame to frame;
- time running backwards (a bag looped) ends every track; a gap longer than `max_gap_s` (or a
  repeated stamp) restarts the filters.

Everything is in the image's camera frame (metres); no ROS imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from homae_model.estimation.estimator import PairEstimate
from homae_model.inference import PairPrediction
from homae_model.tracking.smoothing import OneEuroConfig, PointFilter, RotationFilter
from homae_model.tracking.tracks import LabelVote, Observation, Tracker, TrackerConfig

__all__ = [
    "FrameTracker",
    "TrackedFrame",
    "TrackedPair",
    "TrackingSettings",
    "hand_side",
    "nearest_fit",
]

RESET_BACKWARDS = "time_backwards"
RESET_GAP = "time_gap"


def hand_side(estimate: PairEstimate) -> str:
    """The side of an estimate's hand: "right" or "left" (`PairEstimate.side`, from the detector).

    A left hand was estimated through the mirror and mirrored back (`estimation.mirror`).
    """
    return estimate.side


@dataclass(frozen=True)
class TrackingSettings:
    """Tracking and smoothing settings.

    Attributes:
        tracker: association and memory (`TrackerConfig`).
        smoothing: filter joints, vertices and poses (One-Euro) when True.
        filter: the One-Euro constants.
        max_gap_s: a stamp step larger than this (s) restarts the filters.
    """

    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    smoothing: bool = False
    filter: OneEuroConfig = field(default_factory=OneEuroConfig)
    max_gap_s: float = 0.5


@dataclass
class TrackedPair:
    """One hand-object pair after tracking (camera frame of the image, metres).

    Attributes:
        estimate: the frame's raw estimate.
        hand_id, object_id: track ids (>= 1).
        object_name: the voted object name.
        side: "right" or "left".
        hand_child, object_child: TF child-frame names without the prefix.
        joints: (21, 3) joints (smoothed when smoothing is on).
        vertices: (778, 3) hand vertices (smoothed likewise).
        wrist_R: (3, 3) wrist orientation = MANO global orientation.
        mano_pose: (48,) axis-angle; [:3] = `wrist_R` as a rotation vector.
        hand_transl: (3,) MANO translation, consistent with `joints[0]`.
        obj_R: (3, 3) object rotation (X_cam = obj_R @ X_obj + obj_t).
        obj_t: (3,) object translation, metres.
    """

    estimate: PairEstimate
    hand_id: int
    object_id: int
    object_name: str
    side: str
    hand_child: str
    object_child: str
    joints: np.ndarray
    vertices: np.ndarray
    wrist_R: np.ndarray
    mano_pose: np.ndarray
    hand_transl: np.ndarray
    obj_R: np.ndarray
    obj_t: np.ndarray


@dataclass
class TrackedFrame:
    """`FrameTracker.update`'s answer.

    Attributes:
        pairs: one per estimate, same order.
        ended_hands, ended_objects: ids of tracks that ended (stop publishing them, delete
            their markers).
        reset: "" or why state was dropped before this frame ("time_backwards", "time_gap").
    """

    pairs: list[TrackedPair]
    ended_hands: list[int]
    ended_objects: list[int]
    reset: str = ""


class _PoseFilters:
    """Points (joints + vertices, or the object origin) and a rotation of one track."""

    def __init__(self, cfg: OneEuroConfig) -> None:
        self.points, self.rot = PointFilter(cfg), RotationFilter(cfg)
        self.last_raw_R: np.ndarray | None = None  # the orientation chosen in the last frame


def nearest_fit(pred: PairPrediction, previous_R: np.ndarray | None) -> PairPrediction:
    """`pred` or one of its `alternatives`: the hand orientation nearest `previous_R`.

    Args:
        pred: a frame's estimate (its alternatives: other near fits of the same hand).
        previous_R: (3,3) the track's orientation (MANO global) in the previous frame, or None.

    Returns:
        `pred` when there is no previous orientation or no alternative, else the candidate whose
        global orientation is the smallest rotation away from `previous_R`.
    """
    if previous_R is None or not pred.alternatives:
        return pred

    def angle(p: PairPrediction) -> float:
        r = Rotation.from_rotvec(np.asarray(p.mano_pose[:3], np.float64)).as_matrix()
        return float(np.arccos(np.clip((np.trace(previous_R.T @ r) - 1.0) / 2.0, -1.0, 1.0)))

    return min([pred, *pred.alternatives], key=angle)


class FrameTracker:
    """Tracks hands and objects over a sequence of frames (see the module docstring)."""

    def __init__(self, settings: TrackingSettings | None = None) -> None:
        """Start with no tracks."""
        self.settings = settings or TrackingSettings()
        self.hands = Tracker(self.settings.tracker)
        self.objects = Tracker(self.settings.tracker)
        self._hand_child: dict[int, str] = {}
        self._object_child: dict[int, tuple[str, str]] = {}  # id -> (name, child)
        self._hand_filters: dict[int, _PoseFilters] = {}
        self._object_filters: dict[int, _PoseFilters] = {}
        self._last_stamp: float | None = None

    def configure(self, settings: TrackingSettings) -> None:
        """Apply new settings from the next frame on.

        Tracks are kept; the filters restart when their constants or the switch change.
        """
        if (settings.smoothing, settings.filter) != (self.settings.smoothing, self.settings.filter):
            self._hand_filters.clear()
            self._object_filters.clear()
        self.settings = settings
        self.hands.config = settings.tracker
        self.objects.config = settings.tracker

    def forget_labels(self) -> None:
        """Restart the name vote of every object track (e.g. the allowed names changed)."""
        for track in self.objects.tracks.values():
            track.vote = LabelVote(self.settings.tracker.name_frames)
        self._object_child.clear()

    def reset(self) -> tuple[list[int], list[int]]:
        """End every track; returns the ended (hand ids, object ids)."""
        ended = self.hands.reset(), self.objects.reset()
        self._hand_child.clear()
        self._object_child.clear()
        self._hand_filters.clear()
        self._object_filters.clear()
        self._last_stamp = None
        return ended

    def update(self, estimates: Sequence[PairEstimate], stamp_s: float) -> TrackedFrame:
        """Track one frame.

        Args:
            estimates: the frame's estimates (camera frame, metres), any order.
            stamp_s: the image stamp (s).

        Returns:
            TrackedFrame with one TrackedPair per estimate, in the same order.
        """
        reason, ended_h, ended_o = "", [], []
        dt = None if self._last_stamp is None else stamp_s - self._last_stamp
        if dt is not None and dt < 0.0:
            reason = RESET_BACKWARDS
            ended_h, ended_o = self.reset()
            dt = None
        elif dt is not None and (dt == 0.0 or dt > self.settings.max_gap_s):
            reason = RESET_GAP
            self._hand_filters.clear()
            self._object_filters.clear()
            dt = None
        self._last_stamp = stamp_s

        hand_obs = [
            Observation(np.asarray(e.pair.hand.box, float), np.asarray(e.prediction.joints)[0])
            for e in estimates
        ]
        obj_obs = [
            Observation(
                np.asarray(e.pair.obj.box, float),
                np.asarray(e.prediction.obj_trans, float).reshape(3),
                e.pair.obj.label,
                float(e.pair.obj.score),
            )
            for e in estimates
        ]
        hand_ids, h_end = self.hands.update(hand_obs)
        obj_ids, o_end = self.objects.update(obj_obs)
        for tid in h_end:
            self._hand_child.pop(tid, None)
            self._hand_filters.pop(tid, None)
        for tid in o_end:
            self._object_child.pop(tid, None)
            self._object_filters.pop(tid, None)
        pairs = [
            self._tracked(e, hid, oid, dt)
            for e, hid, oid in zip(estimates, hand_ids, obj_ids, strict=True)
        ]
        return TrackedFrame(pairs, ended_h + h_end, ended_o + o_end, reason)

    # ------------------------------------------------------------------ internals
    def _hand_child_name(self, tid: int, side: str) -> str:
        if tid not in self._hand_child:
            base = f"hand_{side}"
            taken = set(self._hand_child.values())
            self._hand_child[tid] = base if base not in taken else f"{base}_{tid}"
        return self._hand_child[tid]

    def _object_child_name(self, tid: int, name: str) -> str:
        current = self._object_child.get(tid)
        if current is None or current[0] != name:
            taken = {c for t, (_, c) in self._object_child.items() if t != tid}
            self._object_child[tid] = (name, name if name not in taken else f"{name}_{tid}")
        return self._object_child[tid][1]

    def _tracked(
        self, est: PairEstimate, hand_id: int, obj_id: int, dt: float | None
    ) -> TrackedPair:
        pred = est.prediction
        side = hand_side(est)
        if self.settings.smoothing and dt is not None and hand_id in self._hand_filters:
            pred = nearest_fit(pred, self._hand_filters[hand_id].last_raw_R)
        joints = np.asarray(pred.joints, dtype=np.float64)
        vertices = np.asarray(pred.vertices, dtype=np.float64)
        mano_pose = np.asarray(pred.mano_pose, dtype=np.float64).reshape(-1).copy()
        transl = np.asarray(pred.hand_transl, dtype=np.float64).reshape(3).copy()
        wrist_R = Rotation.from_rotvec(mano_pose[:3]).as_matrix()
        obj_R = np.asarray(pred.obj_rot_matrix, dtype=np.float64)
        obj_t = np.asarray(pred.obj_trans, dtype=np.float64).reshape(3)
        if self.settings.smoothing:
            cfg = self.settings.filter
            step = dt if dt is not None else 1.0  # ignored on a filter's first sample
            if dt is None:
                self._hand_filters.pop(hand_id, None)
                self._object_filters.pop(obj_id, None)
            hf = self._hand_filters.setdefault(hand_id, _PoseFilters(cfg))
            hf.last_raw_R = wrist_R
            both = hf.points(np.concatenate([joints, vertices]), step)
            shift = both[0] - joints[0]
            joints, vertices = both[: len(joints)], both[len(joints) :]
            transl = transl + shift  # MANO root = wrist - transl is fixed by the shape
            wrist_R = hf.rot(wrist_R, step)
            mano_pose[:3] = Rotation.from_matrix(wrist_R).as_rotvec()
            of = self._object_filters.setdefault(obj_id, _PoseFilters(cfg))
            obj_t = of.points(obj_t[None], step)[0]
            obj_R = of.rot(obj_R, step)
        name = self.objects.tracks[obj_id].label or est.pair.obj.label
        return TrackedPair(
            estimate=est,
            hand_id=hand_id,
            object_id=obj_id,
            object_name=name,
            side=side,
            hand_child=self._hand_child_name(hand_id, side),
            object_child=self._object_child_name(obj_id, name),
            joints=joints,
            vertices=vertices,
            wrist_R=wrist_R,
            mano_pose=mano_pose,
            hand_transl=transl,
            obj_R=obj_R,
            obj_t=obj_t,
        )
