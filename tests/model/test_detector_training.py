"""Detector targets, augmentation, the training loop and the mAP/recall evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from homae_model.data.schema import RawSample
from homae_model.detector.infer import Detector, evaluate_detections
from homae_model.detector.model import detector_class_names, load_detector, read_spec
from homae_model.detector.pairing import Detection
from homae_model.detector.targets import (
    DetectionDataset,
    color_jitter,
    hflip,
    sample_target,
)
from homae_model.detector.train import DetectorTrainConfig, evaluate_on_sources, train_detector

CLASSES = detector_class_names(["011_banana", "025_mug"])
H, W = 72, 96


def make_sample(i: int, obj_name: str = "025_mug", obj_visible: float = 1.0) -> RawSample:
    """A grey image with a skin-coloured 'hand' and a red 'object' rectangle."""
    rng = np.random.default_rng(i)
    img = np.full((H, W, 3), 60, dtype=np.uint8)
    hx, hy = rng.integers(2, 30), rng.integers(2, 30)
    ox, oy = rng.integers(40, 70), rng.integers(20, 45)
    hand_box = np.array([hx, hy, hx + 20, hy + 25], dtype=np.float64)
    obj_box = np.array([ox, oy, ox + 18, oy + 22], dtype=np.float64)
    img[hy : hy + 26, hx : hx + 21] = (220, 170, 140)
    img[oy : oy + 23, ox : ox + 19] = (200, 20, 20)
    z3 = np.zeros(3)
    return RawSample(
        image=img, K=np.array([[100.0, 0, W / 2], [0, 100.0, H / 2], [0, 0, 1]]), side="right",
        mano_pose=np.zeros(48), mano_shape=np.zeros(10), mano_transl=z3,
        hand_joints=np.zeros((21, 3)), hand_joints_2d=np.zeros((21, 2)), obj_name=obj_name,
        obj_rot=z3, obj_trans=z3, hand_box=hand_box, obj_box=obj_box,
        obj_visible=obj_visible, source=f"fake/{i}",
    )  # fmt: skip


class FakeSource:
    def __init__(self, n: int, **kwargs) -> None:
        self.n, self.kwargs = n, kwargs

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> RawSample:
        return make_sample(i, **self.kwargs)


def test_sample_target_labels_clips_and_drops_hidden():
    s = make_sample(0)
    s.obj_box = np.array([80.0, 10.0, 130.0, 90.0])
    t = sample_target(s)
    assert t.labels == ["hand", "025_mug"]
    np.testing.assert_allclose(t.boxes[1], [80, 10, W - 1, H - 1])
    assert sample_target(make_sample(0, obj_visible=0.0)).labels == ["hand"]


def test_hflip_moves_boxes_with_pixels():
    s = make_sample(1)
    boxes = sample_target(s).boxes
    img, flipped = hflip(s.image, boxes)
    # The red object's pixels in the flipped image span exactly the flipped object box.
    ys, xs = np.nonzero((img[..., 0] == 200) & (img[..., 1] == 20))
    np.testing.assert_allclose([xs.min(), ys.min(), xs.max(), ys.max()], flipped[1])
    np.testing.assert_allclose(hflip(*hflip(s.image, boxes))[1], boxes)


def test_color_jitter_changes_colours_not_shape():
    img = make_sample(2).image
    out = color_jitter(img, np.random.default_rng(0), (0.4, 0.4, 0.4, 0.1))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - img).mean() > 1.0


def test_dataset_targets_and_unknown_object():
    data = DetectionDataset([FakeSource(3), FakeSource(2)], CLASSES, augment=True)
    assert len(data) == 5
    image, target = data[4]
    assert image.shape == (3, H, W) and image.dtype == torch.float32
    assert target["labels"].tolist() == [1, 3]
    assert (target["boxes"][:, 2:] > target["boxes"][:, :2]).all()
    bad = DetectionDataset([FakeSource(1, obj_name="999_unknown")], CLASSES)
    with pytest.raises(ValueError, match=r"fake/0.*999_unknown.*011_banana"):
        bad[0]


def test_train_detector_writes_loadable_checkpoint(tmp_path):
    cfg = DetectorTrainConfig(input_size=96, epochs=5, max_steps=3, batch_size=2, seed=0)
    out = tmp_path / "sub" / "det.safetensors"
    result = train_detector([FakeSource(6)], CLASSES, out, cfg, progress=False)
    assert result.steps == 3 and result.path == out
    assert np.isfinite(result.first_loss) and np.isfinite(result.last_loss)
    assert read_spec(out).class_names == CLASSES
    load_detector(out, expected_class_names=CLASSES)
    assert not list(out.parent.glob("*.tmp"))  # atomic writes leave no temporaries
    ev = evaluate_on_sources(Detector(out, score_threshold=0.7), [FakeSource(4)])
    assert ev.num_images == 4 and ev.num_gt == 8 and 0.0 <= ev.map50 <= 1.0


def test_evaluate_detections_hand_made():
    gt = [(np.array([[0, 0, 10, 10], [20, 20, 40, 40]], float), ["hand", "025_mug"])]
    perfect = [
        [Detection("hand", 0.9, [0, 0, 10, 10]), Detection("025_mug", 0.8, [20, 20, 40, 40])]
    ]
    ev = evaluate_detections(perfect, gt)
    assert ev.map50 == pytest.approx(1.0) and ev.recall == pytest.approx(1.0)
    # Wrong class at the object, a low-score hit on the hand, one false positive ranked first.
    partial = [
        [
            Detection("hand", 0.95, [60, 60, 70, 70]),
            Detection("hand", 0.3, [0, 0, 10, 11]),
            Detection("011_banana", 0.8, [20, 20, 40, 40]),
        ]
    ]
    ev = evaluate_detections(partial, gt)
    assert ev.recall == pytest.approx(0.0)  # the only hit scores below 0.5
    assert ev.ap["hand"] == pytest.approx(0.5) and ev.ap["025_mug"] == 0.0
    assert ev.map50 == pytest.approx(0.25)


def test_cli_trains_and_evaluates(tmp_path, monkeypatch, capsys):
    import homae_model.data.synthetic as synthetic
    from homae_model.cli.train_detector import main

    monkeypatch.setattr(synthetic, "SyntheticSource", lambda folder: FakeSource(4))
    out = tmp_path / "cli.safetensors"
    argv = ["--data", str(tmp_path), "--out", str(out), "--max-steps", "2", "--batch-size", "2"]
    assert main([*argv, "--input-size", "96", "--eval-data", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "after 2 steps" in text and "mAP@0.5" in text
    spec = read_spec(out)
    # hand classes first (one per side since issue 18), then the objects
    assert spec.class_names[:2] == ("right_hand", "left_hand") and "025_mug" in spec.class_names
    assert spec.input_size == 96
    assert "left/right accuracy" in text
