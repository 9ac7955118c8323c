"""The demo's comparison with the model's clip report: same frames only, clear statuses."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from homae_model.config import config_to_dict, load_config
from homae_ros.demo.report import CLIP_REPORT_NAME, HELDOUT_REPORT_NAME, compare_rows
from homae_ros.demo.report import report_comparison as compare

TINY = Path(__file__).resolve().parents[2] / "config" / "model" / "tiny.yaml"


def test_compare_rows_uses_only_frames_both_answered() -> None:
    node = {0: {"MJE": 10.0, "ADD-S": 4.0}, 2: {"MJE": 30.0}, 5: {"MJE": 99.0}}
    rows = [
        {"index": 0, "MJE": 12.0, "ADD-S": 5.0},
        {"index": 1, "MJE": 50.0, "ADD-S": 9.0},
        {"index": 2, "MJE": 26.0, "ADD-S": 7.0},
        {"index": 5, "detected": False},
    ]
    out = compare_rows(node, rows)
    assert out["frames_compared"] == 2
    assert out["node_mje_mm"] == pytest.approx(20.0)
    assert out["report_mje_mm"] == pytest.approx(19.0)
    assert out["mje_gap_mm"] == pytest.approx(1.0)
    assert out["node_adds_mm"] == pytest.approx(4.0) and out["adds_gap_mm"] == pytest.approx(-1.0)
    empty = compare_rows({7: {"MJE": 1.0}}, rows)
    assert empty["frames_compared"] == 0 and empty["mje_gap_mm"] is None


def _write_report(folder, weights_sha: str, data_sha: str, inference: dict | None = None) -> None:
    report = {
        "meta": {"checkpoint_sha256": weights_sha, "data_hash": {"sha256": data_sha},
                 "counts": {"samples": 3}, "config": {"model": {"inference": inference}}},
        "metrics": {"gt-free": {"MJE": 21.0, "ADD-S": 6.0}},
        "per_sample": {"gt-free": [{"index": 0, "MJE": 20.0, "ADD-S": 6.0},
                                   {"index": 1, "MJE": 22.0, "ADD-S": 6.0}]},
    }  # fmt: skip
    (folder / CLIP_REPORT_NAME).write_text(json.dumps(report))
    heldout = {"metrics": {"gt-free": {"MJE": 40.0, "ADD-S": 12.0}}}
    (folder / HELDOUT_REPORT_NAME).write_text(json.dumps(heldout))


def test_report_comparison_checks_weights_and_clip(tmp_path, monkeypatch) -> None:
    import homae_ros.demo.report as demo_report

    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"weights")
    shutil.copy(TINY, tmp_path / "config.yaml")
    inference = config_to_dict(load_config(TINY))["model"]["inference"]
    sha = hashlib.sha256(b"weights").hexdigest()
    node = {1: {"MJE": 23.0, "ADD-S": 7.0}}
    clip = tmp_path / "clip"
    monkeypatch.setattr(demo_report, "clip_fingerprint", lambda path, n: f"clip:{path.name}:{n}")

    missing = compare(node, weights, clip, weights_dir=tmp_path / "nothing")
    assert missing["status"].startswith("no clip report")

    _write_report(tmp_path, "0" * 64, "clip:clip:3")
    other = compare(node, weights, clip, weights_dir=tmp_path)
    assert "other weights" in other["status"] and other["heldout_split"]["MJE"] == 40.0

    _write_report(tmp_path, sha, "clip:another:3", inference)
    assert "another clip" in compare(node, weights, clip, weights_dir=tmp_path)["status"]

    _write_report(tmp_path, sha, "clip:clip:3", dict(inference, keypoint_net="kp.safetensors"))
    assert (
        "other inference settings" in compare(node, weights, clip, weights_dir=tmp_path)["status"]
    )

    _write_report(tmp_path, sha, "clip:clip:3", inference)
    ok = compare(node, weights, clip, weights_dir=tmp_path)
    assert ok["status"] == "compared" and ok["frames_compared"] == 1
    assert ok["report_mje_mm"] == 22.0 and ok["mje_gap_mm"] == pytest.approx(1.0)
    assert ok["report_mje_mm_all_frames"] == 21.0
