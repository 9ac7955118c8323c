"""The hand and object voxel searches of one batch of crops, run as one coarse-to-fine search.

`model.search_points` searches one branch; the Predictor needs both, around the same anchors
with the same crop intrinsics. Their coarse-to-fine searches are independent per image, so
they can share one call whose "images" are the hand searches followed by the object searches:
the bookkeeping (occupancy, bounds, thresholds) then runs once for both, and each row's SDF
evaluations go to its own branch's function. The selections are the same as two separate
`search_points` calls (tests/model/test_feature_window.py compares them).
"""

from __future__ import annotations

import torch

from homae_model.config import HomaeConfig
from homae_model.geometry.voxels import SdfFn, VoxelSelection, coarse_to_fine_groups
from homae_model.model import search_points

__all__ = ["search_branches"]


class _RowsOf:
    """One SDF function over 2B rows: rows [0, B) are `hand`'s images, [B, 2B) `obj`'s."""

    supports_row = True

    def __init__(self, hand: SdfFn, obj: SdfFn, bsz: int) -> None:
        self.hand, self.obj, self.bsz = hand, obj, bsz

    def __call__(self, points: torch.Tensor, row: int | None = None) -> torch.Tensor:
        """(1,M,3) points of row `row` -> (1,M) SDF, metres (rows only)."""
        if row is None:
            raise ValueError("the paired search evaluates one row at a time")
        if row < self.bsz:
            return self.hand(points, row=row)  # type: ignore[call-arg]
        return self.obj(points, row=row - self.bsz)  # type: ignore[call-arg]


def search_branches(
    cfg: HomaeConfig,
    hand_fn: SdfFn,
    obj_fn: SdfFn,
    anchor: torch.Tensor,
    K: torch.Tensor,
    hand_box: torch.Tensor,
    obj_box: torch.Tensor,
) -> tuple[VoxelSelection, VoxelSelection]:
    """Both branches' inference voxel searches (`model.search_points` settings).

    Args:
        cfg: the model's config.
        hand_fn: the hand SDF, (B,M,3) camera-frame points -> (B,M) metres.
        obj_fn: the object SDF.
        anchor: (B,3) grid centres, camera frame, metres.
        K: (B,3,3) crop intrinsics.
        hand_box: (B,4) hand boxes, xyxy crop pixels.
        obj_box: (B,4) object boxes.

    Returns:
        The hand and the object `VoxelSelection`, as `search_points` gives them. Dense search,
        or SDF functions without per-row evaluation: two `search_points` calls.
    """
    inf, pts = cfg.model.inference, cfg.model.points
    rows = all(getattr(f, "supports_row", False) for f in (hand_fn, obj_fn))
    if inf.sampling == "dense" or not rows:
        return (
            search_points(cfg, hand_fn, anchor, K, hand_box, "hand"),
            search_points(cfg, obj_fn, anchor, K, obj_box, "obj"),
        )
    bsz = anchor.shape[0]
    groups = coarse_to_fine_groups(
        _RowsOf(hand_fn, obj_fn, bsz),
        torch.cat([anchor, anchor]),
        torch.cat([K, K]),
        torch.cat([hand_box, obj_box]),
        [pts.num_hand] * bsz + [pts.num_obj] * bsz,
        res=inf.voxel_res,
        coarse_res=inf.coarse_res,
        sdf_scale=pts.sdf_scale,
        margin=inf.refine_margin,
        chunk=inf.chunk_points,
    )

    def selection(part: list[tuple[torch.Tensor, torch.Tensor, int]]) -> VoxelSelection:
        return VoxelSelection(
            torch.stack([p for p, _, _ in part]),
            torch.stack([s for _, s, _ in part]),
            sum(e for _, _, e in part),
        )

    return selection(groups[:bsz]), selection(groups[bsz:])
