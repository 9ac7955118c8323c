"""GT-free anchor head: where to centre the voxel grid without ground truth.

HOISDF centres its inference voxel grid on the ground-truth hand root. A deployed system has no
ground truth, so this head predicts the hand root from the crop alone. From the pooled encoder
feature (plus the crop's normalised intrinsics) an MLP predicts (du, dv, d):

- the root pixel is the crop centre plus (du, dv) * S (S = crop side in pixels);
- the root depth is z = fx_crop * ref_size_m / S * exp(d): the depth at which an object of
  metric size `ref_size_m` spans the whole crop (crops are sized to the hand-object region, so
  this is the right depth up to a learned log-correction d);
- the anchor is the back-projection of that pixel at depth z with the crop K.

It is trained against the GT hand root in (u/S, v/S, log z) space (`losses.anchor_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from homae_model.config import AnchorConfig
from homae_model.geometry.camera import backproject


@dataclass
class AnchorPrediction:
    """Predicted hand root.

    Attributes:
        anchor: (B,3) camera frame, metres.
        uvd: (B,3) (u/S, v/S, log z) of the prediction, the space the loss compares in.
    """

    anchor: torch.Tensor
    uvd: torch.Tensor


class AnchorHead(nn.Module):
    """Pooled image feature + crop K -> hand-root estimate."""

    def __init__(self, cfg: AnchorConfig, feat_dim: int) -> None:
        """MLP from `feat_dim` + 4 intrinsics features to (du, dv, d)."""
        super().__init__()
        self.ref_size_m = cfg.ref_size_m
        self.mlp = nn.Sequential(
            nn.Linear(feat_dim + 4, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, 3)
        )
        nn.init.normal_(self.mlp[-1].weight, std=0.01)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, pooled: torch.Tensor, K: torch.Tensor, image_size: int) -> AnchorPrediction:
        """Predict the anchor.

        Args:
            pooled: (B,D) global image feature.
            K: (B,3,3) crop intrinsics.
            image_size: S, crop side in pixels.

        Returns:
            `AnchorPrediction`.
        """
        s = float(image_size)
        fx, fy = K[:, 0, 0], K[:, 1, 1]
        kfeat = torch.stack(
            [K[:, 0, 2] / s - 0.5, K[:, 1, 2] / s - 0.5, torch.log(fx / s), torch.log(fy / s)],
            dim=-1,
        )
        out = self.mlp(torch.cat([pooled, kfeat.to(pooled.dtype)], dim=-1))
        centre = (s - 1.0) / 2.0
        uv = centre + out[:, :2] * s
        log_z = torch.log(fx * self.ref_size_m / s) + out[:, 2]
        anchor = backproject(uv[:, None], torch.exp(log_z)[:, None], K)[:, 0]
        uvd = torch.cat([uv / s, log_z[:, None]], dim=-1)
        return AnchorPrediction(anchor=anchor, uvd=uvd)


def anchor_to_uvd(anchor: torch.Tensor, K: torch.Tensor, image_size: int) -> torch.Tensor:
    """(B,3) camera-frame point -> (B,3) (u/S, v/S, log z), the anchor head's output space."""
    z = anchor[:, 2].clamp(min=1e-6)
    uv = (anchor[:, None, :] @ K.transpose(-1, -2))[:, 0]
    uv = uv[:, :2] / z[:, None]
    return torch.cat([uv / float(image_size), torch.log(z)[:, None]], dim=-1)
