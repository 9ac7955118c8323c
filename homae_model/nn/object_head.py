"""Object regression head (paper eq. 16; HOISDF's per-point voting).

The fused object point features become tokens (plus a position embedding), pass a transformer
encoder, and every point predicts a 6D rotation, an offset from itself to the object origin
(metres, camera frame) and a confidence logit. The estimates are averaged with softmax weights
over the points: R = Gram-Schmidt(sum w_i r6d_i), t = sum w_i (p_i + v_i). The object origin is
the origin of the object model frame (`X_cam = R X_obj + t`; YCB models are roughly centred).
Each encoder layer is decoded by the shared output layers for deep supervision.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from homae_model.config import ObjectHeadConfig
from homae_model.geometry.rotations import matrix_to_rot6d, rot6d_to_matrix
from homae_model.nn.hand_head import _small_linear, encoder_layer


@dataclass
class ObjectLayerOutput:
    """One layer's object pose estimate.

    Attributes:
        rotmat: (B,3,3) rotation, object model -> camera frame.
        trans: (B,3) object origin in the camera frame, metres.
        weights: (B,N) per-point averaging weights (sum to 1).
    """

    rotmat: torch.Tensor
    trans: torch.Tensor
    weights: torch.Tensor


class ObjectHead(nn.Module):
    """(B,N,in_dim) fused object tokens + their points -> per-layer `ObjectLayerOutput`s."""

    def __init__(self, cfg: ObjectHeadConfig, in_dim: int, pos_dim: int, sdf_scale: float) -> None:
        """Token width `in_dim`, position-embedding input width `pos_dim`."""
        super().__init__()
        d = cfg.d_model
        self.token_proj = nn.Linear(in_dim, d)
        self.pos_proj = nn.Linear(pos_dim, d)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d, cfg.heads, cfg.ffn, cfg.dropout, batch_first=True, norm_first=True
            )
            for _ in range(cfg.layers)
        )
        self.out_norm = nn.LayerNorm(d)
        self.rot_out = _small_linear(d, 6)
        self.vote_out = _small_linear(d, 3)
        self.weight_out = _small_linear(d, 1)
        self.sdf_scale = sdf_scale
        identity = matrix_to_rot6d(torch.eye(3)[None])[0].float()
        self.register_buffer("identity6d", identity, persistent=False)

    def forward(
        self,
        tokens: torch.Tensor,
        pos: torch.Tensor,
        points: torch.Tensor,
        *,
        final_only: bool = False,
    ) -> list[ObjectLayerOutput]:
        """Regress the object pose.

        Args:
            tokens: (B,N,in_dim) fused point features.
            pos: (B,N,pos_dim) point position encoding.
            points: (B,N,3) the query points, camera frame, metres.
            final_only: decode the last layer only (inference).

        Returns:
            One `ObjectLayerOutput` per encoder layer (the last is the final estimate), or
            only the final one with `final_only`.
        """
        x = self.token_proj(tokens) + self.pos_proj(pos)
        outs = []
        for i, layer in enumerate(self.layers):
            x = encoder_layer(layer, x)
            if final_only and i < len(self.layers) - 1:
                continue
            h = self.out_norm(x)
            w = torch.softmax(self.weight_out(h)[..., 0], dim=1)  # (B,N)
            rot6d = self.rot_out(h) + self.identity6d
            rot6d = (w[..., None] * rot6d).sum(dim=1)
            votes = points + self.vote_out(h) / self.sdf_scale
            trans = (w[..., None] * votes).sum(dim=1)
            outs.append(ObjectLayerOutput(rot6d_to_matrix(rot6d), trans, w))
        return outs
