"""Alignments and hand joint metrics, against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.transform import Rotation

from homae_model.metrics import (
    absolute_mje,
    align_root,
    align_scale_translation,
    fit_similarity,
    mje,
    pa_mje,
    per_joint_errors,
    procrustes_similarity,
    st_mje,
)


@pytest.fixture
def gt() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(scale=0.05, size=(21, 3)) + np.array([0.0, 0.0, 0.6])


def _rotation() -> np.ndarray:
    return Rotation.from_rotvec([0.3, -1.1, 0.7]).as_matrix()


def test_similarity_copy_has_zero_pa_mje(gt: np.ndarray) -> None:
    pred = 1.7 * gt @ _rotation().T + np.array([0.2, -0.1, 0.3])
    assert pa_mje(pred, gt) < 1e-9
    assert pa_mje(pred, gt, allow_reflection=False) < 1e-9
    assert mje(pred, gt) > 10.0  # the copy is far off without alignment
    t = fit_similarity(pred, gt)
    assert t.scale == pytest.approx(1 / 1.7, rel=1e-12)
    np.testing.assert_allclose(t.rotation, _rotation().T, atol=1e-12)


def test_reflection_only_aligned_when_allowed(gt: np.ndarray) -> None:
    mirror = np.diag([1.0, 1.0, -1.0])
    pred = 0.8 * gt @ mirror @ _rotation().T + 0.05
    assert pa_mje(pred, gt, allow_reflection=True) < 1e-9
    assert pa_mje(pred, gt, allow_reflection=False) > 1.0
    t = fit_similarity(pred, gt, allow_reflection=False)
    assert np.linalg.det(t.rotation) == pytest.approx(1.0)


def test_matches_scipy_orthogonal_procrustes_definition(gt: np.ndarray) -> None:
    """Toolkit align_w_scale: unit-Frobenius sets, scipy O(3) Procrustes, sum of sigmas."""
    rng = np.random.default_rng(1)
    pred = gt + rng.normal(scale=0.02, size=gt.shape)
    a, b = gt - gt.mean(0), pred - pred.mean(0)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    r, s = orthogonal_procrustes(a / na, b / nb)
    reference = (b / nb) @ r.T * s * na + gt.mean(0)
    np.testing.assert_allclose(procrustes_similarity(pred, gt), reference, atol=1e-12)


def test_batched_equals_per_sample(gt: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    preds = gt[None] + rng.normal(scale=0.01, size=(3, 21, 3))
    batched = procrustes_similarity(preds, np.broadcast_to(gt, preds.shape))
    for i in range(3):
        np.testing.assert_allclose(batched[i], procrustes_similarity(preds[i], gt), atol=1e-12)


def test_scale_translation_known_case() -> None:
    gt = np.zeros((21, 3))
    gt[9] = [0.1, 0.0, 0.0]  # middle MCP: bone length 0.1 m
    gt[5] = [0.0, 0.1, 0.0]
    offset = np.array([1.0, 2.0, 3.0])
    pred = 2.0 * gt + offset
    pred[5] += [0.0, 0.02, 0.0]  # 20 mm at twice the scale -> 10 mm after alignment
    aligned = align_scale_translation(pred, gt)
    np.testing.assert_allclose(aligned[0], gt[0], atol=1e-12)
    np.testing.assert_allclose(aligned[9], gt[9], atol=1e-12)
    errors = per_joint_errors(pred, gt, "scale_translation")
    assert errors[5] == pytest.approx(10.0)
    assert st_mje(pred, gt) == pytest.approx(10.0 / 21.0)


def test_root_relative_and_absolute(gt: np.ndarray) -> None:
    shift = np.array([0.003, 0.004, 0.0])  # 5 mm
    pred = gt + shift
    assert mje(pred, gt) == pytest.approx(0.0, abs=1e-9)
    assert absolute_mje(pred, gt) == pytest.approx(5.0)
    np.testing.assert_allclose(align_root(pred, gt), gt, atol=1e-12)
    pred[7] += [0.0, 0.0, 0.021]
    errors = per_joint_errors(pred, gt, "root")
    assert errors[7] == pytest.approx(21.0)
    assert mje(pred, gt) == pytest.approx(1.0)


def test_clear_errors(gt: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"pred_joints must have 21 points, got shape \(20, 3\)"):
        per_joint_errors(gt[:20], gt[:20])
    with pytest.raises(
        ValueError,
        match=r"pred_joints has shape \(21, 3\) but gt_joints has shape \(2, 21, 3\)",
    ):
        mje(gt, np.stack([gt, gt]))
    with pytest.raises(ValueError, match=r"shape mismatch: pred has shape \(5, 3\) but gt has"):
        procrustes_similarity(gt[:5], gt[:6])
    bad = gt.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        mje(bad, gt)
    with pytest.raises(ValueError, match="empty"):
        procrustes_similarity(np.zeros((0, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match="valid: none, root, procrustes, scale_translation"):
        per_joint_errors(gt, gt, "rigid")  # type: ignore[arg-type]


def test_wrist_rotation_alignment_recovers_a_global_rotation(gt: np.ndarray) -> None:
    """A hand turned about its wrist: the angle comes back and R-MJE is zero."""
    from homae_model.metrics.hand import wrist_rotation_alignment

    rot = _rotation()
    angle_true = np.degrees(np.linalg.norm(Rotation.from_matrix(rot).as_rotvec()))
    turned = (gt - gt[0]) @ rot.T + gt[0] + np.array([0.01, 0.0, -0.02])  # and moved
    angle, errs = wrist_rotation_alignment(turned, gt)
    assert float(angle) == pytest.approx(angle_true, abs=1e-6)
    assert errs.shape == (21,) and float(errs.max()) < 1e-9
    assert mje(turned, gt) > 10.0  # MJE sees the rotation, R-MJE does not
    # a bent finger is not a rotation: R-MJE keeps it; batched equals per sample
    bent = turned.copy()
    bent[8] += np.array([0.0, 0.02, 0.0])
    angles, errs_b = wrist_rotation_alignment(np.stack([turned, bent]), np.stack([gt, gt]))
    assert angles.shape == (2,) and errs_b.shape == (2, 21)
    assert float(errs_b[1].mean()) > 0.3
    np.testing.assert_allclose(errs_b[1], wrist_rotation_alignment(bent, gt)[1])
    # a mirrored hand is not aligned by a rotation (SO(3), no reflection)
    assert float(wrist_rotation_alignment(gt * np.array([-1.0, 1.0, 1.0]), gt)[1].mean()) > 1.0
