"""Input checks and rigid / similarity alignments used by the evaluation metrics.

Conventions: point arrays are ``(N, 3)`` or batched ``(B, N, 3)``, float64, any unit (the
alignments are unit-free; the metric modules take metres). ``pred`` is always moved onto ``gt``.

Facts followed (read from the official toolkits, re-implemented here):

* FreiHAND / HO3D / DexYCB ``align_w_scale``: centre both sets, normalise each by its Frobenius
  norm, solve the orthogonal Procrustes problem with ``scipy.linalg.orthogonal_procrustes`` (no
  determinant correction, so reflections are allowed) and scale by the sum of singular values.
  That is the least-squares similarity transform over the orthogonal group O(3);
  :func:`procrustes_similarity` with ``allow_reflection=True`` gives the same result.
* HOISDF's ``rigid_align`` (Umeyama) flips the last singular direction when ``det(R) < 0``:
  rotations only, SO(3). :func:`procrustes_similarity` with ``allow_reflection=False``.
* HO3D ``align_sc_tr``: scale the prediction by the ratio of the wrist -> middle-MCP bone lengths
  (GT / pred; HO3D joint 4, project joint 9) and translate its wrist onto the GT wrist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from homae_model.hand.constants import MIDDLE_MCP, ROOT_JOINT

#: Middle-finger MCP joint in the project order (9); HO3D's ``align_sc_tr`` uses the same joint
#: (index 4 in HO3D's MANO order) for the scale bone.
MIDDLE_MCP_JOINT = MIDDLE_MCP

__all__ = [
    "MIDDLE_MCP_JOINT",
    "ROOT_JOINT",
    "SimilarityTransform",
    "align_root",
    "align_scale_translation",
    "best_rotation",
    "check_pair",
    "check_points",
    "fit_similarity",
    "procrustes_similarity",
    "translate_by_root",
]


def check_points(name: str, points: np.ndarray, num_points: int | None = None) -> np.ndarray:
    """Validate a point array and return it as float64.

    Args:
        name: argument name used in error messages.
        points: ``(N, 3)`` or ``(B, N, 3)`` array-like.
        num_points: expected ``N`` (``None``: any ``N >= 1``).

    Returns:
        The points as a float64 array of the same shape.

    Raises:
        ValueError: wrong rank, last axis not 3, empty, wrong ``N``, or non-finite values.
    """
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim not in (2, 3) or arr.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (N, 3) or (B, N, 3), got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if num_points is not None and arr.shape[-2] != num_points:
        raise ValueError(f"{name} must have {num_points} points, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN/inf), shape {arr.shape}")
    return arr


def check_pair(
    pred_name: str,
    pred: np.ndarray,
    gt_name: str,
    gt: np.ndarray,
    num_points: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a prediction / ground-truth pair with corresponding points.

    Args:
        pred_name: name of the predicted argument (for messages).
        pred: ``(N, 3)`` or ``(B, N, 3)``.
        gt_name: name of the ground-truth argument (for messages).
        gt: same shape as ``pred``.
        num_points: expected ``N`` (``None``: any).

    Returns:
        ``(pred, gt)`` as float64 arrays.

    Raises:
        ValueError: if either array is invalid or the shapes differ (both shapes are named).
    """
    p = check_points(pred_name, pred, num_points)
    g = check_points(gt_name, gt, num_points)
    if p.shape != g.shape:
        raise ValueError(
            f"shape mismatch: {pred_name} has shape {p.shape} but {gt_name} has shape {g.shape}"
        )
    return p, g


@dataclass(frozen=True)
class SimilarityTransform:
    """``x -> scale * x @ rotation.T + translation`` (applied to row vectors).

    Attributes:
        scale: ``()`` or ``(B,)`` positive scale.
        rotation: ``(3, 3)`` or ``(B, 3, 3)`` orthogonal matrix (``det = -1`` possible when
            reflections were allowed).
        translation: ``(3,)`` or ``(B, 3)``, in the unit of the points.
    """

    scale: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transform points.

        Args:
            points: ``(N, 3)`` (unbatched transform) or ``(B, N, 3)`` (batched transform).

        Returns:
            Transformed points, same shape.
        """
        pts = np.asarray(points, dtype=np.float64)
        scale = np.asarray(self.scale, dtype=np.float64)[..., None, None]
        rotated = pts @ np.swapaxes(self.rotation, -1, -2)
        return scale * rotated + self.translation[..., None, :]


def fit_similarity(
    pred: np.ndarray, gt: np.ndarray, allow_reflection: bool = True
) -> SimilarityTransform:
    """Least-squares similarity transform that maps ``pred`` onto ``gt``.

    Minimises ``sum_i |s R p_i + t - g_i|^2`` over scale ``s``, orthogonal ``R`` and ``t``.

    Args:
        pred: ``(N, 3)`` or ``(B, N, 3)`` predicted points.
        gt: same shape, corresponding ground-truth points.
        allow_reflection: ``True`` searches O(3) like the DexYCB / FreiHAND / HO3D toolkits
            (``scipy.linalg.orthogonal_procrustes``); ``False`` restricts to rotations, SO(3),
            like HOISDF's ``rigid_align``.

    Returns:
        The transform. A degenerate ``pred`` (all points equal) gets scale 0 and identity
        rotation, so it maps onto the GT centroid.

    Raises:
        ValueError: on invalid or mismatched inputs.
    """
    p, g = check_pair("pred", pred, "gt", gt)
    mu_p = p.mean(axis=-2, keepdims=True)
    mu_g = g.mean(axis=-2, keepdims=True)
    pc = p - mu_p
    gc = g - mu_g
    rotation, trace = best_rotation(pc, gc, allow_reflection)
    var_p = np.sum(pc * pc, axis=(-2, -1))
    safe = var_p > 0.0
    scale = np.where(safe, trace / np.where(safe, var_p, 1.0), 0.0)
    rotation = np.where(safe[..., None, None], rotation, np.eye(3))
    rotated_mu = (mu_p @ np.swapaxes(rotation, -1, -2))[..., 0, :]
    translation = mu_g[..., 0, :] - scale[..., None] * rotated_mu
    return SimilarityTransform(scale=scale, rotation=rotation, translation=translation)


def best_rotation(
    p: np.ndarray, g: np.ndarray, allow_reflection: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The orthogonal ``R`` minimising ``sum_i |R p_i - g_i|^2`` (no centring, no scale).

    Args:
        p: ``(N, 3)`` or ``(B, N, 3)`` points, already expressed about the pivot (a centroid,
            or a joint such as the wrist).
        g: same shape.
        allow_reflection: ``True`` searches O(3); ``False`` SO(3) (Kabsch / Umeyama).

    Returns:
        ``(3, 3)`` or ``(B, 3, 3)`` matrix, and the sum of the (sign-corrected) singular values
        of ``p^T g``, ``()`` or ``(B,)`` (the optimal scale's numerator).
    """
    # Cross-covariance H = P^T G = U S V^T; R = V D U^T maps p onto g.
    u, sigma, vt = np.linalg.svd(np.swapaxes(p, -1, -2) @ g)
    v = np.swapaxes(vt, -1, -2)
    ut = np.swapaxes(u, -1, -2)
    signs = np.ones_like(sigma)
    if not allow_reflection:
        det = np.linalg.det(v @ ut)
        signs[..., -1] = np.where(det < 0.0, -1.0, 1.0)
    return (v * signs[..., None, :]) @ ut, np.sum(sigma * signs, axis=-1)


def procrustes_similarity(
    pred: np.ndarray, gt: np.ndarray, allow_reflection: bool = True
) -> np.ndarray:
    """Align ``pred`` onto ``gt`` with the optimal scale, rotation and translation (PA-*).

    Args:
        pred: ``(N, 3)`` or ``(B, N, 3)`` predicted points (any unit).
        gt: same shape, ground truth.
        allow_reflection: default ``True`` matches the official toolkits (reflections allowed,
            O(3)); ``False`` is HOISDF's variant (proper rotations only).

    Returns:
        Aligned prediction, same shape and unit as ``pred``.

    Raises:
        ValueError: on invalid or mismatched inputs.
    """
    transform = fit_similarity(pred, gt, allow_reflection=allow_reflection)
    return transform.apply(np.asarray(pred, dtype=np.float64))


def align_scale_translation(
    pred: np.ndarray,
    gt: np.ndarray,
    root: int = ROOT_JOINT,
    scale_joint: int = MIDDLE_MCP_JOINT,
) -> np.ndarray:
    """HO3D ``align_sc_tr`` (ST-MJE): bone-length scale, then wrist onto GT wrist.

    The prediction is scaled by ``|gt[scale_joint] - gt[root]| / |pred[scale_joint] -
    pred[root]|`` and translated so its root equals the GT root. No rotation, so no reflection
    question arises. As in the toolkit, a zero-length predicted bone is not divided by (the
    prediction is then scaled by the GT bone length alone).

    Args:
        pred: ``(21, 3)`` or ``(B, 21, 3)`` predicted joints in the project order.
        gt: same shape, ground truth.
        root: root joint index (project order: 0, the wrist).
        scale_joint: joint defining the scale bone (project order: 9, middle MCP; HO3D order: 4).

    Returns:
        Aligned prediction, same shape and unit as ``pred``.

    Raises:
        ValueError: on invalid or mismatched inputs or out-of-range joint indices.
    """
    p, g = check_pair("pred", pred, "gt", gt)
    n = p.shape[-2]
    for label, idx in (("root", root), ("scale_joint", scale_joint)):
        if not 0 <= idx < n:
            raise ValueError(f"{label}={idx} is out of range for {n} joints")
    s_pred = np.linalg.norm(p[..., scale_joint, :] - p[..., root, :], axis=-1)
    s_gt = np.linalg.norm(g[..., scale_joint, :] - g[..., root, :], axis=-1)
    factor = np.where(s_pred > 0.0, s_gt / np.where(s_pred > 0.0, s_pred, 1.0), s_gt)
    scaled = p * factor[..., None, None]
    return scaled - scaled[..., root : root + 1, :] + g[..., root : root + 1, :]


def align_root(pred: np.ndarray, gt: np.ndarray, root: int = ROOT_JOINT) -> np.ndarray:
    """Translate ``pred`` so that its root point coincides with the GT root (root-relative).

    Errors of the result against ``gt`` equal the errors of the root-relative sets
    ``pred - pred[root]`` vs ``gt - gt[root]`` (DexYCB ``root-relative`` protocol).

    Args:
        pred: ``(N, 3)`` or ``(B, N, 3)`` predicted points.
        gt: same shape, ground truth.
        root: index of the root point.

    Returns:
        Translated prediction, same shape as ``pred``.

    Raises:
        ValueError: on invalid or mismatched inputs or an out-of-range root.
    """
    p, g = check_pair("pred", pred, "gt", gt)
    if not 0 <= root < p.shape[-2]:
        raise ValueError(f"root={root} is out of range for {p.shape[-2]} points")
    return p - p[..., root : root + 1, :] + g[..., root : root + 1, :]


def translate_by_root(points: np.ndarray, pred_root: np.ndarray, gt_root: np.ndarray) -> np.ndarray:
    """Shift a point set by ``gt_root - pred_root`` (e.g. mesh vertices by the joint root).

    Args:
        points: ``(N, 3)`` or ``(B, N, 3)`` predicted points (e.g. 778 MANO vertices).
        pred_root: ``(3,)`` or ``(B, 3)`` predicted root (e.g. predicted wrist joint).
        gt_root: same shape as ``pred_root``, ground-truth root.

    Returns:
        Shifted points, same shape as ``points``.
    """
    pts = check_points("points", points)
    shift = np.asarray(gt_root, dtype=np.float64) - np.asarray(pred_root, dtype=np.float64)
    if shift.shape != (*pts.shape[:-2], 3):
        raise ValueError(
            f"shape mismatch: points has shape {pts.shape} but roots have shape {shift.shape}"
        )
    return pts + shift[..., None, :]
