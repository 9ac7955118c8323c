"""homae-pretrain: the image path learns its dense targets; its checkpoints start homae-train.

Counts and ratios only, no timing: a tiny model pretrains on a few synthetic scenes and its
held-out figures (here the same scenes) fall far below the constant guesses; the run resumes
where it stopped; `homae-train --init` takes its checkpoint; bad arguments are refused.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.train import synthetic_set, tiny_config

NUM_SCENES = 6


def _config(tmp_path):
    return tiny_config(
        tmp_path,
        model={"aux": {"enabled": True}},
        loss={"aux_heatmap": 5.0},
        train={"fast_prefixes": ["anchor_head.", "aux_head."]},
        data={"augment": False},
    )


def test_label_only_items_are_the_full_items_without_query_points(tmp_path) -> None:
    from homae_model.config.loading import load_config
    from homae_model.data.pipeline import SamplePipeline
    from homae_model.data.sources import open_source

    data = synthetic_set(tmp_path / "data", num=2, seed=5)
    cfg = load_config(_config(tmp_path))
    mano = cfg.mano.resolved_path()
    opened = open_source(data, mano_dir=mano.parent)
    raw = opened.source[0]
    full = SamplePipeline(cfg.data, mano, opened.objects, train=True)(raw, np.random.default_rng(3))
    light = SamplePipeline(cfg.data, mano, opened.objects, train=True, sdf_samples=False)(
        raw, np.random.default_rng(3)
    )
    assert set(full) - set(light) == {"hand_points", "hand_sdf", "obj_points", "obj_sdf"}
    assert set(light) <= set(full)
    for key, value in light.items():  # same augmentation draw, same labels
        assert np.array_equal(value.numpy(), full[key].numpy()), key


@pytest.mark.slow
def test_pretraining_learns_the_dense_targets_and_starts_homae_train(tmp_path, capsys) -> None:
    from homae_model.checkpoint import init_weights
    from homae_model.cli.pretrain import main
    from homae_model.config.loading import load_config
    from homae_model.model import HomaeModel
    from homae_model.training.state import resolve_checkpoint

    data = synthetic_set(tmp_path / "data", num=NUM_SCENES, seed=5)
    cfg_path = _config(tmp_path)
    run = tmp_path / "pre"
    common = ["--data", str(data), "--eval-data", str(data), "--batch-size", "3"]
    common += ["--eval-samples", str(NUM_SCENES), "--lr", "2e-3", "--workers", "0"]
    common += ["--joints-weight", "100"]
    argv = ["--config", str(cfg_path), "--out", str(run), "--steps", "40", *common]
    argv += ["--eval-every", "0", "--ckpt-every", "20"]
    assert main(argv) == 0
    assert main(["--resume", str(run), "--steps", "120", "--eval-every", "0", *common]) == 0
    out = capsys.readouterr().out
    assert "resumed from" in out and "at step 40" in out
    resumed_without_head = ["--resume", str(run), "--steps", "130", *common[:-2]]
    assert main(resumed_without_head) == 1
    assert "--joints-weight" in capsys.readouterr().err

    rows = [json.loads(x) for x in (run / "heldout.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [40, 120]
    first, last = rows
    # the keypoint heatmaps find the joints, far better than the mean joint pixel
    assert last["joint_px"] < 0.5 * last["joint_px_const"], rows
    assert last["joint_px"] < first["joint_px"] and last["loss"] < first["loss"], rows
    assert last["anchor_mm"] < first["anchor_mm"], rows
    # the global joints head reads the hand far better than the mean hand
    assert last["joints_mm"] < 0.5 * last["joints_mm_const"], rows
    assert (run / "checkpoints" / "step_00000120").is_dir()
    assert sorted(p.name for p in (run / "checkpoints").iterdir())[-1] == "step_00000120"

    # a full model starts from it: every tensor matched, the image path's weights copied
    model = HomaeModel(load_config(cfg_path))
    notes = init_weights(model, resolve_checkpoint(run, "--init"))
    assert not [n for n in notes if "missing" in n or "unexpected" in n], notes

    # and a new pretraining run starts from its weights (--init): after 2 steps its heatmaps
    # are as good as where the first run stopped, not back at the first run's early figure
    again = tmp_path / "pre_again"
    argv = ["--config", str(cfg_path), "--init", str(run), "--out", str(again), "--steps", "2"]
    assert main([*argv, "--eval-every", "0", "--ckpt-every", "0", *common]) == 0
    assert "weights initialised from" in capsys.readouterr().out
    (row,) = [json.loads(x) for x in (again / "heldout.jsonl").read_text().splitlines()]
    assert row["joint_px"] < first["joint_px"], (row, rows)


def test_bad_arguments_are_refused_naming_them(tmp_path, capsys) -> None:
    from homae_model.cli.pretrain import main

    cfg = _config(tmp_path)
    assert main(["--config", str(cfg), "--data", str(tmp_path), "--steps", "0"]) == 2
    assert "--steps must be > 0" in capsys.readouterr().err
    assert main(["--data", str(tmp_path)]) == 2
    assert "--config" in capsys.readouterr().err
    both = ["--resume", str(tmp_path / "r"), "--init", str(tmp_path / "w"), "--data", "d"]
    assert main(both) == 2
    assert "--init" in capsys.readouterr().err
    missing = tmp_path / "nowhere"
    argv = ["--config", str(cfg), "--data", str(missing), "--out", str(tmp_path / "r")]
    assert main(argv) == 1
    assert str(missing) in capsys.readouterr().err
    assert main([*argv[:4], "--max-minutes", "0"]) == 2
    assert "--max-minutes must be > 0" in capsys.readouterr().err


def test_a_time_limit_stops_the_run_with_a_checkpoint_and_a_check(tmp_path, capsys) -> None:
    import torch

    from homae_model.cli.pretrain import main

    data = synthetic_set(tmp_path / "data", num=2, seed=5)
    run = tmp_path / "pre"
    argv = ["--config", str(_config(tmp_path)), "--data", str(data), "--eval-data", str(data)]
    argv += ["--out", str(run), "--steps", "50", "--batch-size", "2", "--workers", "0"]
    argv += ["--eval-every", "0", "--ckpt-every", "0", "--device", "cpu"]
    # a limit far shorter than one step: the run stops after its first step
    assert main([*argv, "--max-minutes", "1e-7"]) == 0
    out = capsys.readouterr().out
    assert "stopped by --max-minutes 1e-07 at step 1; checkpoint written" in out
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_00000001"]
    rows = [json.loads(x) for x in (run / "heldout.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1]
    # and --resume goes on from there to the step count
    assert main(["--resume", str(run), *argv[2:4], "--steps", "3", "--workers", "0"]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert sorted(p.name for p in (run / "checkpoints").iterdir())[-1] == "step_00000003"
    if not torch.cuda.is_available():
        assert main([*argv[:6], "--out", str(tmp_path / "c"), "--device", "cuda"]) == 1
        assert "--device" in capsys.readouterr().err
