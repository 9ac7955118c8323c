"""Inference-time query points from a voxel grid (HOISDF `sdf_infer`), dense or coarse-to-fine.

The grid: `res`^3 cell centres over the cube [-1,1]^3 in scaled units, mapped to the camera
frame as p = q / sdf_scale + anchor (sdf_scale = 3.1: a cube of about +-0.32 m, 1 cm voxels at
res 64). Points whose projection falls outside the 2D box are dropped; the SDF is evaluated on
the rest and the k points with the smallest |SDF| are kept.

`coarse_to_fine_select` descends a hierarchy of grids (coarse_res, 2 coarse_res, ..., res):
every in-box cell of the coarsest grid is evaluated at its centre, and a cell is split (its
children evaluated) only when it can hold a fine voxel with |SDF| <= T: for a true SDF
(1-Lipschitz), |SDF(centre)| <= T + reach, reach = the largest distance from the cell centre
to a fine voxel centre inside it. T starts at an estimate
of the k-th best fine |SDF| (from the level above the fine one) and is raised to the k-th best
fine |SDF| found until that value stays below T, so that the result equals the dense selection
for a true SDF (up to ties) at a fraction of the evaluations. For a learned SDF it is close,
not exact.
"""

from __future__ import annotations

import functools
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


def _axis_coords(res: int, device: torch.device | None) -> torch.Tensor:
    """(res,) cell-centre coordinates of one axis in scaled units (as `grid_points`)."""
    return (torch.arange(res, device=device, dtype=torch.float32) + 0.5) * (2.0 / res) - 1.0


def cell_points(
    idx: torch.Tensor, rows: torch.Tensor, res: int, anchor: torch.Tensor, sdf_scale: float
) -> torch.Tensor:
    """Camera-frame centres (m,3) of cells `idx` (flat, as `grid_points`) of images `rows` (m,).

    The same values as `grid_to_camera(grid_points(res), anchor, sdf_scale)[rows, idx]`, without
    building the whole grid.
    """
    c = _axis_coords(res, idx.device)
    q = torch.stack([c[idx // (res * res)], c[(idx // res) % res], c[idx % res]], dim=-1)
    return q.to(anchor.dtype) / sdf_scale + anchor[rows]


def _box_mask(
    anchor: torch.Tensor, K: torch.Tensor, box: torch.Tensor, res: int, sdf_scale: float
) -> torch.Tensor:
    """`points_in_box` of every fine voxel, (B,res,res,res) bool indexed [ix, iy, iz].

    With no skew (K[0,1] = K[1,0] = 0) the pixel u depends only on (x, z) and v only on
    (y, z), so the test is made on two res x res tables and broadcast (the grid is
    separable); otherwise every voxel is projected.
    """
    bsz = anchor.shape[0]
    if bool((K[:, 0, 1] != 0).any() or (K[:, 1, 0] != 0).any()):
        pts = grid_to_camera(grid_points(res, anchor.device), anchor, sdf_scale)
        return points_in_box(pts, K, box).reshape(bsz, res, res, res)
    c = _axis_coords(res, anchor.device).to(anchor.dtype) / sdf_scale
    lat = c[None, :, None] + anchor[:, None, :2]  # (B,res,2): x (y) of ix (iy)
    z = c[None, :] + anchor[:, None, 2]  # (B,res): z of iz
    shape = (bsz, res, res)
    zz = z[:, None, :].expand(shape)
    zero = torch.zeros(shape, dtype=anchor.dtype, device=anchor.device)
    xz = torch.stack([lat[..., 0, None].expand(shape), zero, zz], dim=-1)  # (B,ix,iz,3)
    yz = torch.stack([zero, lat[..., 1, None].expand(shape), zz], dim=-1)  # (B,iy,iz,3)
    uv_x = project_points(xz.reshape(bsz, res * res, 3), K).reshape(bsz, res, res, 2)
    uv_y = project_points(yz.reshape(bsz, res * res, 3), K).reshape(bsz, res, res, 2)
    b = box[:, None, None, :]
    u_in = (uv_x[..., 0] >= b[..., 0]) & (uv_x[..., 0] <= b[..., 2])  # (B,ix,iz)
    v_in = (uv_y[..., 1] >= b[..., 1]) & (uv_y[..., 1] <= b[..., 3])  # (B,iy,iz)
    z_pos = z > 0  # (B,iz)
    return u_in[:, :, None, :] & v_in[:, None, :, :] & z_pos[:, None, None, :]


def _fine_mask(
    anchor: torch.Tensor,
    K: torch.Tensor,
    box: torch.Tensor,
    k: int | torch.Tensor,
    res: int,
    sdf_scale: float,
) -> torch.Tensor:
    """In-box mask of the fine grid (B,res^3); no box filter for images with < k inside.

    `k`: one count, or (B,) per image.
    """
    inside = _box_mask(anchor, K, box, res, sdf_scale).reshape(anchor.shape[0], -1)
    few = inside.sum(dim=1) < k
    inside[few] = True
    return inside


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
    inside = _fine_mask(anchor, K, box, k, res, sdf_scale)
    rows, idx = torch.nonzero(inside, as_tuple=True)
    pts = cell_points(idx, rows, res, anchor, sdf_scale)
    lists = [pts[rows == b] for b in range(anchor.shape[0])]
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


def _occupancy(inside: torch.Tensor, sides: list[int]) -> list[torch.Tensor]:
    """Per grid side n of `sides`: (B,n^3) which cells hold a True voxel of `inside` (B,r,r,r).

    Each coarser level is the OR of the strided sub-grids of the one below it (the sides must
    divide one another), cheaper than reducing the whole mask per level.
    """
    bsz = inside.shape[0]
    out: dict[int, torch.Tensor] = {int(inside.shape[1]): inside}
    cur = inside
    for n in sorted(set(sides), reverse=True):
        while int(cur.shape[1]) > n:
            f = int(cur.shape[1]) // n if int(cur.shape[1]) % (2 * n) else 2
            offsets = [(i, j, o) for i in range(f) for j in range(f) for o in range(f)]
            parts = [cur[:, i::f, j::f, o::f] for i, j, o in offsets]
            nxt = parts[0].clone()
            for p in parts[1:]:
                nxt |= p
            cur = nxt
            out[int(cur.shape[1])] = cur
    return [out[n].reshape(bsz, n**3) for n in sides]


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
    estimate: bool = True,
) -> VoxelSelection:
    """Top-k |SDF| voxels of the dense res^3 grid, found through a hierarchy of coarser grids.

    The grids go from `coarse_res` to `res`, doubling the side at each level (one jump to
    `res` when doubling does not divide it). Every in-box cell of the coarsest grid is
    evaluated at its centre; a cell is split (its children evaluated) when its |SDF| is at most
    T + reach, reach = the largest distance from its centre to a fine voxel centre inside it.
    T starts at `margin` fine half-diagonals (or the `estimate`); when the k-th best fine |SDF|
    found (tau) exceeds T, T becomes tau and the descent resumes (only new cells are
    evaluated), so that for a 1-Lipschitz SDF the result equals `dense_select` (up to ties).

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
        estimate: before the fine level, set T to the (k / c^3)-th best |SDF| of the level
            above it (c: its children per side), an estimate of the k-th best fine |SDF|: one
            round instead of a resumed one in most cases, and no fine cells split for a T
            larger than needed (the result does not depend on T).

    Returns:
        `VoxelSelection` (num_evals counts the evaluations of every level).

    Raises:
        ValueError: `coarse_res` does not divide `res`.
    """
    sel, _, count = _coarse_to_fine(
        sdf_fn, anchor, K, box, [k] * anchor.shape[0], res, coarse_res, sdf_scale, margin,
        chunk, estimate,
    )  # fmt: skip
    return VoxelSelection(torch.stack([p for p, _ in sel]), torch.stack([s for _, s in sel]), count)


def coarse_to_fine_groups(
    sdf_fn: SdfFn,
    anchor: torch.Tensor,
    K: torch.Tensor,
    box: torch.Tensor,
    ks: list[int],
    *,
    res: int = 64,
    coarse_res: int = 16,
    sdf_scale: float = 3.1,
    margin: float = 1.5,
    chunk: int = 65536,
    estimate: bool = True,
) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """`coarse_to_fine_select` with its own k per image, for searches sharing one batch.

    The images of one call are searched independently (the same result as one call per
    image); batching them shares the bookkeeping, e.g. a frame's hand and object searches as
    two "images" whose `sdf_fn` (with `supports_row`) runs each row's own head.

    Returns:
        Per image: (k_b,3) points, (k_b,) SDF in metres and the evaluations it spent.
    """
    sel, evals, _ = _coarse_to_fine(
        sdf_fn, anchor, K, box, list(ks), res, coarse_res, sdf_scale, margin, chunk, estimate
    )
    return [(p, v, e) for (p, v), e in zip(sel, evals, strict=True)]


def _coarse_to_fine(
    sdf_fn: SdfFn,
    anchor: torch.Tensor,
    K: torch.Tensor,
    box: torch.Tensor,
    ks: list[int],
    res: int,
    coarse_res: int,
    sdf_scale: float,
    margin: float,
    chunk: int,
    estimate: bool,
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[int], int]:
    """The search of `coarse_to_fine_select` with k per image.

    Returns:
        Per image (points (k_b,3), SDF (k_b,)), per image evaluations (rows of `sdf_fn`
        calls), and the evaluation count of `_eval_lists` (padding included).
    """
    if coarse_res <= 0 or res % coarse_res != 0:
        raise ValueError(f"coarse_res={coarse_res} must divide res={res}")
    bsz = anchor.shape[0]
    k_t = torch.tensor(ks, device=anchor.device)
    inside = _fine_mask(anchor, K, box, k_t, res, sdf_scale)
    sides = _levels(res, coarse_res)
    fine_half = math.sqrt(3.0) / res / sdf_scale  # metres, half-diagonal of a fine voxel
    reach = [fine_half * (res // n - 1) for n in sides]
    # per level: which cells hold an in-box fine voxel
    occupied = _occupancy(inside.reshape(bsz, res, res, res), sides)
    n_occupied = [occ.sum(dim=1) for occ in occupied]
    absdf = [torch.full((bsz, n**3), -math.inf, device=anchor.device) for n in sides]
    evaluated = [torch.zeros(bsz, n**3, dtype=torch.bool, device=anchor.device) for n in sides]
    n_evaluated = [torch.zeros(bsz, dtype=torch.long, device=anchor.device) for _ in sides]
    fine_idx: list[list[torch.Tensor]] = [[] for _ in range(bsz)]  # per image, fine cells
    fine_sdf: list[list[torch.Tensor]] = [[] for _ in range(bsz)]  # and their signed SDF

    def evaluate(level: int, rows: torch.Tensor, idx: torch.Tensor) -> int:
        """SDF at the centres of cells `idx` of images `rows` (rows ascending)."""
        if idx.numel() == 0:
            return 0
        pts = cell_points(idx, rows, sides[level], anchor, sdf_scale)
        per_row = torch.bincount(rows, minlength=bsz)
        sizes = per_row.tolist()
        vals, n_evals = _eval_lists(sdf_fn, list(torch.split(pts, sizes)), chunk)
        v = torch.cat(vals).to(absdf[level].dtype)
        absdf[level][rows, idx] = v.abs()
        evaluated[level][rows, idx] = True
        n_evaluated[level] += per_row
        if level == len(sides) - 1:
            for b, (i_b, v_b) in enumerate(zip(torch.split(idx, sizes), vals, strict=True)):
                fine_idx[b].append(i_b)
                fine_sdf[b].append(v_b.to(absdf[level].dtype))
        return n_evals

    def descend(t: torch.Tensor, on: torch.Tensor, levels: int) -> int:
        """Split the cells of the first `levels` levels that may hold |SDF| <= t voxels."""
        spent = 0
        for lev in range(levels):
            n, m = sides[lev], sides[lev + 1]
            want = evaluated[lev] & (absdf[lev] <= (t + reach[lev])[:, None]) & on[:, None]
            rows, idx = torch.nonzero(want, as_tuple=True)
            c = m // n
            kids = _children(idx, n, c)
            krows = rows.repeat_interleave(c**3)
            keep = occupied[lev + 1][krows, kids] & ~evaluated[lev + 1][krows, kids]
            kids, krows = kids[keep], krows[keep]
            bound = _neighbour_bound(absdf[lev], krows, kids, n, c, res, sdf_scale)
            keep = bound <= t[krows]
            spent += evaluate(lev + 1, krows[keep], kids[keep])
        return spent

    rows0, idx0 = torch.nonzero(occupied[0], as_tuple=True)
    count = evaluate(0, rows0, idx0)
    thresh = [(margin - 1.0) * fine_half] * bsz
    active = [True] * bsz
    for round_ in range(MAX_REFINE_ROUNDS + 4):
        t = torch.tensor(thresh, device=anchor.device)
        on = torch.tensor(active, device=anchor.device)
        if round_ == 0 and estimate and len(sides) > 2:
            # T from the level above the fine one: a band |SDF| <= t around a surface holds
            # about c^3 times more fine cells than cells of that level (c^3 times larger),
            # so the k-th best fine |SDF| is near that level's (k/c^3)-th best
            count += descend(t, on, len(sides) - 2)
            per = (res // sides[-2]) ** 3
            for b in range(bsz):
                j = max(1, math.ceil(ks[b] / per))
                vals = absdf[-2][b][evaluated[-2][b]]
                if vals.numel() >= j:
                    thresh[b] = float(torch.kthvalue(vals, j).values)
            t = torch.tensor(thresh, device=anchor.device)
        count += descend(t, on, len(sides) - 1)
        left = torch.stack(
            [n_occupied[i] - n_evaluated[i] for i in range(1, len(sides))]
            or [torch.zeros(bsz, dtype=torch.long, device=anchor.device)]
        )
        exhausted = (left.sum(dim=0) == 0).tolist()
        for b in range(bsz):
            if not active[b]:
                continue
            found = torch.cat(fine_sdf[b]).abs() if fine_sdf[b] else absdf[-1].new_zeros(0)
            if found.numel() >= ks[b]:
                tau = float(torch.kthvalue(found, ks[b]).values)
                if tau <= thresh[b] or exhausted[b]:
                    active[b] = False
                    continue
                thresh[b] = tau
            elif exhausted[b]:
                active[b] = False
            else:
                thresh[b] = 2.0 * thresh[b] + fine_half
        if not any(active):
            break

    sel = []
    for b in range(bsz):
        if fine_idx[b]:
            idx, vals = torch.cat(fine_idx[b]), torch.cat(fine_sdf[b])
        else:
            idx, vals = absdf[-1].new_zeros(0, dtype=torch.long), absdf[-1].new_zeros(0)
        pts = cell_points(idx, torch.full_like(idx, b), res, anchor, sdf_scale)
        sel.append(_top_k(pts, vals, ks[b]))
    evals = [int(sum(int(n[b]) for n in n_evaluated)) for b in range(bsz)]
    return sel, evals, count


def _neighbour_bound(
    absdf: torch.Tensor,
    rows: torch.Tensor,
    kids: torch.Tensor,
    n: int,
    c: int,
    res: int,
    sdf_scale: float,
) -> torch.Tensor:
    """Lower bound of |SDF| at the fine voxels inside each child cell, (m,) metres.

    For a 1-Lipschitz SDF, |SDF(v)| >= |SDF(e)| - |v - e| for every evaluated cell centre e;
    the bound is the largest over the 3x3x3 cells of the parent's level around the parent
    (unevaluated cells: -inf), with |v - e| the largest distance from e to a fine voxel centre
    in the child (per axis: the centre offset plus the child's half extent of fine centres).

    Args:
        absdf: (B,n^3) |SDF| of the parent level, -inf where not evaluated.
        rows: (m,) image of each child.
        kids: (m,) flat child indices in the (nc)^3 grid.
        n: parent grid side.
        c: children per side of a parent.
        res: fine grid side.
        sdf_scale: scaled units per metre.
    """
    if kids.numel() == 0:
        return absdf.new_zeros(0)
    m = n * c
    ki, kj, kl = kids // (m * m), (kids // m) % m, kids % m
    pi, pj, pl = ki // c, kj // c, kl // c
    octant = ((ki % c) * c + kj % c) * c + kl % c
    padded = torch.nn.functional.pad(
        absdf.reshape(-1, n, n, n), (1, 1, 1, 1, 1, 1), value=-math.inf
    )
    p = n + 2  # one flat gather: parent's padded index plus the 27 neighbour offsets
    base = ((rows * p + pi + 1) * p + pj + 1) * p + pl + 1
    vals = padded.reshape(-1)[base[:, None] + _neighbour_offsets(p, kids.device)]  # (m,27)
    return (vals - _neighbour_reach(n, c, res, sdf_scale, absdf.device)[octant]).amax(dim=1)


@functools.lru_cache(maxsize=64)
def _neighbour_offsets(p: int, device: torch.device) -> torch.Tensor:
    """(27,) flat offsets of the 3x3x3 neighbours in a padded p^3 grid.

    The order of `_neighbour_reach`'s columns: di, dj, dl each -1..1, dl fastest.
    """
    d = torch.arange(-1, 2, device=device)
    di, dj, dl = torch.meshgrid(d, d, d, indexing="ij")
    return ((di * p + dj) * p + dl).reshape(-1)


@functools.lru_cache(maxsize=64)
def _neighbour_reach(
    n: int, c: int, res: int, sdf_scale: float, device: torch.device
) -> torch.Tensor:
    """Largest distances (c^3, 27), metres, from parent-level cells to a child's fine voxels.

    Row: the child's octant in its parent; column: one of the 27 parent-level cell centres
    around the parent (see `_neighbour_bound`).
    """
    child = 2.0 / (n * c) / sdf_scale  # child cell side, metres
    ext = (res // (n * c) - 1) * (2.0 / res / sdf_scale) / 2.0  # half extent of fine centres
    o = torch.arange(c, dtype=torch.float64) - (c - 1) / 2.0  # child offset in child sides
    oi, oj, ol = torch.meshgrid(o, o, o, indexing="ij")
    off = torch.stack([oi, oj, ol], dim=-1).reshape(-1, 1, 3) * child
    d = torch.arange(-1, 2, dtype=torch.float64)
    di, dj, dl = torch.meshgrid(d, d, d, indexing="ij")
    nb = torch.stack([di, dj, dl], dim=-1).reshape(1, -1, 3) * (c * child)
    dist = (((nb - off).abs() + ext) ** 2).sum(dim=-1).sqrt()
    # a hair of slack so that float32 rounding never prunes a voxel the bound admits
    return (dist * (1.0 + 1e-6) + 1e-7).to(device=device, dtype=torch.float32)
