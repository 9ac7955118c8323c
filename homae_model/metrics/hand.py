"""Hand joint metrics: MJE, PA-MJE, ST-MJE, absolute MJE and per-joint errors.

Inputs are 21 joints in the project order (wrist, thumb 1-4, index, middle, ring, pinky) in
metres, ``(21, 3)`` or batched ``(B, 21, 3)``; outputs are millimetres. Means are taken over all
joints of all samples, which equals the toolkits' ``EvalUtil`` mean of per-joint means when every
joint is visible (always the case for DexYCB / HO3D 3D labels).

Protocols (DexYCB ``hpe_eval.py`` / HO3D ``eval.py``):

* MJE: root-relative (wrist subtracted from both sets; DexYCB ``root-relative``).
* absolute MJE: no alignment (DexYCB ``absolute``; HO3D's "mean joint error").
* PA-MJE: after the similarity Procrustes alignment (reflections allowed by default, as the
  toolkits; ``allow_reflection=False`` gives HOISDF's variant).
* ST-MJE: after HO3D's scale-translation alignment (bone wrist -> middle MCP).

Diagnostic (not in the toolkits): `wrist_rotation_alignment`, the rotation about the wrist that
best maps the predicted root-relative hand onto the GT one. Its angle is the error of the hand's
global orientation; the joint error after it (R-MJE) is what MJE would be with that orientation
right (no scale, no translation beyond the wrist).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from homae_model.hand.constants import NUM_JOINTS
from homae_model.metrics.alignment import (
    MIDDLE_MCP_JOINT,
    ROOT_JOINT,
    align_root,
    align_scale_translation,
    best_rotation,
    check_pair,
    procrustes_similarity,
)

#: Metres -> millimetres.
M_TO_MM = 1000.0

Alignment = Literal["none", "root", "procrustes", "scale_translation"]
ALIGNMENTS: tuple[str, ...] = ("none", "root", "procrustes", "scale_translation")


def point_errors_mm(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean distance between corresponding points, in millimetres.

    Args:
        pred: ``(N, 3)`` or ``(B, N, 3)`` metres.
        gt: same shape, metres.

    Returns:
        ``(N,)`` or ``(B, N)`` errors in mm.

    Raises:
        ValueError: on invalid or mismatched inputs.
    """
    p, g = check_pair("pred", pred, "gt", gt)
    return np.linalg.norm(p - g, axis=-1) * M_TO_MM


def align_joints(
    pred: np.ndarray,
    gt: np.ndarray,
    alignment: Alignment = "root",
    allow_reflection: bool = True,
) -> np.ndarray:
    """Apply one of the evaluation alignments to predicted joints.

    Args:
        pred: ``(21, 3)`` or ``(B, 21, 3)`` predicted joints, metres.
        gt: same shape, ground truth.
        alignment: ``"none"``, ``"root"`` (wrist onto GT wrist), ``"procrustes"`` (similarity)
            or ``"scale_translation"`` (HO3D ``align_sc_tr``).
        allow_reflection: used by ``"procrustes"`` only (default ``True`` = toolkits).

    Returns:
        Aligned prediction, same shape, metres.

    Raises:
        ValueError: unknown alignment (lists the valid ones) or invalid inputs.
    """
    p, g = check_pair("pred_joints", pred, "gt_joints", gt, NUM_JOINTS)
    if alignment == "none":
        return p
    if alignment == "root":
        return align_root(p, g, ROOT_JOINT)
    if alignment == "procrustes":
        return procrustes_similarity(p, g, allow_reflection=allow_reflection)
    if alignment == "scale_translation":
        return align_scale_translation(p, g, ROOT_JOINT, MIDDLE_MCP_JOINT)
    raise ValueError(f"unknown alignment {alignment!r}; valid: {', '.join(ALIGNMENTS)}")


def per_joint_errors(
    pred: np.ndarray,
    gt: np.ndarray,
    alignment: Alignment = "root",
    allow_reflection: bool = True,
) -> np.ndarray:
    """Per-joint errors after an alignment.

    Args:
        pred: ``(21, 3)`` or ``(B, 21, 3)`` predicted joints, metres.
        gt: same shape, ground truth, metres.
        alignment: see :func:`align_joints`.
        allow_reflection: see :func:`align_joints`.

    Returns:
        ``(21,)`` or ``(B, 21)`` errors in mm.
    """
    aligned = align_joints(pred, gt, alignment, allow_reflection)
    return point_errors_mm(aligned, gt)


def mje(pred: np.ndarray, gt: np.ndarray) -> float:
    """Root-relative mean joint error (DexYCB MJE / MPJPE ``root-relative``).

    Args:
        pred: ``(21, 3)`` or ``(B, 21, 3)`` metres.
        gt: same shape, metres.

    Returns:
        Mean error in mm.
    """
    return float(per_joint_errors(pred, gt, "root").mean())


def absolute_mje(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean joint error without any alignment (DexYCB ``absolute``).

    Args:
        pred: ``(21, 3)`` or ``(B, 21, 3)`` metres, camera frame.
        gt: same shape, metres.

    Returns:
        Mean error in mm.
    """
    return float(per_joint_errors(pred, gt, "none").mean())


def pa_mje(pred: np.ndarray, gt: np.ndarray, allow_reflection: bool = True) -> float:
    """Procrustes-aligned mean joint error (PA-MJE).

    Args:
        pred: ``(21, 3)`` or ``(B, 21, 3)`` metres.
        gt: same shape, metres.
        allow_reflection: ``True`` (default) like the DexYCB / HO3D toolkits; ``False`` like
            HOISDF (rotations only).

    Returns:
        Mean error in mm.
    """
    return float(per_joint_errors(pred, gt, "procrustes", allow_reflection).mean())


def st_mje(pred: np.ndarray, gt: np.ndarray) -> float:
    """Scale-translation aligned mean joint error (HO3D ST-MJE, ``align_sc_tr``).

    Args:
        pred: ``(21, 3)`` or ``(B, 21, 3)`` metres, project joint order.
        gt: same shape, metres.

    Returns:
        Mean error in mm.
    """
    return float(per_joint_errors(pred, gt, "scale_translation").mean())


def wrist_rotation_alignment(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rotation about the wrist that best aligns ``pred`` with ``gt`` (Kabsch, SO(3)).

    Args:
        pred: ``(21, 3)`` or ``(B, 21, 3)`` metres.
        gt: same shape, metres.

    Returns:
        The rotation's angle in degrees, ``()`` or ``(B,)`` (the global orientation error),
        and the per-joint errors in mm after it, ``(21,)`` or ``(B, 21)`` (their mean: R-MJE).

    Raises:
        ValueError: on invalid or mismatched inputs.
    """
    p, g = check_pair("pred", pred, "gt", gt, NUM_JOINTS)
    p = p - p[..., ROOT_JOINT : ROOT_JOINT + 1, :]
    g = g - g[..., ROOT_JOINT : ROOT_JOINT + 1, :]
    rot, _ = best_rotation(p, g, allow_reflection=False)
    cos = np.clip((np.trace(rot, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    aligned = p @ np.swapaxes(rot, -1, -2)
    return np.degrees(np.arccos(cos)), np.linalg.norm(aligned - g, axis=-1) * M_TO_MM
