"""Hand-object pairing on hand-made detections."""

from __future__ import annotations

import numpy as np
import pytest

from homae_model.detector.pairing import (
    Detection,
    box_iou,
    pair_detections,
    relative_center_distance,
    union_box,
)


def D(label, score, box):
    return Detection(label, score, np.array(box, dtype=float))


def test_box_iou_and_distance():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[5, 0, 15, 10], [20, 0, 30, 10], [0, 0, 10, 10]], float)
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0.0, 1.0]])
    d = relative_center_distance(a, b)
    np.testing.assert_allclose(d[0], [5 / np.hypot(10, 10), 20 / np.hypot(10, 10), 0.0])
    np.testing.assert_allclose(union_box(a[0], b[1]), [0, 0, 30, 10])


def test_each_hand_takes_its_overlapping_object():
    dets = [
        D("hand", 0.9, [0, 0, 50, 50]),
        D("hand", 0.8, [200, 200, 260, 260]),
        D("025_mug", 0.7, [240, 230, 300, 300]),  # overlaps the second hand
        D("011_banana", 0.95, [30, 30, 90, 80]),  # overlaps the first hand
    ]
    pairs = pair_detections(dets, max_pairs=4)
    assert [(p.hand.score, p.obj.label) for p in pairs] == [(0.9, "011_banana"), (0.8, "025_mug")]
    assert [p.pair_id for p in pairs] == [0, 1]
    assert pairs[0].score == pytest.approx(0.9 * 0.95)
    np.testing.assert_allclose(pairs[0].union_box, [0, 0, 90, 80])


def test_iou_beats_score_and_distance_breaks_ties():
    hand = D("hand", 0.9, [100, 100, 150, 150])
    dets = [
        hand,
        D("025_mug", 0.99, [140, 100, 200, 150]),  # small overlap
        D("011_banana", 0.5, [110, 110, 160, 160]),  # large overlap
    ]
    assert pair_detections(dets, 2)[0].obj.label == "011_banana"
    # No overlap: the nearer neighbour wins; one too far away never pairs.
    near = D("025_mug", 0.5, [152, 100, 200, 150])
    far = D("011_banana", 0.99, [400, 400, 450, 450])
    assert pair_detections([hand, far, near], 2)[0].obj is near
    assert pair_detections([hand, far], 2) == []


def test_unmatched_dropped_one_to_one_allowed_and_cap():
    dets = [
        D("hand", 0.9, [0, 0, 40, 40]),
        D("hand", 0.6, [10, 10, 50, 50]),  # both hands overlap the one mug
        D("025_mug", 0.8, [20, 20, 60, 60]),
        D("011_banana", 0.9, [500, 500, 520, 520]),  # alone: dropped
    ]
    pairs = pair_detections(dets, max_pairs=5)
    assert len(pairs) == 1 and pairs[0].hand.score == 0.6  # the hand overlapping the mug most
    assert pair_detections(dets, 5, allowed_objects=["011_banana"]) == []
    many = [D("hand", 0.5 + i / 100, [100 * i, 0, 100 * i + 40, 40]) for i in range(6)]
    many += [D("025_mug", 0.9, [100 * i + 20, 0, 100 * i + 60, 40]) for i in range(6)]
    capped = pair_detections(many, max_pairs=3)
    assert [p.hand.score for p in capped] == [0.55, 0.54, 0.53]
    assert pair_detections(many, 0) == [] and pair_detections([], 3) == []
    with pytest.raises(ValueError, match="max_pairs"):
        pair_detections(many, -1)


def test_detection_validates_box():
    with pytest.raises(ValueError, match="box"):
        Detection("hand", 1.0, np.array([0.0, 1.0, np.nan, 3.0]))


def test_unmatched_hand_gets_an_in_hand_object_named_by_the_nearest_weak_candidate() -> None:
    hand = Detection("hand", 0.8, np.array([100.0, 100.0, 150.0, 150.0]))
    weak_near = Detection("025_mug", 0.05, np.array([140.0, 120.0, 170.0, 160.0]))
    weak_far = Detection("011_banana", 0.2, np.array([400.0, 400.0, 450.0, 450.0]))
    dets = [hand, weak_near, weak_far]
    assert pair_detections(dets, 4, min_score=0.3) == []  # objects too weak to pair
    (pair,) = pair_detections(dets, 4, min_score=0.3, object_fallback=True)
    assert pair.hand is hand and pair.obj.label == "025_mug" and pair.obj.score == 0.05
    np.testing.assert_allclose(pair.obj.box, [85.0, 85.0, 165.0, 165.0])  # 1.6 x the hand box
    # No candidate at all: the single allowed object names it, with score 0.
    (pair,) = pair_detections([hand], 4, ["006_mustard_bottle"], object_fallback=True)
    assert (pair.obj.label, pair.obj.score) == ("006_mustard_bottle", 0.0)
    assert pair_detections([hand], 4, object_fallback=True) == []  # nothing to name it
