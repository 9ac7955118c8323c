"""Pixel-aligned features (paper eq. 12): F_img(p) = F~(pi(K, p)).

Camera-frame points are projected with the crop intrinsics K; the feature map F~, which covers
the whole crop at its own resolution, is sampled bilinearly at those pixels. Pixel centres are
at integer coordinates, so pixel u maps to the normalised coordinate (u + 0.5) / S * 2 - 1 with
``align_corners=False``. Points projecting outside the crop get zero features.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from homae_model.geometry.camera import project_points
from homae_model.nn.feature_window import FeatureWindow


def pixels_to_grid(uv: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """(B,N,2) pixels of an (H,W) image -> (B,N,2) grid_sample coordinates in [-1,1]."""
    h, w = image_size
    scale = uv.new_tensor([2.0 / w, 2.0 / h])
    return (uv + 0.5) * scale - 1.0


def map_pixels(
    uv: torch.Tensor, image_size: tuple[int, int], map_size: tuple[int, int]
) -> torch.Tensor:
    """(...,2) crop pixels -> (...,2) pixel coordinates of an (h,w) map covering the crop."""
    h, w = map_size
    scale = uv.new_tensor([w / image_size[1], h / image_size[0]])
    return (uv + 0.5) * scale - 0.5


def sample_at_pixels(
    fmap: torch.Tensor,
    uv: torch.Tensor,
    image_size: tuple[int, int],
    window: FeatureWindow | None = None,
) -> torch.Tensor:
    """Bilinearly sample a feature map at crop pixels.

    Args:
        fmap: (B,C,h,w) features covering the (H,W) crop, or only `window` of such a map.
        uv: (B,N,2) crop pixels.
        image_size: (H,W) of the crop in pixels.
        window: the window of the whole map that `fmap` holds (None: the whole map).

    Returns:
        (B,N,C) features.
    """
    if window is not None:
        return sample_window(fmap, map_pixels(uv, image_size, window.full), window)
    grid = pixels_to_grid(uv, image_size)
    out = F.grid_sample(fmap, grid[:, :, None, :].to(fmap.dtype), align_corners=False)
    return out.squeeze(-1).transpose(1, 2)


def sample_window(fmap: torch.Tensor, px: torch.Tensor, window: FeatureWindow) -> torch.Tensor:
    """Bilinearly sample `window` of a map (held by `fmap`) at (B,N,2) whole-map pixels `px`.

    Returns:
        (B,N,C) features (zeros beyond the window, as `F.grid_sample` pads).
    """
    origin = px.new_tensor([window.x0 - 0.5, window.y0 - 0.5])
    scale = px.new_tensor([2.0 / (window.x1 - window.x0), 2.0 / (window.y1 - window.y0)])
    grid = (px - origin) * scale - 1.0  # the window's own grid_sample coordinates
    out = F.grid_sample(fmap, grid[:, :, None, :].to(fmap.dtype), align_corners=False)
    return out.squeeze(-1).transpose(1, 2)


def sample_features(
    fmap: torch.Tensor, points: torch.Tensor, K: torch.Tensor, image_size: tuple[int, int]
) -> torch.Tensor:
    """Bilinearly sample a feature map at the projections of 3D points.

    Args:
        fmap: (B,C,h,w) features covering the (H,W) crop.
        points: (B,N,3) camera frame, metres.
        K: (B,3,3) crop intrinsics.
        image_size: (H,W) of the crop in pixels.

    Returns:
        (B,N,C) features.
    """
    return sample_at_pixels(fmap, project_points(points, K), image_size)
