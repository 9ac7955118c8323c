"""Anchor head fitting on frozen features: the heatmap loss, learning, and homae-fit-anchor."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from homae_model.config import AnchorConfig, LossConfig
from homae_model.losses import anchor_heatmap_loss
from homae_model.nn.anchor import AnchorHead
from homae_model.training.anchor_fit import (
    AnchorFeatures,
    anchor_errors,
    error_summary,
    fit_anchor_head,
)
from tests.train import synthetic_set, tiny_config

S = 56  # crop side, pixels
F = 100.0  # focal length, pixels


def _K(n: int) -> torch.Tensor:
    K = torch.tensor([[F, 0.0, (S - 1) / 2], [0.0, F, (S - 1) / 2], [0.0, 0.0, 1.0]])
    return K.expand(n, 3, 3).clone()


def _root(u: torch.Tensor, v: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Camera point whose projection with `_K` is pixel (u, v), at depth z."""
    c = (S - 1) / 2
    return torch.stack([(u - c) / F * z, (v - c) / F * z, z], dim=-1)


def test_heatmap_loss_is_lowest_at_the_root_cell() -> None:
    h = w = 14  # 4 pixels per cell
    gt = _root(torch.tensor([41.5]), torch.tensor([9.5]), torch.tensor([0.5]))  # cell (2, 10)
    K = _K(1)
    losses = {}
    for cell in [(2, 10), (2, 11), (7, 7), (12, 1)]:
        logits = torch.zeros(1, h, w)
        logits[0, cell[0], cell[1]] = 8.0
        losses[cell] = float(anchor_heatmap_loss(logits, gt, K, S))
    assert min(losses, key=losses.get) == (2, 10)
    assert losses[(2, 10)] < losses[(2, 11)] < losses[(7, 7)]
    # the minimum over all maps is the target's own log: its loss is the target's entropy
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    target_logits = -0.5 * ((ys - 2.0) ** 2 + (xs - 10.0) ** 2).float()[None]
    best = float(anchor_heatmap_loss(target_logits, gt, K, S))
    assert best < losses[(2, 10)]


def test_pool_map_halves_the_map() -> None:
    head = AnchorHead(AnchorConfig(hidden=8, kind="heatmap", heatmap_pool=2), 16, 4)
    assert head.pool_map(torch.zeros(2, 4, 15, 16)).shape == (2, 4, 8, 8)
    pred = head(torch.zeros(2, 16), _K(2), S, torch.zeros(2, 4, 16, 16))
    assert pred.logits is not None and pred.logits.shape == (2, 8, 8)


def _bump_features(n: int, seed: int) -> AnchorFeatures:
    """Feature maps with one bright cell at the root pixel; nothing else tells where it is."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, generator=g) * (S - 8) + 4
    v = torch.rand(n, generator=g) * (S - 8) + 4
    z = torch.full((n,), F * 0.3 / S)  # the depth the head's prior already predicts
    fmap = torch.zeros(n, 4, 14, 14)
    rows, cols = (v / 4).long().clamp(0, 13), (u / 4).long().clamp(0, 13)
    fmap[torch.arange(n), 0, rows, cols] = 1.0
    return AnchorFeatures(
        pooled=torch.randn(n, 16, generator=g),
        fmap=fmap.half(),
        K=_K(n),
        anchor=_root(u, v, z),
        image_size=S,
        boxes=torch.zeros(n, 2, 4),
    )


def test_fit_learns_to_find_the_root_on_the_map() -> None:
    torch.manual_seed(0)
    head = AnchorHead(AnchorConfig(hidden=16, kind="heatmap", heatmap_pool=1), 16, 4)
    train, val = _bump_features(512, 0), _bump_features(128, 1)
    before = error_summary(anchor_errors(head, val))
    history = fit_anchor_head(head, train, val, LossConfig(), epochs=12, lr=1e-2, batch_size=32)
    after = error_summary(anchor_errors(head, val))
    assert len(history.val_error_mm) == 12 and history.best_epoch >= 0
    assert after["mean_mm"] == pytest.approx(min(history.val_error_mm))  # the best epoch kept
    # the crop spans 0.3 m; a centre guess is ~70 mm off, the bump gives the root to a cell
    assert after["mean_mm"] < 0.4 * before["mean_mm"], (before, after)
    assert after["x_mm"] < 15 and after["y_mm"] < 15


def test_box_branch_starts_silent_and_learns_where_the_hand_box_points() -> None:
    torch.manual_seed(0)
    cfg = AnchorConfig(hidden=16, use_boxes=True)
    head = AnchorHead(cfg, 16)
    plain = AnchorHead(AnchorConfig(hidden=16), 16)
    plain.load_state_dict(head.state_dict(), strict=False)
    feats = _bump_features(640, 2)
    n = len(feats)
    g = torch.Generator().manual_seed(5)
    uv = feats.anchor[:, :2] / feats.anchor[:, 2:] * F + (S - 1) / 2  # root pixels
    half = torch.rand(n, 2, generator=g) * 6 + 6  # a hand box around the root
    feats.boxes[:, 0] = torch.cat([uv - half, uv + half], dim=1)
    feats.boxes[:, 1] = torch.tensor([2.0, 2.0, 30.0, 30.0])  # object box: no information
    feats.fmap = torch.zeros(n, 0)
    idx = torch.arange(4)
    with torch.no_grad():
        pooled, _, K, _, boxes = feats.batch(idx)
        torch.testing.assert_close(
            head(pooled, K, S, boxes=boxes).anchor, plain(pooled, K, S).anchor
        )
    with pytest.raises(ValueError, match="boxes"):
        head(pooled, K, S)
    train = AnchorFeatures(*(getattr(feats, k)[:512] for k in ("pooled", "fmap", "K", "anchor")),
                           S, feats.boxes[:512])  # fmt: skip
    val = AnchorFeatures(*(getattr(feats, k)[512:] for k in ("pooled", "fmap", "K", "anchor")),
                         S, feats.boxes[512:])  # fmt: skip
    before = error_summary(anchor_errors(head, val))
    fit_anchor_head(head, train, val, LossConfig(), epochs=15, lr=1e-2, batch_size=32)
    after = error_summary(anchor_errors(head, val))
    assert after["x_mm"] < 0.3 * before["x_mm"] and after["y_mm"] < 0.3 * before["y_mm"]


def test_fit_refuses_empty_features() -> None:
    head = AnchorHead(AnchorConfig(hidden=8), 16)
    empty = AnchorFeatures(
        torch.zeros(0, 16), torch.zeros(0, 0), _K(0), torch.zeros(0, 3), S, torch.zeros(0, 2, 4)
    )
    with pytest.raises(ValueError, match="needs features"):
        fit_anchor_head(head, empty, _bump_features(4, 0), LossConfig(), epochs=1)


def test_fit_anchor_cli_extends_a_pooled_checkpoint(tmp_path) -> None:
    from homae_model.checkpoint import load_model, save_checkpoint
    from homae_model.cli.fit_anchor import main
    from homae_model.config import load_config
    from homae_model.model import HomaeModel

    cfg = load_config(tiny_config(tmp_path))
    assert cfg.model.anchor.kind == "pooled"
    torch.manual_seed(0)
    base = HomaeModel(cfg)
    ckpt = tmp_path / "base"
    save_checkpoint(ckpt, base, cfg)
    data = synthetic_set(tmp_path / "data", num=8)
    val = synthetic_set(tmp_path / "val", num=8)
    out = tmp_path / "fitted"
    argv = ["--checkpoint", str(ckpt), "--data", str(data), "--val", str(val), "--out", str(out)]
    argv += ["--split", "all", "--epochs", "2", "--passes", "2", "--batch-size", "4"]
    argv += ["--kind", "heatmap", "--boxes"]
    argv += ["--workers", "0", "--no-progress", "--cache", str(tmp_path / "feats.pt")]
    assert main(argv) == 0
    model, fitted_cfg = load_model(out)
    assert fitted_cfg.model.anchor.kind == "heatmap" and fitted_cfg.model.anchor.use_boxes
    summary = json.loads((out / "anchor_fit.json").read_text())
    assert summary["train_crops"] == 16 and summary["val_crops"] == 8
    assert len(summary["val_error_mm"]) == 2
    # everything but the anchor head is the base checkpoint's
    base_state = base.state_dict()
    for name, value in model.state_dict().items():
        if not name.startswith("anchor_head.") and name in base_state:
            torch.testing.assert_close(value, base_state[name], msg=name)
    assert np.isfinite(summary["after"]["mean_mm"])
    # a second fit with the same options reads the cached training features, not the data
    for png in (data / "rgb").glob("*.png"):
        png.unlink()
    assert main([*argv, "--epochs", "1"]) == 0
    assert main([*argv[:2], "--data", str(tmp_path / "nope"), *argv[4:]]) == 1
