"""Checkpoints: safetensors + config.yaml round trip, clear errors on mismatches."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import safe_open

from homae_model.checkpoint import load_extra, load_model, save_checkpoint
from homae_model.cli.summary import random_batch
from homae_model.config import load_config
from homae_model.model import HomaeModel

TINY = Path(__file__).resolve().parents[2] / "config" / "model" / "tiny.yaml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cfg = load_config(TINY)
    torch.manual_seed(0)
    model = HomaeModel(cfg)
    with torch.no_grad():  # make every weight differ from a fresh initialisation
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    folder = tmp_path_factory.mktemp("ckpt")
    save_checkpoint(folder, model, cfg, extra={"epoch": 3, "mje_mm": 12.5})
    return cfg, model.eval(), folder


def test_round_trip_gives_identical_outputs(trained):
    cfg, model, folder = trained
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml", "model.safetensors"]
    torch.manual_seed(99)
    loaded, cfg2 = load_model(folder, "cpu")
    assert cfg2 == cfg and not loaded.training
    batch = random_batch(cfg)
    with torch.no_grad():
        a = model(batch, anchor=batch["anchor"])
        b = loaded(batch, anchor=batch["anchor"])
    for name in ("joints", "vertices", "obj_rot", "obj_trans", "hand_sdf", "anchor_pred"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=0)
    loaded_file, _ = load_model(folder / "model.safetensors")
    torch.testing.assert_close(
        loaded_file.state_dict()["anchor_head.mlp.0.weight"],
        model.state_dict()["anchor_head.mlp.0.weight"],
    )
    assert load_extra(folder) == {"epoch": 3, "mje_mm": 12.5}


def test_no_mano_tensors_are_saved(trained):
    _, _, folder = trained
    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        keys = list(f.keys())
    assert keys and not any(k.startswith("mano.") for k in keys)


def test_checkpoint_of_another_config_is_a_clear_error(trained, tmp_path):
    cfg, model, _ = trained
    save_checkpoint(tmp_path, model, cfg)
    data = yaml.safe_load((tmp_path / "config.yaml").read_text())
    data["model"]["pointnet"]["enabled"] = False
    data["model"]["sdf_head"]["hidden"] = 48
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError) as err:
        load_model(tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "model.safetensors") in msg
    assert "pointnet_hand." in msg and "sdf_hand." in msg and "shape" in msg


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape("model.safetensors")):
        load_model(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=re.escape("config.yaml")):
        load_model(tmp_path)


def test_bad_saved_config_names_the_file(trained, tmp_path):
    cfg, model, _ = trained
    save_checkpoint(tmp_path, model, cfg)
    data = yaml.safe_load((tmp_path / "config.yaml").read_text())
    data["model"]["colour"] = 1
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"config\.yaml.*model\.colour"):
        load_model(tmp_path)


def test_pretrained_path_is_not_needed_to_load(trained, tmp_path):
    _, model, _ = trained
    cfg_pre = load_config(TINY)
    cfg_pre.model.encoder.pretrained_path = str(tmp_path / "gone.safetensors")
    save_checkpoint(tmp_path, model, cfg_pre)
    _, loaded_cfg = load_model(tmp_path)
    assert loaded_cfg.model.encoder.pretrained_path is None


def test_weights_saved_before_the_rotation_bias_load_keeping_its_initial_value(tmp_path):
    from safetensors.torch import load_file, save_file

    from homae_model.checkpoint import load_state_into, model_state

    cfg = load_config(TINY)
    src = HomaeModel(cfg)
    path = tmp_path / "w.safetensors"
    old = {k: v.contiguous() for k, v in model_state(src).items() if k != "hand_head.rot_bias"}
    save_file(old, str(path))
    dst = HomaeModel(cfg)
    with torch.no_grad():
        dst.hand_head.rot_bias.fill_(1.0)
    load_state_into(dst, path)
    assert float(dst.hand_head.rot_bias.abs().max()) == 1.0  # kept: not in the file
    # any other missing tensor is still an error naming it
    state = load_file(str(path))
    del state["hand_head.rot_out.weight"]
    save_file(state, str(path))
    with pytest.raises(ValueError, match=re.escape("hand_head.rot_out.weight")):
        load_state_into(HomaeModel(cfg), path)
