"""HomaeModel with the tiny config: shapes, stages, gradients, one optimiser step, ablations."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from homae_model.cli.summary import random_batch
from homae_model.config import HomaeConfig, load_config
from homae_model.losses import total_loss
from homae_model.model import HomaeModel, HomaeOutput

TINY = Path(__file__).resolve().parents[2] / "config" / "model" / "tiny.yaml"


def tiny_cfg(**model_overrides) -> HomaeConfig:
    cfg = load_config(TINY)
    for path, value in model_overrides.items():
        section, key = path.split("__")
        setattr(getattr(cfg.model, section), key, value)
    cfg.validate()
    return cfg


def build(cfg: HomaeConfig, seed: int = 0) -> HomaeModel:
    torch.manual_seed(seed)
    return HomaeModel(cfg)


@pytest.fixture(scope="module")
def cfg() -> HomaeConfig:
    return tiny_cfg(hand_head__dec_layers=2, object_head__layers=2)


@pytest.fixture(scope="module")
def batch(cfg) -> dict[str, torch.Tensor]:
    return random_batch(cfg, batch_size=2)


def test_training_output_shapes(cfg, batch):
    out = build(cfg).train()(batch)
    assert isinstance(out, HomaeOutput)
    s = cfg.model.encoder.img_size
    expected = {
        "mano_pose": (2, 48), "mano_shape": (2, 10), "hand_transl": (2, 3),
        "joints": (2, 21, 3), "vertices": (2, 778, 3), "pose_rotmat": (2, 16, 3, 3),
        "obj_rot": (2, 3), "obj_trans": (2, 3), "obj_rotmat": (2, 3, 3),
        "hand_sdf": (2, 64), "obj_sdf": (2, 32), "anchor_pred": (2, 3), "anchor_uvd": (2, 3),
        "anchor_used": (2, 3), "recon": (2, 3, s, s), "mask": (2, 8, 8),
    }  # fmt: skip
    for name, shape in expected.items():
        assert tuple(getattr(out, name).shape) == shape, name
        assert torch.isfinite(getattr(out, name).float()).all(), name
    assert (out.mask.flatten(1).sum(1) == cfg.model.masking.num_patches).all()
    assert len(out.hand_aux) == 1 and len(out.obj_aux) == 1
    assert float(out.hand_sdf.detach().abs().max()) <= 1.0 / cfg.model.points.sdf_scale
    # training uses the batch's points and (jittered) GT anchor
    torch.testing.assert_close(out.hand_points, batch["hand_points"])
    assert float((out.anchor_used - batch["anchor"]).abs().max()) < 0.2
    # the hand root sits at the anchor plus the predicted offset; MANO reproduces the mesh
    model = build(cfg)
    mano = model.mano(out.mano_pose, out.mano_shape, out.hand_transl)
    torch.testing.assert_close(mano.vertices, out.vertices, atol=1e-5, rtol=0)


def test_eval_mode_samples_points_and_uses_the_anchor_head(cfg, batch):
    model = build(cfg).eval()
    no_points = {k: v for k, v in batch.items() if k not in ("hand_points", "obj_points")}
    with torch.no_grad():
        out = model(no_points)
    assert out.recon is None and out.mask is None and out.hand_aux == []
    torch.testing.assert_close(out.anchor_used, out.anchor_pred)
    assert out.hand_points.shape == (2, cfg.model.points.num_hand, 3)
    assert out.obj_points.shape == (2, cfg.model.points.num_obj, 3)
    # the selected points are the voxels with the smallest |SDF| around the anchor
    half = 1.0 / cfg.model.points.sdf_scale
    assert float((out.hand_points - out.anchor_used[:, None]).abs().max()) <= half
    with torch.no_grad():
        gt_anchored = model(no_points, anchor=batch["anchor"])
    torch.testing.assert_close(gt_anchored.anchor_used, batch["anchor"])


def test_stages_compose_to_forward(cfg, batch):
    model = build(cfg).eval()
    with torch.no_grad():
        out = model(batch, anchor=batch["anchor"])
        enc = model.encode(batch["image"])
        anchor = batch["anchor"]
        hand = model.sdf(enc, batch["K"], batch["hand_points"], anchor, "hand")
        obj = model.sdf(enc, batch["K"], batch["obj_points"], anchor, "obj")
        hand_layers, obj_layers = model.heads(hand, obj)
        mesh = model.hand_mesh(hand_layers[-1], anchor)
        pred = model.predict_anchor(enc, batch["K"])
    torch.testing.assert_close(mesh.joints, out.joints)
    torch.testing.assert_close(obj_layers[-1].trans, out.obj_trans)
    torch.testing.assert_close(hand.sdf / model.sdf_scale, out.hand_sdf)
    torch.testing.assert_close(pred.anchor, out.anchor_pred)


def test_gradients_reach_every_trainable_parameter(cfg, batch):
    model = build(cfg).train()
    loss, terms = total_loss(model(batch), batch, cfg.loss)
    assert torch.isfinite(loss)
    loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and not any(n.startswith("mano.") for n, _ in trainable)
    missing = [n for n, p in trainable if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []
    assert {"rec", "mano_joints", "obj_trans", "sdf_hand", "sdf_obj", "anchor"} <= set(terms)


def test_one_optimiser_step_lowers_the_loss(cfg, batch):
    model = build(cfg).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss_value() -> torch.Tensor:
        torch.manual_seed(123)  # same masks and anchor jitter every time
        return total_loss(model(batch), batch, cfg.loss)[0]

    before = loss_value()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss_value()
    assert float(after) < float(before.detach())


def _shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {n: tuple(p.shape) for n, p in model.named_parameters()}


def _diff(a: dict, b: dict) -> set[str]:
    return {n for n in set(a) | set(b) if a.get(n) != b.get(n)}


def test_ablation_multiscale_changes_only_the_fusion_mlp():
    full = _shapes(build(tiny_cfg()))
    off = _shapes(build(tiny_cfg(decoder__multiscale=False)))
    changed = _diff(full, off)
    assert changed and all(n.startswith("multiscale.") for n in changed)


def test_ablation_pointnet_off_removes_the_pointnet():
    full = _shapes(build(tiny_cfg()))
    off = _shapes(build(tiny_cfg(pointnet__enabled=False)))
    removed = set(full) - set(off)
    assert removed and all(n.startswith(("pointnet_hand.", "pointnet_obj.")) for n in removed)
    assert set(off) <= set(full)
    reshaped = {n for n in off if off[n] != full[n]}
    assert reshaped == {"hand_head.token_proj.weight", "object_head.token_proj.weight"}


def test_ablation_masking_off_keeps_parameters_and_skips_the_mask(batch):
    on, off = build(tiny_cfg()), build(tiny_cfg(masking__enabled=False))
    assert _shapes(on) == _shapes(off)
    out = off.train()(batch)
    assert out.mask is None and out.recon is not None
    torch.manual_seed(5)
    masked = on.train().encode(batch["image"], batch["obj_box"])
    torch.manual_seed(5)
    plain = off.train().encode(batch["image"], batch["obj_box"])
    assert masked.mask is not None and not torch.allclose(masked.grid, plain.grid)


@pytest.mark.parametrize("fill", ["zero", "mean"])
def test_ablation_fill_changes_no_parameter(fill):
    assert _shapes(build(tiny_cfg())) == _shapes(build(tiny_cfg(masking__fill=fill)))


def test_dense_and_coarse_to_fine_sampling_give_the_same_shapes(batch):
    no_points = {k: v for k, v in batch.items() if k not in ("hand_points", "obj_points")}
    outs = []
    for sampling in ("dense", "coarse_to_fine"):
        model = build(tiny_cfg(inference__sampling=sampling)).eval()
        with torch.no_grad():
            outs.append(model(no_points))
    assert outs[0].hand_points.shape == outs[1].hand_points.shape
    assert outs[0].joints.shape == outs[1].joints.shape


def test_training_grid_follows_grid_anchor_when_given():
    cfg = tiny_cfg(anchor__train_jitter_m=0.0)
    batch = random_batch(cfg, batch_size=2)
    model = build(cfg).train()
    assert torch.equal(model(batch).anchor_used, batch["anchor"])
    moved = dict(batch, grid_anchor=batch["anchor"] + torch.tensor([0.05, -0.02, 0.04]))
    out = model(moved)
    assert torch.equal(out.anchor_used, moved["grid_anchor"])
    # the targets stay the GT ones: the anchor loss still compares with batch["anchor"]
    _, terms = total_loss(out, moved, cfg.loss)
    assert "anchor" in terms


def test_image_skip_branch_changes_nothing_at_start_and_loads_old_weights():
    cfg = load_config(TINY)
    base = HomaeModel(cfg).eval()
    cfg.model.decoder.image_skip = [8, 16]
    with_skip = HomaeModel(cfg).eval()
    missing = with_skip.load_state_dict(base.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("skip.") for k in missing)
    batch = random_batch(cfg)
    with torch.no_grad():
        a = base.encode(batch["image"]).fmap
        b = with_skip.encode(batch["image"]).fmap
    torch.testing.assert_close(a, b)
