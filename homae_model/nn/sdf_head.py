"""SDF regression MLP (paper eq. 13; HOISDF/DeepSDF layout).

SDF(p) = MLP(gamma(q) ++ F_img(p) ++ q), q = (p - anchor) * sdf_scale: the anchor-relative point
in scaled units (sdf_scale = 3.1 maps the +-0.32 m voxel cube to [-1,1]). Hidden layers are
weight-normalised linear layers with ReLU; the input vector is concatenated again before layer
`inject_layer` (latent re-injection). The output is bounded by tanh, in scaled units (metres
times sdf_scale); the model divides by sdf_scale to report metres.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

from homae_model.config import SdfHeadConfig


class SdfHead(nn.Module):
    """(B,N,in_dim) per-point features -> (B,N) signed distance in scaled units."""

    def __init__(self, cfg: SdfHeadConfig, in_dim: int) -> None:
        """`cfg.layers` linear layers (the last one outputs 1 value)."""
        super().__init__()
        self.inject = cfg.inject_layer
        dims_in = []
        for i in range(cfg.layers):
            d = in_dim if i == 0 else cfg.hidden
            if i == self.inject and i > 0:
                d = cfg.hidden + in_dim
            dims_in.append(d)
        layers = []
        for i, d in enumerate(dims_in):
            out = 1 if i == cfg.layers - 1 else cfg.hidden
            lin = nn.Linear(d, out)
            layers.append(weight_norm(lin) if cfg.weight_norm else lin)
        self.layers = nn.ModuleList(layers)
        self.act = nn.ReLU()

    def plain_weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight, bias) of every layer with the weight normalisation applied once.

        A caller that evaluates the head many times on the same weights (the voxel search)
        passes them to `forward` instead of recomputing the normalisation at every call.
        """
        return [(layer.weight, layer.bias) for layer in self.layers]

    def forward(
        self, x: torch.Tensor, weights: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    ) -> torch.Tensor:
        """(B,N,in_dim) -> (B,N) in (-1, 1) scaled units (`weights`: from `plain_weights`)."""
        h = x
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i == self.inject and i > 0:
                h = torch.cat([h, x], dim=-1)
            h = layer(h) if weights is None else F.linear(h, *weights[i])
            if i < last:  # in place when no graph is recorded (the voxel search)
                h = self.act(h) if torch.is_grad_enabled() else torch.relu_(h)
        return torch.tanh(h[..., 0])
