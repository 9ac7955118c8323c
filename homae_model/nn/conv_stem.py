"""Early-convolution stem for a ViT trained from scratch (Xiao et al., 2021).

A ViT's patchify layer is one large-stride convolution: each token starts as a linear function
of its 14x14 pixels. Trained from scratch on little data, such ViTs learn slowly; a few small
convolutions in front of the tokens give them local image structure (edges, shading) from the
first steps. This stem keeps the token grid of the patchify layer (image side / 14 a side) and
the timm `PatchEmbed` interface, so the rest of the encoder is unchanged:

    (B,3,S,S) -> 3x3 conv stride 2 -> GroupNorm, GELU -> 3x3 conv -> GroupNorm, GELU
             -> 7x7 conv stride 7 -> (B, (S/14)^2, D) tokens
"""

from __future__ import annotations

from typing import Any

from timm.layers import PatchEmbed
from torch import nn

STEM_CHANNELS = (16, 32)
"""Widths of the two 3x3 convolutions (the first at half the image resolution)."""
PATCH = 14
"""Token side in pixels, as the DINOv2 patchify layer."""


class ConvStemEmbed(PatchEmbed):
    """timm `PatchEmbed` whose projection is a small convolution stack (same token grid)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Same arguments as `timm.layers.PatchEmbed` (timm's ViT passes them); patch 14 only.

        Raises:
            ValueError: a patch size other than 14.
        """
        super().__init__(*args, **kwargs)
        if tuple(self.patch_size) != (PATCH, PATCH):
            raise ValueError(f"conv stem: patch size {self.patch_size}, supports {PATCH} only")
        c1, c2 = STEM_CHANNELS
        in_chans = self.proj.in_channels
        embed_dim = self.proj.out_channels
        self.proj = nn.Sequential(
            nn.Conv2d(in_chans, c1, 3, stride=2, padding=1, bias=False),
            nn.GroupNorm(8, c1),
            nn.GELU(),
            nn.Conv2d(c1, c2, 3, padding=1, bias=False),
            nn.GroupNorm(8, c2),
            nn.GELU(),
            nn.Conv2d(c2, embed_dim, PATCH // 2, stride=PATCH // 2),
        )
