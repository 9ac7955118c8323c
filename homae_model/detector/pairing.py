"""Detections and hand-object pairs: box geometry and the pairing rule (numpy only).

Pairing rule (`pair_detections`):
1. Hands are the detections labelled `HAND_LABEL`; objects are all others, restricted to
   `allowed_objects` when given.
2. Every hand-object combination gets an affinity: first the IoU of the two boxes, then (ties,
   e.g. IoU 0 for boxes that only touch or are close) the centre distance divided by the mean
   box diagonal. Combinations with IoU 0 and a relative distance above `max_center_distance`
   are not neighbours and never pair.
3. Greedy one-to-one matching, best affinity first: each hand takes at most one object and each
   object goes to at most one hand.
4. Unmatched objects are dropped. Unmatched hands are dropped too, unless `object_fallback`
   is on: then the object is taken to be in the hand (a grasp), with the hand box enlarged by
   `FALLBACK_OBJECT_SCALE` as its box and, as its name, the best object candidate near the hand
   (any score, even below `min_score`), else the best one in the image, else the single
   allowed object; with none of these the hand is dropped. A weakly trained detector finds
   hands far more reliably than the object a hand covers.
5. Only detections scoring at least `min_score` take part in steps 1-3.
6. Pairs are sorted by score (hand score x object score, highest first), cut to `max_pairs`,
   and numbered 0..n-1 in that order (`pair_id`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HAND_LABEL = "hand"
"""Label of hand detections (whatever the side); every other label is an object library name."""

HAND_SIDE_CLASSES: dict[str, str] = {"right_hand": "right", "left_hand": "left"}
"""Detector class names of a detector that tells the sides apart -> side. Their detections are
reported with label `HAND_LABEL` and this `side`; a detector whose only hand class is
`HAND_LABEL` (the older single-class files) reports side None (unknown)."""

DEFAULT_MAX_CENTER_DISTANCE = 1.5
"""Largest centre distance (in mean box diagonals) at which non-overlapping boxes still pair."""
FALLBACK_OBJECT_SCALE = 1.6
"""Side of a fallback object box, in hand-box sides (the object is held in the hand)."""
OBJECT_HINT_MIN_SCORE = 0.02
"""Run the detector down to this score so weak object candidates can name fallback objects."""


@dataclass(frozen=True)
class Detection:
    """One detected box.

    Attributes:
        label: class name ("hand" or an object library name).
        score: confidence in [0, 1].
        box: (4,) float64 `(x_min, y_min, x_max, y_max)` in full-image pixels.
        side: a hand's side, "right" or "left"; None when unknown (a single-class hand
            detector, a fixed ROI) or for objects.
    """

    label: str
    score: float
    box: np.ndarray
    side: str | None = None

    def __post_init__(self) -> None:
        box = np.asarray(self.box, dtype=np.float64).reshape(-1)
        if box.shape != (4,) or not np.all(np.isfinite(box)):
            raise ValueError(f"Detection {self.label!r}: box must be 4 finite numbers, got {box}")
        if self.side not in (None, "right", "left"):
            raise ValueError(
                f"Detection {self.label!r}: side must be right/left/None, got {self.side!r}"
            )
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "score", float(self.score))


@dataclass(frozen=True)
class Pair:
    """A hand and the object it interacts with, the unit the pose model runs on.

    Attributes:
        hand: the hand detection.
        obj: the object detection (label = object library name).
        pair_id: position in the score-sorted list of pairs of this image (0 = best).
    """

    hand: Detection
    obj: Detection
    pair_id: int

    @property
    def score(self) -> float:
        """Pair confidence: hand score x object score."""
        return self.hand.score * self.obj.score

    @property
    def union_box(self) -> np.ndarray:
        """(4,) smallest box holding both boxes, full-image pixels."""
        return union_box(self.hand.box, self.obj.box)


def union_box(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(4,) smallest xyxy box containing boxes `a` and `b` (each (4,))."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.concatenate([np.minimum(a[:2], b[:2]), np.maximum(a[2:], b[2:])])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union.

    Args:
        a: (N, 4) xyxy boxes.
        b: (M, 4) xyxy boxes.

    Returns:
        (N, M) IoU in [0, 1] (0 where both boxes are empty).
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0.0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0.0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0.0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def relative_center_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise centre distance divided by the mean of the two box diagonals.

    Args:
        a: (N, 4) xyxy boxes.
        b: (M, 4) xyxy boxes.

    Returns:
        (N, M) dimensionless distances (0 = same centre, ~1 = boxes just apart).
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ca, cb = (a[:, :2] + a[:, 2:]) / 2, (b[:, :2] + b[:, 2:]) / 2
    da = np.linalg.norm(a[:, 2:] - a[:, :2], axis=-1)
    db = np.linalg.norm(b[:, 2:] - b[:, :2], axis=-1)
    dist = np.linalg.norm(ca[:, None] - cb[None], axis=-1)
    return dist / np.maximum((da[:, None] + db[None]) / 2, 1e-6)


def pair_detections(
    detections: list[Detection],
    max_pairs: int,
    allowed_objects: list[str] | tuple[str, ...] | set[str] | None = None,
    max_center_distance: float = DEFAULT_MAX_CENTER_DISTANCE,
    min_score: float = 0.0,
    object_fallback: bool = False,
) -> list[Pair]:
    """Pair each hand with the object it overlaps or neighbours best (see the module rule).

    Args:
        detections: detections of one image, any order.
        max_pairs: most pairs returned (highest scores kept); must be >= 0.
        allowed_objects: object names that may pair; None or empty = all.
        max_center_distance: neighbour limit for non-overlapping boxes (mean box diagonals).
        min_score: detections below this score do not pair (they may still name a fallback).
        object_fallback: give unmatched hands an in-hand object (rule 4).

    Returns:
        Pairs sorted by score (highest first), `pair_id` = position; unmatched hands and
        objects are dropped.

    Raises:
        ValueError: negative `max_pairs`.
    """
    if max_pairs < 0:
        raise ValueError(f"max_pairs must be >= 0, got {max_pairs}")
    allowed = set(allowed_objects) if allowed_objects else None
    all_objs = [
        d for d in detections if d.label != HAND_LABEL and (allowed is None or d.label in allowed)
    ]
    hands = [d for d in detections if d.label == HAND_LABEL and d.score >= min_score]
    objs = [d for d in all_objs if d.score >= min_score]
    if not hands or max_pairs == 0:
        return []
    used_h: set[int] = set()
    used_o: set[int] = set()
    matched: list[tuple[Detection, Detection]] = []
    if objs:
        hb = np.stack([h.box for h in hands])
        ob = np.stack([o.box for o in objs])
        iou = box_iou(hb, ob)
        dist = relative_center_distance(hb, ob)
        candidates = [
            (-iou[i, j], dist[i, j], -hands[i].score * objs[j].score, i, j)
            for i in range(len(hands))
            for j in range(len(objs))
            if iou[i, j] > 0 or dist[i, j] <= max_center_distance
        ]
        candidates.sort()
        for *_, i, j in candidates:
            if i in used_h or j in used_o:
                continue
            used_h.add(i)
            used_o.add(j)
            matched.append((hands[i], objs[j]))
    if object_fallback:
        sole = next(iter(allowed)) if allowed is not None and len(allowed) == 1 else None
        for i, hand in enumerate(hands):
            if i not in used_h:
                obj = _in_hand_object(hand, all_objs, max_center_distance, sole)
                if obj is not None:
                    matched.append((hand, obj))
    matched.sort(key=lambda ho: -ho[0].score * ho[1].score)
    return [Pair(h, o, k) for k, (h, o) in enumerate(matched[:max_pairs])]


def _in_hand_object(
    hand: Detection, candidates: list[Detection], max_center_distance: float, sole: str | None
) -> Detection | None:
    """The fallback object of an unmatched hand (rule 4), or None."""
    near = [
        c
        for c in candidates
        if box_iou(hand.box, c.box)[0, 0] > 0
        or relative_center_distance(hand.box, c.box)[0, 0] <= max_center_distance
    ]
    hint = max(near or candidates, key=lambda c: c.score, default=None)
    if hint is None and sole is None:
        return None
    centre = (hand.box[:2] + hand.box[2:]) / 2
    half = FALLBACK_OBJECT_SCALE * (hand.box[2:] - hand.box[:2]) / 2
    box = np.concatenate([centre - half, centre + half])
    return Detection(hint.label if hint is not None else sole, hint.score if hint else 0.0, box)
