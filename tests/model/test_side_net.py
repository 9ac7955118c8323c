"""The hand-side network: its cues, crops, mirror symmetry, files, training and the detector."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from homae_model.bundled import demo_side_net
from homae_model.data.synth_scene import DEFAULT_MANO_PATH, SceneGenerator, SynthConfig
from homae_model.detector.infer import Detector
from homae_model.detector.model import build_detector, detector_class_names, save_detector
from homae_model.detector.pairing import HAND_LABEL, Detection
from homae_model.detector.side_net import (
    CropJitter,
    SideNet,
    SideNetSpec,
    crop_frames,
    crop_hands,
    left_probability,
    load_side_net,
    palm_facing,
    save_side_net,
    turn_sign,
)
from homae_model.detector.side_train import (
    HandCrops,
    SideTrainConfig,
    evaluate_side_net,
    side_loss,
    train_side_net,
)
from homae_model.estimation.detection import DetectionConfig, TorchvisionBackend

needs_hand = pytest.mark.skipif(
    not DEFAULT_MANO_PATH.is_file(), reason=f"bundled hand model missing: {DEFAULT_MANO_PATH}"
)
SIZE = 128
SPEC = SideNetSpec(input_size=32, width=8)


class ListSource:
    def __init__(self, samples: list) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        return self.samples[i]


@pytest.fixture(scope="module")
def scenes() -> list:
    """Right and left synthetic scenes (the left ones mirror the right ones of the same seed)."""
    out = []
    for frac in (0.0, 1.0):
        gen = SceneGenerator(SynthConfig(width=SIZE, height=SIZE, left_fraction=frac))
        out += [gen.generate(i, seed=11).raw for i in range(6)]
    return out


@needs_hand
def test_the_side_is_the_palm_cue_agreeing_with_the_turn(scenes) -> None:
    """Left hand <=> (palm faces the camera) == (wrist -> index -> little turns clockwise)."""
    palms = set()
    for s in scenes:
        palm = palm_facing(s.hand_joints, s.side)
        turn = turn_sign(np.asarray(s.hand_joints_2d)) > 0
        assert (s.side == "left") == (palm == turn), s.source
        palms.add(palm)
    right, left = scenes[:6], scenes[6:]
    for r, lt in zip(right, left, strict=True):  # a mirror twin: same palm cue, turn reversed
        assert palm_facing(r.hand_joints, "right") == palm_facing(lt.hand_joints, "left")
        assert (turn_sign(r.hand_joints_2d) > 0) != (turn_sign(lt.hand_joints_2d) > 0)


def _ramp_image(h: int = 60, w: int = 80) -> torch.Tensor:
    """(3,H,W): channel 0 = x / w, channel 1 = y / h (pixel centres at integers)."""
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    return torch.stack([xs / w, ys / h, torch.zeros_like(xs)])


def test_crop_frames_map_crop_units_to_image_pixels() -> None:
    image = _ramp_image()
    boxes = torch.tensor([[20.0, 15.0, 40.0, 35.0], [50.0, 30.0, 60.0, 36.0]])
    spec = SideNetSpec(input_size=32, margin=1.5)
    jitter = CropJitter(
        angle=torch.tensor([0.7, -2.0]),
        scale=torch.tensor([0.9, 1.1]),
        shift=torch.tensor([[0.1, -0.05], [0.0, 0.1]]),
        flip=torch.tensor([True, False]),
    )
    crops = crop_hands(image, boxes, spec, jitter)
    centre, m = crop_frames(boxes, spec, jitter)
    t = (torch.arange(32).float() + 0.5) / 32 * 2 - 1
    for b in range(2):
        for i, j in [(0, 0), (10, 22), (31, 7), (31, 31)]:
            n = torch.tensor([t[j], t[i]])  # crop pixel (row i, column j)
            u = centre[b] + m[b] @ n
            got = crops[b, :2, i, j] * torch.tensor([80.0, 60.0])
            torch.testing.assert_close(got, u, atol=1e-3, rtol=0)
    # no jitter: a square of side margin * the larger box side, centred on the box
    c0, m0 = crop_frames(boxes[:1], spec)
    torch.testing.assert_close(c0[0], torch.tensor([30.0, 25.0]))
    torch.testing.assert_close(m0[0], torch.eye(2) * 20 * 1.5 / 2)


def test_mirror_symmetry_of_the_crop_and_the_side() -> None:
    torch.manual_seed(0)
    image = torch.rand(3, 50, 70)
    box = torch.tensor([[12.0, 8.0, 33.0, 30.0]])
    mirrored_box = torch.tensor([[70 - 1 - 33.0, 8.0, 70 - 1 - 12.0, 30.0]])
    crop = crop_hands(image, box, SPEC)
    crop_of_mirror = crop_hands(image.flip(-1), mirrored_box, SPEC)
    torch.testing.assert_close(crop_of_mirror, crop.flip(-1), atol=1e-5, rtol=0)
    # the flip jitter is the same mirror
    torch.testing.assert_close(
        crop_hands(image, box, SPEC, CropJitter(flip=torch.tensor([True]))),
        crop.flip(-1),
        atol=1e-5,
        rtol=0,
    )
    net = SideNet(SPEC)
    crops = torch.rand(5, 3, 32, 32)
    p = left_probability(net, crops)
    torch.testing.assert_close(left_probability(net, crops.flip(-1)), 1 - p, atol=1e-6, rtol=0)
    assert p.shape == (5,) and bool(((p >= 0) & (p <= 1)).all())


def test_save_and_load(tmp_path) -> None:
    torch.manual_seed(1)
    net = SideNet(SPEC).eval()
    path = save_side_net(net, tmp_path / "s.safetensors")
    meta = json.loads((tmp_path / "s.json").read_text())
    assert meta["format"] == "homae-side-net/1" and meta["input_size"] == 32
    back = load_side_net(path)
    x = torch.rand(3, 3, 32, 32)
    kp, palm = net(x)
    kp2, palm2 = back(x)
    torch.testing.assert_close(kp2, kp, atol=5e-3, rtol=0)  # stored as float16
    torch.testing.assert_close(palm2, palm, atol=5e-3, rtol=0)
    (tmp_path / "s.json").write_text(json.dumps({**meta, "format": "other"}))
    with pytest.raises(ValueError, match=r"s\.json.*format"):
        load_side_net(path)
    (tmp_path / "s.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"s\.json"):
        load_side_net(path)
    with pytest.raises(ValueError, match="input_size"):
        SideNetSpec(input_size=30)


def test_the_detector_takes_its_sides_from_the_side_net(tmp_path) -> None:
    classes = detector_class_names(["025_mug"])  # one "hand" class: no side of its own
    det_path = save_detector(
        build_detector(class_names=classes, input_size=64), tmp_path / "d.safetensors"
    )
    assert not Detector(det_path).has_sides
    torch.manual_seed(2)
    sides_path = save_side_net(SideNet(SPEC).eval(), tmp_path / "sides.safetensors")
    detector = Detector(det_path, side_net=sides_path)
    assert detector.has_sides and detector.side_net is not None
    image = torch.rand(3, 64, 64)
    dets = [
        Detection(HAND_LABEL, 0.9, np.array([5.0, 5.0, 30.0, 30.0])),
        Detection("025_mug", 0.8, np.array([20.0, 20.0, 60.0, 50.0])),
        Detection(HAND_LABEL, 0.7, np.array([30.0, 10.0, 50.0, 40.0])),
    ]
    out = detector._sides(image, dets)
    boxes = torch.from_numpy(np.stack([d.box for d in dets[::2]])).float()
    p = left_probability(detector.side_net, crop_hands(image, boxes, SPEC))
    assert [d.side for d in out] == [
        "left" if p[0] >= 0.5 else "right",
        None,
        "left" if p[1] >= 0.5 else "right",
    ]
    assert [d.score for d in out] == [d.score for d in dets]
    # what runs on an image: every hand gets a side
    rgb = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    for d in detector.detect(rgb):
        assert (d.side is not None) == (d.label == HAND_LABEL)


def test_a_missing_side_net_is_named_by_its_parameter(tmp_path) -> None:
    config = DetectionConfig(side_net=str(tmp_path / "nope.safetensors"))
    with pytest.raises(FileNotFoundError, match=r"nope\.safetensors.*detector\.side_net"):
        TorchvisionBackend.from_config(config)
    good = save_side_net(SideNet(SPEC), tmp_path / "good.safetensors")
    backend = TorchvisionBackend.from_config(DetectionConfig(side_net=str(good)))
    assert backend.detector.side_net is not None and backend.detector.has_sides
    (tmp_path / "bad.safetensors").write_bytes(b"not a network")
    (tmp_path / "bad.json").write_text(json.dumps({"format": "homae-side-net/1"}))
    with pytest.raises(ValueError, match=r"bad\.json"):
        load_side_net(tmp_path / "bad.safetensors")


@needs_hand
def test_training_targets_follow_the_jitter(scenes) -> None:
    cfg = SideTrainConfig(input_size=32, width=8)
    data = HandCrops([ListSource(scenes)], cfg)
    torch.manual_seed(3)
    flips = set()
    for k in range(len(scenes)):
        crop, kp, palm, left, _ = data[k]
        s = scenes[k]
        assert crop.shape == (3, 32, 32) and kp.shape == (21, 2)
        assert bool(palm) == palm_facing(s.hand_joints, s.side)
        flipped = bool(left) != (s.side == "left")
        flips.add(flipped)
        # the side identity holds on the transformed keypoints, flipped or not
        assert bool(left) == (bool(palm) == bool(turn_sign(kp) > 0))
    assert flips == {True, False}


@needs_hand
def test_training_fits_a_few_scenes_and_writes_the_files(scenes, tmp_path) -> None:
    """No jitter, a few scenes: the loss falls by a large factor (counts, no timing)."""
    cfg = SideTrainConfig(
        input_size=32,
        width=8,
        epochs=60,
        batch_size=12,
        lr=1e-2,
        rotation=0.0,
        scale_jitter=0.0,
        shift_jitter=0.0,
        color_jitter=0.0,
    )
    src = ListSource(scenes)
    torch.manual_seed(0)
    before = side_loss(SideNet(cfg.spec), next(iter(_batches(src, cfg))), cfg).item()
    result = train_side_net(
        [src], tmp_path / "s.safetensors", cfg, eval_sources=[src], progress=False
    )
    assert result.steps == 60 and result.path.is_file() and (tmp_path / "s.json").is_file()
    assert result.last_loss < 0.5 * result.first_loss and result.last_loss < 0.5 * before
    ev = evaluate_side_net(load_side_net(result.path), [src], cfg)
    assert ev.hands == sum(s.hand_visible >= cfg.min_visible for s in scenes)
    assert len(result.history) == 60 and math.isfinite(ev.keypoint_error)
    # --init: fine-tuning starts where that network ended (its loss, not a fresh one's)
    one = dataclasses.replace(cfg, epochs=1)
    tuned = train_side_net([src], tmp_path / "t.safetensors", one, progress=False, init=result.path)
    assert tuned.first_loss < 0.5 * before
    wider = dataclasses.replace(cfg, width=16)
    with pytest.raises(ValueError, match=r"--init .*width"):
        train_side_net([src], tmp_path / "w.safetensors", wider, progress=False, init=result.path)
    # another input size: the convolutions carry over, the file records the new size
    larger = dataclasses.replace(one, input_size=cfg.input_size + 16)
    grown = train_side_net(
        [src], tmp_path / "g.safetensors", larger, progress=False, init=result.path
    )
    assert load_side_net(grown.path).spec.input_size == cfg.input_size + 16
    assert grown.first_loss < before


def _batches(src, cfg):
    data = HandCrops([src], cfg, augment=False)
    yield [torch.stack(x) for x in zip(*[data[k] for k in range(len(data))], strict=True)]


@needs_hand
def test_the_bundled_side_net_tells_the_sides_apart() -> None:
    """On fresh palm-look scenes (both sides), on their labelled boxes: well above chance."""
    path = demo_side_net()
    if not path.is_file():
        pytest.skip(f"no bundled side network at {path}")
    net = load_side_net(path)
    gen = SceneGenerator(SynthConfig(width=256, height=256, left_fraction=0.5))
    scenes = [gen.generate(i, seed=123).raw for i in range(48)]
    scenes = [s for s in scenes if s.hand_visible >= 0.3]
    correct = 0
    for s in scenes:
        crop = crop_hands(torch.from_numpy(s.image).permute(2, 0, 1).float() / 255,
                          torch.from_numpy(s.hand_box).float(), net.spec)  # fmt: skip
        correct += (float(left_probability(net, crop)[0]) >= 0.5) == (s.side == "left")
    assert len(scenes) >= 30 and {s.side for s in scenes} == {"left", "right"}
    assert correct / len(scenes) >= 0.6, f"{correct} of {len(scenes)}"


@needs_hand
def test_detector_scores_include_the_side_nets_sides(scenes) -> None:
    """`evaluate_on_sources` reports left/right accuracy for a single-class detector + side net."""
    from homae_model.detector.train import evaluate_on_sources

    model = build_detector(class_names=detector_class_names(["025_mug"]), input_size=64)
    plain = Detector.from_model(model)
    assert evaluate_on_sources(plain, [ListSource(scenes)], max_images=4).side == {}
    sided = Detector.from_model(model, side_net=SideNet(SPEC))
    side = evaluate_on_sources(sided, [ListSource(scenes)], max_images=4).side
    assert side["labelled"] == 4 and 0 <= side["found"] <= 4


@needs_hand
def test_the_estimator_fits_each_twin_with_the_side_the_side_net_gives() -> None:
    """One frame's path (node, homae-infer, homae-bag): a left hand is found left, its right
    twin right (two twin scenes the bundled side network gets right; it does not get all)."""
    from homae_model.bundled import demo_checkpoint
    from homae_model.estimation.estimator import FrameEstimator

    if not (demo_side_net().is_file() and demo_checkpoint().is_file()):
        pytest.skip("no bundled weights")
    est = FrameEstimator.load(detection=DetectionConfig(side_net=str(demo_side_net())))
    right = SceneGenerator(SynthConfig(width=256, height=256))
    left = SceneGenerator(SynthConfig(width=256, height=256, left_fraction=1.0))
    for i in (3, 7):
        for gen, side in ((right, "right"), (left, "left")):
            s = gen.generate(i, seed=21).raw
            est.reset()
            found = est.process(s.image, s.K, 0.0)
            assert found and found[0].side == side and found[0].side_source == "detector"
    plain = FrameEstimator.load()  # no side network: a single-class detector's hand is right
    s = left.generate(3, seed=21).raw
    assert [p.side_source for p in plain.process(s.image, s.K, 0.0)][:1] == ["default"]


@needs_hand
def test_train_sides_cli(tmp_path, capsys) -> None:
    from homae_model.cli.synth import main as synth_main
    from homae_model.cli.train_sides import main

    data = tmp_path / "mixed"
    argv = ["--out", str(data), "--num", "4", "--size", "96x96", "--left-fraction", "0.5"]
    assert synth_main([*argv, "--quiet", "--no-contact-sheet"]) == 0
    out, report = tmp_path / "s.safetensors", tmp_path / "r.json"
    args = ["--data", str(data), "--out", str(out), "--eval-data", str(data), "--epochs", "1"]
    args += ["--no-progress", "--report", str(report), "width=8", "input_size=32"]
    assert main(args) == 0
    saved = json.loads(report.read_text())
    assert saved["config"]["width"] == 8 and len(saved["history"]) == 1
    assert load_side_net(out).spec == SideNetSpec(input_size=32, width=8)
    assert "saved" in capsys.readouterr().out
    assert main(["--data", str(data), "--out", str(out), "nope=1"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["--data", str(data), "--out", str(out), "input_size=30"]) == 2
    assert "input_size" in capsys.readouterr().err
