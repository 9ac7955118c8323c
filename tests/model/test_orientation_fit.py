"""The hand's global orientation from 2D keypoints (`hand.orientation_fit`) and its use in the
Predictor (`keypoint_orientation`, `model.inference.keypoint_net`)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from homae_model.checkpoint import save_checkpoint
from homae_model.config import load_config
from homae_model.detector.side_net import SideNet, SideNetSpec, palm_facing, save_side_net
from homae_model.geometry.rotations import axis_angle_to_matrix_np
from homae_model.hand.orientation_fit import (
    FitSolution,
    choose_solution,
    cube_rotations,
    fit_wrist_rotation,
    palm_faces_camera,
    rotate_about_root,
)
from homae_model.inference import Predictor
from homae_model.keypoint_orientation import KeypointOrientation, resolve_keypoint_net
from homae_model.model import HomaeModel

TINY = Path(__file__).resolve().parents[2] / "config" / "model" / "tiny.yaml"
K = np.array([[500.0, 0.0, 128.0], [0.0, 500.0, 128.0], [0.0, 0.0, 1.0]])
ROOT = np.array([0.02, -0.01, 0.5])


def _hand(model) -> np.ndarray:
    """(21,3) root-relative joints of a posed (curled, non-planar) hand of the test hand model."""
    pose = torch.zeros(1, 48)
    pose[0, 3:] = 0.3 * torch.randn(45, generator=torch.Generator().manual_seed(1))
    joints = model.mano(pose, torch.zeros(1, 10), None).joints[0].double().numpy()
    return joints - joints[0]


def _project(points: np.ndarray) -> np.ndarray:
    p = points @ K.T
    return p[:, :2] / p[:, 2:]


@pytest.fixture(scope="module")
def tiny_model() -> HomaeModel:
    torch.manual_seed(0)
    return HomaeModel(load_config(TINY)).eval()


def test_cube_rotations_are_the_24_proper_ones_identity_first() -> None:
    rots = cube_rotations()
    assert rots.shape == (24, 3, 3)
    np.testing.assert_allclose(rots[0], np.eye(3))
    np.testing.assert_allclose(np.linalg.det(rots), 1.0)
    eye = np.broadcast_to(np.eye(3), rots.shape)
    np.testing.assert_allclose(rots @ np.swapaxes(rots, 1, 2), eye)
    assert len({r.tobytes() for r in rots}) == 24


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_fit_recovers_any_orientation_from_exact_keypoints(tiny_model, seed) -> None:
    rel = _hand(tiny_model)
    truth = axis_angle_to_matrix_np(np.random.default_rng(seed).normal(size=3) * 1.5)
    uv = _project(rel @ truth.T + ROOT)
    best = fit_wrist_rotation(rel, ROOT, uv, K)[0]
    assert best.rms_px < 1e-3
    np.testing.assert_allclose(best.rotation, truth, atol=1e-4)
    np.testing.assert_allclose(best.joints, rel @ truth.T + ROOT, atol=1e-6)


def test_noisy_keypoints_give_a_near_orientation(tiny_model) -> None:
    rel = _hand(tiny_model)
    truth = axis_angle_to_matrix_np(np.array([0.4, -1.2, 0.7]))
    noise = np.random.default_rng(0).normal(scale=2.0, size=(21, 2))
    best = fit_wrist_rotation(rel, ROOT, _project(rel @ truth.T + ROOT) + noise, K)[0]
    cos = (np.trace(best.rotation.T @ truth) - 1.0) / 2.0
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))) < 10.0
    assert 1.0 < best.rms_px < 4.0  # about the noise's 2.8 px rms, less what the fit absorbs


def test_solutions_come_best_first_and_weights_count(tiny_model) -> None:
    rel = _hand(tiny_model)
    uv = _project(rel + ROOT)
    sols = fit_wrist_rotation(rel, ROOT, uv, K)
    assert [s.cost for s in sols] == sorted(s.cost for s in sols)
    off = uv.copy()
    off[8] += 40.0  # one wrong keypoint (index tip)
    w = np.ones(21)
    w[8] = 0.0
    best = fit_wrist_rotation(rel, ROOT, off, K, w)[0]
    np.testing.assert_allclose(best.rotation, np.eye(3), atol=1e-4)


def test_bad_inputs_are_refused() -> None:
    rel = np.zeros((21, 3))
    with pytest.raises(ValueError, match="uv"):
        fit_wrist_rotation(rel, ROOT, np.zeros((20, 2)), K)
    with pytest.raises(ValueError, match="in front of the camera"):
        fit_wrist_rotation(rel, np.array([0.0, 0.0, -0.5]), np.zeros((21, 2)), K)
    with pytest.raises(ValueError, match="finite"):
        fit_wrist_rotation(rel + np.nan, ROOT, np.zeros((21, 2)), K)


def test_palm_faces_camera_follows_the_hands_chirality(tiny_model) -> None:
    # a hand in the image plane, fingers up (-y), index base on the image's left: a right hand
    # seen from its back (its thumb side is on the viewer's left), a left hand seen palm-on
    flat = np.zeros((21, 3)) + np.array([0.0, 0.0, 0.5])
    flat[5] += [-0.02, -0.08, 0.0]  # index base
    flat[17] += [0.03, -0.07, 0.0]  # little-finger base
    assert not palm_faces_camera(flat, "right") and palm_faces_camera(flat, "left")
    rel = _hand(tiny_model)
    flipped = rel @ axis_angle_to_matrix_np(np.array([0.0, np.pi, 0.0])).T + ROOT
    assert palm_faces_camera(rel + ROOT, "right") != palm_faces_camera(flipped, "right")
    assert palm_facing(flipped, "left") == palm_faces_camera(
        flipped, "left"
    )  # the side net's label


def test_the_palm_cue_picks_among_near_fits_only(tiny_model) -> None:
    rel = _hand(tiny_model)
    front = rel + ROOT
    back = rel @ axis_angle_to_matrix_np(np.array([0.0, np.pi, 0.0])).T + ROOT
    facing = palm_faces_camera(front, "right")
    sols = [
        FitSolution(np.eye(3), 1.0, front, ROOT, 1.0),
        FitSolution(np.eye(3), 1.5, back, ROOT, 1.2),
    ]
    assert choose_solution(sols, "right", None) is sols[0]
    assert choose_solution(sols, "right", 3.0 if facing else -3.0) is sols[0]
    assert choose_solution(sols, "right", -3.0 if facing else 3.0, ratio=2.0) is sols[1]
    assert choose_solution(sols, "right", -3.0 if facing else 3.0, ratio=1.2) is sols[0]


def test_refine_rotates_the_hand_as_its_mano_parameters_say(tiny_model) -> None:
    """The refined joints and vertices are the MANO layer's output for the refined pose."""
    cfg = load_config(TINY)
    image = np.random.default_rng(0).integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    pairs = [((40, 30, 90, 80), (70, 40, 110, 95))]
    pred = Predictor(tiny_model, cfg, "cpu").predict(image, K, pairs, anchors=[[0.0, 0.0, 0.5]])[0]
    root = pred.joints[0]
    truth = axis_angle_to_matrix_np(np.array([0.3, 2.0, -0.4]))
    uv = _project(rotate_about_root(pred.joints, root, truth))
    refiner = KeypointOrientation(SideNet(SideNetSpec(input_size=32, width=8)), root_sigma_m=100.0)

    def check_mano(out) -> None:
        mesh = tiny_model.mano(
            torch.as_tensor(out.mano_pose[None], dtype=torch.float32),
            torch.as_tensor(out.mano_shape[None], dtype=torch.float32),
            torch.as_tensor(out.hand_transl[None], dtype=torch.float32),
        )
        np.testing.assert_allclose(mesh.vertices[0].numpy(), out.vertices, atol=2e-5)
        np.testing.assert_allclose(mesh.joints[0].numpy(), out.joints, atol=2e-5)

    assert pred.anchor_source == "given"
    out = refiner.refine(pred, uv, palm_logit=float("nan"), K=K)
    np.testing.assert_allclose(out.joints, rotate_about_root(pred.joints, root, truth), atol=1e-5)
    check_mano(out)
    assert out.scores["keypoint_rms_px"] < 0.01 and out.scores["keypoint_root_shift_m"] == 0.0
    assert out.scores["keypoint_turn_deg"] > 90.0
    np.testing.assert_array_equal(out.obj_trans, pred.obj_trans)
    # an estimated root moves too: keypoints of the hand rotated and shifted by 3 cm
    shift = np.array([0.01, -0.02, 0.02])
    target = rotate_about_root(pred.joints, root, truth) + shift
    moved = refiner.refine(replace(pred, anchor_source="predicted"), _project(target), 0.0, K)
    np.testing.assert_allclose(moved.joints, target, atol=2e-4)
    check_mano(moved)
    assert abs(moved.scores["keypoint_root_shift_m"] - np.linalg.norm(shift)) < 2e-4


def test_the_config_turns_it_on_and_a_missing_file_is_named(tmp_path) -> None:
    cfg = load_config(TINY)
    torch.manual_seed(0)
    ckpt = tmp_path / "ckpt"
    save_checkpoint(ckpt, HomaeModel(cfg), cfg)
    assert Predictor.from_checkpoint(ckpt).orientation is None
    save_side_net(SideNet(SideNetSpec(input_size=32, width=8)), ckpt / "kp.safetensors")
    on = Predictor.from_checkpoint(ckpt, overrides=["model.inference.keypoint_net=kp.safetensors"])
    assert isinstance(on.orientation, KeypointOrientation)
    image = np.random.default_rng(0).integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    pred = on.predict(image, K, [((40, 30, 90, 80), (70, 40, 110, 95))])[0]
    assert np.isfinite(pred.scores["keypoint_rms_px"]) and np.all(np.isfinite(pred.vertices))
    with pytest.raises(
        FileNotFoundError, match=r"model\.inference\.keypoint_net.*nope\.safetensors"
    ):
        Predictor.from_checkpoint(ckpt, overrides=["model.inference.keypoint_net=nope.safetensors"])
    moved = tmp_path / "elsewhere.safetensors"
    shutil.copy(ckpt / "kp.safetensors", moved)
    shutil.copy(ckpt / "kp.json", tmp_path / "elsewhere.json")
    assert resolve_keypoint_net(str(moved), ckpt) == moved
    assert resolve_keypoint_net("kp.safetensors", ckpt) == ckpt / "kp.safetensors"


def test_an_ensemble_averages_its_networks_keypoints_and_palm_logits(tmp_path) -> None:
    torch.manual_seed(0)
    a, b = (
        SideNet(SideNetSpec(input_size=32, width=8)),
        SideNet(SideNetSpec(input_size=48, width=8)),
    )
    image = np.random.default_rng(1).integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    boxes = np.array([[40.0, 30.0, 90.0, 80.0], [10.0, 20.0, 60.0, 90.0]])
    uv_a, palm_a = KeypointOrientation(a).observe(image, boxes)
    uv_b, palm_b = KeypointOrientation(b).observe(image, boxes)
    assert np.abs(uv_a - uv_b).max() > 1e-3  # two different answers to average
    uv, palm = KeypointOrientation(a, ensemble=[b]).observe(image, boxes)
    np.testing.assert_allclose(uv, (uv_a + uv_b) / 2, atol=1e-4)
    np.testing.assert_allclose(palm, (palm_a + palm_b) / 2, atol=1e-6)
    # through the config: found like keypoint_net, recorded in the report, a missing one named
    cfg = load_config(TINY)
    ckpt = tmp_path / "ckpt"
    save_checkpoint(ckpt, HomaeModel(cfg), cfg)
    save_side_net(a, ckpt / "kp.safetensors")
    save_side_net(b, ckpt / "kp2.safetensors")
    on = ["model.inference.keypoint_net=kp.safetensors"]
    pred = Predictor.from_checkpoint(
        ckpt, overrides=[*on, "model.inference.keypoint_ensemble=[kp2.safetensors]"]
    )
    assert pred.orientation is not None and len(pred.orientation.ensemble) == 1
    (entry,) = pred.orientation.describe()["keypoint_ensemble"]
    assert entry["file"] == str(ckpt / "kp2.safetensors") and len(entry["sha256"]) == 64
    with pytest.raises(FileNotFoundError, match=r"model\.inference\.keypoint_ensemble.*nope.*list"):
        Predictor.from_checkpoint(
            ckpt, overrides=[*on, "model.inference.keypoint_ensemble=[nope.safetensors]"]
        )
    # an ensemble without its first network is a mistake, not silently nothing
    with pytest.raises(ValueError, match=r"keypoint_ensemble.*keypoint_net is null"):
        Predictor.from_checkpoint(
            ckpt, overrides=["model.inference.keypoint_ensemble=[kp2.safetensors]"]
        )


def test_an_estimated_root_is_fitted_within_its_prior(tiny_model) -> None:
    rel = _hand(tiny_model)
    truth = axis_angle_to_matrix_np(np.array([-0.5, 0.9, 0.2]))
    uv = _project(rel @ truth.T + ROOT)
    start = ROOT + np.array([0.03, -0.02, 0.08])  # the anchor's estimate: 9 cm off
    fixed = fit_wrist_rotation(rel, start, uv, K)[0]
    free = fit_wrist_rotation(rel, start, uv, K, fit_root=True)[0]
    np.testing.assert_allclose(fixed.root, start)
    assert fixed.rms_px > 1.0  # the wrong root cannot be rotated away
    np.testing.assert_allclose(free.root, ROOT, atol=1e-5)
    np.testing.assert_allclose(free.rotation, truth, atol=1e-4)
    assert free.rms_px < 1e-3
    tight = fit_wrist_rotation(rel, start, uv, K, fit_root=True, root_sigma_m=1e-4)[0]
    assert np.linalg.norm(tight.root - start) < 0.005  # a tight prior keeps it near the start
    assert tight.cost > tight.rms_px**2  # the prior's term is part of the objective
    with pytest.raises(ValueError, match="root_sigma_m"):
        fit_wrist_rotation(rel, start, uv, K, fit_root=True, root_sigma_m=0.0)


def test_a_flat_hand_keeps_its_mirror_view_fit_as_an_alternative(tiny_model) -> None:
    """A flat, tilted hand far away: the two mirror-view fits cost nearly the same."""
    from homae_model.estimation.mirror import mirror_prediction

    cfg = load_config(TINY)
    image = np.random.default_rng(0).integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    pairs = [((40, 30, 90, 80), (70, 40, 110, 95))]
    pred = Predictor(tiny_model, cfg, "cpu").predict(image, K, pairs, anchors=[[0.0, 0.0, 1.5]])[0]
    flat = tiny_model.mano(torch.zeros(1, 48), torch.zeros(1, 10), None)
    wrist = flat.joints[0, 0].double().numpy()
    root = pred.joints[0]
    flat_pred = replace(
        pred,
        joints=flat.joints[0].double().numpy() - wrist + root,
        vertices=flat.vertices[0].double().numpy() - wrist + root,
        mano_pose=np.zeros(48),
        hand_transl=root - wrist,
    )
    tilt = axis_angle_to_matrix_np(np.array([0.8, 0.0, 0.0]))
    noise = np.random.default_rng(3).normal(scale=1.5, size=(21, 2))
    uv = _project(rotate_about_root(flat_pred.joints, root, tilt)) + noise
    refiner = KeypointOrientation(SideNet(SideNetSpec(input_size=32, width=8)))
    out = refiner.refine(flat_pred, uv, palm_logit=float("nan"), K=K)
    assert 1 <= len(out.alternatives) <= 3
    chosen = axis_angle_to_matrix_np(out.mano_pose[:3])
    for alt in out.alternatives:
        assert alt.alternatives == []
        assert alt.scores["keypoint_rms_px"] ** 2 <= 2.0 * out.scores["keypoint_rms_px"] ** 2
        cos = (np.trace(axis_angle_to_matrix_np(alt.mano_pose[:3]).T @ chosen) - 1.0) / 2.0
        assert np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))) >= 30.0
    mirrored = mirror_prediction(out, 160)
    assert len(mirrored.alternatives) == len(out.alternatives)
    np.testing.assert_allclose(
        mirrored.alternatives[0].joints, mirror_prediction(out.alternatives[0], 160).joints
    )
