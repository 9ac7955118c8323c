"""PCK curves and their normalised area (AUC), as the toolkits' ``EvalUtil.get_measures``.

Facts followed: thresholds are ``np.linspace(0, 50 mm, 100)`` (both ends included, 100 points,
step 50/99 mm); a point is correct when ``error <= threshold`` (inclusive); a curve is computed
per keypoint (fraction of samples correct) and averaged over keypoints; the AUC is the
trapezoidal area under the curve divided by the threshold range, so it lies in ``[0, 1]``
(reports show it x100). With every keypoint visible the mean of per-keypoint AUCs equals the AUC
of the mean curve, which is what is computed here.

J-AUC / PA-J-AUC use the 21 joint errors, V-AUC / PA-V-AUC the 778 vertex errors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Lower end of the PCK threshold range (mm).
AUC_MIN_MM = 0.0
#: Upper end of the PCK threshold range (mm).
AUC_MAX_MM = 50.0
#: Number of thresholds (``linspace`` points, both ends included).
AUC_STEPS = 100


@dataclass(frozen=True)
class PCKCurve:
    """A PCK curve and its normalised area.

    Attributes:
        thresholds_mm: ``(T,)`` thresholds in mm.
        pck: ``(T,)`` fraction of correct points in ``[0, 1]`` at each threshold.
        auc: area under ``pck`` over the threshold range, normalised to ``[0, 1]``.
    """

    thresholds_mm: np.ndarray
    pck: np.ndarray
    auc: float


def pck_thresholds(
    min_mm: float = AUC_MIN_MM, max_mm: float = AUC_MAX_MM, steps: int = AUC_STEPS
) -> np.ndarray:
    """Thresholds of the PCK curve.

    Args:
        min_mm: first threshold (mm).
        max_mm: last threshold (mm), included.
        steps: number of thresholds (>= 2).

    Returns:
        ``(steps,)`` float64 thresholds in mm.

    Raises:
        ValueError: if ``steps < 2`` or ``max_mm <= min_mm``.
    """
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    if not max_mm > min_mm:
        raise ValueError(f"max_mm ({max_mm}) must be larger than min_mm ({min_mm})")
    return np.linspace(min_mm, max_mm, steps, dtype=np.float64)


def _check_errors(errors_mm: np.ndarray) -> np.ndarray:
    err = np.asarray(errors_mm, dtype=np.float64)
    if err.size == 0:
        raise ValueError(f"errors_mm is empty (shape {err.shape})")
    if err.ndim not in (1, 2):
        raise ValueError(f"errors_mm must have shape (K,) or (S, K), got {err.shape}")
    if not np.all(np.isfinite(err)):
        raise ValueError(f"errors_mm contains non-finite values (shape {err.shape})")
    if np.any(err < 0.0):
        raise ValueError("errors_mm contains negative values; errors are distances")
    return err


def pck_fractions(errors_mm: np.ndarray, thresholds_mm: np.ndarray | None = None) -> np.ndarray:
    """Fraction of correct points at each threshold, averaged over keypoints and samples.

    Args:
        errors_mm: ``(K,)`` errors of one sample or ``(S, K)`` errors of S samples, mm.
        thresholds_mm: ``(T,)`` thresholds; default :func:`pck_thresholds`.

    Returns:
        ``(T,)`` fractions in ``[0, 1]`` (``error <= threshold`` counts as correct).

    Raises:
        ValueError: empty, wrongly shaped, negative or non-finite errors.
    """
    err = _check_errors(errors_mm).reshape(-1)
    thr = pck_thresholds() if thresholds_mm is None else np.asarray(thresholds_mm, np.float64)
    # Sorted search instead of an (T, S*K) comparison: count of errors <= t.
    sorted_err = np.sort(err)
    counts = np.searchsorted(sorted_err, thr, side="right")
    return counts.astype(np.float64) / float(err.size)


def auc_from_fractions(pck: np.ndarray, thresholds_mm: np.ndarray | None = None) -> float:
    """Normalised trapezoidal area under a PCK curve.

    Args:
        pck: ``(T,)`` fractions.
        thresholds_mm: ``(T,)`` thresholds; default :func:`pck_thresholds`.

    Returns:
        Area divided by the threshold range, in ``[0, 1]``.

    Raises:
        ValueError: if the lengths differ.
    """
    thr = pck_thresholds() if thresholds_mm is None else np.asarray(thresholds_mm, np.float64)
    y = np.asarray(pck, dtype=np.float64)
    if y.shape != thr.shape:
        raise ValueError(f"shape mismatch: pck has shape {y.shape}, thresholds {thr.shape}")
    return float(np.trapezoid(y, thr) / (thr[-1] - thr[0]))


def pck_curve(errors_mm: np.ndarray, thresholds_mm: np.ndarray | None = None) -> PCKCurve:
    """PCK curve and AUC of a set of errors.

    Args:
        errors_mm: ``(K,)`` or ``(S, K)`` point errors in mm (joints or vertices).
        thresholds_mm: ``(T,)`` thresholds; default 0..50 mm, 100 points.

    Returns:
        The :class:`PCKCurve`.
    """
    thr = pck_thresholds() if thresholds_mm is None else np.asarray(thresholds_mm, np.float64)
    fractions = pck_fractions(errors_mm, thr)
    return PCKCurve(thresholds_mm=thr, pck=fractions, auc=auc_from_fractions(fractions, thr))
