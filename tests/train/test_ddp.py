"""DistributedDataParallel with 2 gloo processes on the CPU: ranks stay identical."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from tests.train import synthetic_set, tiny_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, cfg: str, data: str, run: str, out: str) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        OMP_NUM_THREADS="1",
    )
    torch.set_num_threads(1)
    from pathlib import Path

    from homae_model.training import distributed as ddp
    from homae_model.training.trainer import Trainer, TrainOptions

    info = ddp.init_distributed("cpu")
    try:
        opts = TrainOptions(
            data=Path(data),
            config=Path(cfg),
            out=Path(run),
            device="cpu",
            max_steps=2,
            progress=False,
            preview_every=0,
        )
        trainer = Trainer(opts, info)
        trainer.sampler.set_epoch(0)
        seen = list(trainer.sampler)
        trainer.fit()
        state = {k: v.contiguous() for k, v in trainer.model.state_dict().items()}
        state["__seen__"] = torch.tensor(seen)
        save_file(state, str(Path(out) / f"rank{rank}.safetensors"))
    finally:
        ddp.cleanup_distributed(info)


@pytest.mark.slow
def test_two_gloo_processes_hold_identical_weights(tmp_path) -> None:
    data = synthetic_set(tmp_path / "data", num=8)
    cfg = tiny_config(tmp_path, train={"batch_size": 2, "lr": 1e-3})
    run, out = tmp_path / "run", tmp_path / "out"
    out.mkdir()
    args = (2, _free_port(), str(cfg), str(data), str(run), str(out))
    mp.start_processes(_worker, args=args, nprocs=2, join=True, start_method="spawn")

    r0 = load_file(str(out / "rank0.safetensors"))
    r1 = load_file(str(out / "rank1.safetensors"))
    seen0, seen1 = r0.pop("__seen__").tolist(), r1.pop("__seen__").tolist()
    assert len(seen0) == len(seen1) == 4 and not set(seen0) & set(seen1)  # disjoint shards
    initial = load_file(str(run / "checkpoints" / "step_00000002" / "model.safetensors"))
    for k, v in r0.items():
        torch.testing.assert_close(r1[k], v, rtol=0, atol=0, msg=k)
        if k in initial:
            torch.testing.assert_close(initial[k], v, msg=k)  # rank 0 wrote these weights
    # Training moved the weights away from a fresh model of the same seed.
    from homae_model.config import load_config
    from homae_model.model import HomaeModel

    torch.manual_seed(0)
    fresh = HomaeModel(load_config(cfg)).state_dict()
    changed = sum(not torch.equal(fresh[k], r0[k]) for k in r0 if k in fresh and "mano" not in k)
    assert changed > 10
