"""F-scores, vertex errors and PCK / AUC against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from homae_model.metrics import f_score, f_scores, pa_v_pe, pck_curve, pck_thresholds, v_pe
from homae_model.metrics.pck import pck_fractions

# Four points 0.1 m apart (far beyond every threshold used here).
SQUARE = np.array([[0.0, 0.0, 0.5], [0.1, 0.0, 0.5], [0.0, 0.1, 0.5], [0.1, 0.1, 0.5]])


def test_fscore_three_of_four() -> None:
    pred = SQUARE.copy()
    pred[3] += [0.0, 0.0, 0.010]  # one point 10 mm away from its GT point
    at5 = f_score(pred, SQUARE, 5.0)
    assert (at5.precision, at5.recall) == (0.75, 0.75)
    assert at5.fscore == pytest.approx(0.75)
    assert f_score(pred, SQUARE, 15.0).fscore == pytest.approx(1.0)
    # Strictly below the threshold, as HO3D's calculate_fscore. 2**-7 m is exact in binary, so
    # the distance equals the threshold bit for bit and must not count.
    flat = SQUARE - np.array([0.0, 0.0, 0.5])
    moved = flat.copy()
    moved[3, 2] = 2.0**-7
    assert f_score(moved, flat, 7.8125).fscore == pytest.approx(0.75)
    assert f_score(moved, flat, 7.8126).fscore == pytest.approx(1.0)


def test_fscore_precision_recall_asymmetric() -> None:
    pred = SQUARE[:2]  # two predicted points, both on GT points
    score = f_score(pred, SQUARE, 5.0)
    assert score.precision == 1.0
    assert score.recall == 0.5
    assert score.fscore == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert f_score(SQUARE + 1.0, SQUARE, 5.0).fscore == 0.0


def test_pa_fscore_and_vertex_errors() -> None:
    rng = np.random.default_rng(3)
    gt = rng.normal(scale=0.04, size=(778, 3)) + np.array([0.0, 0.0, 0.6])
    rot = Rotation.from_rotvec([0.0, 0.4, 0.0]).as_matrix()
    pred = 1.1 * (gt - gt.mean(0)) @ rot.T + gt.mean(0) + 0.01
    assert pa_v_pe(pred, gt) < 1e-9
    plain, aligned = f_scores(pred, gt), f_scores(pred, gt, procrustes=True)
    assert set(plain) == {5.0, 15.0}
    assert aligned[5.0].fscore == pytest.approx(1.0)
    assert plain[5.0].fscore < 1.0
    assert v_pe(gt + np.array([0.0, 0.003, 0.004]), gt) == pytest.approx(5.0)


def test_thresholds_are_linspace_inclusive() -> None:
    thr = pck_thresholds()
    assert thr.shape == (100,)
    assert thr[0] == 0.0 and thr[-1] == 50.0
    assert thr[1] == pytest.approx(50.0 / 99.0)


def test_constant_errors_auc() -> None:
    # 25 mm lies between thresholds 49 and 50 (24.75 / 25.25 mm): the curve steps there and
    # the trapezoid gives (49 + 0.5) / 99 = 0.5 exactly.
    assert pck_curve(np.full((4, 21), 25.0)).auc == pytest.approx(0.5, abs=1e-12)
    assert pck_curve(np.zeros(21)).auc == pytest.approx(1.0)
    assert pck_curve(np.full(21, 60.0)).auc == 0.0
    # Inclusive comparison: an error equal to the last threshold counts there only.
    last = pck_curve(np.full(21, 50.0))
    assert last.pck[-1] == 1.0 and last.pck[-2] == 0.0
    assert last.auc == pytest.approx(0.5 / 99.0)
    mixed = pck_curve(np.array([[0.0] * 21, [60.0] * 21]))
    assert mixed.auc == pytest.approx(0.5)
    np.testing.assert_allclose(mixed.pck, 0.5)


def test_pck_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        pck_fractions(np.zeros((0, 21)))
    with pytest.raises(ValueError, match="non-finite"):
        pck_fractions(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="negative"):
        pck_fractions(np.array([-1.0]))
