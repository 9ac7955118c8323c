"""Inference-time query points from a voxel grid (HOISDF `sdf_infer`), dense or coarse-to-fine.

The grid: `res`^3 cell centres over the cube [-1,1]^3 in scaled units, mapped to the camera
frame as p = q / sdf_scale + anchor (sdf_scale = 3.1: a cube of about +-0.32 m, 1 cm voxels at
res 64). Points whose projection falls outside the 2D box are dropped; the SDF is evaluated on
the rest and the k points with the smallest |SDF| are kept.

`coarse_to_fine_select` descends a hierarchy of grids (coarse_res, 2 coarse_res, ..., res):
every in-box cell of the coarsest grid is evaluated at its centre, and a cell is split (its
children evaluated) only when it can hold a fine voxel with |SDF| <= T: for a true SDF
(1-Lipschitz), |SDF(centre)| <= T + reach, reach = the largest distance from the cell centre
to a fine voxel centre inside it. T starts small and is raised to the k-th best fine |SDF|
found until that value stays below T, so that the result equals the dense selection for a
true SDF (up to ties) at a fraction of the evaluations. For a learned SDF it is close, not
exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from homae_model.geometry.camera import project_points

SdfFn = Callable[[torch.Tensor], torch.Tensor]
"""(B,M,3) camera-frame points (metres) -> (B,M) signed distance in metres.

A function may also accept `row=b` (an int): then it gets (1,M,3) points of image b alone and
returns (1,M). Mark such a function with the attribute `supports_row = True`; the search then
evaluates every image's own point list (no padding to the longest list of the batch).
"""

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
    """Evaluate per-image point lists (M_b,3); returns their SDFs and the evaluation count.

    Functions marked `supports_row` are called once per image (no padding); others get one
    batch padded to the longest list (the count then includes the padding).
    """
    m = max(int(x.shape[0]) for x in lists)
    if m == 0:
        return [x.new_zeros(0) for x in lists], 0
    if getattr(sdf_fn, "supports_row", False):
        outs = []
        for b, x in enumerate(lists):
            parts = [sdf_fn(x[None, i : i + chunk], row=b)[0] for i in range(0, x.shape[0], chunk)]
            outs.append(torch.cat(parts) if parts else x.new_zeros(0))
        return outs, sum(int(x.shape[0]) for x in lists)
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


def _levels(res: int, coarse_res: int) -> list[int]:
    """Grid sides from `coarse_res` to `res`, doubling while the side still divides `res`."""
    sides = [coarse_res]
    while sides[-1] < res:
        nxt = sides[-1] * 2
        sides.append(nxt if res % nxt == 0 and nxt <= res else res)
    return sides


def _children(idx: torch.Tensor, n: int, c: int) -> torch.Tensor:
    """Flat indices (m,) of cells of an n^3 grid -> their c^3 children each in the (nc)^3 grid."""
    i, j, l_ = idx // (n * n), (idx // n) % n, idx % n
    a = torch.arange(c, device=idx.device)
    m = n * c
    ci, cj, cl = (i[:, None] * c + a), (j[:, None] * c + a), (l_[:, None] * c + a)
    flat = (ci[:, :, None, None] * m + cj[:, None, :, None]) * m + cl[:, None, None, :]
    return flat.reshape(-1)


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
    """Top-k |SDF| voxels of the dense res^3 grid, found through a hierarchy of coarser grids.

    The grids go from `coarse_res` to `res`, doubling the side at each level (one jump to
    `res` when doubling does not divide it). Every in-box cell of the coarsest grid is
    evaluated at its centre; a cell is split (its children evaluated) when its |SDF| is at most
    T + reach, reach = the largest distance from its centre to a fine voxel centre inside it.
    T starts at `margin` fine half-diagonals; when the k-th best fine |SDF| found (tau) exceeds
    T, T becomes tau and the descent resumes (only new cells are evaluated), so that for a
    1-Lipschitz SDF the result equals `dense_select` (up to ties).

    Args:
        sdf_fn: (B,M,3) points -> (B,M) SDF, metres.
        anchor: (B,3) grid centres, camera frame.
        K: (B,3,3) intrinsics.
        box: (B,4) xyxy pixels (same fallback as `dense_select`).
        k: points to keep per image.
        res: fine grid side (the dense grid it reproduces).
        coarse_res: coarsest grid side; must divide `res`.
        sdf_scale: scaled units per metre.
        margin: initial threshold T in fine-voxel half-diagonals (larger: fewer resumed rounds,
            more cells split).
        chunk: points per `sdf_fn` call.

    Returns:
        `VoxelSelection` (num_evals counts the evaluations of every level).

    Raises:
        ValueError: `coarse_res` does not divide `res`.
    """
    if coarse_res <= 0 or res % coarse_res != 0:
        raise ValueError(f"coarse_res={coarse_res} must divide res={res}")
    device = anchor.device
    bsz = anchor.shape[0]
    pts, inside = _fine_candidates(anchor, K, box, k, res, sdf_scale)
    sides = _levels(res, coarse_res)
    nlev = len(sides)
    fine_half = math.sqrt(3.0) / res / sdf_scale  # metres, half-diagonal of a fine voxel
    reach = [fine_half * (res // n - 1) for n in sides]
    # per level: which cells hold an in-box fine voxel, their centres (camera frame)
    occupied = []
    centres = []
    for n in sides:
        r = res // n
        occ = inside.reshape(bsz, n, r, n, r, n, r).any(dim=6).any(dim=4).any(dim=2)
        occupied.append(occ.reshape(bsz, n**3))
        centres.append(
            pts if n == res else grid_to_camera(grid_points(n, device), anchor, sdf_scale)
        )
    sdf = [torch.full((bsz, n**3), float("nan"), device=device) for n in sides]
    evaluated = [torch.zeros(bsz, n**3, dtype=torch.bool, device=device) for n in sides]
    split = [torch.zeros(bsz, n**3, dtype=torch.bool, device=device) for n in sides]

    def evaluate(level: int, new: list[torch.Tensor]) -> int:
        if all(x.numel() == 0 for x in new):
            return 0
        vals, n_evals = _eval_lists(sdf_fn, [centres[level][b][new[b]] for b in range(bsz)], chunk)
        for b in range(bsz):
            sdf[level][b, new[b]] = vals[b].to(sdf[level].dtype)
            evaluated[level][b, new[b]] = True
        return n_evals

    count = evaluate(0, [torch.nonzero(occupied[0][b])[:, 0] for b in range(bsz)])
    thresh = [(margin - 1.0) * fine_half] * bsz
    active = [True] * bsz
    for _ in range(MAX_REFINE_ROUNDS + 4):
        for lev in range(nlev - 1):
            c = sides[lev + 1] // sides[lev]
            new = []
            for b in range(bsz):
                want = evaluated[lev][b] & ~split[lev][b]
                if active[b]:
                    want &= sdf[lev][b].abs() <= thresh[b] + reach[lev]
                else:
                    want &= False
                idx = torch.nonzero(want)[:, 0]
                split[lev][b, idx] = True
                kids = _children(idx, sides[lev], c)
                kids = kids[occupied[lev + 1][b, kids] & ~evaluated[lev + 1][b, kids]]
                new.append(kids)
            count += evaluate(lev + 1, new)
        done = True
        for b in range(bsz):
            if not active[b]:
                continue
            found = sdf[-1][b][evaluated[-1][b]].abs()
            exhausted = all(bool((split[i][b] | ~evaluated[i][b]).all()) for i in range(nlev - 1))
            if found.numel() >= k:
                tau = float(torch.kthvalue(found, k).values)
                if tau <= thresh[b] or exhausted:
                    active[b] = False
                    continue
                thresh[b] = tau
            elif exhausted:
                active[b] = False
                continue
            else:
                thresh[b] = 2.0 * thresh[b] + fine_half
            done = False
        if done:
            break

    sel = []
    for b in range(bsz):
        idx = torch.nonzero(evaluated[-1][b])[:, 0]
        sel.append(_top_k(pts[b][idx], sdf[-1][b][idx], k))
    return VoxelSelection(torch.stack([p for p, _ in sel]), torch.stack([s for _, s in sel]), count)
