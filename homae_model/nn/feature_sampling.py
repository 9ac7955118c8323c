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


def pixels_to_grid(uv: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """(B,N,2) pixels of an (H,W) image -> (B,N,2) grid_sample coordinates in [-1,1]."""
    h, w = image_size
    scale = uv.new_tensor([2.0 / w, 2.0 / h])
    return (uv + 0.5) * scale - 1.0


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
    uv = project_points(points, K)
    grid = pixels_to_grid(uv, image_size)[:, :, None, :]  # (B,N,1,2)
    out = F.grid_sample(fmap, grid.to(fmap.dtype), mode="bilinear", align_corners=False)
    return out[..., 0].transpose(1, 2)
