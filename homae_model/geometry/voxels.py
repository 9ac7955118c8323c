"""Inference-time query points from a voxel grid (HOISDF `sdf_infer`), dense or coarse-to-fine.

The grid: `res`^3 cell centres over the cube [-1,1]^3 in scaled units, mapped to the camera
frame as p = q / sdf_scale + anchor (sdf_scale = 3.1: a cube of about +-0.32 m, 1 cm voxels at
res 64). Points whose projection falls outside the 2D box are dropped; the SDF is evaluated on
the rest and the k points with the smallest |SDF| are kept.

`coarse_to_fine_select` evaluates a coarse grid first (cells of r^3 fine voxels, r =
res / coarse_res) and refines only cells that can contain the surface: for a true SDF
(1-Lipschitz), a cell whose centre has |SDF| > half its diagonal holds no surface point. Cells
with |SDF(centre)| <= margin * half-diagonal are refined; then, while the k-th best fine
|SDF| (tau) plus the half-diagonal exceeds the refinement threshold, cells up to tau +
half-diagonal are added, so that the result equals the dense selection for a true SDF (up to
ties) at a fraction of the evaluations. For a learned SDF it is close, not exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from homae_model.geometry.camera import project_points

SdfFn = Callable[[torch.Tensor], torch.Tensor]
"""(B,M,3) camera-frame points (metres) -> (B,M) signed distance in metres."""

MAX_REFINE_ROUNDS = 4


@dataclass
class VoxelSelection:
    """Selected query points.

    Attributes:
        points: (B,k,3) camera frame, metres.
        sdf: (B,k) SDF at those points, metres.
        num_evals: number of points the SDF function was evaluated on (all images, padding
            included).
    """

    points: torch.Tensor
    sdf: torch.Tensor
    num_evals: int


def grid_points(res: int, device: torch.device | None = None) -> torch.Tensor:
    """Cell centres of a res^3 grid over [-1,1]^3, (res^3, 3), index (ix*res + iy)*res + iz."""
    c = (torch.arange(res, device=device, dtype=torch.float32) + 0.5) * (2.0 / res) - 1.0
    gx, gy, gz = torch.meshgrid(c, c, c, indexing="ij")
    return torch.stack([gx, gy, gz], dim=-1).reshape(-1, 3)


def grid_to_camera(q: torch.Tensor, anchor: torch.Tensor, sdf_scale: float) -> torch.Tensor:
    """(N,3) scaled grid points + (B,3) anchors -> (B,N,3) camera frame, metres."""
    return q[None].to(anchor.dtype) / sdf_scale + anchor[:, None, :]


def points_in_box(points: torch.Tensor, K: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """Which points project inside their image's box (and lie in front of the camera).

    Args:
        points: (B,N,3) camera frame.
        K: (B,3,3) intrinsics.
        box: (B,4) xyxy pixels.

    Returns:
        (B,N) bool.
    """
    uv = project_points(points, K)
    b = box[:, None, :]
    return (
        (points[..., 2] > 0)
        & (uv[..., 0] >= b[..., 0])
        & (uv[..., 0] <= b[..., 2])
        & (uv[..., 1] >= b[..., 1])
        & (uv[..., 1] <= b[..., 3])
    )


def _eval_lists(
    sdf_fn: SdfFn, lists: list[torch.Tensor], chunk: int
) -> tuple[list[torch.Tensor], int]:
    """Evaluate per-image point lists (M_b,3) in one padded batch; returns SDFs and the count."""
    m = max(int(x.shape[0]) for x in lists)
    if m == 0:
        return [x.new_zeros(0) for x in lists], 0
    padded = torch.stack(
        [torch.cat([x, x.new_zeros(m - x.shape[0], 3)], dim=0) for x in lists], dim=0
    )
    out = torch.cat([sdf_fn(padded[:, i : i + chunk]) for i in range(0, m, chunk)], dim=1)
    return [out[b, : lists[b].shape[0]] for b in range(len(lists))], len(lists) * m


def _fine_candidates(
    anchor: torch.Tensor, K: torch.Tensor, box: torch.Tensor, k: int, res: int, sdf_scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera-frame fine grid (B,N,3) and the in-box mask (B,N); no box filter when < k inside."""
    pts = grid_to_camera(grid_points(res, anchor.device), anchor, sdf_scale)
    inside = points_in_box(pts, K, box)
    few = inside.sum(dim=1) < k
    inside[few] = True
    return pts, inside


def _top_k(points: torch.Tensor, sdf: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k points with the smallest |sdf| (repeats the best when fewer than k exist)."""
    n = points.shape[0]
    idx = torch.topk(sdf.abs(), min(k, n), largest=False).indices
    if n < k:
        idx = torch.cat([idx, idx[torch.arange(k - n, device=idx.device) % max(n, 1)]])
    return points[idx], sdf[idx]


def dense_select(
    sdf_fn: SdfFn,
    anchor: torch.Tensor,
    K: torch.Tensor,
    box: torch.Tensor,
    k: int,
    *,
    res: int = 64,
    sdf_scale: float = 3.1,
    chunk: int = 65536,
) -> VoxelSelection:
    """HOISDF's dense search: every in-box voxel of the res^3 grid is evaluated.

    Args:
        sdf_fn: (B,M,3) points -> (B,M) SDF, metres.
        anchor: (B,3) grid centres, camera frame.
        K: (B,3,3) intrinsics of the image the boxes live in.
        box: (B,4) xyxy pixels; when fewer than k voxels project inside, the box is ignored.
        k: points to keep per image.
        res: grid side.
        sdf_scale: scaled units per metre.
        chunk: points per `sdf_fn` call.

    Returns:
        `VoxelSelection`.
    """
    pts, inside = _fine_candidates(anchor, K, box, k, res, sdf_scale)
    lists = [pts[b][inside[b]] for b in range(pts.shape[0])]
    sdfs, count = _eval_lists(sdf_fn, lists, chunk)
    sel = [_top_k(p, s, k) for p, s in zip(lists, sdfs, strict=False)]
    return VoxelSelection(torch.stack([p for p, _ in sel]), torch.stack([s for _, s in sel]), count)


def coarse_to_fine_select(
    sdf_fn: SdfFn,
    anchor: torch.Tensor,
    K: torch.Tensor,
    box: torch.Tensor,
    k: int,
    *,
    res: int = 64,
    coarse_res: int = 16,
    sdf_scale: float = 3.1,
    margin: float = 1.5,
    chunk: int = 65536,
) -> VoxelSelection:
    """Top-k |SDF| voxels of the dense res^3 grid, found through a coarse grid.

    Args:
        sdf_fn: (B,M,3) points -> (B,M) SDF, metres.
        anchor: (B,3) grid centres, camera frame.
        K: (B,3,3) intrinsics.
        box: (B,4) xyxy pixels (same fallback as `dense_select`).
        k: points to keep per image.
        res: fine grid side (the dense grid it reproduces).
        coarse_res: coarse grid side; must divide `res`.
        sdf_scale: scaled units per metre.
        margin: refine cells with |SDF(centre)| <= margin * half cell diagonal.
        chunk: points per `sdf_fn` call.

    Returns:
        `VoxelSelection` (num_evals counts coarse and fine evaluations).

    Raises:
        ValueError: `coarse_res` does not divide `res`.
    """
    if res % coarse_res != 0:
        raise ValueError(f"coarse_res={coarse_res} must divide res={res}")
    r = res // coarse_res
    cr = coarse_res
    device = anchor.device
    bsz = anchor.shape[0]
    pts, inside = _fine_candidates(anchor, K, box, k, res, sdf_scale)
    children = (
        torch.arange(res**3, device=device)
        .reshape(cr, r, cr, r, cr, r)
        .permute(0, 2, 4, 1, 3, 5)
        .reshape(cr**3, r**3)
    )  # fine indices of each coarse cell
    cell_inside = inside[:, children]  # (B, cells, r^3)
    cell_any = cell_inside.any(dim=-1)  # (B, cells)
    centres = grid_to_camera(grid_points(cr, device), anchor, sdf_scale)
    half_diag = math.sqrt(3.0) / cr / sdf_scale  # metres

    cells = [torch.nonzero(cell_any[b])[:, 0] for b in range(bsz)]
    coarse_sdf, count = _eval_lists(sdf_fn, [centres[b][cells[b]] for b in range(bsz)], chunk)
    order = [coarse_sdf[b].abs().argsort() for b in range(bsz)]
    refined = [torch.zeros(cells[b].shape[0], dtype=torch.bool, device=device) for b in range(bsz)]
    fine_pts: list[list[torch.Tensor]] = [[] for _ in range(bsz)]
    fine_sdf: list[list[torch.Tensor]] = [[] for _ in range(bsz)]
    min_cells = 2 * math.ceil(k / r**3)
    threshold = [margin * half_diag] * bsz

    for rnd in range(MAX_REFINE_ROUNDS):
        new_lists = []
        for b in range(bsz):
            abs_c = coarse_sdf[b].abs()
            want = (abs_c <= threshold[b]) & ~refined[b]
            if rnd == 0:
                want[order[b][:min_cells]] = True
            got = sum(int(x.shape[0]) for x in fine_pts[b])
            if rnd > 0 and got < k:  # not enough candidates: take the next best cells
                todo = order[b][~refined[b][order[b]]][:min_cells]
                want[todo] = True
            refined[b] |= want
            idx = children[cells[b][want]]  # (n, r^3)
            keep = cell_inside[b][cells[b][want]]
            fine_idx = idx[keep]
            new_lists.append(pts[b][fine_idx])
        if all(x.shape[0] == 0 for x in new_lists):
            break
        sdfs, n = _eval_lists(sdf_fn, new_lists, chunk)
        count += n
        done = True
        for b in range(bsz):
            fine_pts[b].append(new_lists[b])
            fine_sdf[b].append(sdfs[b])
            all_s = torch.cat(fine_sdf[b])
            if all_s.shape[0] < k:
                done = done and bool(refined[b].all())
                continue
            tau = float(torch.kthvalue(all_s.abs(), k).values)
            if tau + half_diag > threshold[b] and not bool(refined[b].all()):
                threshold[b] = tau + half_diag
                done = False
        if done:
            break

    sel = [_top_k(torch.cat(fine_pts[b]), torch.cat(fine_sdf[b]), k) for b in range(bsz)]
    return VoxelSelection(torch.stack([p for p, _ in sel]), torch.stack([s for _, s in sel]), count)
