"""Left hands through the mirror: flip conventions, and a left twin mirrors its right scene."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from homae_model.detector.pairing import HAND_LABEL, Detection, Pair
from homae_model.estimation.estimator import PairEstimate
from homae_model.estimation.mirror import predict_sided, resolve_side
from homae_model.geometry.camera import project_points
from homae_model.geometry.mirror import (
    flip_box,
    flip_image,
    flip_intrinsics,
    mirror_points,
    mirror_rotation,
    symmetry_reflection,
)

K = np.array([[500.0, 0.0, 70.0], [0.0, 510.0, 60.0], [0.0, 0.0, 1.0]])


def test_flipped_image_sees_the_mirrored_scene() -> None:
    pts = np.random.default_rng(0).uniform([-0.1, -0.1, 0.4], [0.1, 0.1, 0.8], (20, 3))
    width = 160
    uv = project_points(pts, K)
    uv_m = project_points(mirror_points(pts), flip_intrinsics(K, width))
    np.testing.assert_allclose(uv_m[:, 0], width - 1 - uv[:, 0], atol=1e-9)
    np.testing.assert_allclose(uv_m[:, 1], uv[:, 1], atol=1e-9)
    box = np.array([10.0, 20.0, 50.0, 70.0])
    np.testing.assert_allclose(flip_box(flip_box(box, width), width), box)
    assert flip_box(box, width)[0] == width - 1 - 50.0
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    np.testing.assert_array_equal(flip_image(img)[:, 0], img[:, 2])
    R = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    R *= np.sign(np.linalg.det(R))
    assert np.isclose(np.linalg.det(mirror_rotation(R)), 1.0)


def test_symmetry_reflection_finds_the_plane() -> None:
    pts = np.random.default_rng(2).normal(size=(50, 3))
    sym = np.concatenate([pts, pts * [1.0, -1.0, 1.0]])  # symmetric about y = 0 only
    S, err = symmetry_reflection(sym)
    np.testing.assert_array_equal(np.diag(S), [1.0, -1.0, 1.0])
    assert err < 1e-12


def test_unknown_side_is_right_and_bad_side_is_named() -> None:
    box = np.array([0.0, 0.0, 10.0, 10.0])
    pair = Pair(Detection(HAND_LABEL, 0.9, box), Detection("025_mug", 0.8, box), 0)
    est = PairEstimate(pair, None, None)  # type: ignore[arg-type]
    assert est.side == "right" and est.side_source == "default"
    left = Pair(Detection(HAND_LABEL, 0.9, box, side="left"), pair.obj, 0)
    assert PairEstimate(left, None, None).side == "left"  # type: ignore[arg-type]
    assert resolve_side(None) == "right"
    with pytest.raises(ValueError, match="'right' or 'left'"):
        resolve_side("both")
    with pytest.raises(ValueError, match="side"):
        Detection(HAND_LABEL, 0.9, box, side="up")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    from homae_model.bundled import demo_checkpoint

    if not demo_checkpoint().is_file():
        pytest.skip("no bundled demo weights")
    out = tmp_path_factory.mktemp("twin") / "set"
    # A subprocess: the renderer's GL driver and torch's libraries must not share a process.
    cmd = [sys.executable, "-m", "homae_model.cli.synth", "--out", str(out), "--num", "2"]
    cmd += ["--size", "256x256", "--seed", "3", "--quiet", "--no-contact-sheet"]
    subprocess.run(cmd, check=True, timeout=300)
    from homae_model.data.synthetic import SyntheticSource
    from homae_model.inference import Predictor

    return SyntheticSource(out), Predictor.from_checkpoint(demo_checkpoint())


def test_left_twin_result_mirrors_the_right_result(scene) -> None:
    """The exact mirror image of a right-hand scene, as a left hand, gives the mirrored result."""
    import torch

    from homae_model.hand.mano import ManoLayer

    source, predictor = scene
    lib_left = ManoLayer(predictor.cfg.mano.resolved_path(), side="left").eval()
    for i in range(len(source)):
        raw = source[i]
        w = raw.image.shape[1]
        pair = (raw.hand_box, raw.obj_box)
        right = predict_sided(predictor, raw.image, raw.K, [pair], ["right"])[0]
        twin_pair = (flip_box(raw.hand_box, w), flip_box(raw.obj_box, w))
        twin_K = flip_intrinsics(raw.K, w)
        left = predict_sided(predictor, flip_image(raw.image), twin_K, [twin_pair], ["left"])[0]
        # mirrored back (x -> -x), the left result is the right one: joints within 1 mm
        err = np.linalg.norm(mirror_points(left.joints) - right.joints, axis=1).max()
        assert err < 1e-3, f"sample {i}: joints differ by {err * 1000:.3f} mm"
        assert np.abs(mirror_points(left.vertices) - right.vertices).max() < 1e-3
        assert np.abs(mirror_points(left.obj_trans) - right.obj_trans).max() < 1e-3
        np.testing.assert_allclose(flip_box(left.crop_box, w), right.crop_box, atol=1e-6)
        # the left estimate is a left MANO hand: the left layer rebuilds its vertices
        with torch.no_grad():
            out = lib_left(
                torch.as_tensor(left.mano_pose[None], dtype=torch.float32),
                torch.as_tensor(left.mano_shape[None], dtype=torch.float32),
                torch.as_tensor(left.hand_transl[None], dtype=torch.float32),
            )
        assert np.abs(out.vertices[0].numpy() - left.vertices).max() < 1e-4
        # the object: the real mesh posed by the left estimate fills the mirrored right one
        assert np.isclose(np.linalg.det(left.obj_rot_matrix), 1.0)
        # mixed sides in one call keep the pair order
        both = predict_sided(predictor, raw.image, raw.K, [pair, pair], ["left", None])
        np.testing.assert_allclose(both[1].joints, right.joints, atol=1e-6)
        assert np.abs(both[0].joints - right.joints).max() > 1e-4  # a different (mirrored) fit
