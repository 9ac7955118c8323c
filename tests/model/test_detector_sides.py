"""The detector's left/right hand classes, and old single-class detector weights."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from homae_model.detector.infer import Detector, detection_class, side_accuracy
from homae_model.detector.model import (
    build_detector,
    detector_class_names,
    has_side_classes,
    read_spec,
)
from homae_model.detector.pairing import HAND_LABEL, Detection, pair_detections
from homae_model.detector.targets import DetectionDataset, hand_class, sample_target
from tests.model.test_detector_training import make_sample

OBJECTS = ["011_banana", "025_mug"]
SIDED = detector_class_names(OBJECTS, sides=True)


def test_sided_classes_and_targets() -> None:
    assert SIDED[:2] == ("right_hand", "left_hand") and has_side_classes(SIDED)
    assert not has_side_classes(detector_class_names(OBJECTS))
    left = replace(make_sample(0), side="left")
    assert sample_target(left, sides=True).labels[0] == "left_hand"
    assert sample_target(left).labels[0] == HAND_LABEL  # single-class targets are unchanged
    assert hand_class("right") == "right_hand" and hand_class("left", sides=False) == "hand"


def test_a_flipped_training_image_swaps_the_hand_side() -> None:
    samples = [make_sample(i) for i in range(12)]  # right hands
    data = DetectionDataset([samples], SIDED, augment=True, seed=0)
    plain = DetectionDataset([samples], SIDED, augment=False)
    right, left = SIDED.index("right_hand") + 1, SIDED.index("left_hand") + 1
    seen = set()
    for i in range(len(samples)):
        _, target = data[i]
        _, ref = plain[i]
        flipped = not np.allclose(target["boxes"].numpy(), ref["boxes"].numpy())
        assert int(ref["labels"][0]) == right
        assert int(target["labels"][0]) == (left if flipped else right)
        seen.add(flipped)
    assert seen == {True, False}  # both cases happened


def test_side_accuracy_and_sided_classes_in_the_map() -> None:
    box = np.array([10.0, 10.0, 50.0, 50.0])
    far = np.array([200.0, 200.0, 240.0, 240.0])
    preds = [
        [Detection(HAND_LABEL, 0.9, box, side="left")],
        [Detection(HAND_LABEL, 0.9, box, side="left")],
        [Detection(HAND_LABEL, 0.9, far, side="right")],  # not found
    ]
    gts = [
        (box[None], ["left_hand"]),
        (box[None], ["right_hand"]),
        (box[None], ["right_hand"]),
    ]
    acc = side_accuracy(preds, gts)
    assert acc["found"] == 2 and acc["labelled"] == 3
    assert acc["left_accuracy"] == 1.0 and acc["right_accuracy"] == 0.0
    assert acc["accuracy"] == 0.5
    assert detection_class(preds[0][0]) == "left_hand"
    assert detection_class(Detection(HAND_LABEL, 0.5, box)) == HAND_LABEL


def test_sided_detector_reports_hand_label_with_a_side() -> None:
    import torch

    torch.manual_seed(0)
    det = Detector.from_model(build_detector(class_names=SIDED, input_size=96), score_threshold=0)
    assert det.has_sides
    img = np.random.default_rng(0).integers(0, 255, (70, 110, 3), dtype=np.uint8)
    dets = det.detect(img)
    hands = [d for d in dets if d.label == HAND_LABEL]
    assert all(d.side in ("right", "left") for d in hands)
    assert all(d.side is None for d in dets if d.label != HAND_LABEL)
    assert all(d.label in (HAND_LABEL, *OBJECTS) for d in dets)


def test_old_single_class_weights_load_and_give_right_hands() -> None:
    """The bundled detector (one "hand" class) still loads; its hands' side is unknown -> right."""
    from homae_model.bundled import demo_detector
    from homae_model.estimation.estimator import PairEstimate

    path = demo_detector()
    if not path.is_file():
        pytest.skip("no bundled detector")
    spec = read_spec(path)
    if has_side_classes(spec.class_names):
        pytest.skip("the bundled detector has left/right classes")
    det = Detector(path, score_threshold=0.0, max_detections=10)
    assert not det.has_sides
    img = np.random.default_rng(1).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    dets = det.detect(img)
    assert dets and all(d.side is None for d in dets)
    hands = [d for d in dets if d.label == HAND_LABEL]
    box = np.array([100.0, 100.0, 150.0, 150.0])
    pairs = pair_detections(
        [*hands, Detection(HAND_LABEL, 0.9, box), Detection("025_mug", 0.9, box)], 4
    )
    assert pairs
    for pair in pairs:
        est = PairEstimate(pair, None, None)  # type: ignore[arg-type]
        assert est.side == "right" and est.side_source == "default"
