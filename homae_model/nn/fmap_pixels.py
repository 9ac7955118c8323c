"""F~ at single pixels of the finest grid, for points that project outside a computed window.

The voxel search evaluates the centres of coarse cells that hold an in-box voxel; such a
centre may project outside the boxes' window of F~ (`homae_model.nn.feature_window`). Its
features are then made here from the decoder levels above the finest one, pixel by pixel:
the bilinear upsampling of each level at the pixel (the same taps and weights as
`F.interpolate(..., mode="bilinear", align_corners=False)`), the finest stage's MLP and the
multi-scale MLP. The values equal the whole map's at those pixels up to float rounding.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from homae_model.nn.decoder import MaeDecoder
from homae_model.nn.multiscale import MultiScaleFusion, stage_weights

__all__ = ["fmap_at_pixels", "sample_outside"]


def _taps(dst: torch.Tensor, factor: int, n_src: int) -> tuple[torch.Tensor, ...]:
    """Source indices and weights of bilinear x`factor` upsampling at output indices `dst`."""
    src = ((dst.to(torch.float32) + 0.5) / factor - 0.5).clamp(min=0.0)
    i0 = src.floor().long()
    i1 = (i0 + 1).clamp(max=n_src - 1)
    w1 = src - i0.to(src.dtype)
    return i0, i1, 1.0 - w1, w1


def _upsampled_at(
    x: torch.Tensor, factor: int, b: torch.Tensor, py: torch.Tensor, px: torch.Tensor
) -> torch.Tensor:
    """(m,C) values of `x` (B,C,h,w) upsampled x`factor` (bilinear) at pixels (b, py, px)."""
    c, h, w = int(x.shape[1]), int(x.shape[-2]), int(x.shape[-1])
    y0, y1, wy0, wy1 = _taps(py, factor, h)
    x0, x1, wx0, wx1 = _taps(px, factor, w)
    r0, r1 = (b * h + y0) * w, (b * h + y1) * w
    idx = torch.cat([r0 + x0, r0 + x1, r1 + x0, r1 + x1])
    wts = torch.cat([wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1]).to(x.dtype)
    # the four taps in one gather over channels-last pixels (a view for the decoder's maps;
    # one flat index: the same ops in torch and in an exported graph)
    flat = x.permute(0, 2, 3, 1).reshape(-1, c)
    vals = flat.index_select(0, idx) * wts[:, None]  # (4m,C)
    return vals.view(4, -1, c).sum(dim=0)


def fmap_at_pixels(
    decoder: MaeDecoder,
    fusion: MultiScaleFusion,
    above: list[torch.Tensor],
    b: torch.Tensor,
    py: torch.Tensor,
    px: torch.Tensor,
) -> torch.Tensor:
    """F~ at pixels (b, py, px) of the finest grid, (m,C).

    Args:
        decoder: the decoder whose last stage makes the finest level.
        fusion: the multi-scale MLP.
        above: the decoder's input grid followed by its outputs above the finest level
            ([grid, stage_1, ..., stage_{L-1}]), (B,c,h,w) each.
        b: (m,) image of each pixel.
        py: (m,) its row in the finest grid.
        px: (m,) its column in the finest grid.

    Returns:
        (m,C) F~ at those pixels.
    """
    conv1, act1, conv2, act2 = decoder.stages[-1].mlp
    u = _upsampled_at(above[-1], 2, b, py, px)  # the 1x1 layer commutes with the upsampling
    h = F.linear(u, conv1.weight[:, :, 0, 0], conv1.bias)
    last = act2(F.linear(act1(h), conv2.weight[:, :, 0, 0], conv2.bias))
    first, act, out = fusion.mlp
    if not fusion.multiscale:
        h = act(F.linear(last, first.weight[:, :, 0, 0], first.bias))
        return F.linear(h, out.weight[:, :, 0, 0], out.bias)
    levels = [*above[1:], None]  # the decoder's outputs; None: the finest (`last`)
    fine = int(above[-1].shape[-2]) * 2
    hidden = None
    chans = [int(last.shape[-1]) if s is None else int(s.shape[1]) for s in levels]
    for s, w in zip(levels, stage_weights(first, chans), strict=True):
        if s is None:
            y = F.linear(last, w, first.bias)
        elif s is above[-1]:  # the finest stage's input, already upsampled at these pixels
            y = F.linear(u, w)
        else:
            y = F.linear(_upsampled_at(s, fine // int(s.shape[-2]), b, py, px), w)
        hidden = y if hidden is None else hidden + y
    assert hidden is not None
    return F.linear(act(hidden), out.weight[:, :, 0, 0], out.bias)


def sample_outside(
    pixel_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    px: torch.Tensor,
    b: torch.Tensor,
    size: tuple[int, int],
) -> torch.Tensor:
    """Bilinear samples (zero outside the map, as `F.grid_sample`) at map pixels `px`.

    Args:
        pixel_fn: (b, py, px) (m,) each -> (m,C) map values at those pixels.
        px: (m,2) (x, y) pixel coordinates of the whole (h, w) map.
        b: (m,) image of each point.
        size: (h, w) of the map.

    Returns:
        (m,C) samples.
    """
    h, w = size
    px = torch.where(torch.isfinite(px), px, torch.full_like(px, -10.0))  # NaN: zeros
    x0, y0 = px[:, 0].floor(), px[:, 1].floor()
    fx, fy = px[:, 0] - x0, px[:, 1] - y0
    corners = []
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            cx, cy = x0 + dx, y0 + dy
            ok = (cx >= 0) & (cx <= w - 1) & (cy >= 0) & (cy <= h - 1)
            corners.append((cy.clamp(0, h - 1).long(), cx.clamp(0, w - 1).long(), wx * wy * ok))
    ys = torch.cat([c[0] for c in corners])
    xs = torch.cat([c[1] for c in corners])
    bs = b.repeat(4)
    key = (bs * h + ys) * w + xs
    uniq, inverse = torch.unique(key, return_inverse=True)
    vals = pixel_fn(uniq // (h * w), (uniq // w) % h, uniq % w)[inverse]  # (4m,C)
    weights = torch.cat([c[2] for c in corners]).to(vals.dtype)[:, None]
    return (vals * weights).reshape(4, -1, vals.shape[-1]).sum(dim=0)
