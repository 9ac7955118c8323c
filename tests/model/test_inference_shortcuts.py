"""Inference shortcuts give the same values: final-layer-only heads, cached SDF head weights."""

from __future__ import annotations

import torch

from tests.model.test_model import build, tiny_cfg


def test_final_only_heads_equal_the_last_layer_of_the_full_lists():
    model = build(tiny_cfg(hand_head__dec_layers=3, object_head__layers=2)).eval()
    g = torch.Generator().manual_seed(0)
    c = model.cfg.model.decoder.feat_channels
    n = 40
    points = torch.randn(2, n, 3, generator=g) * 0.05 + torch.tensor([0.0, 0.0, 0.5])
    tokens = torch.randn(2, n, 2 * c, generator=g)
    pos = torch.randn(2, n, 3 + model.posenc.out_dim, generator=g)
    with torch.no_grad():
        hand_all = model.hand_head(tokens, pos)
        obj_all = model.object_head(tokens, pos, points)
        (hand,) = model.hand_head(tokens, pos, final_only=True)
        (obj,) = model.object_head(tokens, pos, points, final_only=True)
    assert len(hand_all) == 3 and len(obj_all) == 2
    for name in ("rot6d", "shape", "root_offset"):
        torch.testing.assert_close(getattr(hand, name), getattr(hand_all[-1], name))
    for name in ("rotmat", "trans", "weights"):
        torch.testing.assert_close(getattr(obj, name), getattr(obj_all[-1], name))


def test_sdf_head_weights_are_cached_until_a_parameter_changes():
    model = build(tiny_cfg())
    head = model.sdf_hand
    x = torch.randn(1, 7, head.layers[0].parametrizations.weight.original1.shape[1])
    with torch.no_grad():
        first = head.cached_plain_weights()
        assert head.cached_plain_weights() is first  # nothing changed: the same tensors
        torch.testing.assert_close(head(x, first), head(x))
        head.layers[1].parametrizations.weight.original0.mul_(2.0)  # an in-place update
        second = head.cached_plain_weights()
        assert second is not first
        torch.testing.assert_close(head(x, second), head(x))
        head.load_state_dict({k: v * 0.5 for k, v in head.state_dict().items()})
        third = head.cached_plain_weights()
        assert third is not second
        torch.testing.assert_close(head(x, third), head(x))


def test_decoder_without_gradients_equals_the_recorded_one():
    model = build(tiny_cfg())
    grid = torch.randn(2, model.cfg.model.encoder.feat_dim, 4, 4)
    with torch.no_grad():  # in-place activations, in-place multi-scale sums
        fast = model.multiscale(model.decoder(grid))
    slow = model.multiscale(model.decoder(grid))
    torch.testing.assert_close(fast, slow.detach())


def test_cached_sdf_head_forward_equals_the_plain_one():
    model = build(tiny_cfg())
    head = model.sdf_obj
    x = torch.randn(2, 9, head.layers[0].parametrizations.weight.original1.shape[1])
    with torch.no_grad():
        torch.testing.assert_close(head.forward_cached(x), head(x), rtol=1e-5, atol=1e-6)
    with torch.enable_grad():  # autograd: the plain path
        torch.testing.assert_close(head.forward_cached(x), head(x))


def test_encoder_layer_in_place_inference_equals_the_recorded_path():
    from homae_model.nn.hand_head import encoder_layer

    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(32, 2, 64, 0.0, batch_first=True, norm_first=True)
    layer.eval()
    x = torch.randn(2, 11, 32)
    with torch.no_grad():
        fast = encoder_layer(layer, x)
        reference = layer(x)
    slow = encoder_layer(layer, x).detach()  # autograd on: no in-place operations
    torch.testing.assert_close(fast, slow)
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-5)
