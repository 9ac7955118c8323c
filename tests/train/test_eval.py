"""homae-eval: both protocols on a synthetic set, every metric name, hashes, clear errors."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch

from homae_model.data.sources import detect_layout, open_source
from homae_model.training.state import resolve_checkpoint
from tests.train import synthetic_set, tiny_config

METRICS = (
    "MJE", "PA-MJE", "ST-MJE", "OCE", "MCE", "ADD-S", "OME", "V-PE", "PA-V-PE", "J-AUC",
    "PA-J-AUC", "V-AUC", "PA-V-AUC", "F@5", "F@15", "PA-F@5", "PA-F@15",
)  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run folder with a 2-step checkpoint of the tiny model, and its data."""
    from homae_model.training.trainer import TrainOptions, train

    root = tmp_path_factory.mktemp("eval")
    data = synthetic_set(root / "data", num=8)
    cfg = tiny_config(root, train={"batch_size": 2})
    opts = TrainOptions(
        data=data, config=cfg, out=root / "run", device="cpu", max_steps=2, progress=False
    )
    result = train(opts)
    return result.run_dir, data


@pytest.mark.slow
def test_eval_cli_writes_report_with_every_metric(tmp_path, trained, monkeypatch) -> None:
    import homae_model.evaluation.evaluate as evaluate_module
    from homae_model.cli.evaluate import main

    # The bundled demo detector is trained on 256 px scenes and may find nothing in these tiny
    # test images; a stand-in detector that finds the labelled hand box (and a box around it
    # for the object) keeps this test about the report, not about detection quality. (Without
    # any detector the GT-free protocol is an error: test_gt_free_without_detector_is_an_error.)
    def found(det, image, hand_box):
        hand_box = np.asarray(hand_box, np.float64)
        return hand_box, hand_box + np.array([-4.0, -4.0, 4.0, 4.0])

    stand_in = evaluate_module._Detector(object(), None, tmp_path / "stand_in", "test detector")
    monkeypatch.setattr(evaluate_module, "_load_detector", lambda *args: stand_in)
    monkeypatch.setattr(evaluate_module, "_detected_pair", found)
    run, data = trained
    out = tmp_path / "report"
    argv = ["--checkpoint", str(run), "--data", str(data), "--protocol", "both"]
    argv += ["--out", str(out), "--limit", "3", "--no-progress"]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    for protocol in ("gt-anchored", "gt-free"):
        metrics = report["metrics"][protocol]
        assert set(METRICS) <= set(metrics)
        for name in METRICS:
            assert metrics[name] is not None and metrics[name] == metrics[name], name
        assert metrics["MJE"] > 0 and 0 <= metrics["F@15"] <= 100
        extras = report["extras"][protocol]
        assert 0.0 <= extras["hand rotation (deg)"] <= 180.0
        # the best rotation (least squares) about the wrist can only lower the error much
        assert 0.0 < extras["R-MJE"] <= 1.05 * metrics["MJE"]
    meta = report["meta"]
    ckpt = resolve_checkpoint(run)
    digest = hashlib.sha256((ckpt / "model.safetensors").read_bytes()).hexdigest()
    assert meta["checkpoint_sha256"] == digest
    assert len(meta["data_hash"]["sha256"]) == 64 and meta["data_hash"]["files"] == 4
    assert meta["config"]["model"]["encoder"]["img_size"] == 56
    assert meta["counts"]["evaluated"] == 3
    assert meta["protocols"] == ["gt-anchored", "gt-free"]
    assert "detector" in meta["gt_free"]["boxes"]
    assert (out / "report.md").is_file() and (out / "pck_curves.png").is_file()
    assert "### Hand orientation" in (out / "report.md").read_text()
    for protocol in ("gt-anchored", "gt-free"):  # per-sample rows average to the whole-set MJE
        rows = report["per_sample"][protocol]
        assert [r["index"] for r in rows] == [0, 1, 2]
        mean = sum(r["MJE"] for r in rows) / len(rows)
        assert mean == pytest.approx(report["metrics"][protocol]["MJE"], rel=1e-9)


@pytest.mark.slow
def test_evaluate_library_function_gt_anchor_is_used(tmp_path, trained) -> None:
    from homae_model.evaluation.evaluate import evaluate

    run, data = trained
    a = evaluate(run, data, "gt-anchored", out_dir=tmp_path / "a", limit=2, progress=False)
    b = evaluate(run, data, ["gt-anchored"], out_dir=tmp_path / "b", limit=2, progress=False)
    assert list(a["metrics"]) == ["gt-anchored"]
    assert a["metrics"]["gt-anchored"] == b["metrics"]["gt-anchored"]  # deterministic
    assert a["meta"]["data_hash"] == b["meta"]["data_hash"]
    # the tiny config names no pretrained encoder: the report says it was trained from scratch
    assert a["meta"]["encoder_init"].startswith("from scratch")


def test_checkpoint_resolution_and_errors(tmp_path, trained) -> None:
    from homae_model.evaluation.evaluate import evaluate

    run, data = trained
    newest = resolve_checkpoint(run)
    assert newest.name == "step_00000002"
    assert resolve_checkpoint(newest) == newest
    assert resolve_checkpoint(newest / "model.safetensors") == newest
    # A weights file under another name with config.yaml beside it (as in weights/demo/).
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    shutil.copy(newest / "model.safetensors", bundled / "demo.safetensors")
    shutil.copy(newest / "config.yaml", bundled / "config.yaml")
    assert resolve_checkpoint(bundled / "demo.safetensors") == bundled / "demo.safetensors"
    (bundled / "config.yaml").unlink()
    with pytest.raises(FileNotFoundError, match=r"config\.yaml"):
        resolve_checkpoint(bundled / "demo.safetensors")
    with pytest.raises(FileNotFoundError, match="missing-run"):
        resolve_checkpoint(tmp_path / "missing-run")
    with pytest.raises(FileNotFoundError, match="no-data"):
        evaluate(run, tmp_path / "no-data", progress=False)
    with pytest.raises(ValueError, match="protocol"):
        evaluate(run, data, "gt-magic", progress=False)
    odd = tmp_path / "odd"
    odd.mkdir()
    with pytest.raises(ValueError, match="unknown data layout"):
        detect_layout(odd)


def test_open_synthetic_source(trained) -> None:
    _, data = trained
    opened = open_source(data)
    assert opened.kind == "synthetic" and opened.has_labels
    assert len(opened.source) == 8
    raw = opened.source[0]
    assert raw.obj_name in opened.objects.names
    assert opened.annotation_files(0)[0].suffix == ".npz"
    assert torch.is_tensor(torch.as_tensor(raw.K))


def test_gt_free_without_detector_is_an_error(tmp_path, trained, monkeypatch, capsys) -> None:
    """No --detector and no bundled demo detector: GT-free fails, naming what to do."""
    import homae_model.evaluation.evaluate as evaluate_module
    from homae_model.cli.evaluate import main
    from homae_model.evaluation.evaluate import evaluate

    monkeypatch.setattr(evaluate_module, "DEFAULT_DETECTOR_WEIGHTS", tmp_path / "no_detector")
    run, data = trained
    for protocols in ("gt-free", "both", ["gt-free"]):
        with pytest.raises(FileNotFoundError, match="gt-free protocol needs a detector") as err:
            evaluate(run, data, protocols, out_dir=tmp_path / "x", limit=1, progress=False)
        assert "--detector" in str(err.value) and str(tmp_path / "no_detector") in str(err.value)
    assert not (tmp_path / "x" / "report.json").exists()
    argv = ["--checkpoint", str(run), "--data", str(data), "--out", str(tmp_path / "y")]
    assert main([*argv, "--protocol", "gt-free", "--limit", "1", "--no-progress"]) == 1
    assert "gt-free protocol needs a detector" in capsys.readouterr().err
    # GT-anchored needs no detector (and a dotted override reaches the evaluated config)
    argv += ["--protocol", "gt-anchored", "--limit", "1", "--no-progress"]
    assert main([*argv, "model.inference.sampling=dense"]) == 0
    report = json.loads((tmp_path / "y" / "report.json").read_text())
    assert report["meta"]["config"]["model"]["inference"]["sampling"] == "dense"
    with pytest.raises(FileNotFoundError, match="detector weights not found"):
        evaluate(run, data, "gt-free", limit=1, detector_weights=tmp_path / "nope.safetensors",
                 out_dir=tmp_path / "z", progress=False)  # fmt: skip
