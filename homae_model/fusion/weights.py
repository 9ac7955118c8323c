"""How much a view is trusted: its score and how it sees the target (documented terms).

A view's scalar weight is

    w = score × (reference_depth_m / z)² × min(1, box_diagonal_px / min_box_px)

- score: the per-camera estimator's confidence in [0, 1];
- distance: z is the target's depth along the camera's optical axis (m); pixel errors map to
  metric errors growing with z, so the variance grows with z² (a target behind the camera,
  z <= 0, gets weight 0);
- box size: a box with a diagonal under `min_box_px` pixels means few pixels on the target
  (far away, cut by the image border or mostly hidden), and its view counts proportionally less.

On top of the scalar weight, each view's error is anisotropic: a single camera places a target
well across its viewing ray and poorly along it. The information matrix of view k for a point
seen along the unit ray d is

    A_k = w_k (I - (1 - 1/ρ²) d dᵀ),     ρ = depth_ratio,

so two cameras looking from different directions correct each other's depth.
"""

from __future__ import annotations

import numpy as np

from homae_model.fusion.settings import FusionSettings


def view_weight(score: float, box: np.ndarray, depth_m: float, settings: FusionSettings) -> float:
    """Scalar weight of one view (see the module docstring).

    Args:
        score: confidence in [0, 1].
        box: (4,) x_min, y_min, x_max, y_max in the camera's image, pixels.
        depth_m: target depth along the camera's optical axis, metres.
        settings: fusion settings.

    Returns:
        w >= 0; 0 for non-finite inputs, a score under `min_score` or a target behind the camera.
    """
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if not (np.isfinite(score) and np.isfinite(depth_m) and b.size == 4 and np.isfinite(b).all()):
        return 0.0
    if score < settings.min_score or depth_m <= 1e-3:
        return 0.0
    diagonal = float(np.hypot(max(b[2] - b[0], 0.0), max(b[3] - b[1], 0.0)))
    size = min(1.0, diagonal / settings.min_box_px)
    return float(score) * (settings.reference_depth_m / depth_m) ** 2 * size


def ray_information(rays: np.ndarray, depth_ratio: float) -> np.ndarray:
    """Unit-weight information matrices I - (1 - 1/ρ²) d dᵀ of rays (..., 3) -> (..., 3, 3)."""
    d = np.asarray(rays, dtype=np.float64)
    eye = np.broadcast_to(np.eye(3), (*d.shape[:-1], 3, 3))
    return eye - (1.0 - 1.0 / depth_ratio**2) * d[..., :, None] * d[..., None, :]


def ray_discount(rays: np.ndarray, residuals: np.ndarray, depth_ratio: float) -> np.ndarray:
    """Length of residuals (..., 3) with their component along the rays (..., 3) divided by ρ.

    Returns:
        (...,) metres: the Euclidean length for a residual across the ray, 1/ρ of it along.
    """
    d = np.asarray(rays, dtype=np.float64)
    r = np.asarray(residuals, dtype=np.float64)
    along = np.sum(r * d, axis=-1, keepdims=True)
    return np.linalg.norm(r - (1.0 - 1.0 / depth_ratio) * along * d, axis=-1)
