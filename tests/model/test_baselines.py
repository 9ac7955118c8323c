"""The evaluation baselines: constant hand and mean object pose, placed at the true root."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from homae_model.evaluation.baselines import (
    GroundTruthFrame,
    baseline_means,
    baseline_section,
    chordal_mean_rotation,
    measure,
)
from homae_model.metrics import ObjectPose, add_s, mean_corner_error

POINTS = np.random.default_rng(0).uniform(-0.04, 0.04, size=(50, 3))


def _model(name: str) -> tuple[np.ndarray, None]:
    assert name == "box"
    return POINTS, None


def _frame(rng: np.random.Generator, rel: np.ndarray, rot: np.ndarray, offset) -> GroundTruthFrame:
    root = rng.uniform([-0.1, -0.1, 0.4], [0.1, 0.1, 0.7])
    return GroundTruthFrame(rel + root, rot, root + np.asarray(offset), "box")


def test_chordal_mean_rotation() -> None:
    r0 = Rotation.from_rotvec([0.3, -1.0, 0.4])
    tilt = Rotation.from_rotvec([0.0, 0.0, 0.5])
    pair = np.stack([(r0 * tilt).as_matrix(), (r0 * tilt.inv()).as_matrix()])
    np.testing.assert_allclose(chordal_mean_rotation(pair), r0.as_matrix(), atol=1e-12)
    many = Rotation.random(20, random_state=1).as_matrix()
    mean = chordal_mean_rotation(many)
    np.testing.assert_allclose(mean @ mean.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(mean) == pytest.approx(1.0)
    # It is the rotation closest to the mean matrix (Frobenius).
    m = many.mean(axis=0)
    others = Rotation.random(200, random_state=2).as_matrix()
    assert np.linalg.norm(mean - m) <= np.linalg.norm(others - m, axis=(1, 2)).min()
    with pytest.raises(ValueError, match="N >= 1"):
        chordal_mean_rotation(np.zeros((0, 3, 3)))


def test_constant_labels_give_zero_and_known_errors() -> None:
    rng = np.random.default_rng(3)
    rel = rng.normal(0, 0.03, (21, 3))
    rel[0] = 0.0
    rot = Rotation.from_rotvec([0.2, 0.1, -0.4]).as_matrix()
    frames = [_frame(rng, rel, rot, [0.05, 0.0, 0.02]) for _ in range(4)]
    means = baseline_means(frames)
    assert means.frames == 4
    np.testing.assert_allclose(means.root_relative_joints, rel, atol=1e-12)
    np.testing.assert_allclose(means.obj_offset, [0.05, 0.0, 0.02], atol=1e-12)
    res = measure(means, frames, _model)
    for name in ("MJE", "PA-MJE", "OCE", "MCE", "ADD-S", "OME"):
        assert res.metrics[name] == pytest.approx(0.0, abs=1e-9), name
    assert res.metrics["V-PE"] is None  # no mesh: not a hand-mesh baseline

    # Two hands differing by +-d on one joint: the mean sits in between, d / 21 MJE each.
    d = np.zeros((21, 3))
    d[5] = [0.0, 0.021, 0.0]
    rot2 = Rotation.from_rotvec([0.0, 0.0, 0.6]).as_matrix()
    two = [_frame(rng, rel + d, rot, [0.0, 0.0, 0.0]), _frame(rng, rel - d, rot2, [0.02, 0, 0])]
    means = baseline_means(two)
    res = measure(means, two, _model)
    assert res.metrics["MJE"] == pytest.approx(1.0)  # 21 mm / 21 joints
    # Object: the chordal mean of the two rotations, 10 mm from each true offset.
    mean_rot = chordal_mean_rotation(np.stack([rot, rot2]))
    expected_oce = 10.0
    assert res.metrics["OCE"] == pytest.approx(expected_oce)
    adds, adds_h, mce_h = [], [], []
    for f in two:
        pred = ObjectPose.create(mean_rot, f.joints[0] + means.obj_offset)
        gt = ObjectPose.create(f.obj_rot, f.obj_trans)
        adds.append(add_s(pred, gt, POINTS))
        adds_h.append(add_s(pred, gt, POINTS, over="pred"))
        mce_h.append(mean_corner_error(pred, gt, None, POINTS, "camera_aabb"))
    assert res.metrics["ADD-S"] == pytest.approx(np.mean(adds))
    assert res.extras["ADD-S (HOISDF)"] == pytest.approx(np.mean(adds_h))
    assert res.extras["MCE (HOISDF)"] == pytest.approx(np.mean(mce_h))

    section = baseline_section(means, {"gt-anchored": res}, {"frames": "the evaluated frames"})
    assert section["counts"] == {"gt-anchored": 2}
    assert section["metrics"]["gt-anchored"]["MJE"] == pytest.approx(1.0)
    assert section["metrics"]["gt-anchored"]["V-AUC"] is None
    assert np.asarray(section["means"]["obj_rotation"]).shape == (3, 3)
    with pytest.raises(ValueError, match="no labelled frames"):
        baseline_means([])


def test_procrustes_mean_hand_is_the_constant_a_rotating_hand_really_has():
    # one articulated hand seen in many orientations: its Procrustes mean is that hand (PA-MJE
    # 0), while the camera-frame mean of the root-relative joints is a shrunken blob
    from scipy.spatial.transform import Rotation

    from homae_model.evaluation.baselines import procrustes_mean_hand
    from homae_model.metrics.hand import pa_mje

    rng = np.random.default_rng(0)
    hand = rng.normal(0, 0.04, (21, 3))
    hand -= hand[0]
    rots = Rotation.random(50, random_state=1).as_matrix()
    hands = np.einsum("nij,kj->nki", rots, hand) + rng.normal(0, 0.1, (50, 1, 3))
    mean = procrustes_mean_hand(hands)
    const = np.broadcast_to(mean, hands.shape) + hands[:, :1]
    assert pa_mje(const, hands, allow_reflection=False) < 1e-3
    blob = (hands - hands[:, :1]).mean(axis=0)
    assert pa_mje(np.broadcast_to(blob, hands.shape) + hands[:, :1], hands) > 5.0
