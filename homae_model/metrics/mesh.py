"""Hand mesh metrics: V-PE, PA-V-PE and F-scores (Table II).

Inputs are vertex sets in metres (MANO: 778 vertices), outputs mm or fractions in ``[0, 1]``.

Facts followed (HO3D / FreiHAND ``eval.py``):

* PA-V-PE aligns the predicted vertices onto the GT vertices with their own similarity Procrustes
  (``align_w_scale(verts, verts_pred)``: reflections allowed by default, as the toolkits).
* ``calculate_fscore``: for every GT point the distance to the closest predicted point, and for
  every predicted point the distance to the closest GT point; a point counts when that distance
  is strictly below the threshold; F = 2 P R / (P + R), 0 when both are 0. Thresholds 5 and 15 mm.
  Here precision = fraction of predicted points near GT, recall = fraction of GT points near the
  prediction (the toolkit's variable names are swapped; F is symmetric, so F is identical).
* V-PE / F@ (non-PA) in the report are computed on root-aligned meshes (the predicted mesh is
  shifted by the joint-root offset), as the DexYCB hand-mesh protocol of HandOccNet / H2ONet;
  that shift is applied by the caller (:mod:`homae_model.evaluation.accumulator`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from homae_model.metrics.alignment import check_pair, check_points, procrustes_similarity
from homae_model.metrics.hand import M_TO_MM, point_errors_mm

#: F-score thresholds of Table II (mm).
F_THRESHOLDS_MM: tuple[float, ...] = (5.0, 15.0)


@dataclass(frozen=True)
class FScore:
    """F-score of two point sets at one threshold.

    Attributes:
        threshold_mm: distance threshold (mm).
        fscore: harmonic mean of precision and recall, ``[0, 1]``.
        precision: fraction of predicted points closer than the threshold to the GT set.
        recall: fraction of GT points closer than the threshold to the predicted set.
    """

    threshold_mm: float
    fscore: float
    precision: float
    recall: float


def vertex_errors(
    pred: np.ndarray, gt: np.ndarray, procrustes: bool = False, allow_reflection: bool = True
) -> np.ndarray:
    """Per-vertex errors, optionally after similarity Procrustes alignment.

    Args:
        pred: ``(V, 3)`` or ``(B, V, 3)`` predicted vertices, metres.
        gt: same shape, ground truth, metres.
        procrustes: align ``pred`` onto ``gt`` first with the similarity Procrustes.
        allow_reflection: Procrustes over O(3) (default, as the toolkits) or SO(3) (HOISDF).

    Returns:
        ``(V,)`` or ``(B, V)`` errors in mm.
    """
    p, g = check_pair("pred_verts", pred, "gt_verts", gt)
    if procrustes:
        p = procrustes_similarity(p, g, allow_reflection=allow_reflection)
    return point_errors_mm(p, g)


def v_pe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean vertex position error (V-PE) without further alignment.

    Args:
        pred: ``(V, 3)`` or ``(B, V, 3)`` metres (root-align beforehand for the paper protocol).
        gt: same shape, metres.

    Returns:
        Mean error in mm.
    """
    return float(vertex_errors(pred, gt).mean())


def pa_v_pe(pred: np.ndarray, gt: np.ndarray, allow_reflection: bool = True) -> float:
    """Procrustes-aligned mean vertex position error (PA-V-PE).

    Args:
        pred: ``(V, 3)`` or ``(B, V, 3)`` metres.
        gt: same shape, metres.
        allow_reflection: ``True`` (default) like the toolkits; ``False`` rotations only.

    Returns:
        Mean error in mm.
    """
    return float(vertex_errors(pred, gt, True, allow_reflection).mean())


def f_score(pred: np.ndarray, gt: np.ndarray, threshold_mm: float) -> FScore:
    """F-score between two point sets (HO3D ``calculate_fscore``), nearest neighbours by cKDTree.

    Args:
        pred: ``(N, 3)`` predicted points, metres (N may differ from M).
        gt: ``(M, 3)`` ground-truth points, metres.
        threshold_mm: distance threshold in mm (strict ``<``).

    Returns:
        The :class:`FScore`.

    Raises:
        ValueError: invalid points or a non-positive threshold.
    """
    p = check_points("pred", pred)
    g = check_points("gt", gt)
    if p.ndim != 2 or g.ndim != 2:
        raise ValueError(f"f_score takes unbatched (N, 3) sets, got {p.shape} and {g.shape}")
    if not threshold_mm > 0.0:
        raise ValueError(f"threshold_mm must be > 0, got {threshold_mm}")
    return _fscore_from_distances(*_nearest_distances(p, g), threshold_mm)


def _nearest_distances(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closest-point distances (metres): each predicted point to GT, each GT point to pred."""
    d_pred_to_gt, _ = cKDTree(gt).query(pred, k=1)
    d_gt_to_pred, _ = cKDTree(pred).query(gt, k=1)
    return d_pred_to_gt, d_gt_to_pred


def _fscore_from_distances(
    d_pred_to_gt: np.ndarray, d_gt_to_pred: np.ndarray, threshold_mm: float
) -> FScore:
    th = threshold_mm / M_TO_MM
    precision = float(np.mean(d_pred_to_gt < th))
    recall = float(np.mean(d_gt_to_pred < th))
    denom = precision + recall
    fscore = 2.0 * precision * recall / denom if denom > 0.0 else 0.0
    return FScore(
        threshold_mm=float(threshold_mm), fscore=fscore, precision=precision, recall=recall
    )


def f_scores(
    pred: np.ndarray,
    gt: np.ndarray,
    thresholds_mm: Sequence[float] = F_THRESHOLDS_MM,
    procrustes: bool = False,
    allow_reflection: bool = True,
) -> dict[float, FScore]:
    """F-scores at several thresholds, optionally after Procrustes alignment (PA-F).

    Args:
        pred: ``(V, 3)`` predicted vertices, metres.
        gt: ``(V, 3)`` ground truth (same count when ``procrustes``), metres.
        thresholds_mm: thresholds in mm.
        procrustes: align ``pred`` onto ``gt`` with the similarity Procrustes first.
        allow_reflection: Procrustes over O(3) (default, as the toolkits) or SO(3) (HOISDF).

    Returns:
        ``{threshold_mm: FScore}``.
    """
    p = check_points("pred", pred)
    if procrustes:
        p, g = check_pair("pred", pred, "gt", gt)
        p = procrustes_similarity(p, g, allow_reflection=allow_reflection)
    else:
        g = check_points("gt", gt)
    if p.ndim != 2 or g.ndim != 2:
        raise ValueError(f"f_scores takes unbatched (N, 3) sets, got {p.shape} and {g.shape}")
    for t in thresholds_mm:
        if not t > 0.0:
            raise ValueError(f"thresholds_mm must be > 0, got {t}")
    distances = _nearest_distances(p, g)
    return {float(t): _fscore_from_distances(*distances, t) for t in thresholds_mm}
