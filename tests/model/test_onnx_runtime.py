"""homae-export and the onnxruntime runtime: the graphs, their manifest, and the same outputs.

The bundled demo model is exported once per session (`demo_onnx_dir`, tests/conftest.py); the
torch Predictor and the onnxruntime Predictor then estimate the same synthetic frames
(`homae-synth`, GT boxes) and must agree: joints and object translation within 0.5 mm, object
rotation within 0.1 degree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from homae_model.bundled import demo_checkpoint
from homae_model.export.manifest import GRAPH_NAMES, MANIFEST_NAME, file_sha256, read_manifest
from homae_model.inference import Predictor

pytestmark = pytest.mark.slow

JOINT_TOL_MM = 0.5
TRANS_TOL_MM = 0.5
ROT_TOL_DEG = 0.1
FRAMES = 3


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> list:
    """A few synthetic frames (homae-synth in a subprocess: GL and torch stay apart)."""
    from homae_model.data.synthetic import SyntheticSource

    out = tmp_path_factory.mktemp("frames")
    cmd = [sys.executable, "-m", "homae_model.cli.synth", "--out", str(out), "--num", str(FRAMES)]
    cmd += ["--size", "320x240", "--seed", "19", "--quiet", "--no-contact-sheet"]
    subprocess.run(cmd, check=True, timeout=300)
    source = SyntheticSource(out)
    return [source[i] for i in range(FRAMES)]


@pytest.fixture(scope="module")
def predictors(demo_onnx_dir) -> tuple[Predictor, Predictor]:
    torch_pred = Predictor.from_checkpoint(demo_checkpoint())
    ort_pred = Predictor.from_checkpoint(
        demo_checkpoint(), runtime="onnxruntime", onnx_dir=demo_onnx_dir
    )
    return torch_pred, ort_pred


def _rot_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Rotation angle between a and b: ||a - b||_F = 2 sqrt(2) sin(angle / 2) (exact for small
    angles, where arccos of the trace has a float32 floor of about 0.02 degree)."""
    chord = float(np.linalg.norm(a - b)) / (2.0 * np.sqrt(2.0))
    return float(np.degrees(2.0 * np.arcsin(min(1.0, chord))))


def test_export_writes_graphs_and_manifest(demo_onnx_dir: Path) -> None:
    import onnx

    raw = json.loads((demo_onnx_dir / MANIFEST_NAME).read_text())
    manifest = read_manifest(demo_onnx_dir)
    assert raw["opset"] == manifest.opset == 17
    assert raw["source"]["sha256"] == file_sha256(demo_checkpoint())
    assert raw["source"]["config_sha256"] == file_sha256(demo_checkpoint().parent / "config.yaml")
    assert set(manifest.graphs) == set(GRAPH_NAMES)
    for name, graph in manifest.graphs.items():
        path = demo_onnx_dir / graph.file
        assert file_sha256(path) == graph.sha256
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
        assert [i.name for i in proto.graph.input] == [t.name for t in graph.inputs]
        assert all(t.shape[0] == "batch" for t in graph.inputs + graph.outputs), name
        assert all(t.dtype == "float32" for t in graph.inputs + graph.outputs), name
        assert max(manifest.check[name].values()) < 1e-3, (name, manifest.check[name])
    sdf = {t.name: t.shape for t in manifest.graphs["sdf_hand"].inputs}
    assert sdf["points"] == ["batch", "points", 3]
    assert sdf["fmap"][1:] == [manifest.model["feat_channels"], *manifest.model["fmap_size"]]
    image = manifest.graphs["encoder"].inputs[0]
    assert image.name == "image" and image.shape == ["batch", 3, 112, 112]
    heads = {t.name: t.shape for t in manifest.graphs["heads"].outputs}
    assert heads["hand_rot6d"] == ["batch", 16, 6] and heads["obj_rotmat"] == ["batch", 3, 3]


def test_onnxruntime_matches_torch_on_synthetic_frames(frames, predictors) -> None:
    torch_pred, ort_pred = predictors
    assert (torch_pred.runtime, ort_pred.runtime) == ("torch", "onnxruntime")
    worst = {"joints_mm": 0.0, "trans_mm": 0.0, "rot_deg": 0.0}
    for sample in frames:
        shifted = (sample.hand_box + 3.0, sample.obj_box - 2.0)
        pairs = [(sample.hand_box, sample.obj_box), shifted]  # a batch of two crops
        want = torch_pred.predict(sample.image, sample.K, pairs)
        got = ort_pred.predict(sample.image, sample.K, pairs)
        assert len(got) == len(want) == 2
        for a, b in zip(want, got, strict=True):
            np.testing.assert_array_equal(a.crop_box, b.crop_box)
            assert np.abs(a.anchor - b.anchor).max() < 1e-4
            diffs = {
                "joints_mm": 1e3 * np.abs(a.joints - b.joints).max(),
                "trans_mm": 1e3 * np.abs(a.obj_trans - b.obj_trans).max(),
                "rot_deg": _rot_deg(a.obj_rot_matrix, b.obj_rot_matrix),
            }
            worst = {k: max(v, float(diffs[k])) for k, v in worst.items()}
            assert a.scores["sdf_evals"] == b.scores["sdf_evals"]
            assert abs(a.scores["hand"] - b.scores["hand"]) < 1e-3
    assert worst["joints_mm"] <= JOINT_TOL_MM, worst
    assert worst["trans_mm"] <= TRANS_TOL_MM, worst
    assert worst["rot_deg"] <= ROT_TOL_DEG, worst


def test_given_anchors_reach_the_onnx_heads(frames, predictors) -> None:
    torch_pred, ort_pred = predictors
    sample = frames[0]
    anchors = sample.hand_joints[:1] + np.array([[0.01, -0.01, 0.02]])
    pairs = [(sample.hand_box, sample.obj_box)]
    a = torch_pred.predict(sample.image, sample.K, pairs, anchors=anchors)[0]
    b = ort_pred.predict(sample.image, sample.K, pairs, anchors=anchors)[0]
    assert b.anchor_source == "given"
    np.testing.assert_allclose(b.anchor, anchors[0], atol=1e-6)
    assert 1e3 * np.abs(a.joints - b.joints).max() <= JOINT_TOL_MM


def test_graphs_of_another_checkpoint_are_refused(demo_onnx_dir, tmp_path) -> None:
    from tests.ros.nodeutil import tiny_checkpoint

    ckpt = tiny_checkpoint(tmp_path / "tiny")
    with pytest.raises(ValueError, match="was exported from checkpoint"):
        Predictor.from_checkpoint(ckpt, runtime="onnxruntime", onnx_dir=demo_onnx_dir)


def test_first_use_exports_into_the_cache_once(tmp_path, monkeypatch) -> None:
    from homae_model.export import runtime as ort_runtime
    from tests.ros.nodeutil import tiny_checkpoint

    monkeypatch.setenv("HOMAE_ONNX_CACHE", str(tmp_path / "cache"))
    ckpt = tiny_checkpoint(tmp_path / "tiny")
    first = Predictor.from_checkpoint(ckpt, runtime="onnxruntime")
    folders = list((tmp_path / "cache").iterdir())
    assert len(folders) == 1 and (folders[0] / MANIFEST_NAME).is_file()
    stamp = (folders[0] / MANIFEST_NAME).stat().st_mtime_ns
    calls = []
    monkeypatch.setattr(
        "homae_model.export.onnx_export.export_model", lambda *a, **k: calls.append(a)
    )
    second = Predictor.from_checkpoint(ckpt, runtime="onnxruntime")
    assert calls == [] and (folders[0] / MANIFEST_NAME).stat().st_mtime_ns == stamp
    assert isinstance(second.stages, ort_runtime.OnnxStages)
    image = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    K = np.array([[300.0, 0.0, 79.5], [0.0, 300.0, 59.5], [0.0, 0.0, 1.0]])
    pair = [([40.0, 30.0, 90.0, 80.0], [70.0, 40.0, 120.0, 100.0])]
    a = Predictor.from_checkpoint(ckpt).predict(image, K, pair)[0]
    b = first.predict(image, K, pair)[0]
    assert 1e3 * np.abs(a.joints - b.joints).max() <= JOINT_TOL_MM


def test_unknown_and_missing_providers_are_named() -> None:
    import onnxruntime as ort

    from homae_model.export.runtime import ProviderUnavailableError, resolve_providers

    assert resolve_providers("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match="valid: cpu, cuda, tensorrt"):
        resolve_providers("openvino")
    for choice, name in (("cuda", "CUDAExecutionProvider"), ("tensorrt", "Tensorrt")):
        if any(p.startswith(name) for p in ort.get_available_providers()):
            continue
        with pytest.raises(ProviderUnavailableError, match=f"'{choice}'.*not installed"):
            resolve_providers(choice)


def test_export_failure_says_which_stage_and_why(tmp_path, monkeypatch) -> None:
    from homae_model.cli.export import main as export_main
    from homae_model.export.onnx_export import ExportError, export_checkpoint

    # a checkpoint that is not there
    assert export_main(["--checkpoint", str(tmp_path / "nothing"), "--out", str(tmp_path)]) == 2
    with pytest.raises(ExportError, match=r"neither model\.safetensors"):
        export_checkpoint(tmp_path, tmp_path / "out")
    # a stage with an operator ONNX lacks (matrix inverse)
    from tests.ros.nodeutil import tiny_checkpoint

    ckpt = tiny_checkpoint(tmp_path / "tiny")
    monkeypatch.setattr("homae_model.geometry.camera.inverse_3x3", torch.linalg.inv)
    with pytest.raises(ExportError, match=r"stage 'encoder' cannot be exported.*linalg_inv"):
        export_checkpoint(ckpt, tmp_path / "out")
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()


def test_estimator_and_tool_flags_select_the_runtime(demo_onnx_dir) -> None:
    import argparse

    from homae_model.estimation.cli_args import add_estimator_arguments, load_estimator
    from homae_model.estimation.settings import DEFAULT_SETTINGS, EstimationSettings

    assert (DEFAULT_SETTINGS.runtime, DEFAULT_SETTINGS.runtime_provider) == ("torch", "cpu")
    with pytest.raises(ValueError, match="runtime 'tensorflow'"):
        EstimationSettings(runtime="tensorflow")
    parser = argparse.ArgumentParser()
    add_estimator_arguments(parser)
    defaults = parser.parse_args([])
    assert (defaults.runtime, defaults.runtime_provider) == ("torch", "cpu")
    common = ["--device", "cpu", "--detector", "roi", "--object", "006_mustard_bottle"]
    common += ["--roi", "100", "60", "220", "180"]
    by_runtime = {}
    for runtime in ("torch", "onnxruntime"):
        args = parser.parse_args([*common, "--runtime", runtime, "--onnx-dir", str(demo_onnx_dir)])
        estimator = load_estimator(args)
        assert estimator.predictor.runtime == runtime
        image = np.random.default_rng(3).integers(0, 255, (240, 320, 3), dtype=np.uint8)
        K = np.array([[300.0, 0.0, 159.5], [0.0, 300.0, 119.5], [0.0, 0.0, 1.0]])
        by_runtime[runtime] = estimator.process(image, K, 1.0)
    (a,), (b,) = by_runtime["torch"], by_runtime["onnxruntime"]
    assert 1e3 * np.abs(a.prediction.joints - b.prediction.joints).max() <= JOINT_TOL_MM
    args = parser.parse_args([*common, "--runtime", "onnxruntime", "--onnx-dir", "/nonexistent"])
    with pytest.raises(FileNotFoundError, match="parameter 'onnx_dir'"):
        load_estimator(args)
