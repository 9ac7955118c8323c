"""scripts/average_checkpoints.py: the element-wise mean of one network's checkpoints."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from homae_model.checkpoint import init_weights
from homae_model.config import load_config
from homae_model.model import HomaeModel

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "config" / "model" / "tiny.yaml"
SCRIPT = ROOT / "scripts" / "average_checkpoints.py"


def _save(state: dict[str, torch.Tensor], folder: Path) -> Path:
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
    shutil.copy(TINY, folder / "config.yaml")
    return folder


def _state(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = HomaeModel(load_config(TINY))
    return {k: v for k, v in model.state_dict().items() if not k.startswith("mano.")}


def _run(*args: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(SCRIPT), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_mean_of_the_float_tensors_and_it_loads(tmp_path):
    states = [_state(s) for s in (0, 1, 2)]
    ckpts = [_save(st, tmp_path / f"c{i}") for i, st in enumerate(states)]
    out = tmp_path / "avg"
    run = _run(out, *ckpts)
    assert run.returncode == 0, run.stderr
    avg = load_file(str(out / "model.safetensors"))
    assert set(avg) == set(states[0])
    for k, v in avg.items():
        if v.is_floating_point():
            want = sum(st[k].double() for st in states) / 3
            torch.testing.assert_close(v, want.to(v.dtype))
        else:
            assert torch.equal(v, states[2][k])
    assert not init_weights(HomaeModel(load_config(TINY)), out)  # every tensor matched


def test_mismatched_or_missing_checkpoints_are_named(tmp_path):
    a = _save(_state(0), tmp_path / "a")
    other = _state(1)
    other.pop("encoder.proj.weight")
    b = _save(other, tmp_path / "b")
    bad = _run(tmp_path / "out", a, b)
    assert bad.returncode == 2 and "encoder.proj.weight" in bad.stderr
    missing = _run(tmp_path / "out", a, tmp_path / "nowhere")
    assert missing.returncode == 2 and "nowhere" in missing.stderr
    assert not (tmp_path / "out").exists()


def test_integer_tensors_come_from_the_last_checkpoint():
    import importlib.util

    spec = importlib.util.spec_from_file_location("average_checkpoints", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    states = [
        {"w": torch.full((2,), float(i)), "count": torch.tensor(i), "half": torch.ones(1).half()}
        for i in (1, 2, 6)
    ]
    avg = module.average_states(states)
    torch.testing.assert_close(avg["w"], torch.full((2,), 3.0))
    assert avg["count"].item() == 6 and avg["count"].dtype == torch.int64
    assert avg["half"].dtype == torch.float16
