"""Stable identities across frames: `Tracker` (association + memory) and `LabelVote`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from homae_model.tracking.association import greedy_match, match_cost

__all__ = ["LabelVote", "Observation", "Track", "Tracker", "TrackerConfig"]


@dataclass(frozen=True)
class TrackerConfig:
    """How observations are associated and how long a track is remembered.

    Attributes:
        min_iou: box overlap that alone lets an observation continue a track.
        max_distance_m: 3D distance (metres) that alone lets an observation continue a track.
        max_misses: frames a track may go unobserved and keep its identity; one more miss
            ends it. After m misses the distance gate is (m + 1) * max_distance_m: the longer
            a thing is unseen, the further it may have moved.
        name_frames: a track's label is the vote over its first `name_frames` observations,
            then kept for the track's life (a planner's object does not change its name).
    """

    min_iou: float = 0.3
    max_distance_m: float = 0.1
    max_misses: int = 5
    name_frames: int = 5

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_iou <= 1.0:
            raise ValueError(f"tracking min_iou must be in [0, 1], got {self.min_iou}")
        if not self.max_distance_m > 0.0:
            raise ValueError(f"tracking max_distance_m must be > 0, got {self.max_distance_m}")
        if self.max_misses < 0:
            raise ValueError(f"tracking max_misses must be >= 0, got {self.max_misses}")
        if self.name_frames < 1:
            raise ValueError(f"tracking name_frames must be >= 1, got {self.name_frames}")


@dataclass(frozen=True)
class Observation:
    """One detected thing of one frame.

    Attributes:
        box: (4,) xyxy, pixels.
        position: (3,) metres (camera frame): the wrist for a hand, the origin for an object.
        label: class label ("" when there is none to vote on).
        score: weight of this observation's vote for `label`.
    """

    box: np.ndarray
    position: np.ndarray
    label: str = ""
    score: float = 1.0


class LabelVote:
    """The label of a track: the largest summed score over its first `decide_after` votes.

    Until then the leader so far is the label (a tie keeps the current one); from then on the
    label is fixed, so a thing keeps its name (and its TF child frame) while it is tracked.

    Args:
        decide_after: votes counted before the label is fixed (>= 1).
    """

    def __init__(self, decide_after: int = 5) -> None:
        self.decide_after = int(decide_after)
        self.totals: dict[str, float] = defaultdict(float)
        self.votes = 0
        self.label = ""

    @property
    def decided(self) -> bool:
        """True once the label is fixed."""
        return self.votes >= self.decide_after

    def add(self, label: str, weight: float) -> str:
        """Add one vote (weight >= 0; non-finite counts as 0) and return the label."""
        if not label or self.decided:
            return self.label
        w = float(weight) if np.isfinite(weight) and weight > 0.0 else 0.0
        self.totals[label] += w
        self.votes += 1
        if not self.label or self.totals[label] > self.totals[self.label]:
            self.label = label
        return self.label


@dataclass
class Track:
    """One identity.

    Attributes:
        track_id: unique within its Tracker (1, 2, ...; never reused).
        box: last observed (4,) box.
        position: last observed (3,) position, metres.
        vote: the label vote over the track.
        age: frames observed.
        misses: consecutive frames without an observation.
    """

    track_id: int
    box: np.ndarray
    position: np.ndarray
    vote: LabelVote = field(default_factory=LabelVote)  # replaced with name_frames on creation
    age: int = 0
    misses: int = 0

    @property
    def label(self) -> str:
        """The voted label ("" when nothing was voted)."""
        return self.vote.label


class Tracker:
    """Greedy frame-to-frame association with a memory for short misses."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        """Empty tracker; ids start at 1."""
        self.config = config or TrackerConfig()
        self.tracks: dict[int, Track] = {}
        self._next_id = 1

    def reset(self) -> list[int]:
        """End every track (ids are not reused); returns the ended ids."""
        ended = sorted(self.tracks)
        self.tracks = {}
        return ended

    def update(self, observations: Sequence[Observation]) -> tuple[list[int], list[int]]:
        """Associate this frame's observations with the tracks.

        Args:
            observations: this frame's observations.

        Returns:
            (track id per observation, ids of tracks that ended this frame).
        """
        cfg = self.config
        live = sorted(self.tracks)
        costs: dict[tuple[int, int], float] = {}
        for i, obs in enumerate(observations):
            for j, tid in enumerate(live):
                t = self.tracks[tid]
                gate = cfg.max_distance_m * (1 + t.misses)
                c = match_cost(obs.box, obs.position, t.box, t.position, cfg.min_iou, gate)
                if c is not None:
                    costs[(i, j)] = c
        matched = greedy_match(costs)
        ids: list[int] = []
        seen: set[int] = set()
        for i, obs in enumerate(observations):
            if i in matched:
                track = self.tracks[live[matched[i]]]
            else:
                track = Track(self._next_id, obs.box, obs.position, LabelVote(cfg.name_frames))
                self.tracks[track.track_id] = track
                self._next_id += 1
            track.box = np.asarray(obs.box, dtype=np.float64)
            track.position = np.asarray(obs.position, dtype=np.float64)
            track.vote.add(obs.label, obs.score)
            track.age += 1
            track.misses = 0
            ids.append(track.track_id)
            seen.add(track.track_id)
        ended = []
        for tid in live:
            if tid in seen:
                continue
            t = self.tracks[tid]
            t.misses += 1
            if t.misses > cfg.max_misses:
                ended.append(tid)
                del self.tracks[tid]
        return ids, ended
