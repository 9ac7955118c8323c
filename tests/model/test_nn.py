"""The network parts (homae_model/nn), each on its own, with tiny sizes."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import pytest
import torch
from safetensors.torch import save_file

from homae_model.config import (
    AnchorConfig,
    DecoderConfig,
    EncoderConfig,
    FusionConfig,
    HandHeadConfig,
    MaskingConfig,
    ObjectHeadConfig,
    SdfHeadConfig,
)
from homae_model.nn.anchor import AnchorHead, anchor_to_uvd
from homae_model.nn.decoder import MaeDecoder
from homae_model.nn.encoder import ImageEncoder
from homae_model.nn.feature_sampling import sample_features
from homae_model.nn.fusion import SdfGatedFusion
from homae_model.nn.hand_head import HandHead
from homae_model.nn.masking import TargetFocusedMasking, object_cells, sample_mask
from homae_model.nn.multiscale import MultiScaleFusion
from homae_model.nn.object_head import ObjectHead
from homae_model.nn.pointnet import PointNet
from homae_model.nn.posenc import FourierEncoding
from homae_model.nn.sdf_head import SdfHead

TINY_ENC = EncoderConfig(img_size=56, embed_dim=32, depth=1, num_heads=2, feat_dim=16)


# ------------------------------------------------------------------ masking
def test_object_cells_cover_the_box():
    cells = object_cells(
        torch.tensor([[30.0, 0.0, 60.0, 27.9], [-50.0, -50.0, -1.0, -1.0]]), 8, 8, 28
    )
    assert cells[0].nonzero().tolist() == [[0, 1], [0, 2]]
    assert not cells[1].any()


def test_mask_statistics():
    torch.manual_seed(0)
    n = 4000
    box = torch.tensor([[56.0, 56.0, 139.0, 139.0]]).expand(n, 4)  # 3x3 = 9 cells
    mask = sample_mask(box, 8, 8, 28, num_patches=12, mu=0.5)
    assert (mask.flatten(1).sum(1) == 12).all()
    inside = object_cells(box, 8, 8, 28)
    n_in = (mask & inside).flatten(1).sum(1)
    assert (n_in >= 6).all()  # round(mu * rho) always inside
    # the other 6 are drawn among the 58 remaining cells, 3 of which are inside
    expected = (6 + 6 * 3 / 58) / 12
    assert abs(float(n_in.float().mean()) / 12 - expected) < 0.01


def test_mask_with_few_object_cells_and_no_box():
    box = torch.tensor([[0.0, 0.0, 30.0, 20.0]]).expand(200, 4)  # 2 cells
    mask = sample_mask(box, 8, 8, 28, 12, 0.5)
    assert (mask.flatten(1).sum(1) == 12).all()
    assert mask[:, 0, :2].all()  # fewer cells than mu*rho: all taken
    outside = torch.full((50, 4), -10.0)
    m2 = sample_mask(outside, 8, 8, 28, 12, 0.5)
    assert (m2.flatten(1).sum(1) == 12).all()
    # uniform over the image: every cell gets masked sometimes
    assert sample_mask(torch.full((2000, 4), -10.0), 8, 8, 28, 12, 0.5).any(0).all()


def test_noise_fill_and_identity_outside_training():
    torch.manual_seed(1)
    masking = TargetFocusedMasking(MaskingConfig(patch_size=28, num_patches=12, fill="noise"))
    x = torch.full((8, 3, 224, 224), 5.0)
    box = torch.tensor([[50.0, 50.0, 150.0, 150.0]]).expand(8, 4)
    out, mask = masking.train()(x, box)
    assert mask.shape == (8, 8, 8)
    pix = mask.repeat_interleave(28, 1).repeat_interleave(28, 2)[:, None].expand_as(x)
    assert (out[~pix] == 5.0).all()
    noise = out[pix]
    assert noise.numel() == 8 * 12 * 28 * 28 * 3
    assert abs(float(noise.mean())) < 0.01 and abs(float(noise.std()) - 1.0) < 0.01
    out_eval, mask_eval = masking.eval()(x, box)
    assert mask_eval is None and out_eval is x
    off = TargetFocusedMasking(MaskingConfig(enabled=False)).train()
    assert off(x, box)[1] is None


@pytest.mark.parametrize("fill", ["zero", "mean"])
def test_zero_and_mean_fill(fill):
    masking = TargetFocusedMasking(MaskingConfig(patch_size=7, num_patches=5, fill=fill)).train()
    x = torch.rand(2, 3, 56, 56) + 1.0
    out, mask = masking(x, torch.tensor([[0.0, 0.0, 20.0, 20.0]]).expand(2, 4))
    pix = mask.repeat_interleave(7, 1).repeat_interleave(7, 2)[:, None].expand_as(x)
    want = torch.zeros_like(x) if fill == "zero" else x.mean((2, 3), keepdim=True).expand_as(x)
    torch.testing.assert_close(out[pix], want[pix])


# ------------------------------------------------------------------ encoder / decoder
def test_encoder_shapes_and_local_pretrained(tmp_path):
    torch.manual_seed(0)
    enc = ImageEncoder(TINY_ENC).eval()
    grid, pooled = enc(torch.rand(2, 3, 56, 56))
    assert grid.shape == (2, 16, 4, 4) and pooled.shape == (2, 16)
    path = tmp_path / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in enc.vit.state_dict().items()}, str(path))
    torch.manual_seed(1)
    cfg = EncoderConfig(**{**TINY_ENC.__dict__, "pretrained_path": str(path)})
    other = ImageEncoder(cfg)
    for k, v in enc.vit.state_dict().items():
        torch.testing.assert_close(other.vit.state_dict()[k], v)
    torch.save({"model": enc.vit.state_dict()}, tmp_path / "vit.pth")
    ImageEncoder(
        EncoderConfig(**{**TINY_ENC.__dict__, "pretrained_path": str(tmp_path / "vit.pth")})
    )


def test_encoder_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape("missing.safetensors")):
        ImageEncoder(
            EncoderConfig(**{**TINY_ENC.__dict__, "pretrained_path": "missing.safetensors"})
        )
    bad = tmp_path / "bad.safetensors"
    save_file({"something": torch.zeros(2)}, str(bad))
    with pytest.raises(ValueError, match=re.escape("bad.safetensors")):
        ImageEncoder(EncoderConfig(**{**TINY_ENC.__dict__, "pretrained_path": str(bad)}))
    with pytest.raises(ValueError, match=re.escape("model.encoder.name")):
        ImageEncoder(EncoderConfig(name="not_a_model", img_size=56))


def test_conv_stem_keeps_the_token_grid_and_sees_across_patch_borders():
    def border_gradient(stem: str) -> tuple[float, float]:
        torch.manual_seed(0)
        enc = ImageEncoder(EncoderConfig(**{**TINY_ENC.__dict__, "stem": stem})).eval()
        x = torch.rand(2, 3, 56, 56, requires_grad=True)
        grid, pooled = enc(x)
        assert grid.shape == (2, 16, 4, 4) and pooled.shape == (2, 16) and enc.patch == 14
        tokens = enc.vit.patch_embed(enc.normalize(x))  # (2, 16, D), row-major 4x4 grid
        tokens[0, 5].sum().backward()  # token (row 1, col 1): pixels 14..27
        g = x.grad[0].abs().sum(0)
        return float(g[14:28, 14:28].sum()), float(g[13, 14:28].sum())  # own patch, row above

    inside, above = border_gradient("conv")
    assert inside > 0 and above > 0.05 * inside / 14  # 3x3 convolutions reach across the border
    inside, above = border_gradient("patch")
    assert inside > 0 and above == 0.0  # the patchify layer sees its own 14x14 pixels only


def test_decoder_and_multiscale_shapes():
    cfg = DecoderConfig(num_stages=2, stage_channels=[12, 8], feat_channels=5, fusion_hidden=6)
    dec = MaeDecoder(cfg, 16)
    stages = dec(torch.rand(2, 16, 4, 4))
    assert [tuple(s.shape) for s in stages] == [(2, 12, 8, 8), (2, 8, 16, 16)]
    assert dec.reconstruct(stages, (56, 56)).shape == (2, 3, 56, 56)
    on, off = (
        MultiScaleFusion(cfg),
        MultiScaleFusion(DecoderConfig(**{**cfg.__dict__, "multiscale": False})),
    )
    assert on(stages).shape == off(stages).shape == (2, 5, 16, 16)
    assert on.mlp[0].in_channels == 20 and off.mlp[0].in_channels == 8


# ------------------------------------------------------------------ points
def test_fourier_encoding():
    enc = FourierEncoding(5)
    q = torch.tensor([[0.25, -0.5, 0.1]])
    out = enc(q)
    assert out.shape == (1, 30)
    assert math.isclose(float(out[0, 0]), math.sin(math.pi * 0.25), abs_tol=1e-6)
    assert math.isclose(float(out[0, 1]), math.sin(2 * math.pi * 0.25), abs_tol=1e-6)
    assert math.isclose(float(out[0, 15]), math.cos(math.pi * 0.25), abs_tol=1e-6)


def test_feature_sampling_pixel_convention():
    s, h = 56, 14  # feature map at a quarter of the crop resolution
    centres = (torch.arange(h, dtype=torch.float32) + 0.5) * (s / h) - 0.5  # crop px of cells
    fmap = torch.stack([centres[None, :].expand(h, h), centres[:, None].expand(h, h)])[
        None
    ]  # channel 0 = u of the cell centre, channel 1 = v
    K = torch.tensor([[[80.0, 0.0, 27.5], [0.0, 80.0, 27.5], [0.0, 0.0, 1.0]]])
    uv = torch.tensor([[[20.3, 31.7], [10.0, 40.0], [27.5, 27.5]]])
    z = torch.tensor([[0.4, 0.6, 0.5]])
    pts = torch.cat([(uv - 27.5) / 80.0 * z[..., None], z[..., None]], dim=-1)
    feats = sample_features(fmap, pts, K, (s, s))
    torch.testing.assert_close(feats, uv, atol=1e-4, rtol=0)


def test_sdf_head_layout():
    head = SdfHead(SdfHeadConfig(hidden=32, layers=4, inject_layer=2, weight_norm=True), 40)
    assert head.layers[2].in_features == 32 + 40
    assert any("parametrizations.weight.original0" in n for n, _ in head.named_parameters())
    out = head(torch.randn(2, 7, 40) * 100)
    assert out.shape == (2, 7) and float(out.detach().abs().max()) <= 1.0
    plain = SdfHead(SdfHeadConfig(hidden=32, weight_norm=False), 40)
    assert not any("parametrizations" in n for n, _ in plain.named_parameters())


def test_pointnet_is_permutation_equivariant():
    torch.manual_seed(0)
    net = PointNet([8, 16], 5)
    q = torch.randn(2, 10, 3)
    perm = torch.randperm(10)
    out = net(q)
    assert out.shape == (2, 10, 5)
    torch.testing.assert_close(net(q[:, perm]), out[:, perm])
    q2 = q.clone()
    q2[:, 0] += 5.0  # a far point changes the global feature of every other point
    assert not torch.allclose(net(q2)[:, 1:], out[:, 1:])


def test_fusion_matches_hand_computation():
    fusion = SdfGatedFusion(FusionConfig(beta_init=0.1, beta_min=2e-3))
    f_img = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    f_3d = torch.tensor([[[5.0], [6.0]]])
    sdf = torch.tensor([[0.05, -0.2]], requires_grad=True)
    out = fusion(f_img, f_3d, sdf)
    g0 = 10.0 / (1 + math.exp(0.5))  # sigmoid(-0.05/0.1)/0.1
    g1 = 10.0 / (1 + math.exp(-2.0))  # inside weighs more
    want = torch.tensor([[[1 * g0, 2 * g0, 5 * g0], [3 * g1, 4 * g1, 6 * g1]]])
    torch.testing.assert_close(out, want)
    out.sum().backward()
    assert sdf.grad is None  # the SDF is detached
    assert fusion.beta.grad is not None
    torch.testing.assert_close(fusion(f_img, None, sdf), want[..., :2])
    with torch.no_grad():
        fusion.beta.fill_(-1.0)
    torch.testing.assert_close(fusion.current_beta().detach(), torch.tensor(2e-3))


# ------------------------------------------------------------------ heads
def test_anchor_head_geometry():
    head = AnchorHead(AnchorConfig(ref_size_m=0.3, hidden=8), 16)
    with torch.no_grad():
        head.mlp[-1].weight.zero_()
    K = torch.tensor([[[100.0, 0.0, 27.5], [0.0, 100.0, 27.5], [0.0, 0.0, 1.0]]])
    pred = head(torch.randn(1, 16), K, 56)
    z = 100.0 * 0.3 / 56
    torch.testing.assert_close(pred.anchor, torch.tensor([[0.0, 0.0, z]]))
    torch.testing.assert_close(anchor_to_uvd(pred.anchor, K, 56), pred.uvd)


def test_heatmap_anchor_head_starts_as_pooled_and_follows_the_peak():
    cfg = AnchorConfig(ref_size_m=0.3, hidden=8, kind="heatmap", heatmap_pool=1)
    head = AnchorHead(cfg, 16, fmap_channels=4)
    pooled = AnchorHead(AnchorConfig(ref_size_m=0.3, hidden=8), 16)
    pooled.load_state_dict(head.state_dict(), strict=False)  # the shared MLP
    K = torch.tensor([[[100.0, 0.0, 27.5], [0.0, 100.0, 27.5], [0.0, 0.0, 1.0]]])
    feat, fmap = torch.randn(1, 16), torch.randn(1, 4, 14, 14)
    torch.testing.assert_close(head(feat, K, 56, fmap).anchor, pooled(feat, K, 56).anchor)
    with torch.no_grad():  # a map peaked at cell (row 3, col 10): soft-argmax -> its centre
        head.mlp[-1].weight.zero_()
        head.heatmap[-1].bias.zero_()
        head.heatmap[-1].weight.zero_()
        head.heatmap[0].weight.zero_()
        head.heatmap[0].bias.zero_()
        head.heatmap[0].bias[0] = 1.0
        head.heatmap[-1].weight[0, 0] = 1.0
    peak = torch.zeros(1, 4, 14, 14)
    peak[0, 0, 3, 10] = 200.0
    head.heatmap[0].weight.data[0, 0, 1, 1] = 1.0  # logit = GELU(1 + x) of channel 0
    pred = head(feat, K, 56, peak)
    uv = pred.uvd[0, :2] * 56
    torch.testing.assert_close(uv, torch.tensor([(10 + 0.5) * 4 - 0.5, (3 + 0.5) * 4 - 0.5]))
    with pytest.raises(ValueError, match="feature map"):
        head(feat, K, 56)


def test_hand_head_outputs_per_layer():
    cfg = HandHeadConfig(d_model=16, enc_layers=1, dec_layers=3, heads=2, ffn=32)
    head = HandHead(cfg, in_dim=20, pos_dim=33, sdf_scale=3.1)
    outs = head(torch.randn(2, 9, 20), torch.randn(2, 9, 33))
    assert len(outs) == 3
    assert outs[-1].rot6d.shape == (2, 16, 6)
    assert outs[-1].shape.shape == (2, 10) and outs[-1].root_offset.shape == (2, 3)


def test_object_head_votes_and_weights():
    cfg = ObjectHeadConfig(d_model=16, layers=2, heads=2, ffn=32)
    head = ObjectHead(cfg, in_dim=20, pos_dim=33, sdf_scale=3.1)
    pts = torch.randn(2, 9, 3) * 0.05 + torch.tensor([0.0, 0.0, 0.5])
    outs = head(torch.randn(2, 9, 20), torch.randn(2, 9, 33), pts)
    assert len(outs) == 2
    final = outs[-1]
    torch.testing.assert_close(final.weights.sum(1), torch.ones(2))
    eye = torch.eye(3).expand(2, 3, 3)
    torch.testing.assert_close(final.rotmat @ final.rotmat.transpose(1, 2), eye, atol=1e-5, rtol=0)
    with torch.no_grad():
        head.vote_out.weight.zero_()
    t = head(torch.randn(2, 9, 20), torch.randn(2, 9, 33), pts)[-1]
    torch.testing.assert_close(t.trans, (t.weights[..., None] * pts).sum(1))


def test_layer_scale_starts_at_one_from_scratch_and_at_the_dinov2_value_with_weights():
    from homae_model.nn.encoder import encoder_init_note, layer_scale_init

    scratch = ImageEncoder(TINY_ENC)
    gammas = [b.ls1.gamma for b in scratch.vit.blocks]
    assert all(torch.all(g == 1.0) for g in gammas)
    assert layer_scale_init(replace(TINY_ENC, pretrained_path="w.safetensors")) == 1e-5
    assert layer_scale_init(replace(TINY_ENC, layer_scale_init=0.1)) == 0.1
    assert "from scratch" in encoder_init_note(TINY_ENC)
    assert encoder_init_note(replace(TINY_ENC, pretrained_path="w.pth")) == "pretrained: w.pth"


def test_image_skip_starts_at_zero_and_adds_pixel_level_features():
    from homae_model.nn.skip import ImageSkip

    skip = ImageSkip([8, 16], out_channels=12)
    x = torch.randn(2, 3, 56, 56)
    out = skip(x, (32, 32))
    assert out.shape == (2, 12, 32, 32)
    assert float(out.abs().max()) == 0.0  # zero-initialised projections: F~ starts unchanged
    for p in skip.proj:
        torch.nn.init.normal_(p.weight, std=0.1)
    out = skip(x, (32, 32))
    # pixel-level detail: neighbouring cells inside one 7-pixel patch differ
    assert float((out[..., 1:, :] - out[..., :-1, :]).abs().mean()) > 1e-3
    out.sum().backward()
    assert skip.blocks[0][0].weight.grad.abs().sum() > 0
