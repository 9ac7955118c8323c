"""scripts/gpu_train_demo.sh (the demo weights' GPU recipe) on a machine without a GPU.

The script's whole path runs here as a CPU dry run (a few scenes, seconds of training); what it
brings back is checked the way a session reads it after a GPU run: the weights put back
together from their parts match the recorded sha256 and load as the demo model.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import gpu_train_summary  # noqa: E402


def _run_script(*args: str, timeout: float, **env: str) -> subprocess.CompletedProcess:
    """``bash scripts/gpu_train_demo.sh ARGS`` from the repository root, with ``env`` added."""
    return subprocess.run(
        ["bash", "scripts/gpu_train_demo.sh", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
    )


def test_summary_cuts_the_weights_into_parts_that_restore_them(tmp_path: Path) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    (work / "final").mkdir(parents=True)
    blob = os.urandom(1000)
    (work / "final" / "model.safetensors").write_bytes(blob)
    (work / "final" / "config.yaml").write_text("model: {}\n")
    (work / "stages.jsonl").write_text('{"stage": "train", "seconds": 3, "status": 0}\n')
    (work / "full").mkdir()
    (work / "full" / "heldout.jsonl").write_text('{"step": 0, "MJE": 70.0}\n\n')
    parts = gpu_train_summary.split_file(work / "final" / "model.safetensors", out, "w", 300)
    assert parts == ["w.part00", "w.part01", "w.part02", "w.part03"]
    assert b"".join((out / p).read_bytes() for p in parts) == blob

    s = gpu_train_summary.summarize(work, out)
    assert s["weights"]["sha256"] == hashlib.sha256(blob).hexdigest()
    assert s["weights"]["parts"] == ["weights.part00"]  # 1000 bytes: one part of 15 MiB
    assert s["train_heldout"] == [{"step": 0, "MJE": 70.0}]
    assert s["pretrain_heldout"] == [] and s["evaluation"] is None
    assert s["stages"][0]["stage"] == "train"
    assert json.loads((out / "summary.json").read_text()) == s
    assert (out / "config.yaml").read_text() == "model: {}\n"


def test_summary_of_a_run_that_made_no_weights(tmp_path: Path) -> None:
    s = gpu_train_summary.summarize(tmp_path / "empty", tmp_path / "out")
    assert s["weights"] is None and s["stages"] == [] and s["evaluation"] is None
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["summary.json"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the script would train")
def test_without_cuda_the_script_stops_at_once_with_a_message(tmp_path: Path) -> None:
    proc = _run_script(str(tmp_path / "out"), timeout=300, WORK=str(tmp_path / "work"))
    assert proc.returncode != 0
    assert "no CUDA device" in proc.stdout + proc.stderr
    assert not (tmp_path / "work" / "train").exists()


def test_stages_without_time_left_are_skipped_and_recorded(tmp_path: Path) -> None:
    out, work = tmp_path / "out", str(tmp_path / "work")
    proc = _run_script("--dry-run", str(out), timeout=300, WORK=work, BUDGET_S="1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    s = json.loads((out / "summary.json").read_text())
    assert [r["stage"] for r in s["stages"]] == [
        "synth_train", "synth_heldout", "synth_test", "pretrain", "train"
    ]  # fmt: skip
    assert {r["status"] for r in s["stages"]} == {"skipped"}
    assert s["weights"] is None and not (tmp_path / "work" / "train").exists()
    assert "no checkpoint of the full model" in (out / "run.log").read_text()


@pytest.mark.slow
def test_dry_run_synthesizes_trains_evaluates_and_returns_the_weights(tmp_path: Path) -> None:
    from homae_model.checkpoint import init_weights
    from homae_model.config.loading import load_config
    from homae_model.model import HomaeModel

    out, work = tmp_path / "out", tmp_path / "work"
    limits = {"PRETRAIN_MIN": "0.05", "TRAIN_MIN": "0.1"}
    proc = _run_script("--dry-run", str(out), timeout=600, WORK=str(work), **limits)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    s = json.loads((out / "summary.json").read_text())
    stages = {r["stage"]: r["status"] for r in s["stages"]}
    for name in ("synth_train", "synth_heldout", "synth_test", "pretrain", "train", "evaluate"):
        assert stages.get(name) == 0, s["stages"]
    assert s["pretrain_heldout"] and s["train_heldout"]
    assert "stopped by --max-minutes" in (out / "run.log").read_text()
    assert s["evaluation"]["counts"], "the evaluation report is in summary.json"
    # at most 8 small files come back from a GPU machine
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all((out / f).stat().st_size <= 16 * 2**20 for f in files)
    restored = out / "model.safetensors"  # OUT is then a checkpoint folder (config.yaml beside)
    restored.write_bytes(b"".join((out / p).read_bytes() for p in s["weights"]["parts"]))
    assert hashlib.sha256(restored.read_bytes()).hexdigest() == s["weights"]["sha256"]
    model = HomaeModel(load_config(out / "config.yaml"))
    notes = init_weights(model, out)  # as homae-train --init / homae-eval --checkpoint OUT
    assert not [n for n in notes if "missing" in n or "unexpected" in n], notes
