"""Fourier positional encoding gamma(q) (paper eq. 13, NeRF style).

gamma(q) = [sin(2^k pi q), cos(2^k pi q)] for k = 0..F-1 and each of the 3 coordinates:
6F values per point (F = 5 -> 30 dims, as the paper). `q` is the anchor-relative point in
scaled units (about [-1,1]).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class FourierEncoding(nn.Module):
    """(..., 3) -> (..., 6F)."""

    def __init__(self, num_freqs: int) -> None:
        """Frequencies 2^0..2^(num_freqs-1) (times pi)."""
        super().__init__()
        self.num_freqs = num_freqs
        freqs = (2.0 ** torch.arange(num_freqs, dtype=torch.float32)) * math.pi
        self.register_buffer("freqs", freqs, persistent=False)

    @property
    def out_dim(self) -> int:
        """Encoded width, 6F."""
        return 6 * self.num_freqs

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        """Encode (..., 3) points; returns (..., 6F) ordered [sin block, cos block]."""
        x = q[..., :, None] * self.freqs  # (..., 3, F)
        x = x.flatten(-2)
        return torch.cat([torch.sin(x), torch.cos(x)], dim=-1)
