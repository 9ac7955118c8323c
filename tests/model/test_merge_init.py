"""scripts/merge_init.py: one checkpoint's image path with another's 3D heads."""

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


def _save(model: HomaeModel, folder: Path) -> Path:
    folder.mkdir()
    state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("mano.")}
    save_file(state, str(folder / "model.safetensors"))
    shutil.copy(TINY, folder / "config.yaml")
    return folder / "model.safetensors"


def test_merge_takes_heads_from_one_and_the_image_path_from_the_other(tmp_path):
    cfg = load_config(TINY)
    torch.manual_seed(0)
    image_src = _save(HomaeModel(cfg), tmp_path / "image")
    torch.manual_seed(1)
    heads_src = _save(HomaeModel(cfg), tmp_path / "heads")
    script = ROOT / "scripts" / "merge_init.py"
    out = tmp_path / "merged"
    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "image"), str(heads_src), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "head tensors" in run.stdout
    merged, a, b = (load_file(str(p)) for p in (out / "model.safetensors", image_src, heads_src))
    assert set(merged) == set(a)
    heads = ("sdf_hand.", "sdf_obj.", "pointnet_hand.", "pointnet_obj.", "fusion_hand.")
    heads += ("fusion_obj.", "hand_head.", "object_head.")
    for k, v in merged.items():
        torch.testing.assert_close(v, b[k] if k.startswith(heads) else a[k])
    assert not torch.equal(a["encoder.proj.weight"], b["encoder.proj.weight"])
    assert not torch.equal(a["hand_head.rot_out.weight"], b["hand_head.rot_out.weight"])
    assert not init_weights(HomaeModel(cfg), out)  # loads as a fine-tuning start, nothing left
    bad = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "nowhere"), str(heads_src), str(out)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "nowhere" in bad.stderr
