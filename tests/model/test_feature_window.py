"""F~ over the boxes' window (`homae_model.nn.feature_window`): same values as the whole map."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from homae_model.branch_search import search_branches
from homae_model.geometry.camera import project_points
from homae_model.model import HomaeModel, search_points
from homae_model.nn.feature_sampling import map_pixels
from homae_model.nn.feature_window import FeatureWindow, upsample_window, window_for_boxes
from homae_model.stages import TorchStages
from tests.model.test_model import build, tiny_cfg


@pytest.fixture(scope="module")
def model() -> HomaeModel:
    # dense search: the window is the boxes' (the coarse cells of the tiny crop span it all)
    cfg = tiny_cfg(hand_head__dec_layers=2, object_head__layers=2)
    cfg.model.inference.sampling = "dense"
    cfg.model.inference.voxel_res, cfg.model.inference.coarse_res = 32, 8
    return build(cfg).eval()


@pytest.fixture(scope="module")
def image(model) -> torch.Tensor:
    s = model.cfg.model.encoder.img_size
    return torch.rand(2, 3, s, s, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("factor", [2, 4])
@pytest.mark.parametrize(
    "bounds", [(8, 24, 4, 16), (0, 12, 0, 8), (20, 32, 24, 32), (0, 32, 0, 32), (4, 8, 0, 32)]
)
def test_upsample_window_equals_the_whole_upsampling(factor, bounds):
    x = torch.randn(2, 5, 32 // factor, 32 // factor)
    y0, y1, x0, x1 = bounds
    y0, x0 = y0 // factor * factor, x0 // factor * factor
    y1, x1 = -(-y1 // factor) * factor, -(-x1 // factor) * factor
    win = FeatureWindow(y0, y1, x0, x1, (32, 32))
    whole = F.interpolate(x, scale_factor=float(factor), mode="bilinear", align_corners=False)
    w = torch.randn(7, 5)

    def pixel_map(t: torch.Tensor) -> torch.Tensor:
        return torch.einsum("oc,bchw->bohw", w, t)

    got = upsample_window(x, factor, win)
    assert got.shape == (2, 5, y1 - y0, x1 - x0)
    torch.testing.assert_close(got, whole[..., y0:y1, x0:x1], rtol=0, atol=1e-6)
    mapped = upsample_window(x, factor, win, pixel_map)
    torch.testing.assert_close(mapped, pixel_map(whole)[..., y0:y1, x0:x1], rtol=0, atol=1e-5)


def test_window_for_boxes_holds_the_boxes_aligned():
    win = window_for_boxes(torch.tensor([[50.0, 60.0, 90.0, 100.0]]), (224, 224), (128, 128), 4)
    # box pixels 50..90 -> map pixels 28.4..51.3 (x), 60..100 -> 34.1..57.0 (y)
    assert (win.x0, win.y0) == (24, 32) and win.x1 >= 53 and win.y1 >= 59
    assert all(v % 4 == 0 for v in (win.x0, win.x1, win.y0, win.y1))
    assert not win.is_full
    whole = window_for_boxes(torch.tensor([[-10.0, 0.0, 230.0, 224.0]]), (224, 224), (128, 128), 4)
    assert whole.is_full
    bad = window_for_boxes(torch.tensor([[float("nan"), 0.0, 5.0, 5.0]]), (224, 224), (128, 128), 4)
    assert bad.is_full


def test_covers_needs_the_bilinear_neighbours_inside():
    win = FeatureWindow(8, 16, 0, 12, (32, 32))
    assert win.covers(torch.tensor([[0.0, 8.0], [-3.0, 15.0], [11.0, 12.5]]))
    assert not win.covers(torch.tensor([[5.0, 7.9]]))  # row 7 is outside
    assert not win.covers(torch.tensor([[11.5, 10.0]]))  # column 12 is outside
    assert not win.covers(torch.tensor([[float("nan"), 10.0]]))


def _camera(s: int, n: int) -> torch.Tensor:
    K = torch.tensor([[1.2 * s, 0, (s - 1) / 2], [0, 1.2 * s, (s - 1) / 2], [0, 0, 1.0]])
    return K.expand(n, 3, 3).contiguous()


def _points_in(boxes: torch.Tensor, K: torch.Tensor, n: int) -> torch.Tensor:
    """(B,n,3) camera points 0.9-1.1 m deep projecting inside each image's box."""
    g = torch.Generator().manual_seed(2)
    lo, hi = boxes[:, None, :2], boxes[:, None, 2:]
    uv = lo + torch.rand(boxes.shape[0], n, 2, generator=g) * (hi - lo)
    z = 0.9 + 0.2 * torch.rand(boxes.shape[0], n, 1, generator=g)
    return torch.cat([(uv - K[:, None, :2, 2]) / K[:, None, 0:1, 0] * z, z], dim=-1)


def test_windowed_encoding_matches_the_whole_map_and_its_features(model, image):
    s = model.cfg.model.encoder.img_size
    hb = torch.tensor([[0.05, 0.1, 0.3, 0.35], [0.1, 0.05, 0.35, 0.3]]) * s
    ob = torch.tensor([[0.15, 0.05, 0.4, 0.3], [0.05, 0.15, 0.3, 0.4]]) * s
    K = _camera(s, 2)
    with torch.no_grad():
        whole = model.encode(image)
        enc = model.encode(image, roi=torch.cat([hb, ob]))
        assert enc.window is not None and whole.window is None
        w = enc.window
        assert enc.fmap.shape[-2:] == (w.y1 - w.y0, w.x1 - w.x0)
        assert enc.fmap.shape[-1] * enc.fmap.shape[-2] < whole.fmap.shape[-1] * whole.fmap.shape[-2]
        torch.testing.assert_close(enc.fmap, whole.fmap[..., w.y0 : w.y1, w.x0 : w.x1])
        pts = _points_in(hb, K, 50)
        torch.testing.assert_close(
            model.features(enc, pts, K), model.features(whole, pts, K), rtol=0, atol=1e-5
        )
        torch.testing.assert_close(
            model.features(enc, pts[1:], K, row=1), model.features(whole, pts[1:], K, row=1)
        )
        # points outside the window (and outside the crop): F~ made at their pixels
        far = pts.clone()
        far[0, :10, 0] += torch.linspace(0.3, 1.5, 10)
        far[1, :5, 1] += torch.linspace(0.3, 0.8, 5)
        px = map_pixels(project_points(far, K), enc.image_size, w.full)
        assert int((~w.covered(px)).sum()) >= 12
        torch.testing.assert_close(
            model.features(enc, far, K), model.features(whole, far, K), rtol=0, atol=1e-5
        )
        torch.testing.assert_close(
            model.features(enc, far[1:], K, row=1),
            model.features(whole, far[1:], K, row=1),
            rtol=0,
            atol=1e-5,
        )


@pytest.mark.parametrize("sampling", ["coarse_to_fine", "dense"])
def test_the_window_holds_every_point_the_searches_evaluate(sampling):
    cfg = tiny_cfg(hand_head__dec_layers=2, object_head__layers=2)
    cfg.model.inference.sampling = sampling
    cfg.model.inference.voxel_res, cfg.model.inference.coarse_res = 32, 8
    model = build(cfg).eval()
    s = cfg.model.encoder.img_size
    K = _camera(s, 1)
    # coarse cells project outside the boxes' window: their features are made per pixel
    hb, ob = torch.tensor([[0.05, 0.1, 0.3, 0.35]]) * s, torch.tensor([[0.1, 0.05, 0.4, 0.3]]) * s
    anchor = torch.tensor([[-0.3, -0.3, 1.2]])
    image = torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        enc = model.encode(image, roi=torch.cat([hb, ob]))
        assert enc.window is not None
        whole = model.encode(image)
        for br, box in (("hand", hb), ("obj", ob)):
            sel = model.sample_points(enc, K, anchor, box, br)
            ref = model.sample_points(whole, K, anchor, box, br)
            assert sel.num_evals == ref.num_evals
            torch.testing.assert_close(sel.points, ref.points)
            torch.testing.assert_close(sel.sdf, ref.sdf, rtol=0, atol=1e-5)


def test_training_and_gradients_keep_the_whole_map(model, image):
    boxes = torch.tensor([[40.0, 40.0, 80.0, 80.0]])
    enc = model.encode(image, roi=boxes)  # gradients on: whole map
    assert enc.window is None
    model.train()
    try:
        with torch.no_grad():
            assert model.encode(image, roi=boxes).window is None
    finally:
        model.eval()


def test_torch_stages_encode_over_the_boxes_window(model, image):
    s = model.cfg.model.encoder.img_size
    K = torch.eye(3).expand(2, 3, 3).clone()
    K[:, 0, 0] = K[:, 1, 1] = 1.2 * s
    K[:, :2, 2] = (s - 1) / 2
    hb = torch.tensor([[60.0, 60.0, 100.0, 110.0]] * 2) * s / 224
    ob = torch.tensor([[90.0, 70.0, 130.0, 120.0]] * 2) * s / 224
    with torch.no_grad():
        feats = TorchStages(model).encode(image, K, hb, ob)
    assert feats.features.window is not None


def test_paired_branch_search_equals_two_searches():
    cfg = tiny_cfg(hand_head__dec_layers=2, object_head__layers=2)
    cfg.model.inference.voxel_res, cfg.model.inference.coarse_res = 32, 8
    model = build(cfg).eval()
    s = cfg.model.encoder.img_size
    K = _camera(s, 2)
    hb = torch.tensor([[0.05, 0.1, 0.3, 0.35], [0.3, 0.3, 0.6, 0.6]]) * s
    ob = torch.tensor([[0.1, 0.05, 0.4, 0.3], [0.2, 0.4, 0.5, 0.7]]) * s
    anchor = torch.tensor([[-0.3, -0.3, 1.2], [0.0, 0.05, 0.9]])
    image = torch.rand(2, 3, s, s, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        enc = model.encode(image, roi=torch.cat([hb, ob]))
        fns = [model.sdf_fn(enc, K, anchor, br) for br in ("hand", "obj")]
        hand, obj = search_branches(cfg, *fns, anchor, K, hb, ob)
        for sel, fn, box, br in ((hand, fns[0], hb, "hand"), (obj, fns[1], ob, "obj")):
            ref = search_points(cfg, fn, anchor, K, box, br)
            assert sel.num_evals == ref.num_evals
            torch.testing.assert_close(sel.points, ref.points)
            torch.testing.assert_close(sel.sdf, ref.sdf)
