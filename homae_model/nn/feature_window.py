"""A window of the feature map F~: the finest decoder level computed only where it is read.

At inference the SDF and the heads read F~ only at the projections of the query points, and
the voxel search keeps only points that project inside the hand (object) box. The finest
decoder level and the multi-scale MLP (most of the decoder's work: every pixel of the finest
grid) can therefore run over a window of F~ that holds the boxes instead of the whole crop.

The window's values equal the whole map's at the same pixels (up to float rounding): the
coarser levels are computed whole, and their bilinear upsampling (align_corners=False) to the
window is made from a slice with one source pixel of margin, edge-replicated at the map's
border, which is exactly what the whole map's upsampling clamps to. Bilinear sampling of the
window at a point equals sampling the whole map when the point's four neighbouring pixels lie
in the window (or beyond the map's border, where both read zeros): `FeatureWindow.covered`.
Points that project elsewhere get their features pixel by pixel (`homae_model.nn.fmap_pixels`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F

__all__ = ["FeatureWindow", "upsample_window", "window_for_boxes", "window_part"]


@dataclass(frozen=True)
class FeatureWindow:
    """Rows [y0, y1) and columns [x0, x1) of a feature map of `full` = (h, w) pixels."""

    y0: int
    y1: int
    x0: int
    x1: int
    full: tuple[int, int]

    @property
    def is_full(self) -> bool:
        """The window is the whole map."""
        return (self.y0, self.x0, (self.y1, self.x1)) == (0, 0, self.full)

    def scaled(self, factor: int) -> FeatureWindow:
        """The same window on a grid `factor` times coarser (bounds must divide by `factor`)."""
        h, w = self.full
        return FeatureWindow(
            self.y0 // factor, self.y1 // factor, self.x0 // factor, self.x1 // factor,
            (h // factor, w // factor),
        )  # fmt: skip

    def covered(self, px: torch.Tensor) -> torch.Tensor:
        """Where bilinear sampling of the window at map pixels `px` equals the whole map's.

        Args:
            px: (..., 2) (x, y) pixel coordinates of the whole map (pixel centres at integers).

        Returns:
            (...) bool: the point's four neighbouring pixels are inside the window or outside
            the map on a side where the window reaches the map's border (NaN: False).
        """
        h, w = self.full
        inf = math.inf
        lo = px.new_tensor([self.x0 if self.x0 > 0 else -inf, self.y0 if self.y0 > 0 else -inf])
        hi = px.new_tensor(
            [self.x1 - 1 if self.x1 < w else inf, self.y1 - 1 if self.y1 < h else inf]
        )
        return ((px >= lo) & (px <= hi)).all(dim=-1)  # NaN compares False

    def covers(self, px: torch.Tensor) -> bool:
        """Whether `covered` holds for every point of `px` (..., 2)."""
        return bool(self.covered(px).all())


def window_for_boxes(
    boxes: torch.Tensor, image_size: tuple[int, int], full: tuple[int, int], align: int
) -> FeatureWindow:
    """The smallest aligned window of a (h, w) map over a crop that holds every box.

    Args:
        boxes: (N,4) xyxy crop pixels (all images' boxes: one window serves the batch).
        image_size: (H, W) of the crop in pixels.
        full: (h, w) of the feature map.
        align: window bounds are multiples of this (the coarsest level's upsampling factor).

    Returns:
        A window holding every box's pixels with their bilinear neighbours, plus one pixel of
        margin; the whole map when a box is not finite.
    """
    h, w = full
    whole = FeatureWindow(0, h, 0, w, full)
    b = boxes.detach().double().cpu().reshape(-1, 4)
    if b.numel() == 0 or not bool(torch.isfinite(b).all()):
        return whole
    sx, sy = w / image_size[1], h / image_size[0]
    lo_x = (float(b[:, 0].min()) + 0.5) * sx - 0.5
    hi_x = (float(b[:, 2].max()) + 0.5) * sx - 0.5
    lo_y = (float(b[:, 1].min()) + 0.5) * sy - 0.5
    hi_y = (float(b[:, 3].max()) + 0.5) * sy - 0.5

    def span(lo: float, hi: float, n: int) -> tuple[int, int]:
        a = max(0, (math.floor(lo) - 1) // align * align)
        z = min(n, -(-(math.floor(hi) + 3) // align) * align)
        return (a, z) if a < z else (0, n)

    y0, y1 = span(lo_y, hi_y, h)
    x0, x1 = span(lo_x, hi_x, w)
    return FeatureWindow(y0, y1, x0, x1, full)


def upsample_window(
    x: torch.Tensor,
    factor: int,
    window: FeatureWindow,
    pixel_map: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """`F.interpolate(pixel_map(x), scale_factor=factor, mode="bilinear")` over `window` only.

    Args:
        x: (B,C,h,w) coarse map (any memory format).
        factor: integer upsampling factor (the window's bounds must be multiples of it).
        window: window of the (h*factor, w*factor) upsampled map.
        pixel_map: a per-pixel map (B,C,h',w') -> (B,C',h',w') (a 1x1 convolution) applied
            before the upsampling, to the pixels the window reads only; None: identity.

    Returns:
        (B,C',y1-y0,x1-x0) the upsampled map's window (same values up to float rounding).
    """
    if window.is_full:
        y = x if pixel_map is None else pixel_map(x)
        return F.interpolate(y, scale_factor=float(factor), mode="bilinear", align_corners=False)
    part, pad = _margin_slice(x, factor, window)
    if pixel_map is not None:  # per pixel: commutes with the slicing and edge replication
        part = pixel_map(part)
    if any(pad):
        part = F.pad(part, pad, mode="replicate")
    up = F.interpolate(part, scale_factor=float(factor), mode="bilinear", align_corners=False)
    return up[..., factor:-factor, factor:-factor]


def _margin_slice(
    x: torch.Tensor, factor: int, window: FeatureWindow
) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """The window on `x`'s grid with one pixel of margin (inside the map) + the missing margin."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    c = window.scaled(factor)
    a0, a1, b0, b1 = c.y0 - 1, c.y1 + 1, c.x0 - 1, c.x1 + 1
    part = x[..., max(a0, 0) : min(a1, h), max(b0, 0) : min(b1, w)]
    return part, (max(-b0, 0), max(b1 - w, 0), max(-a0, 0), max(a1 - h, 0))


def window_part(x: torch.Tensor, factor: int, window: FeatureWindow) -> torch.Tensor:
    """What `upsample_window` upsamples, before its per-pixel map: the slice it reads.

    Args:
        x: (B,C,h,w) coarse map.
        factor: its upsampling factor to the grid of `window`.
        window: window of the (h*factor, w*factor) map (any window, the whole map included).

    Returns:
        (B,C,a+2,b+2): the window's (a,b) pixels of `x`'s grid with one pixel of margin,
        edge-replicated beyond the map's border. Upsampled x`factor` (bilinear) less `factor`
        pixels on each side, it gives the window of the upsampled map.
    """
    part, pad = _margin_slice(x, factor, window)
    return F.pad(part, pad, mode="replicate") if any(pad) else part
