"""Implicit-explicit geometric aggregation (paper eq. 14).

F_agg = (F_img ++ F_3D) * (1/beta) * sigmoid(-SDF / beta)

The SDF (scaled units, negative inside) is detached: the gate does not train the SDF head.
Sign: the paper prints sigmoid(SDF/beta); as in HOISDF (and VolSDF's density), the gate uses
-SDF so that points on or inside the surface (SDF <= 0) weigh more (gate -> 1/beta) and points
far outside fade to 0. beta is learnable per branch, initialised at `beta_init` and clamped
to >= `beta_min` when used. With the PointNet branch off, F_img alone is gated.
"""

from __future__ import annotations

import torch
from torch import nn

from homae_model.config import FusionConfig


class SdfGatedFusion(nn.Module):
    """Gate concatenated point features by the predicted SDF."""

    def __init__(self, cfg: FusionConfig) -> None:
        """One learnable beta."""
        super().__init__()
        self.beta = nn.Parameter(torch.tensor(float(cfg.beta_init)))
        self.beta_min = cfg.beta_min

    def current_beta(self) -> torch.Tensor:
        """Scalar beta clamped to >= beta_min."""
        return self.beta.clamp(min=self.beta_min)

    def forward(
        self, f_img: torch.Tensor, f_3d: torch.Tensor | None, sdf: torch.Tensor
    ) -> torch.Tensor:
        """Fuse.

        Args:
            f_img: (B,N,C) pixel-aligned image features.
            f_3d: (B,N,C3) PointNet features, or None (implicit only).
            sdf: (B,N) predicted SDF, scaled units (detached here).

        Returns:
            (B,N,C[+C3]) gated features.
        """
        feats = f_img if f_3d is None else torch.cat([f_img, f_3d], dim=-1)
        beta = self.current_beta()
        gate = torch.sigmoid(-sdf.detach() / beta) / beta
        return feats * gate[..., None]
