"""Checkpoints and resume: atomic folders, exact continuation, corrupt-newest fallback."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from homae_model.training.state import (
    CorruptCheckpointError,
    NoCheckpointError,
    capture_rng_state,
    find_resume_checkpoint,
    list_checkpoints,
    load_train_state,
    pack_tree,
    restore_rng_state,
    unpack_tree,
    verify_checkpoint,
)
from tests.train import synthetic_set, tiny_config

# ------------------------------------------------------------------------------- unit: state


def test_pack_tree_round_trip_keeps_types() -> None:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.ones(4, 3)).sum().backward()
    opt.step()
    tree = {
        "optimizer": opt.state_dict(),
        "tuple": (1, 2.5, "x", None, True),
        "array": np.arange(5, dtype=np.uint32),
        3: [torch.zeros(0), {"nested": torch.tensor(7.0)}],
    }
    packed, tensors = pack_tree(tree)
    back = unpack_tree(packed, tensors)
    assert set(back) == {"optimizer", "tuple", "array", 3}
    assert back["tuple"] == (1, 2.5, "x", None, True)
    assert back["array"].dtype == np.uint32
    np.testing.assert_array_equal(back["array"], np.arange(5))
    assert set(back["optimizer"]["state"]) == {0, 1}  # int keys survive
    for k in (0, 1):
        for name in ("exp_avg", "exp_avg_sq", "step"):
            torch.testing.assert_close(
                back["optimizer"]["state"][k][name], opt.state_dict()["state"][k][name]
            )
    opt2 = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=1e-3)
    opt2.load_state_dict(back["optimizer"])  # accepted by torch as is
    with pytest.raises(TypeError, match="object"):
        pack_tree({"bad": object()})


def test_rng_state_round_trip() -> None:
    packed, tensors = pack_tree(capture_rng_state())
    a = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002
    restore_rng_state(unpack_tree(packed, tensors))
    b = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002
    assert a[0] == b[0] and a[1] == b[1]
    torch.testing.assert_close(a[2], b[2])


def test_missing_run_folder_and_empty_run(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        find_resume_checkpoint(tmp_path / "nope")
    (tmp_path / "run").mkdir()
    with pytest.raises(NoCheckpointError, match="no good checkpoint"):
        find_resume_checkpoint(tmp_path / "run")


# ------------------------------------------------------------------------------- training runs


def _options(cfg, data, out, **kw):
    from homae_model.training.trainer import TrainOptions

    base = {"ckpt_every_steps": 2, "preview_every": 0, "progress": False, "log_every": 1}
    base.update(kw)
    return TrainOptions(data=data, config=cfg, out=out, device="cpu", **base)


def _weights(ckpt) -> dict[str, torch.Tensor]:
    return load_file(str(ckpt / "model.safetensors"))


class _Crash(RuntimeError):
    pass


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    data = synthetic_set(root / "data", num=8)
    # 8 samples, batch 2 -> 4 steps per epoch; epoch 1 already mixes in voxel-sampled points
    # (gt_points_until_epoch 1, prob 0.5), so the resumed part exercises the point schedule too.
    cfg = tiny_config(
        root,
        train={
            "batch_size": 2,
            "epochs": 2,
            "lr": 1e-3,
            "lr_decay_every": 1,
            "gt_points_until_epoch": 1,
            "gt_points_prob_after": 0.5,
        },
    )
    return root, data, cfg


@pytest.fixture(scope="module")
def uninterrupted(setup):
    from homae_model.training.trainer import train

    root, data, cfg = setup
    result = train(_options(cfg, data, root / "full", max_steps=6))
    assert result.progress.step == 6 and result.progress.epoch == 1
    return result


@pytest.mark.slow
def test_killed_and_resumed_run_matches_uninterrupted(setup, uninterrupted) -> None:
    from homae_model.training.trainer import train

    root, data, cfg = setup
    run = root / "killed"

    def crash(step: int) -> None:
        if step == 5:  # dies after step 5; the newest checkpoint is step 4
            raise _Crash("simulated kill")

    with pytest.raises(_Crash):
        train(_options(cfg, data, run, max_steps=6), on_step=crash)
    assert [p.name for p in list_checkpoints(run)] == ["step_00000002", "step_00000004"]
    assert (run / "latest").resolve() == (run / "checkpoints" / "step_00000004").resolve()
    assert not list((run / "checkpoints").glob(".tmp-*"))

    resumed = train(_options(None, data, None, resume=run, max_steps=6))
    assert resumed.resumed_from.name == "step_00000004"
    assert resumed.progress.step == 6 and resumed.progress.epoch == 1
    assert len(resumed.losses) == 2
    a, b = _weights(uninterrupted.checkpoint), _weights(resumed.checkpoint)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=0, msg=k)
    # The lr schedule and Adam moments continued too (lr decayed once at the end of epoch 0).
    pa, sa = load_train_state(uninterrupted.checkpoint)
    pb, sb = load_train_state(resumed.checkpoint)
    assert pa == pb
    lr = sb["optimizer"]["param_groups"][0]["lr"]
    assert lr == pytest.approx(1e-3 * 0.7) and lr == sa["optimizer"]["param_groups"][0]["lr"]
    for k, state in sa["optimizer"]["state"].items():
        torch.testing.assert_close(sb["optimizer"]["state"][k]["exp_avg_sq"], state["exp_avg_sq"])


@pytest.mark.slow
def test_corrupt_newest_checkpoint_falls_back(setup, uninterrupted, capsys) -> None:
    import shutil

    from homae_model.training.trainer import train

    root, data, _ = setup
    run = root / "corrupt"
    # Reuse the uninterrupted run's checkpoints 4 and 6, then truncate the newest one.
    shutil.copytree(uninterrupted.run_dir, run, symlinks=True)
    names = [p.name for p in list_checkpoints(run)]
    assert names[-2:] == ["step_00000004", "step_00000006"]
    newest = run / "checkpoints" / "step_00000006" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    with pytest.raises(CorruptCheckpointError, match="truncated"):
        verify_checkpoint(newest.parent)
    info = find_resume_checkpoint(run)
    assert info.path.name == "step_00000004"
    assert info.skipped and info.skipped[0][0].name == "step_00000006"

    capsys.readouterr()
    resumed = train(_options(None, data, None, resume=run, max_steps=6))
    err = capsys.readouterr().err
    assert "corrupt checkpoint" in err and "step_00000006" in err
    assert "falling back" in err and "step_00000004" in err
    assert resumed.resumed_from.name == "step_00000004"
    # Redoing steps 5-6 from the good checkpoint gives the uninterrupted result again.
    a, b = _weights(uninterrupted.checkpoint), _weights(resumed.checkpoint)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=0, msg=k)
    verify_checkpoint(resumed.checkpoint)  # the rewritten step 6 is good


def test_resume_with_other_model_config_is_refused(setup, uninterrupted) -> None:
    from homae_model.training.trainer import train

    root, data, _ = setup
    other = tiny_config(root / "other", model={"sdf_head": {"hidden": 48}})
    with pytest.raises(ValueError, match=r"model\.sdf_head\.hidden"):
        train(_options(other, data, root / "x", resume=uninterrupted.run_dir))


def test_init_starts_a_new_run_from_checkpoint_weights(setup, uninterrupted) -> None:
    from homae_model.training.distributed import init_distributed
    from homae_model.training.trainer import Trainer

    root, data, cfg = setup
    info = init_distributed("cpu")
    source = _weights(uninterrupted.checkpoint)
    # a checkpoint folder, or a run folder (its newest good checkpoint: the same one here)
    for i, init in enumerate((uninterrupted.checkpoint, uninterrupted.run_dir)):
        trainer = Trainer(_options(cfg, data, root / f"init{i}", init=init), info)
        state = trainer.model.state_dict()
        assert all(torch.equal(state[k], v) for k, v in source.items())
        assert trainer.progress.step == 0  # fresh optimiser, schedule and data position
        assert not trainer.optimizer.state_dict()["state"]
    with pytest.raises(FileNotFoundError, match=r"--init .*no such file"):
        Trainer(_options(cfg, data, root / "init_missing", init=root / "missing"), info)


def test_init_with_other_model_or_with_resume_is_refused(setup, uninterrupted) -> None:
    from homae_model.training.trainer import train

    root, data, cfg = setup
    other = tiny_config(root / "other_init", model={"sdf_head": {"hidden": 48}})
    with pytest.raises(ValueError, match=r"does not match its config.*sdf_hand"):
        train(_options(other, data, root / "y", init=uninterrupted.checkpoint))
    with pytest.raises(ValueError, match="give one of them"):
        train(
            _options(
                cfg, data, root / "z", init=uninterrupted.checkpoint, resume=uninterrupted.run_dir
            )
        )


def test_freeze_except_trains_only_the_named_modules() -> None:
    from homae_model.training.schedule import build_optimizer, freeze_except

    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    assert freeze_except(model, ["1."]) == 2
    assert [p.requires_grad for p in model.parameters()] == [False, False, True, True]
    from homae_model.config import TrainConfig

    opt = build_optimizer(model, TrainConfig())
    assert sum(len(g["params"]) for g in opt.param_groups) == 2
    with pytest.raises(ValueError, match=r"match no parameter.*'0\.'"):
        freeze_except(model, ["anchor_head."])


def test_a_time_limit_stops_after_the_step_with_a_checkpoint(setup, capsys) -> None:
    from homae_model.training.trainer import train

    root, data, cfg = setup
    run = root / "timed"
    # a limit far shorter than one step: the run stops after its first step, as for SIGINT
    result = train(_options(cfg, data, run, max_steps=6, max_minutes=1e-7))
    assert result.progress.step == 1
    assert [p.name for p in list_checkpoints(run)] == ["step_00000001"]
    assert "stopped by --max-minutes 1e-07 at step 1; checkpoint written" in capsys.readouterr().err
    resumed = train(_options(None, data, None, resume=run, max_steps=3))
    assert resumed.resumed_from.name == "step_00000001" and resumed.progress.step == 3
