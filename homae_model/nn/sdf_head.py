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
        self._plain: tuple[tuple, list, tuple | None] | None = None

    def plain_weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight, bias) of every layer with the weight normalisation applied once.

        A caller that evaluates the head many times on the same weights (the voxel search)
        passes them to `forward` instead of recomputing the normalisation at every call.
        """
        return [(layer.weight, layer.bias) for layer in self.layers]

    def cached_plain_weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """`plain_weights`, computed again only when a parameter changed (no autograd only).

        The voxel search evaluates the head many times per frame and the Predictor runs many
        frames on the same weights. A change is seen through each parameter's identity,
        storage and version counter (in-place updates, `load_state_dict`, `to`); parameters
        created in inference mode keep no version counter and are never cached.
        """
        params = []
        for layer in self.layers:  # direct: `parameters()` walks the parametrization modules
            params.extend(layer._parameters.values())
            for plist in getattr(layer, "parametrizations", {}).values():
                params.extend(plist._parameters.values())
        try:
            key = tuple((id(p), p.data_ptr(), p._version) for p in params if p is not None)
        except RuntimeError:  # inference tensors keep no version counter
            return self.plain_weights()
        if self._plain is None or self._plain[0] != key:
            plain = [(w.detach(), b.detach()) for w, b in self.plain_weights()]
            self._plain = (key, plain, self._fuse(plain))
        return self._plain[1]

    def _fuse(
        self, plain: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Weights of `forward_cached`, or None when the head re-injects no input.

        Returns:
            The first layer's and the injection layer's input-part weights stacked, their
            biases (zero for the latter), and the injection layer's hidden-part weights.
        """
        i = self.inject
        if not 0 < i < len(plain):
            return None
        (w0, b0), (wi, _) = plain[0], plain[i]
        hidden = wi.shape[1] - w0.shape[1]
        stacked = torch.cat([w0, wi[:, hidden:]]).contiguous()
        bias = torch.cat([b0, b0.new_zeros(wi.shape[0])])
        return stacked, bias, wi[:, :hidden].contiguous()

    def forward_cached(self, x: torch.Tensor) -> torch.Tensor:
        """`forward(x)` without autograd from the cached weights (the voxel search).

        The first layer and the injection layer's product with the re-injected input run as
        one matrix product ([W_0; W_x] x), so no (N, hidden + in_dim) concatenation is made;
        the same values up to float rounding.
        """
        plain = self.cached_plain_weights()
        fused = self._plain[2] if self._plain is not None and self._plain[1] is plain else None
        if fused is None or torch.is_grad_enabled():
            return self.forward(x, plain)
        stacked, bias, w_hidden = fused
        lead = x.shape[:-1]
        y = F.linear(x.reshape(-1, x.shape[-1]), stacked, bias)  # (M, hidden + hidden_i)
        hidden = plain[0][0].shape[0]
        h, injected = y[:, :hidden], y[:, hidden:]
        for i in range(1, len(plain)):
            torch.relu_(h)
            if i == self.inject:
                h = F.linear(h, w_hidden, plain[i][1]).add_(injected)
            else:
                h = F.linear(h, *plain[i])
        return torch.tanh(h[:, 0]).reshape(lead)

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
