"""homae-tune-object: the object head's cached inputs, its tuning, and the written checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from homae_model.checkpoint import load_extra, save_checkpoint
from homae_model.config import LossConfig, load_config
from homae_model.geometry.rotations import axis_angle_to_matrix
from homae_model.model import HomaeModel
from homae_model.nn.object_head import ObjectHead
from homae_model.training.object_tuning import (
    ANCHOR_KINDS,
    ObjectHeadInputs,
    TuneSettings,
    collect_object_inputs,
    object_head_errors,
    tune_object_head,
)

TINY = Path(__file__).resolve().parents[2] / "config" / "model" / "tiny.yaml"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny checkpoint and six synthetic frames, some of them left hands."""
    root = tmp_path_factory.mktemp("tune")
    data = root / "data"
    # A subprocess: the renderer's GL driver and torch's libraries must not share a process.
    cmd = [sys.executable, "-m", "homae_model.cli.synth", "--out", str(data), "--num", "6"]
    cmd += ["--size", "160x120", "--seed", "5", "--left-fraction", "0.4", "--quiet"]
    subprocess.run([*cmd, "--no-contact-sheet"], check=True, timeout=300)
    cfg = load_config(TINY)
    torch.manual_seed(0)
    save_checkpoint(root / "ckpt", HomaeModel(cfg), cfg)
    return root, data


def test_collect_keeps_what_the_object_head_received(setup) -> None:
    from homae_model.data.sources import open_source
    from homae_model.inference import Predictor

    root, data = setup
    predictor = Predictor.from_checkpoint(root / "ckpt")
    opened = open_source(data)
    sides = [opened.source[i].side for i in range(len(opened.source))]
    assert "left" in sides and "right" in sides
    cached = collect_object_inputs(predictor, opened, range(len(sides)))
    rights = [i for i, s in enumerate(sides) if s == "right"]
    assert len(cached) == 2 * len(rights)
    assert cached.frames.tolist() == [i for i in rights for _ in ANCHOR_KINDS]
    assert cached.anchor_kind.tolist() == [0, 1] * len(rights)
    assert [s["index"] for s in cached.skipped] == [i for i, s in enumerate(sides) if s == "left"]
    n_obj = predictor.cfg.model.points.num_obj
    assert cached.tokens.dtype == torch.float16 and cached.points.shape[1:] == (n_obj, 3)
    assert cached.obj_model_points.shape[1:] == (256, 3)
    assert not predictor.model.object_head._forward_pre_hooks  # the hook is gone
    # the cached inputs give the Predictor's answer back (tokens stored as float16)
    raw = opened.source[rights[0]]
    pred = predictor.predict(raw.image, raw.K, [(raw.hand_box, raw.obj_box)], [raw.hand_joints[0]])
    with torch.no_grad():
        out = predictor.model.object_head(*cached.batch(torch.tensor([0])), final_only=True)[-1]
    assert np.abs(out.trans[0].double().numpy() - pred[0].obj_trans).max() < 1e-3
    np.testing.assert_allclose(cached.obj_trans[0].numpy(), raw.obj_trans, atol=1e-6)
    with pytest.raises(ValueError, match="anchors"):
        collect_object_inputs(predictor, opened, [0], anchors=["gt"])


def _cache(n: int, seed: int) -> ObjectHeadInputs:
    """Inputs whose object sits 3 cm behind the points' centroid, labels to match."""
    g = torch.Generator().manual_seed(seed)
    pts = torch.randn(n, 20, 3, generator=g) * 0.02 + torch.tensor([0.0, 0.0, 0.5])
    tokens = torch.randn(n, 20, 32, generator=g)
    pos = torch.randn(n, 20, 9, generator=g)
    trans = pts.mean(dim=1) + torch.tensor([0.0, 0.0, 0.03])
    cube = torch.tensor([[x, y, z] for x in (-1, 1) for y in (-1, 2) for z in (-1, 3)]) * 0.02
    return ObjectHeadInputs(
        tokens=tokens.half(),
        pos=pos,
        points=pts,
        obj_rot=torch.zeros(n, 3),
        obj_trans=trans,
        obj_model_points=cube.float().expand(n, -1, -1).clone(),
        anchor_kind=torch.arange(n) % 2,
        frames=torch.arange(n),
    )


def test_tuning_learns_the_cached_labels_and_leaves_the_head_alone() -> None:
    from homae_model.config.schema import ObjectHeadConfig

    torch.manual_seed(0)
    head = ObjectHead(ObjectHeadConfig(d_model=32, layers=1, heads=2, ffn=64), 32, 9, 3.1)
    original = {k: v.clone() for k, v in head.state_dict().items()}
    train, val = _cache(256, 0), _cache(64, 1)
    before = object_head_errors(head, val)
    assert set(before) == {"all", *ANCHOR_KINDS} and before["all"]["n"] == 64
    settings = TuneSettings(steps=300, batch_size=32, lr=3e-3, eval_every=100)
    tuned, curve = tune_object_head(head, train, LossConfig(obj_rot_points=10.0), settings, val)
    after = object_head_errors(tuned, val)
    assert after["all"]["OCE"] < 0.5 * before["all"]["OCE"]
    assert after["all"]["ADD-S"] < before["all"]["ADD-S"]
    assert [c["step"] for c in curve] == [0, 100, 200, 300]
    best = min(curve, key=lambda c: c["val"]["all"]["OCE"] + c["val"]["all"]["ADD-S"])
    assert after["all"]["OCE"] == pytest.approx(best["val"]["all"]["OCE"], rel=1e-5)
    for k, v in head.state_dict().items():
        torch.testing.assert_close(v, original[k])


def test_errors_score_a_perfect_head_zero() -> None:
    """OCE and ADD-S against the labels: a head that returns them scores 0."""
    cache = _cache(8, 2)

    class Oracle(torch.nn.Module):
        def forward(self, tokens, pos, points, final_only=False):
            from homae_model.nn.object_head import ObjectLayerOutput

            idx = torch.arange(tokens.shape[0])
            rot = axis_angle_to_matrix(cache.obj_rot[idx])
            return [ObjectLayerOutput(rot, cache.obj_trans[idx], torch.ones(tokens.shape[:2]))]

    errs = object_head_errors(Oracle(), cache, chunk=8)
    assert errs["all"]["OCE"] < 1e-4 and errs["all"]["ADD-S"] < 1e-4


def test_the_command_writes_a_checkpoint_that_differs_in_the_object_head_only(setup) -> None:
    from homae_model.cli.tune_object import main

    root, data = setup
    out = root / "tuned"
    argv = ["--checkpoint", str(root / "ckpt"), "--data", str(data), "--out", str(out)]
    argv += ["--steps", "4", "--batch-size", "4", "--no-progress", "loss.obj_rot_points=10"]
    assert main(argv) == 0  # no held-out set: the last step's head is kept
    src = load_file(str(root / "ckpt" / "model.safetensors"))
    new = load_file(str(out / "model.safetensors"))
    assert set(src) == set(new)
    changed = {k for k in src if not torch.equal(src[k], new[k])}
    assert changed and all(k.startswith("object_head.") for k in changed)
    argv += ["--val", str(data), "--eval-every", "2"]
    assert main(argv) == 0
    report = json.loads((out / "tune_report.json").read_text())
    assert report["anchors"] == list(ANCHOR_KINDS) and report["train_rows"] > 0
    assert report["before"]["all"]["n"] == report["train_rows"]  # the same frames held out
    assert [c["step"] for c in report["curve"]] == [0, 2, 4]
    assert (out / "tune_curves.png").is_file() and (out / "config.yaml").is_file()
    assert load_config(out / "config.yaml").loss.obj_rot_points == 10.0
    assert load_extra(out)["object_tune"]["changed"] == "object_head.*"
    bad = [*argv, "--steps", "0"]
    assert main(bad) == 2
