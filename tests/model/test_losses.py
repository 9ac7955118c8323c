"""Loss terms against hand computations, and total_loss on the tiny model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from homae_model.cli.summary import random_batch
from homae_model.config import LossConfig, load_config
from homae_model.geometry.rotations import axis_angle_to_matrix
from homae_model.losses import (
    anchor_loss,
    mano_loss,
    object_loss,
    reconstruction_loss,
    sdf_loss,
    symmetric_rotation_loss,
    total_loss,
)
from homae_model.model import HandMesh, HomaeModel
from homae_model.nn.anchor import anchor_to_uvd

TINY = Path(__file__).resolve().parents[2] / "config" / "model" / "tiny.yaml"


def test_reconstruction_loss_is_pixel_mse():
    a, b = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    b[0, 0, 0, 0] = 2.0
    torch.testing.assert_close(reconstruction_loss(a, b), torch.tensor(4.0 / 48))


def test_sdf_loss_clamps_targets_and_uses_scaled_units():
    pred = torch.tensor([[0.05, 0.0]])
    gt = torch.tensor([[0.30, 0.01]])  # the first target clamps to 0.05
    torch.testing.assert_close(sdf_loss(pred, gt, 0.05, 3.1), torch.tensor(0.5 * 0.01 * 3.1))


def test_mano_loss_weights():
    cfg = LossConfig()
    b = 2
    pose = torch.zeros(b, 48)
    pose[:, 3] = 0.5  # one joint rotated about x
    gt = {
        "mano_pose": torch.zeros(b, 48),
        "mano_shape": torch.ones(b, 10),
        "hand_joints": torch.zeros(b, 21, 3),
        "hand_verts": torch.zeros(b, 778, 3),
    }
    rot = axis_angle_to_matrix(pose.reshape(b, 16, 3))
    joints = torch.zeros(b, 21, 3)
    joints[..., 0] = 0.01
    pred = HandMesh(
        pose, rot, torch.zeros(b, 10), torch.zeros(b, 3), joints, torch.zeros(b, 778, 3)
    )
    terms = mano_loss(pred, gt, cfg)
    diff = (rot - torch.eye(3)).pow(2).sum() / rot.numel()
    torch.testing.assert_close(terms["mano_pose"], 10.0 * diff)
    torch.testing.assert_close(terms["mano_shape"], torch.tensor(0.1))
    torch.testing.assert_close(terms["mano_joints"], torch.tensor(1e4 * 1e-4 / 3))
    torch.testing.assert_close(terms["mano_verts"], torch.tensor(0.0))
    assert "mano_global" not in terms  # off by default
    # the global orientation term sees the global rotation only: not the joint rotated above,
    # but a hand turned 90 degrees about z (4 of the 9 matrix entries off by 1)
    cfg.mano_global = 3.0
    assert float(mano_loss(pred, gt, cfg)["mano_global"]) == 0.0
    turned = pose.clone()
    turned[:, 2] = math.pi / 2
    rot_t = axis_angle_to_matrix(turned.reshape(b, 16, 3))
    pred_t = HandMesh(
        turned, rot_t, torch.zeros(b, 10), torch.zeros(b, 3), joints, torch.zeros(b, 778, 3)
    )
    want = 3.0 * (rot_t[:, 0] - torch.eye(3)).pow(2).mean()
    torch.testing.assert_close(mano_loss(pred_t, gt, cfg)["mano_global"], want)
    assert float(want) == pytest.approx(3.0 * 4.0 / 9.0)


def test_object_loss_smooth_l1():
    cfg = LossConfig()
    rot = torch.zeros(1, 3)
    batch = {"obj_rot": rot, "obj_trans": torch.tensor([[0.1, 0.0, 0.5]])}
    terms = object_loss(torch.eye(3)[None], torch.tensor([[0.0, 0.0, 0.5]]), batch, cfg)
    torch.testing.assert_close(terms["obj_rot"], torch.tensor(0.0))
    torch.testing.assert_close(terms["obj_trans"], torch.tensor(100.0 * 0.5 * 0.01 / 3))


def _half_turn_symmetric_points() -> torch.Tensor:
    """(1,8,3) points that a half turn about z maps onto themselves (a box's symmetry)."""
    p = torch.tensor(
        [[0.05, 0.02, 0.03], [0.01, -0.04, -0.02], [0.03, 0.03, -0.06], [0.02, 0.0, 0.08]]
    )
    return torch.cat([p, p * torch.tensor([-1.0, -1.0, 1.0])])[None]


def test_symmetric_rotation_loss_is_zero_for_a_symmetry_and_positive_otherwise():
    pts = _half_turn_symmetric_points()
    eye = torch.eye(3)[None]
    half_z = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, math.pi]]))
    quarter_z = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, math.pi / 2]]))
    torch.testing.assert_close(symmetric_rotation_loss(eye, eye, pts), torch.tensor(0.0))
    # the half turn maps the model onto itself: no loss, where the matrix entries differ by 2
    assert float(symmetric_rotation_loss(half_z, eye, pts)) < 1e-6
    assert float(symmetric_rotation_loss(quarter_z, eye, pts)) > 0.005
    # one-sided: the mean over GT-rotated points of the distance to the nearest predicted one
    gt = pts[0] @ quarter_z[0].T
    want = torch.cdist(gt, pts[0]).min(dim=1).values.mean()
    torch.testing.assert_close(symmetric_rotation_loss(eye, quarter_z, pts), want)


def test_object_loss_adds_the_symmetric_term_when_weighted():
    pts = _half_turn_symmetric_points()
    batch = {
        "obj_rot": torch.tensor([[0.0, 0.0, math.pi / 2]]),
        "obj_trans": torch.zeros(1, 3),
        "obj_model_points": pts,
    }
    rot = torch.eye(3)[None].requires_grad_(True)
    assert "obj_rot_points" not in object_loss(rot, torch.zeros(1, 3), batch, LossConfig())
    terms = object_loss(rot, torch.zeros(1, 3), batch, LossConfig(obj_rot_points=10.0))
    want = 10.0 * symmetric_rotation_loss(
        torch.eye(3)[None], axis_angle_to_matrix(batch["obj_rot"]), pts
    )
    torch.testing.assert_close(terms["obj_rot_points"], want)
    terms["obj_rot_points"].backward()
    assert rot.grad is not None and float(rot.grad.abs().sum()) > 0


def test_anchor_loss_zero_at_the_target():
    K = torch.tensor([[[100.0, 0.0, 28.0], [0.0, 100.0, 28.0], [0.0, 0.0, 1.0]]])
    gt = torch.tensor([[0.02, -0.01, 0.45]])
    uvd = anchor_to_uvd(gt, K, 56)
    torch.testing.assert_close(anchor_loss(uvd, gt, K, 56), torch.tensor(0.0))
    shifted = uvd + torch.tensor([[0.0, 0.0, math.log(2.0)]])
    torch.testing.assert_close(anchor_loss(shifted, gt, K, 56), torch.tensor(math.log(2.0) / 3))


@pytest.fixture(scope="module")
def setup():
    cfg = load_config(TINY)
    cfg.model.hand_head.dec_layers = 2
    cfg.model.object_head.layers = 2
    torch.manual_seed(0)
    model = HomaeModel(cfg).train()
    batch = random_batch(cfg)
    return cfg, model, batch


def test_total_loss_is_zero_for_a_perfect_prediction(setup):
    cfg, model, batch = setup
    with torch.no_grad():
        out = model(batch)
    perfect = dict(batch)
    perfect.update(
        image=out.recon, mano_pose=out.mano_pose, mano_shape=out.mano_shape,
        hand_joints=out.joints, hand_verts=out.vertices, obj_rot=out.obj_rot,
        obj_trans=out.obj_trans, hand_sdf=out.hand_sdf, obj_sdf=out.obj_sdf,
    )  # fmt: skip
    perfect["anchor"] = torch.stack([torch.zeros(2), torch.zeros(2), torch.ones(2)], 1)
    uvd_target = anchor_to_uvd(perfect["anchor"], batch["K"], out.image_size)
    out.anchor_uvd = uvd_target
    clamp = cfg.loss.sdf_clamp_m
    out.hand_sdf, out.obj_sdf = out.hand_sdf.clamp(-clamp, clamp), out.obj_sdf.clamp(-clamp, clamp)
    cfg_no_aux = LossConfig(deep_supervision=False)
    total, terms = total_loss(out, perfect, cfg_no_aux)
    assert float(total) < 1e-5, {k: float(v) for k, v in terms.items()}


def test_total_loss_groups_and_lambdas(setup):
    cfg, model, batch = setup
    torch.manual_seed(1)
    out = model(batch)
    total, terms = total_loss(out, batch, cfg.loss)
    assert any(k.endswith("_aux0") for k in terms)
    groups = terms["L_rec"] + terms["L_mano"] + terms["L_obj"] + terms["L_sdf"] + terms["L_others"]
    torch.testing.assert_close(total.detach(), groups)
    weighted = LossConfig(lambda_mano=0.0, lambda_rec=2.0)
    total2, _ = total_loss(out, batch, weighted)
    want = 2 * terms["L_rec"] + terms["L_obj"] + terms["L_sdf"] + terms["L_others"]
    torch.testing.assert_close(total2.detach(), want)
    no_aux, t3 = total_loss(out, batch, LossConfig(deep_supervision=False))
    assert not any(k.endswith("_aux0") for k in t3)
    assert float(no_aux.detach()) < float(total.detach())


def test_keypoint_heatmap_loss_is_lowest_at_the_true_pixel_and_ignores_invalid_keypoints():
    from homae_model.losses import keypoint_heatmap_loss

    s, h = 32, 16
    uv = torch.tensor([[[10.0, 20.0], [3.0, 5.0]]])
    losses = []
    for cx, cy in ((10.0, 20.0), (20.0, 10.0)):  # a peak at the right / a wrong pixel
        xs = (torch.arange(h) + 0.5) * s / h - 0.5
        d2 = (xs[None, :] - cx) ** 2 + (xs[:, None] - cy) ** 2
        logits = (-d2 / 8.0)[None, None].repeat(1, 2, 1, 1)
        valid = torch.tensor([[True, False]])
        losses.append(float(keypoint_heatmap_loss(logits, uv, valid, s, 2.0)))
    assert losses[0] < losses[1] - 1.0
    # no valid keypoint: zero, not NaN
    zero = keypoint_heatmap_loss(torch.zeros(1, 2, h, h), uv, torch.zeros(1, 2, dtype=bool), s, 2.0)
    assert float(zero) == 0.0


def test_dense_heads_and_separate_sdf_samples_enter_the_loss():
    cfg = load_config(TINY)
    cfg.model.aux.enabled = True
    model = HomaeModel(cfg).train()
    batch = random_batch(cfg)
    batch["hand_sdf_points"] = batch["hand_points"] + 0.01
    batch["hand_sdf_values"] = batch["hand_sdf"]
    batch["obj_sdf_points"] = batch["obj_points"] + 0.01
    batch["obj_sdf_values"] = batch["obj_sdf"]
    out = model(batch)
    assert out.aux is not None and out.aux.logits.shape[1] == 30
    assert set(out.sdf_extra) == {"hand", "obj"}
    loss, terms = total_loss(out, batch, cfg.loss)
    for name in ("aux_heatmap", "aux_depth", "sdf_hand_samples", "sdf_obj_samples"):
        assert name in terms and torch.isfinite(terms[name])
    loss.backward()
    assert model.aux_head.conv.weight.grad.abs().sum() > 0
    # inference: no dense heads, no extra SDF evaluations
    model.eval()
    with torch.no_grad():
        out = model(batch, anchor=batch["anchor"])
    assert out.aux is None and out.sdf_extra == {}


def test_aligned_joints_loss_ignores_the_global_rotation_but_not_a_curled_hand():
    from scipy.spatial.transform import Rotation

    from homae_model.losses import aligned_joints_loss

    gt = torch.randn(4, 21, 3, dtype=torch.float64) * 0.05
    rot = torch.tensor(Rotation.random(4, random_state=0).as_matrix())
    turned = (gt - gt[:, :1]) @ rot.transpose(1, 2) + 0.3
    assert float(aligned_joints_loss(turned, gt)) < 1e-20
    shrunk = (turned * 0.5).requires_grad_()
    loss = aligned_joints_loss(shrunk, gt)
    assert float(loss) > 1e-4
    loss.backward()
    assert shrunk.grad.abs().sum() > 0


def test_depth_map_losses_zero_at_the_target_and_ignore_uncovered_cells():
    from homae_model.losses import depth_map_losses

    g = 4
    hand = torch.full((1, g, g), float("nan"))
    hand[0, 1:3, 1:3] = torch.tensor([[-0.02, 0.01], [0.0, 0.03]])
    obj = torch.full((1, g, g), float("nan"))
    obj[0, 0, :] = 0.05
    batch = {"hand_depth_map": hand, "obj_depth_map": obj}
    covered = torch.isfinite(torch.stack([hand, obj], dim=1))
    logits = torch.where(covered, 30.0, -30.0)
    depth = torch.nan_to_num(torch.stack([hand, obj], dim=1), nan=7.0)  # anything off-cover
    bce, l1 = depth_map_losses(logits, depth, batch)
    assert float(bce) < 1e-6 and float(l1) == pytest.approx(0.0, abs=1e-7)
    # a finer prediction is pooled to the targets' grid; a wrong depth costs its L1 (m)
    fine = depth.repeat_interleave(2, -1).repeat_interleave(2, -2).clone().requires_grad_()
    with torch.no_grad():
        fine[:, 0] += 0.01
    _, l1 = depth_map_losses(logits.repeat_interleave(2, -1).repeat_interleave(2, -2), fine, batch)
    assert float(l1) == pytest.approx(0.01 * 4 / 8, rel=1e-4)  # 4 of 8 covered cells are hand
    l1.backward()
    assert torch.isfinite(fine.grad).all()


def test_depth_maps_head_enters_the_loss_and_needs_its_targets():
    cfg = load_config(TINY, ["model.aux.enabled=true", "model.aux.depth_maps=true",
                             "data.depth_map_cells=4"])  # fmt: skip
    model = HomaeModel(cfg).train()
    batch = random_batch(cfg)
    b = batch["image"].shape[0]
    batch["hand_depth_map"] = torch.full((b, 4, 4), 0.01)
    batch["obj_depth_map"] = torch.full((b, 4, 4), float("nan"))
    out = model(batch)
    assert out.aux.mask_logits.shape[1] == 2 and out.aux.depth_maps.shape[1] == 2
    loss, terms = total_loss(out, batch, cfg.loss)
    assert torch.isfinite(terms["aux_mask"]) and torch.isfinite(terms["aux_depth_map"])
    loss.backward()
    assert model.aux_head.maps.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"data\.depth_map_cells"):
        load_config(TINY, ["model.aux.enabled=true", "model.aux.depth_maps=true"])
