"""Multi-scale feature fusion (paper eq. 11): F~ = MLP(concat of decoder stage outputs).

Every stage output is resampled (bilinear) to the grid of the last (finest) stage, concatenated
along channels and mapped by a per-pixel MLP to C channels. With `multiscale=False`
(Table V ablation) only the last stage enters, projected to C by the same kind of MLP.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from homae_model.config import DecoderConfig
from homae_model.nn.decoder import he_conv1x1
from homae_model.nn.feature_window import FeatureWindow, upsample_window

LINEAR_ALIGN = 16
"""Output widths are padded to a multiple of this for the last 1x1 layer (sliced after)."""


def stage_weights(first: nn.Conv2d, channels: list[int]) -> list[torch.Tensor]:
    """The fusion MLP's first 1x1 layer split by input stage: (hidden, c_i) per stage.

    Args:
        first: the first layer of `MultiScaleFusion.mlp` (input = the stages concatenated).
        channels: c_i of each stage, in concatenation order.

    Returns:
        One (hidden, c_i) weight per stage (views; the bias belongs to none of them).
    """
    out, start = [], 0
    for c in channels:
        out.append(first.weight[:, start : start + c, 0, 0])
        start += c
    return out


class MultiScaleFusion(nn.Module):
    """Decoder stages -> F~ (B,C,h_L,w_L)."""

    def __init__(self, cfg: DecoderConfig) -> None:
        """Input width = sum of the stage widths (multiscale) or the last stage width."""
        super().__init__()
        self.multiscale = cfg.multiscale
        c_in = sum(cfg.stage_channels) if cfg.multiscale else cfg.stage_channels[-1]
        self.mlp = nn.Sequential(
            he_conv1x1(c_in, cfg.fusion_hidden),
            nn.GELU(),
            he_conv1x1(cfg.fusion_hidden, cfg.feat_channels, before_activation=False),
        )
        self.out_channels = cfg.feat_channels

    def forward(
        self, stages: list[torch.Tensor], window: FeatureWindow | None = None
    ) -> torch.Tensor:
        """List of (B,c_l,h_l,w_l) -> (B,C,h_L,w_L) with (h_L,w_L) the last stage's grid.

        MLP(concat_l upsample(s_l)): the first 1x1 convolution is split by input channels and
        applied to each stage at its own resolution before the upsampling (bilinear upsampling
        commutes with per-pixel affine maps), which removes most of the work at the finest
        grid; same result up to float rounding.

        `window`: the last stage holds only this window of the finest grid (`MaeDecoder`
        with the same window); the output is that window of F~.
        """
        if not self.multiscale:
            return self.mlp(stages[-1])
        size = stages[-1].shape[-2:]
        first, act, last = self.mlp
        # fewer large buffers when no graph is recorded
        inplace = not torch.is_grad_enabled() and not torch.jit.is_tracing()
        x = None
        weights = stage_weights(first, [int(s.shape[1]) for s in stages])
        # the finest stage first: its (contiguous) product is the sum the others are added to
        for i in reversed(range(len(stages))):
            w = weights[i]
            bias = first.bias if i == len(stages) - 1 else None
            if window is not None and i < len(stages) - 1:
                factor = window.full[0] // int(stages[i].shape[-2])
                y = upsample_window(
                    stages[i], factor, window, lambda part, w=w: _pixel_linear(part, w)
                ).permute(0, 2, 3, 1)
                x = y if x is None else (x.add_(y) if inplace else x + y)
                continue
            y = F.linear(stages[i].permute(0, 2, 3, 1), w, bias)  # (B,h,w,hidden)
            if y.shape[1:3] != size:
                y = F.interpolate(
                    y.permute(0, 3, 1, 2), size=size, mode="bilinear", align_corners=False
                ).permute(0, 2, 3, 1)
            x = y if x is None else (x.add_(y) if inplace else x + y)
        assert x is not None
        x = torch.ops.aten.gelu_(x) if inplace else act(x)
        w_out, b_out = last.weight[:, :, 0, 0], last.bias
        c_out = w_out.shape[0]
        pad = (-c_out) % LINEAR_ALIGN  # matrix products are faster on aligned widths
        if pad:
            w_out = torch.cat([w_out, w_out.new_zeros(pad, w_out.shape[1])])
            if inplace:  # the bias in the product: no second map for the sum
                out = F.linear(x, w_out, torch.cat([b_out, b_out.new_zeros(pad)]))[..., :c_out]
            else:
                out = F.linear(x, w_out)[..., :c_out] + b_out
        else:
            out = F.linear(x, w_out, b_out)
        return out.permute(0, 3, 1, 2)  # (B,C,H,W) view of channels-last memory


def _pixel_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(B,c_in,h,w) -> (B,c_out,h,w) per-pixel `weight` (c_out,c_in), channels-last memory."""
    return F.linear(x.permute(0, 2, 3, 1), weight).permute(0, 3, 1, 2)
