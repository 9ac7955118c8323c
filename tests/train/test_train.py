"""A tiny training run: the loss falls, checkpoints/logs/previews appear, errors are clear."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from homae_model.training.state import list_checkpoints, verify_checkpoint
from tests.train import synthetic_set, tiny_config


def _options(cfg, data, out, **kw):
    from homae_model.training.trainer import TrainOptions

    base = {"progress": False, "preview_every": 0, "log_every": 5}
    base.update(kw)
    return TrainOptions(data=data, config=cfg, out=out, device="cpu", **base)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synthetic_set(tmp_path_factory.mktemp("train") / "data", num=8)


@pytest.mark.slow
def test_tiny_run_lowers_loss_and_writes_everything(tmp_path, data) -> None:
    from homae_model.cli.train import main

    # A fixed tiny set, no augmentation, batch 4: 40 steps must fit it noticeably.
    cfg = tiny_config(
        tmp_path,
        train={"batch_size": 4, "epochs": 100, "lr": 1e-3, "lr_decay_every": 50, "ckpt_every": 100},
        data={"augment": False},
    )
    run = tmp_path / "run"
    argv = ["--config", str(cfg), "--data", str(data), "--out", str(run), "--device", "cpu"]
    argv += ["--max-steps", "40", "--ckpt-every-steps", "20", "--preview-every", "20"]
    argv += ["--log-every", "1", "--no-progress"]
    assert main(argv) == 0

    ckpts = list_checkpoints(run)
    assert [p.name for p in ckpts] == ["step_00000020", "step_00000040"]
    for ckpt in ckpts:
        verify_checkpoint(ckpt)
        for name in ("model.safetensors", "config.yaml", "train_state.json"):
            assert (ckpt / name).is_file()
    assert (run / "latest").resolve() == ckpts[-1].resolve()
    state = json.loads((ckpts[-1] / "train_state.json").read_text())
    assert state["progress"]["step"] == 40 and state["progress"]["epoch"] == 20
    assert sorted(p.name for p in (run / "previews").iterdir()) == [
        "step_00000020.png",
        "step_00000040.png",
    ]

    # TensorBoard scalars: every loss term, lr and samples/s, one value per step.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/total", "lr", "samples_per_s"} <= tags
    assert len([t for t in tags if t.startswith("loss/")]) >= 4
    total = np.array([e.value for e in events.Scalars("loss/total")])
    assert len(total) == 40 and np.all(np.isfinite(total))
    assert total[-8:].mean() < 0.7 * total[:8].mean(), total

    # The checkpoint is what load_model / the Predictor read.
    from homae_model.checkpoint import load_model

    model, loaded_cfg = load_model(run / "latest", "cpu")
    assert loaded_cfg.train.batch_size == 4
    assert sum(p.numel() for p in model.parameters()) > 0


def test_nan_loss_stops_with_step_and_batch(tmp_path, data) -> None:
    from homae_model.losses import total_loss
    from homae_model.training.trainer import NonFiniteLossError, train

    cfg = tiny_config(tmp_path, train={"batch_size": 2, "epochs": 5})
    run = tmp_path / "run"
    calls = {"n": 0}

    def poisoned(out, batch, loss_cfg):
        loss, terms = total_loss(out, batch, loss_cfg)
        calls["n"] += 1
        if calls["n"] == 3:  # the third step's loss is NaN
            return loss * float("nan"), terms
        return loss, terms

    with pytest.raises(NonFiniteLossError) as err:
        train(_options(cfg, data, run, ckpt_every_steps=2), loss_fn=poisoned)
    msg = str(err.value)
    assert "step 3" in msg and "epoch 0" in msg and "batch 2" in msg
    assert "samples" in msg and ".npz" in msg  # the batch's sources are named
    assert "step_00000002" in msg  # the last good checkpoint
    assert [p.name for p in list_checkpoints(run)] == ["step_00000002"]
    verify_checkpoint(run / "checkpoints" / "step_00000002")
    assert (run / "latest").resolve().name == "step_00000002"


def test_empty_dataset_is_an_error(tmp_path, data) -> None:
    from homae_model.training.trainer import train

    empty = tmp_path / "empty"
    empty.mkdir()
    meta = json.loads((data / "meta.json").read_text())
    meta["count"] = 0
    meta["splits"] = {k: [0, 0] for k in meta.get("splits", {})}
    (empty / "meta.json").write_text(json.dumps(meta))
    for sub in ("rgb", "mask", "ann"):
        (empty / sub).mkdir()
    cfg = tiny_config(tmp_path)
    with pytest.raises(ValueError, match=r"empty|no usable samples"):
        train(_options(cfg, empty, tmp_path / "run"))


def test_missing_data_and_config_errors(tmp_path, data) -> None:
    from homae_model.cli.train import main
    from homae_model.training.trainer import train

    cfg = tiny_config(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        train(_options(cfg, tmp_path / "nowhere", tmp_path / "run"))
    with pytest.raises(ValueError, match="--config"):
        train(_options(None, data, tmp_path / "run"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {lr_typo: 1}\n")
    assert main(["--config", str(bad), "--data", str(data), "--out", str(tmp_path / "r")]) == 1


def test_point_schedule_is_deterministic() -> None:
    from homae_model.config import TrainConfig
    from homae_model.training.schedule import build_optimizer, build_scheduler, use_gt_points

    cfg = TrainConfig(gt_points_until_epoch=40, gt_points_prob_after=0.4)
    assert all(use_gt_points(cfg, e, s) for e in range(40) for s in range(0, 500, 37))
    draws = [use_gt_points(cfg, 45, s) for s in range(4000)]
    assert abs(np.mean(draws) - 0.4) < 0.03
    assert draws == [use_gt_points(cfg, 45, s) for s in range(4000)]
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg)
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["lr"] == 1e-4
    for _ in range(10):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4 * 0.7**2)


def test_fast_prefixes_get_their_own_learning_rate_and_decay_with_the_rest() -> None:
    from homae_model.config import TrainConfig
    from homae_model.training.schedule import build_optimizer, build_scheduler

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    cfg = TrainConfig(lr=1e-3, fast_prefixes=["1."], fast_lr_mult=10.0, lr_decay_every=1)
    opt = build_optimizer(model, cfg)
    assert [g["lr"] for g in opt.param_groups] == [1e-3, pytest.approx(1e-2)]
    assert [len(g["params"]) for g in opt.param_groups] == [2, 2]
    assert opt.param_groups[1]["params"][0] is model[1].weight
    sched = build_scheduler(opt, cfg)
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([7e-4, 7e-3])
    with pytest.raises(ValueError, match="fast_prefixes"):
        build_optimizer(model, TrainConfig(fast_prefixes=["head."]))


def test_predicted_anchor_batches_centre_the_grid_on_the_anchor_head(tmp_path, data) -> None:
    from homae_model.training.distributed import init_distributed
    from homae_model.training.schedule import use_predicted_anchor
    from homae_model.training.trainer import Trainer

    assert not any(use_predicted_anchor(0.0, 0, s) for s in range(200))
    assert all(use_predicted_anchor(1.0, 0, s) for s in range(200))
    draws = [use_predicted_anchor(0.8, 3, s) for s in range(4000)]
    assert abs(np.mean(draws) - 0.8) < 0.03 and draws == [
        use_predicted_anchor(0.8, 3, s) for s in range(4000)
    ]
    cfg = tiny_config(
        tmp_path,
        model={"anchor": {"train_on_predicted": 1.0, "train_jitter_m": 0.0}},
        train={"batch_size": 2, "gt_points_until_epoch": 0, "gt_points_prob_after": 0.0},
    )
    trainer = Trainer(_options(cfg, data, tmp_path / "run", max_steps=2), init_distributed("cpu"))
    seen = []
    original = trainer._predicted_anchor

    def spy(batch):
        seen.append(original(batch))
        return seen[-1]

    trainer._predicted_anchor = spy
    captured = []
    trainer.point_sampler = _spying_sampler(trainer.point_sampler, captured)
    trainer.fit()
    assert len(seen) == 2 and len(captured) == 2
    for pred, used in zip(seen, captured, strict=True):
        torch.testing.assert_close(used, pred)  # the voxel search ran around the prediction


def _spying_sampler(sampler, captured):
    def call(model, batch):
        captured.append(batch["grid_anchor"])
        return sampler(model, batch)

    return call
