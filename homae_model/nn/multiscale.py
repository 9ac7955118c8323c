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


class MultiScaleFusion(nn.Module):
    """Decoder stages -> F~ (B,C,h_L,w_L)."""

    def __init__(self, cfg: DecoderConfig) -> None:
        """Input width = sum of the stage widths (multiscale) or the last stage width."""
        super().__init__()
        self.multiscale = cfg.multiscale
        c_in = sum(cfg.stage_channels) if cfg.multiscale else cfg.stage_channels[-1]
        self.mlp = nn.Sequential(
            nn.Conv2d(c_in, cfg.fusion_hidden, 1),
            nn.GELU(),
            nn.Conv2d(cfg.fusion_hidden, cfg.feat_channels, 1),
        )
        self.out_channels = cfg.feat_channels

    def forward(self, stages: list[torch.Tensor]) -> torch.Tensor:
        """List of (B,c_l,h_l,w_l) -> (B,C,h_L,w_L) with (h_L,w_L) the last stage's grid."""
        size = stages[-1].shape[-2:]
        if self.multiscale:
            maps = [
                s
                if s.shape[-2:] == size
                else F.interpolate(s, size=size, mode="bilinear", align_corners=False)
                for s in stages
            ]
            x = torch.cat(maps, dim=1)
        else:
            x = stages[-1]
        return self.mlp(x)
