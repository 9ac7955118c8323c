"""A global image token for the hand head (`model.hand_head.image_token`; not in the paper).

HOISDF's and HOMAE's hand head reads image features only at the query points. Trained from
scratch on a CPU budget, it learns to read where the points are and ignores what the image
says at them (weights/demo/README.md, "Do the heads read the image?"). This module gives the
head one token made from the whole crop: the ViT's class token and the mean of its projected
patch tokens go through a two-layer MLP; the token is prepended to the hand encoder's input,
so every point token and every decoder query can attend to it. A linear readout of the token
to the 21 joints relative to the root (crop frame) is trained by `loss.global_joints`, so the
encoder has a direct, dense-in-time signal about the hand's orientation and articulation
(`homae-pretrain --joints-weight` trains the same module on label-only crops, which are about
4x cheaper per crop than a full training step).

Both inputs cover the whole crop at inference too (the feature-map window of the Predictor
only concerns F~), so training and inference see the same token.
"""

from __future__ import annotations

import torch
from torch import nn

NUM_JOINTS = 21
READOUT_SCALE_M = 0.1
"""The readout's raw outputs are tenths of a metre (a hand's joints lie within 0.2 m)."""


class ImageToken(nn.Module):
    """(B,D) class token and (B,D,h,w) patch grid -> (B,d_model) token, and its joints readout."""

    def __init__(self, feat_dim: int, d_model: int, hidden: int = 256) -> None:
        """Encoder feature width `feat_dim`, hand head width `d_model`, MLP width `hidden`."""
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(2 * feat_dim, hidden), nn.GELU(), nn.Linear(hidden, d_model)
        )
        self.readout = nn.Linear(d_model, NUM_JOINTS * 3)
        nn.init.zeros_(self.readout.weight)
        nn.init.zeros_(self.readout.bias)

    def forward(self, pooled: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """The token.

        Args:
            pooled: (B,D) class token (`Encoding.pooled`).
            grid: (B,D,h,w) projected patch tokens (`Encoding.grid`).

        Returns:
            (B,d_model) token.
        """
        return self.mlp(torch.cat([pooled, grid.mean(dim=(2, 3))], dim=1))

    def joints(self, token: torch.Tensor) -> torch.Tensor:
        """(B,d_model) token -> (B,21,3) joints minus the root joint, crop frame, metres."""
        return READOUT_SCALE_M * self.readout(token).reshape(-1, NUM_JOINTS, 3)
