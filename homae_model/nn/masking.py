"""Target-focused masking (paper Section III-A, eq. 1-7).

The image is divided into a (H/P) x (W/P) grid of P x P patches. Exactly `rho` patches are
masked: ``round(mu * rho)`` of them drawn uniformly among the grid cells covered by the object
box (all of those cells when fewer exist), the rest uniformly among the remaining cells of the
whole image. Masked patches are filled, in the NORMALISED image space (after ImageNet mean/std),
with N(0,1) noise (the paper), zeros, or the per-image per-channel mean (Table VII ablation).
Masking is applied in training mode only; in eval mode the module is the identity.
"""

from __future__ import annotations

import torch
from torch import nn

from homae_model.config import MaskingConfig


def object_cells(box: torch.Tensor, grid_h: int, grid_w: int, patch: int) -> torch.Tensor:
    """Grid cells covered by a box (eq. 2-3).

    Args:
        box: (B,4) xyxy in pixels of the image being masked.
        grid_h: rows of the patch grid (H/P).
        grid_w: columns of the patch grid (W/P).
        patch: P, patch side in pixels.

    Returns:
        (B, grid_h, grid_w) bool, True where the cell overlaps the box. A box entirely outside
        the image covers no cell.
    """
    x0 = torch.floor(box[:, 0] / patch)
    y0 = torch.floor(box[:, 1] / patch)
    x1 = torch.floor(box[:, 2] / patch)
    y1 = torch.floor(box[:, 3] / patch)
    cols = torch.arange(grid_w, device=box.device, dtype=box.dtype)
    rows = torch.arange(grid_h, device=box.device, dtype=box.dtype)
    in_x = (cols[None] >= x0[:, None]) & (cols[None] <= x1[:, None])
    in_y = (rows[None] >= y0[:, None]) & (rows[None] <= y1[:, None])
    return in_y[:, :, None] & in_x[:, None, :]


def _rank(keys: torch.Tensor) -> torch.Tensor:
    """Rank of each entry along the last dim (0 = smallest)."""
    return torch.argsort(torch.argsort(keys, dim=-1), dim=-1)


def sample_mask(
    box: torch.Tensor,
    grid_h: int,
    grid_w: int,
    patch: int,
    num_patches: int,
    mu: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw the target-focused mask M (eq. 4-6).

    Args:
        box: (B,4) object boxes xyxy in pixels.
        grid_h: rows of the grid.
        grid_w: columns of the grid.
        patch: P in pixels.
        num_patches: rho, masked cells per image (<= grid_h * grid_w).
        mu: fraction of rho drawn inside the object cells.
        generator: optional torch random generator.

    Returns:
        (B, grid_h, grid_w) bool, exactly `num_patches` True per image.
    """
    b = box.shape[0]
    n = grid_h * grid_w
    in_obj = object_cells(box, grid_h, grid_w, patch).reshape(b, n)
    n_obj_cells = in_obj.sum(dim=1)
    n_obj = torch.clamp(n_obj_cells, max=round(mu * num_patches))  # eq. 4, capped by N_o
    inf = torch.tensor(float("inf"), device=box.device)
    keys = torch.rand(b, n, generator=generator, device=box.device)
    obj_keys = torch.where(in_obj, keys, inf)
    chosen = (_rank(obj_keys) < n_obj[:, None]) & in_obj
    rest_keys = torch.where(chosen, inf, torch.rand(b, n, generator=generator, device=box.device))
    n_rest = num_patches - n_obj  # eq. 5
    chosen = chosen | (_rank(rest_keys) < n_rest[:, None])
    return chosen.reshape(b, grid_h, grid_w)


class TargetFocusedMasking(nn.Module):
    """Mask patches of a normalised image batch around the object (training only)."""

    def __init__(self, cfg: MaskingConfig) -> None:
        """Build from `MaskingConfig` (patch size, count, mu, fill)."""
        super().__init__()
        self.cfg = cfg

    def forward(
        self, x: torch.Tensor, obj_box: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Mask the batch.

        Args:
            x: (B,3,H,W) normalised image (ImageNet mean/std applied).
            obj_box: (B,4) object boxes xyxy in pixels of `x`, or None (no box: all patches
                are drawn from the whole image).

        Returns:
            masked (B,3,H,W) and the mask (B, H/P, W/P) bool; in eval mode or when masking is
            disabled, `x` itself and None.
        """
        cfg = self.cfg
        if not self.training or not cfg.enabled or cfg.num_patches == 0:
            return x, None
        b, _, h, w = x.shape
        p = cfg.patch_size
        gh, gw = h // p, w // p
        if obj_box is None:
            obj_box = torch.full((b, 4), -1.0, device=x.device)
        mask = sample_mask(obj_box.to(x.dtype), gh, gw, p, cfg.num_patches, cfg.mu)
        pix = mask.repeat_interleave(p, dim=1).repeat_interleave(p, dim=2)[:, None]
        pix = pix.expand(b, x.shape[1], gh * p, gw * p)
        if gh * p != h or gw * p != w:
            pix = nn.functional.pad(pix, (0, w - gw * p, 0, h - gh * p), value=False)
        if cfg.fill == "noise":
            fill = torch.randn_like(x)
        elif cfg.fill == "zero":
            fill = torch.zeros_like(x)
        else:
            fill = x.mean(dim=(2, 3), keepdim=True).expand_as(x)
        return torch.where(pix, fill, x), mask
