"""`model.encoder.arch: cnn`: a timm CNN in place of the ViT, on the same token grid."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from homae_model.cli.summary import parameter_counts, random_batch
from homae_model.config import EncoderConfig, HomaeConfig, load_config
from homae_model.export.onnx_export import export_model
from homae_model.export.runtime import OnnxStages
from homae_model.inference import Predictor
from homae_model.losses import total_loss
from homae_model.model import HomaeModel
from homae_model.nn.encoder import ImageEncoder, encoder_init_note

CONFIGS = Path(__file__).resolve().parents[2] / "config" / "model"
CNN = ["model.encoder.arch=cnn", "model.encoder.name=resnet18"]


def cnn_cfg() -> HomaeConfig:
    return load_config(CONFIGS / "tiny.yaml", [*CNN, "model.hand_head.image_token=true"])


def cnn_encoder_cfg(**kw: object) -> EncoderConfig:
    return EncoderConfig(arch="cnn", name="resnet18", img_size=56, feat_dim=32, **kw)


def test_grid_is_the_vit_grid_and_stops_at_stride_16():
    torch.manual_seed(0)
    enc = ImageEncoder(cnn_encoder_cfg()).eval()
    grid, pooled = enc(torch.rand(2, 3, 56, 56))
    # 56 px / 14 = 4 cells a side, as the ViT's patch grid
    assert grid.shape == (2, 32, 4, 4) and pooled.shape == (2, 32)
    names = [n for n, _ in enc.named_parameters()]
    assert any(n.startswith("cnn.net.layer3.") for n in names)
    assert not any("layer4" in n or n.startswith("cnn.net.fc") for n in names)
    # cells read their own part of the crop: changing one corner moves the far corner least
    x = torch.rand(1, 3, 56, 56)
    y = x.clone()
    y[..., :14, :14] = 1.0 - y[..., :14, :14]
    with torch.no_grad():
        delta = (enc(x)[0] - enc(y)[0]).abs().sum(1)[0]
    assert float(delta[0, 0]) > 10 * float(delta[-1, -1])
    assert "resnet18" in encoder_init_note(cnn_encoder_cfg())


def test_pretrained_cnn_file_loads_and_a_wrong_one_is_named(tmp_path):
    torch.manual_seed(0)
    enc = ImageEncoder(cnn_encoder_cfg())
    state = {k: v.contiguous() for k, v in enc.cnn.net.state_dict().items()}
    path = tmp_path / "resnet18.safetensors"
    save_file(state, str(path))
    torch.manual_seed(1)
    other = ImageEncoder(cnn_encoder_cfg(pretrained_path=str(path)))
    for k, v in state.items():
        torch.testing.assert_close(other.cnn.net.state_dict()[k], v)
    partial = tmp_path / "partial.safetensors"
    save_file({k: v for k, v in state.items() if not k.startswith("layer3.")}, str(partial))
    with pytest.raises(ValueError, match=re.escape(str(partial)) + ".*layer3"):
        ImageEncoder(cnn_encoder_cfg(pretrained_path=str(partial)))


def test_config_errors_name_the_key():
    tiny = CONFIGS / "tiny.yaml"
    with pytest.raises(ValueError, match=r"model\.encoder\.arch=cnn.*stem"):
        load_config(tiny, [*CNN, "model.encoder.stem=conv"])
    with pytest.raises(ValueError, match=r"model\.encoder\.arch"):
        load_config(tiny, ["model.encoder.arch=convnet"])
    with pytest.raises(ValueError, match=r"model\.encoder\.name='no_such_net'"):
        ImageEncoder(EncoderConfig(arch="cnn", name="no_such_net", img_size=56))


def test_small_cnn_config_builds_within_the_weights_budget():
    cfg = load_config(CONFIGS / "small_cnn.yaml")
    assert cfg.model.encoder.arch == "cnn" and cfg.model.hand_head.image_token
    counts = parameter_counts(HomaeModel(cfg))
    # float32 weights file <= 25 MB (issue 15): about 6.2 M parameters at most
    assert counts["total"] * 4 <= 25e6
    assert counts["encoder"] > counts["total"] / 2


def test_training_step_reaches_the_cnn():
    cfg = cnn_cfg()
    torch.manual_seed(0)
    model = HomaeModel(cfg).train()
    batch = random_batch(cfg, batch_size=2)
    loss, _ = total_loss(model(batch), batch, cfg.loss)
    loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if n.startswith("encoder.cnn.")]
    assert grads and all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


@pytest.mark.slow
def test_cnn_model_exports_and_onnxruntime_agrees(tmp_path):
    cfg = cnn_cfg()
    torch.manual_seed(0)
    model = HomaeModel(cfg).eval()
    export_model(model, cfg, tmp_path / "onnx")
    torch_pred = Predictor(model, cfg, "cpu")
    ort_pred = Predictor(model, cfg, "cpu", OnnxStages(tmp_path / "onnx", "cpu"))
    image = np.random.default_rng(0).integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    K = np.array([[300.0, 0.0, 80.0], [0.0, 300.0, 60.0], [0.0, 0.0, 1.0]])
    pairs = [((40.0, 30.0, 90.0, 80.0), (70.0, 40.0, 110.0, 95.0))]
    (want,) = torch_pred.predict(image, K, pairs)
    (got,) = ort_pred.predict(image, K, pairs)
    assert want.scores["sdf_evals"] == got.scores["sdf_evals"]
    assert 1e3 * np.abs(want.joints - got.joints).max() <= 0.5
    assert 1e3 * np.abs(want.obj_trans - got.obj_trans).max() <= 0.5
