"""Image skip branch (`model.decoder.image_skip`): pixel-level features added to F~.

The decoder's maps are upsampled from the ViT's token grid (8x8 for the small config), so F~ is
smooth inside each 14-pixel patch: the features sampled at two query points of one patch are
nearly the same, and where a finger or the wrist is inside a patch must be learnt by the ViT
from scratch. A few strided 3x3 convolutions over the (masked, normalised) crop give local
colour and edge features at 1/2 and 1/4 of the crop's resolution; each level is projected to
F~'s width by a 1x1 layer that starts at zero (so a checkpoint without the branch starts
unchanged), resampled to F~'s grid and added. HOISDF's CNN backbone has such fine levels; the
paper's ViT + MAE decoder does not, so the paper config leaves the branch off.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _conv(c_in: int, c_out: int, stride: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
    nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
    nn.init.zeros_(conv.bias)
    return conv


class ImageSkip(nn.Module):
    """(B,3,S,S) normalised crop -> (B,C,h,w) features to add to F~.

    Args:
        channels: widths of the levels; level i has stride 2^(i+1) (e.g. [32, 64]: S/2, S/4).
        out_channels: C, the width of F~.
    """

    def __init__(self, channels: list[int], out_channels: int) -> None:
        super().__init__()
        blocks = []
        c_in = 3
        for c in channels:
            blocks.append(nn.Sequential(_conv(c_in, c, 2), nn.GELU(), _conv(c, c, 1), nn.GELU()))
            c_in = c
        self.blocks = nn.ModuleList(blocks)
        self.proj = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in channels)
        for p in self.proj:
            nn.init.zeros_(p.weight)
            nn.init.zeros_(p.bias)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Features of every level, projected, resampled to `size` (h, w) and summed."""
        out = None
        for block, proj in zip(self.blocks, self.proj, strict=True):
            x = block(x)
            y = proj(x)
            if tuple(y.shape[-2:]) != tuple(size):
                y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            out = y if out is None else out + y
        assert out is not None
        return out
