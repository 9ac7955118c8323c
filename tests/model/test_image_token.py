"""model.hand_head.image_token: the hand head's global image token and its joints readout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from homae_model.cli.summary import random_batch
from homae_model.config import HomaeConfig, load_config
from homae_model.export.graphs import IMAGE_TOKEN
from homae_model.export.onnx_export import export_model
from homae_model.export.runtime import OnnxStages
from homae_model.inference import Predictor
from homae_model.losses import total_loss
from homae_model.model import HomaeModel
from homae_model.stages import StageFeatures

TINY = Path(__file__).resolve().parents[2] / "config" / "model" / "tiny.yaml"


def token_cfg() -> HomaeConfig:
    cfg = load_config(TINY)
    cfg.model.hand_head.image_token = True
    cfg.validate()
    return cfg


@pytest.fixture(scope="module")
def cfg() -> HomaeConfig:
    return token_cfg()


def test_readout_is_trained_and_reaches_the_encoder(cfg):
    torch.manual_seed(0)
    model = HomaeModel(cfg).train()
    batch = random_batch(cfg, batch_size=2)
    out = model(batch)
    assert out.global_joints is not None and tuple(out.global_joints.shape) == (2, 21, 3)
    _, terms = total_loss(out, batch, cfg.loss)
    assert "global_joints" in terms
    # the term alone sends gradients to the ViT (the token reads the class and patch tokens)
    model.zero_grad()
    joints = batch["hand_joints"]
    target = joints - joints[:, :1]
    # the readout starts at zero, so nudge it to pass gradients on to the MLP and the encoder
    with torch.no_grad():
        model.image_token.readout.weight.normal_(std=0.01)
    out = model(batch)
    torch.nn.functional.l1_loss(out.global_joints, target).backward()
    grads = [p.grad for n, p in model.named_parameters() if n.startswith("encoder.")]
    assert any(g is not None and float(g.abs().sum()) > 0 for g in grads)
    hand_grads = [p.grad for n, p in model.named_parameters() if n.startswith("hand_head.")]
    assert all(g is None or float(g.abs().sum()) == 0 for g in hand_grads)


def test_hand_head_reads_the_token(cfg):
    torch.manual_seed(0)
    model = HomaeModel(cfg).eval()
    batch = random_batch(cfg, batch_size=2)
    with torch.no_grad():
        enc = model.encode(batch["image"])
        k = batch["K"]
        anchor = batch["anchor"]
        hand = model.sdf(enc, k, batch["hand_points"], anchor, "hand")
        obj = model.sdf(enc, k, batch["obj_points"], anchor, "obj")
        token = model.global_token(enc)
        (a,), _ = model.heads(hand, obj, final_only=True, image_token=token)
        (b,), _ = model.heads(hand, obj, final_only=True, image_token=token + 1.0)
    assert not torch.allclose(a.rot6d, b.rot6d)
    with pytest.raises(ValueError, match="image_token"):
        model.heads(hand, obj, final_only=True)


def _rot_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between rotations a and b, degrees (from ||a - b||_F = 2 sqrt(2) sin(angle / 2))."""
    chord = float(np.linalg.norm(a - b)) / (2.0 * np.sqrt(2.0))
    return float(np.degrees(2.0 * np.arcsin(min(1.0, chord))))


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["window", "whole"])
def test_export_runs_in_onnxruntime_as_torch(layout, tmp_path, monkeypatch):
    """The token leaves the encoder graph and enters the heads graph; both runtimes agree."""
    cfg = token_cfg()
    if layout == "whole":
        cfg.model.anchor.kind = "heatmap"  # F~ over the whole crop (`graphs.windowed_layout`)
    torch.manual_seed(0)
    model = HomaeModel(cfg).eval()
    manifest = export_model(model, cfg, tmp_path / "onnx")
    assert manifest.model["layout"] == layout
    d_model = cfg.model.hand_head.d_model
    (token_out,) = [t for t in manifest.graphs["encoder"].outputs if t.name == IMAGE_TOKEN]
    assert token_out.shape == ["batch", d_model]
    assert manifest.graphs["heads"].inputs[-1].name == IMAGE_TOKEN
    assert set(manifest.check["encoder"]) >= {IMAGE_TOKEN}

    stages = OnnxStages(tmp_path / "onnx", "cpu")
    torch_pred = Predictor(model, cfg, "cpu")
    ort_pred = Predictor(model, cfg, "cpu", stages)
    image = np.random.default_rng(0).integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    K = np.array([[300.0, 0.0, 80.0], [0.0, 300.0, 60.0], [0.0, 0.0, 1.0]])
    pairs = [
        ((40.0, 30.0, 90.0, 80.0), (70.0, 40.0, 110.0, 95.0)),
        ((60.0, 45.0, 85.0, 70.0), (78.0, 50.0, 100.0, 80.0)),
    ]
    want = torch_pred.predict(image, K, pairs)
    got = ort_pred.predict(image, K, pairs)
    assert len(want) == len(got) == 2
    for a, b in zip(want, got, strict=True):
        assert np.isfinite(b.joints).all()
        assert a.scores["sdf_evals"] == b.scores["sdf_evals"]
        assert 1e3 * np.abs(a.joints - b.joints).max() <= 0.5
        assert 1e3 * np.abs(a.obj_trans - b.obj_trans).max() <= 0.5
        assert _rot_deg(a.obj_rot_matrix, b.obj_rot_matrix) <= 0.1
    # the heads graph reads the token: a zero token moves the joints (0.2-0.3 mm here, against
    # 1e-5 mm between the runtimes)
    encode = stages.encode

    def zero_token(*args: torch.Tensor) -> StageFeatures:
        out = encode(*args)
        out.features.image_token = np.zeros_like(out.features.image_token)
        return out

    monkeypatch.setattr(stages, "encode", zero_token)
    moved = ort_pred.predict(image, K, pairs)
    moved_mm = [1e3 * np.abs(a.joints - c.joints).max() for a, c in zip(want, moved, strict=True)]
    assert max(moved_mm) > 0.05


def test_pretraining_trains_the_token_readout():
    """`homae-pretrain`'s forward uses the model's own token (no separate global head)."""
    from homae_model.training.pretrain import dense_forward, dense_terms

    cfg = token_cfg()
    cfg.model.aux.enabled = True
    torch.manual_seed(0)
    model = HomaeModel(cfg).train()
    batch = random_batch(cfg, batch_size=2)
    out = dense_forward(model, batch, cfg)
    assert out.rel_joints is not None and tuple(out.rel_joints.shape) == (2, 21, 3)
    terms = dense_terms(out, batch, cfg, joints_weight=cfg.loss.global_joints)
    assert "joints" in terms
    terms["joints"].backward()
    assert model.image_token.readout.weight.grad is not None
