"""Predictor: full image + K + boxes -> finite full-image camera-frame outputs; input checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from homae_model.checkpoint import save_checkpoint
from homae_model.cli import summary
from homae_model.config import load_config
from homae_model.geometry.camera import project_points
from homae_model.inference import PairPrediction, Predictor
from homae_model.model import HomaeModel

TINY = Path(__file__).resolve().parents[2] / "config" / "model" / "tiny.yaml"
K = np.array([[300.0, 0.0, 80.0], [0.0, 300.0, 60.0], [0.0, 0.0, 1.0]])
PAIRS = [
    ((40.0, 30.0, 90.0, 80.0), (70.0, 40.0, 110.0, 95.0)),
    ((10.0, 10.0, 40.0, 50.0), (20.0, 30.0, 60.0, 60.0)),
]


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    cfg = load_config(TINY)
    torch.manual_seed(0)
    return Predictor(HomaeModel(cfg), cfg, "cpu")


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(120, 160, 3), dtype=np.uint8)


def test_predict_returns_finite_full_image_outputs(predictor, image):
    preds = predictor.predict(image, K, PAIRS)
    assert len(preds) == 2 and all(isinstance(p, PairPrediction) for p in preds)
    for p in preds:
        shapes = {
            "joints": (21, 3), "vertices": (778, 3), "mano_pose": (48,), "mano_shape": (10,),
            "obj_rot": (3,), "obj_trans": (3,), "obj_rot_matrix": (3, 3), "anchor": (3,),
            "crop_box": (4,),
        }  # fmt: skip
        for name, shape in shapes.items():
            value = getattr(p, name)
            assert value.shape == shape, name
            assert np.all(np.isfinite(value)), name
        assert p.anchor_source == "predicted"
        np.testing.assert_allclose(p.obj_rot_matrix @ p.obj_rot_matrix.T, np.eye(3), atol=1e-5)
        # full-image camera frame: the (untrained, centred) anchor projects into the crop box,
        # near its centre, with the FULL-image K
        uv = project_points(p.anchor[None], K)[0]
        box = p.crop_box
        assert box[0] <= uv[0] <= box[2] and box[1] <= uv[1] <= box[3]
        np.testing.assert_allclose(uv, 0.5 * (box[:2] + box[2:]), atol=0.05 * (box[2] - box[0]))
        assert p.anchor[2] > 0 and np.all(p.joints[:, 2] > 0)
        assert 0.0 < p.scores["hand"] <= 1.0 and p.scores["sdf_evals"] > 0


def test_single_pair_matches_its_batched_result(predictor, image):
    both = predictor.predict(image, K, PAIRS)
    one = predictor.predict(image, K, PAIRS[1:])
    np.testing.assert_allclose(one[0].joints, both[1].joints, atol=1e-5)
    np.testing.assert_allclose(one[0].obj_trans, both[1].obj_trans, atol=1e-5)


def test_gt_anchored_protocol_uses_the_given_anchors(predictor, image):
    anchors = np.array([[0.02, 0.01, 0.6], [-0.1, -0.05, 0.7]])
    preds = predictor.predict(image, K, PAIRS, anchors=anchors)
    for p, a in zip(preds, anchors, strict=True):
        assert p.anchor_source == "given"
        np.testing.assert_allclose(p.anchor, a, atol=1e-6)
        assert np.linalg.norm(p.joints[0] - a) < 0.1  # root = anchor + a small learned offset


def test_from_checkpoint(predictor, image, tmp_path):
    save_checkpoint(tmp_path, predictor.model, predictor.cfg)
    loaded = Predictor.from_checkpoint(tmp_path, "cpu")
    a = predictor.predict(image, K, PAIRS[:1])[0]
    b = loaded.predict(image, K, PAIRS[:1])[0]
    np.testing.assert_allclose(a.vertices, b.vertices, atol=1e-6)


def test_no_pairs(predictor, image):
    assert predictor.predict(image, K, []) == []


@pytest.mark.parametrize(
    ("bad_image", "needle"),
    [
        (np.zeros((120, 160, 3), dtype=np.float32), "uint8"),
        (np.zeros((120, 160), dtype=np.uint8), r"\(H,W,3\)"),
        (np.zeros((120, 160, 4), dtype=np.uint8), r"\(H,W,3\)"),
        (np.zeros((0, 160, 3), dtype=np.uint8), "empty"),
        ([[0, 1, 2]], "numpy array"),
    ],
)
def test_bad_images(predictor, bad_image, needle):
    with pytest.raises(ValueError, match=needle):
        predictor.predict(bad_image, K, PAIRS)


@pytest.mark.parametrize(
    ("bad_k", "needle"),
    [
        (np.zeros((3, 3)), "focal"),
        (np.full((3, 3), np.nan), "NaN"),
        (np.eye(4), "shape"),
    ],
)
def test_bad_intrinsics(predictor, image, bad_k, needle):
    with pytest.raises(ValueError, match=needle):
        predictor.predict(image, bad_k, PAIRS)


def test_bad_boxes_and_anchors(predictor, image):
    with pytest.raises(ValueError, match=r"pairs\[0\]\.hand_box"):
        predictor.predict(image, K, [((50.0, 50.0, 10.0, 10.0), (0.0, 0.0, 5.0, 5.0))])
    with pytest.raises(ValueError, match="anchors"):
        predictor.predict(image, K, PAIRS, anchors=np.zeros((1, 3)))


def test_summary_cli_tiny(capsys):
    assert summary.main([str(TINY)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["feat_channels"] == 24
    params = out["params"]
    assert params["total"] == sum(v for k, v in params.items() if k not in ("total", "trainable"))
    assert params["trainable"] == params["total"] - params["mano"]
    assert out["shapes"]["joints"] == [2, 21, 3] and out["shapes"]["vertices"] == [2, 778, 3]
    assert out["shapes"]["hand_sdf"] == [2, 64] and out["shapes"]["obj_sdf"] == [2, 32]
    assert out["shapes"]["recon"] == [2, 3, 56, 56]
    assert out["shapes"]["obj_rot"] == [2, 3] and out["shapes"]["obj_trans"] == [2, 3]


def test_summary_cli_bad_config(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {encoder: {imgsize: 3}}\n")
    assert summary.main([str(bad)]) == 2
    assert "model.encoder.imgsize" in capsys.readouterr().err


@pytest.mark.slow
def test_summary_paper_encoder_is_vit_s14(capsys):
    paper = TINY.parent / "paper.yaml"
    assert summary.main([str(paper)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert abs(out["params"]["encoder"] - 21.6e6) < 0.1e6
    assert out["feat_channels"] == 223
    assert out["shapes"]["recon"] == [2, 3, 224, 224]
    assert out["shapes"]["hand_sdf"] == [2, 600] and out["shapes"]["obj_sdf"] == [2, 200]
