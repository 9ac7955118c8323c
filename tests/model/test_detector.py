"""Detector network: offline build, safe save/load, class checks, training signal, caps."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch
import torchvision.models._api as tv_api

from homae_model.detector.infer import Detector
from homae_model.detector.model import (
    ARCHS,
    build_detector,
    detector_class_names,
    load_detector,
    save_detector,
    sidecar_path,
)

CLASSES = detector_class_names(["011_banana", "025_mug"])
SIZE = 96


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"tried to download: {args} {kwargs}")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(tv_api, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def rectangle_image(size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Grey image with one red rectangle; returns (image, box xyxy)."""
    img = np.full((size, size, 3), 90, dtype=np.uint8)
    x0, y0, x1, y1 = size // 4, size // 3, size // 4 + size // 3, size // 3 + size // 2
    img[y0 : y1 + 1, x0 : x1 + 1] = (230, 30, 30)
    return img, np.array([x0, y0, x1, y1], dtype=np.float32)


@pytest.mark.parametrize("arch", ARCHS)
def test_builds_offline_with_requested_classes(arch):
    torch.manual_seed(0)
    model = build_detector(arch, CLASSES, SIZE).eval()
    if arch.startswith("ssd"):
        cls_out = model.head.classification_head.module_list[0][1].out_channels
        assert cls_out % (len(CLASSES) + 1) == 0
        assert cls_out // (len(CLASSES) + 1) == model.anchor_generator.num_anchors_per_location()[0]
    else:
        assert model.roi_heads.box_predictor.cls_score.out_features == len(CLASSES) + 1
    with torch.no_grad():
        out = model([torch.rand(3, 80, 120)])
    assert set(out[0]) == {"boxes", "scores", "labels"}


def test_unknown_arch_and_bad_classes():
    with pytest.raises(ValueError, match="ssdlite320_mobilenet_v3_large"):
        build_detector("yolo", CLASSES)
    with pytest.raises(ValueError, match="duplicates"):
        build_detector(ARCHS[0], ("hand", "hand"))


def _fp16_exact(model):
    """Round the weights to float16 values so a half-precision save loses nothing."""
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.half().float())
    return model


def test_save_load_round_trip_identical_outputs(tmp_path):
    torch.manual_seed(1)
    model = _fp16_exact(build_detector(ARCHS[0], CLASSES, SIZE)).eval()
    path = save_detector(model, tmp_path / "det.safetensors")
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["arch"] == ARCHS[0] and meta["class_names"] == list(CLASSES)
    assert meta["input_size"] == SIZE
    loaded = load_detector(path)
    assert all(
        t.dtype == torch.float32 for t in loaded.state_dict().values() if t.is_floating_point()
    )
    x = [torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))]
    with torch.no_grad():
        feats_a = model.backbone(model.transform(x)[0].tensors)
        feats_b = loaded.backbone(loaded.transform(x)[0].tensors)
        head_a, head_b = model.head(list(feats_a.values())), loaded.head(list(feats_b.values()))
        out_a, out_b = model(x)[0], loaded(x)[0]
    torch.testing.assert_close(head_a["cls_logits"], head_b["cls_logits"], rtol=0, atol=0)
    torch.testing.assert_close(head_a["bbox_regression"], head_b["bbox_regression"], rtol=0, atol=0)
    torch.testing.assert_close(out_a["boxes"], out_b["boxes"])
    torch.testing.assert_close(out_a["scores"], out_b["scores"])


def test_default_arch_file_is_small(tmp_path):
    classes = detector_class_names([f"{i:03d}_object" for i in range(12)])
    path = save_detector(build_detector(ARCHS[0], classes), tmp_path / "d.safetensors")
    assert path.stat().st_size < 15 * 2**20


def test_class_and_arch_mismatch_errors_name_the_file(tmp_path):
    path = save_detector(build_detector(ARCHS[0], CLASSES, SIZE), tmp_path / "a.safetensors")
    with pytest.raises(ValueError, match=r"a\.safetensors.*classes"):
        Detector(path, class_names=("hand", "other"))
    with pytest.raises(ValueError, match=r"a\.safetensors.*arch"):
        load_detector(path, expected_arch=ARCHS[1])
    # A sidecar that promises other classes than the tensors hold.
    meta = json.loads(sidecar_path(path).read_text())
    meta["class_names"] = ["hand"]
    sidecar_path(path).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"a\.safetensors.*do not fit"):
        load_detector(path)
    sidecar_path(path).unlink()
    with pytest.raises(FileNotFoundError, match=r"a\.json"):
        load_detector(path)
    with pytest.raises(FileNotFoundError, match=r"missing\.safetensors"):
        load_detector(tmp_path / "missing.safetensors")


def test_optimisation_lowers_loss_on_rectangle():
    torch.manual_seed(0)
    model = build_detector(ARCHS[0], CLASSES, SIZE).train()
    img, box = rectangle_image()
    x = [torch.from_numpy(img).permute(2, 0, 1).float() / 255] * 2  # BatchNorm needs 2
    target = [{"boxes": torch.from_numpy(box)[None], "labels": torch.tensor([2])}] * 2
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(12):
        loss = sum(model(x, target).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses


def test_detector_caps_and_clips_detections(tmp_path):
    torch.manual_seed(3)
    model = build_detector(ARCHS[0], CLASSES, SIZE)
    det = Detector.from_model(model, score_threshold=0.0, max_detections=3)
    img = np.random.default_rng(0).integers(0, 255, (70, 110, 3), dtype=np.uint8)
    dets = det.detect(img)
    assert len(dets) == 3  # an untrained SSD gives hundreds of boxes at threshold 0
    assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)
    for d in dets:
        assert d.label in CLASSES
        assert 0 <= d.box[0] <= d.box[2] <= 109 and 0 <= d.box[1] <= d.box[3] <= 69
    assert model.detections_per_img == 3
    batch = det.detect_batch([img, img[:40]])
    assert [len(b) for b in batch] == [3, 3]
    det.configure(0.999, 5)
    assert det.detect(img) == []
    with pytest.raises(ValueError, match="max_detections"):
        det.configure(0.5, 0)
    with pytest.raises(ValueError, match="uint8"):
        det.detect(img.astype(np.float32))
