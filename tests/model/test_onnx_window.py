"""Layout "window" of the exported graphs: F~ over the boxes' window, as the torch Predictor.

A tiny model at a 112 px crop (a 32 x 32 F~, so that the boxes' window is a part of it) is
exported with `export_model`; its graphs must reproduce torch: the window of F~, F~ at single
pixels for points beyond the window, and the whole Predictor (same SDF evaluations, joints and
object translation within 0.5 mm, rotation within 0.1 degree).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from homae_model.config import load_config
from homae_model.export.graphs import WindowGraph, level_factors, window_level_ids
from homae_model.export.manifest import (
    GRAPH_NAMES,
    MANIFEST_NAME,
    WINDOW_GRAPH_NAMES,
    read_manifest,
)
from homae_model.export.onnx_export import export_model
from homae_model.export.runtime import OnnxStages
from homae_model.inference import Predictor
from homae_model.model import HomaeModel
from homae_model.nn.feature_window import FeatureWindow, window_part
from tests.model.test_model import TINY, build

pytestmark = pytest.mark.slow

K = np.array([[300.0, 0.0, 80.0], [0.0, 300.0, 60.0], [0.0, 0.0, 1.0]])
PAIRS = [((60.0, 45.0, 85.0, 70.0), (78.0, 50.0, 100.0, 80.0))]


@pytest.fixture(scope="module")
def model() -> HomaeModel:
    cfg = load_config(TINY, ["model.encoder.img_size=112"])
    cfg.model.inference.voxel_res, cfg.model.inference.coarse_res = 32, 8
    return build(cfg, seed=3).eval()


@pytest.fixture(scope="module")
def onnx_dir(model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx_window")
    export_model(model, model.cfg, out)
    return out


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, size=(120, 160, 3), dtype=np.uint8)


def test_window_layout_manifest(model, onnx_dir) -> None:
    manifest = read_manifest(onnx_dir)
    assert manifest.model["layout"] == "window"
    assert manifest.model["fmap_size"] == [32, 32]
    assert set(manifest.graphs) == set(GRAPH_NAMES) | set(WINDOW_GRAPH_NAMES)
    encoder_out = [t.name for t in manifest.graphs["encoder"].outputs]
    assert encoder_out == ["level0", "level1", "anchor"]
    sdf = {t.name: t.shape for t in manifest.graphs["sdf_hand"].inputs}
    assert sdf["fmap"] == ["batch", 24, "window_rows", "window_cols"]
    assert sdf["window"] == ["batch", 4] and sdf["outside"] == ["batch", "points", 24]
    assert max(max(v.values()) for v in manifest.check.values()) < 1e-3, manifest.check


def test_an_export_of_another_format_is_refused(onnx_dir, tmp_path) -> None:
    raw = json.loads((onnx_dir / MANIFEST_NAME).read_text())
    raw["format"] = "homae-onnx/1"
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="export the checkpoint again"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("bounds", [(8, 20, 12, 28), (0, 32, 0, 32), (0, 8, 24, 32)])
def test_window_graph_equals_the_whole_map(model, bounds) -> None:
    """The window graph on `window_part` slices = that window of the whole F~ (torch)."""
    y0, y1, x0, x1 = bounds
    window = FeatureWindow(y0, y1, x0, x1, (32, 32))
    image = torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        enc = model.encode(image)  # no roi: the whole map
        levels = [enc.grid, *model.decoder(enc.grid)[:-1]]
        parts = [
            window_part(levels[i], level_factors(model)[i], window) for i in window_level_ids(model)
        ]
        got = WindowGraph(model)(*parts)
    want = enc.fmap[..., y0:y1, x0:x1]
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_points_beyond_the_window_get_the_whole_maps_features(model, onnx_dir) -> None:
    """`inside` / `outside` of the runtime: uncovered points get F~ made at their pixels."""
    stages = OnnxStages(onnx_dir, "cpu")
    s = 112
    image = torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(4))
    f = 1.2 * s
    Kc = torch.tensor([[[f, 0.0, 55.5], [0.0, f, 55.5], [0.0, 0.0, 1.0]]])
    hand_box = torch.tensor([[40.0, 40.0, 60.0, 60.0]])
    obj_box = torch.tensor([[50.0, 45.0, 70.0, 66.0]])
    feats = stages.encode(image, Kc, hand_box, obj_box).features
    assert feats.window is not None and not feats.window.is_full
    # points spread over the whole crop: some inside the window, some beyond it
    g = torch.Generator().manual_seed(6)
    uv = torch.rand(1, 200, 2, generator=g) * s
    z = 0.4 + 0.2 * torch.rand(1, 200, 1, generator=g)
    xy = (uv - Kc[:, None, :2, 2]) / f * z
    points = torch.cat([xy, z], dim=-1)
    inside, outside = stages._uncovered(feats, Kc, points, None)
    n_out = int((inside == 0).sum())
    assert 0 < n_out < 200
    with torch.no_grad():
        enc = model.encode(image)
        want = model.features(enc, points, Kc)[0].numpy()
    mask = inside[0] == 0
    np.testing.assert_allclose(outside[0][mask], want[mask], atol=1e-5, rtol=1e-4)
    assert np.all(outside[0][~mask] == 0.0)
    # and the windowed SDF graph = torch's SDF on the whole map
    sdf = stages.sdf_fn(stages.encode(image, Kc, hand_box, obj_box), Kc, points[:, 0], "hand")
    with torch.no_grad():
        want_sdf = model.sdf_fn(enc, Kc, points[:, 0], "hand")(points)
    np.testing.assert_allclose(sdf(points).numpy(), want_sdf.numpy(), atol=1e-5, rtol=1e-4)


def test_window_layout_predictor_matches_torch(model, onnx_dir, image) -> None:
    torch_pred = Predictor(model, model.cfg, "cpu")
    stages = OnnxStages(onnx_dir, "cpu")
    ort_pred = Predictor(model, model.cfg, "cpu", stages)
    windows = []
    encode = stages.encode

    def spy(*args):
        out = encode(*args)
        windows.append(out.features.window)
        return out

    stages.encode = spy
    want = torch_pred.predict(image, K, PAIRS)
    got = ort_pred.predict(image, K, PAIRS)
    assert len(windows) == 1 and not windows[0].is_full  # a window, not the whole map
    for a, b in zip(want, got, strict=True):
        assert a.scores["sdf_evals"] == b.scores["sdf_evals"]
        assert 1e3 * np.linalg.norm(a.joints - b.joints, axis=-1).max() <= 0.5
        assert 1e3 * np.linalg.norm(a.obj_trans - b.obj_trans) <= 0.5
        chord = np.linalg.norm(a.obj_rot_matrix - b.obj_rot_matrix) / (2.0 * np.sqrt(2.0))
        assert np.degrees(2.0 * np.arcsin(min(1.0, chord))) <= 0.1


def test_int8_option_quantizes_the_big_graphs_once(model, onnx_dir, image, tmp_path) -> None:
    """precision="int8": int8 MatMul weights in the cache, written once; fp32 stays default."""
    import onnx

    from homae_model.export.quantize import QUANTIZED_GRAPHS, linear_nodes, quantized_folder

    with pytest.raises(ValueError, match="onnx precision 'fp16'; valid: fp32, int8"):
        OnnxStages(onnx_dir, "cpu", precision="fp16")
    assert OnnxStages(onnx_dir, "cpu").precision == "fp32"
    folder = quantized_folder(onnx_dir, tmp_path)
    manifest = read_manifest(folder)
    assert manifest.model["precision"] == "int8" and folder.parent == tmp_path
    for name, graph in manifest.graphs.items():
        nodes = onnx.load(str(folder / graph.file)).graph.node
        assert any(n.op_type == "DynamicQuantizeLinear" for n in nodes) == (
            name in QUANTIZED_GRAPHS
        ), name
        quantized = [n.name for n in nodes if n.op_type == "MatMulInteger"]
        if name == "encoder":  # the ViT blocks' linear layers only (not the anchor, decoder)
            assert quantized and all("/blocks." in q for q in quantized), quantized
    # linear layers only: the attention products (two activations) stay fp32
    wanted = linear_nodes(onnx_dir / "heads.onnx")
    matmuls = [n for n in onnx.load(str(onnx_dir / "heads.onnx")).graph.node]
    products = [n.name for n in matmuls if n.op_type == "MatMul" and n.name not in wanted]
    assert wanted and products  # both kinds exist in the heads' graph
    stamp = (folder / MANIFEST_NAME).stat().st_mtime_ns
    assert quantized_folder(onnx_dir, tmp_path) == folder
    assert (folder / MANIFEST_NAME).stat().st_mtime_ns == stamp  # not written again
    assert read_manifest(onnx_dir).model.get("precision") is None  # the export is untouched
    stages = OnnxStages(folder, "cpu")
    assert stages.precision == "int8"
    got = Predictor(model, model.cfg, "cpu", stages).predict(image, K, PAIRS)
    assert len(got) == 1 and np.all(np.isfinite(got[0].joints))


def test_pixels_graph_serves_a_batch_with_different_counts_per_image(model, onnx_dir) -> None:
    """The pixels graph pads each image's pixel list; each image reads its own levels."""
    from homae_model.nn.fmap_pixels import fmap_at_pixels

    stages = OnnxStages(onnx_dir, "cpu")
    image = torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(8))
    Kc = torch.tensor([[120.0, 0.0, 55.5], [0.0, 120.0, 55.5], [0.0, 0.0, 1.0]]).expand(2, 3, 3)
    box = torch.tensor([[40.0, 40.0, 60.0, 60.0]]).expand(2, 4)
    feats = stages.encode(image, Kc, box, box).features
    b = torch.tensor([1, 0, 1, 1])
    py, px = torch.tensor([0, 5, 31, 17]), torch.tensor([3, 30, 0, 17])
    got = stages._pixels(feats.levels, b, py, px)
    with torch.no_grad():
        grid = model.encode(image).grid
        above = [grid, *model.decoder(grid)[:-1]]
        want = fmap_at_pixels(model.decoder, model.multiscale, above, b, py, px)
    assert got.shape == (4, 24)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_tools_flag_selects_the_int8_option(monkeypatch) -> None:
    """homae-infer's --onnx-precision reaches FrameEstimator.load; a bad one names itself."""
    from homae_model.estimation import cli_args
    from homae_model.estimation.estimator import FrameEstimator
    from homae_ros.tools.infer import build_parser

    seen: list[str] = []

    class _Loaded:
        objects = ()

    def fake_load(**kwargs):
        seen.append(kwargs["onnx_precision"])
        return _Loaded()

    monkeypatch.setattr(cli_args.FrameEstimator, "load", staticmethod(fake_load))
    monkeypatch.setattr(cli_args, "resolve_device", lambda requested, what: requested)
    base = ["img.png", "--intrinsics", "K.yaml", "--out", "o"]
    for extra in ([], ["--runtime", "onnxruntime", "--onnx-precision", "int8"]):
        cli_args.load_estimator(build_parser().parse_args(base + extra))
    assert seen == ["fp32", "int8"]
    monkeypatch.undo()
    with pytest.raises(ValueError, match="parameter 'onnx_precision' = 'fp16'; valid: fp32, int8"):
        FrameEstimator.load(runtime="onnxruntime", onnx_precision="fp16")
