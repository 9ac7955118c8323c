"""Explicit geometric branch: a PointNet over the query points (paper Section III-C).

A shared per-point MLP lifts each anchor-relative point q (scaled units) to features; their max
over the points is a global shape feature, concatenated back to every point and mapped by a
second per-point MLP to C channels: F_3D (B,N,C).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn


def _mlp(dims: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(dims):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class PointNet(nn.Module):
    """(B,N,3) points -> (B,N,out_dim) per-point features with global context."""

    def __init__(self, dims: list[int], out_dim: int) -> None:
        """Per-point MLP widths `dims`, output width `out_dim` (C)."""
        super().__init__()
        self.local = _mlp([3, *dims])
        last = dims[-1]
        self.out = nn.Sequential(nn.Linear(2 * last, last), nn.ReLU(), nn.Linear(last, out_dim))

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        """(B,N,3) scaled anchor-relative points -> (B,N,out_dim)."""
        f = self.local(q)
        g = f.max(dim=1, keepdim=True).values.expand_as(f)
        return self.out(torch.cat([f, g], dim=-1))
