"""Robust weighted means: anisotropic point fusion, chordal rotation mean, outlier rejection.

Shapes: K views, J points per view. Coordinates in the world frame, metres.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from homae_model.fusion.weights import ray_discount, ray_information


def view_rays(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Unit rays from each view's camera centre to each of its points.

    Args:
        points: (K, J, 3) world points.
        centres: (K, 3) camera centres.

    Returns:
        (K, J, 3) unit vectors (the +z axis where a point sits on the centre).
    """
    offset = np.asarray(points, dtype=np.float64) - np.asarray(centres, dtype=np.float64)[:, None]
    norm = np.linalg.norm(offset, axis=-1, keepdims=True)
    fallback = np.broadcast_to(np.array([0.0, 0.0, 1.0]), offset.shape)
    return np.where(norm > 1e-9, offset / np.maximum(norm, 1e-12), fallback)


def weighted_points(
    points: np.ndarray, rays: np.ndarray, weights: np.ndarray, depth_ratio: float
) -> np.ndarray:
    """Information-weighted mean of K estimates of J points (one linear solve per point).

    x_j = (Σ_k W_kj A_kj)⁻¹ Σ_k W_kj A_kj x_kj, A = I - (1 - 1/ρ²) d dᵀ.

    Args:
        points: (K, J, 3) estimates.
        rays: (K, J, 3) unit viewing rays.
        weights: (K,) or (K, J) non-negative weights, positive sum for every point.
        depth_ratio: ρ >= 1.

    Returns:
        (J, 3) fused points.
    """
    p = np.asarray(points, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        w = np.broadcast_to(w[:, None], p.shape[:2])
    info = ray_information(rays, depth_ratio) * w[..., None, None]  # (K, J, 3, 3)
    lhs = info.sum(axis=0)  # (J, 3, 3)
    rhs = np.einsum("kjab,kjb->ja", info, p)
    return np.linalg.solve(lhs, rhs[..., None])[..., 0]


def fuse_points(
    points: np.ndarray,
    centres: np.ndarray,
    weights: np.ndarray,
    depth_ratio: float,
    huber_m: float,
    iterations: int,
) -> np.ndarray:
    """Robust anisotropic weighted mean of K views of J points.

    Starts from `weighted_points`, then reweights each (view, point) by the Huber factor
    min(1, huber_m / r), r its ray-discounted residual to the current mean, `iterations` times.

    Args:
        points: (K, J, 3) world points of K views.
        centres: (K, 3) the views' camera centres.
        weights: (K,) positive view weights.
        depth_ratio: ρ (see `FusionSettings.depth_ratio`).
        huber_m: Huber scale, metres.
        iterations: reweighting rounds.

    Returns:
        (J, 3) fused points; a single view is returned unchanged.
    """
    p = np.asarray(points, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if p.shape[0] == 1:
        return p[0].copy()
    rays = view_rays(p, centres)
    fused = weighted_points(p, rays, w, depth_ratio)
    for _ in range(iterations):
        r = ray_discount(rays, p - fused[None], depth_ratio)  # (K, J)
        factor = np.minimum(1.0, huber_m / np.maximum(r, 1e-12))
        fused = weighted_points(p, rays, w[:, None] * factor, depth_ratio)
    return fused


def mean_rotation(rotations: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted chordal L2 mean of rotations: the rotation nearest (Frobenius) to Σ w_k R_k.

    Args:
        rotations: (K, 3, 3) rotation matrices.
        weights: (K,) non-negative weights with a positive sum.

    Returns:
        (3, 3) rotation (SVD projection of the weighted sum onto SO(3)).
    """
    M = np.einsum("k,kab->ab", np.asarray(weights, dtype=np.float64), rotations)
    U, _, Vt = np.linalg.svd(M)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt)) or 1.0])
    return U @ D @ Vt


def rotation_angle_deg(R_a: np.ndarray, R_b: np.ndarray) -> float:
    """Angle (degrees) of the relative rotation R_aᵀ R_b."""
    c = (np.trace(R_a.T @ R_b) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def reject_outliers(
    num_views: int, disagreement: Callable[[int, list[int]], float]
) -> tuple[list[int], list[int]]:
    """Drop the views that disagree with the others.

    `disagreement(k, others)` compares view k with the fused estimate of the views `others`
    and returns a normalised score: <= 1 agrees, > 1 disagrees beyond the threshold. While
    three or more views remain and one disagrees, the view with the largest score is dropped
    and the scores recomputed. Two views are never split here: geometry alone cannot say
    which of two is wrong (dropping the lighter one threw away the better view whenever the
    weights misjudged it), a gross mismatch has already been split off by the association
    gate, and the Huber reweighting of the fused mean bounds what a moderate one can pull.

    Args:
        num_views: K, the views' count (indices 0..K-1).
        disagreement: normalised disagreement of view k with the views in `others`.

    Returns:
        (kept indices, dropped indices), both in ascending order.
    """
    kept = list(range(num_views))
    dropped: list[int] = []
    while len(kept) >= 3:
        scores = [disagreement(k, [o for o in kept if o != k]) for k in kept]
        if max(scores) <= 1.0:
            break
        worst = kept[int(np.argmax(scores))]
        kept.remove(worst)
        dropped.append(worst)
    return kept, sorted(dropped)
