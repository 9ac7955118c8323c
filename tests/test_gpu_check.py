"""benchmarks/gpu_check.sh on a machine without a GPU: the clear exit, and a CPU dry run."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from benchmarks import gpu_check

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the check would run")
def test_without_cuda_the_script_exits_with_a_message() -> None:
    proc = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "no CUDA device" in proc.stderr and "--dry-run" in proc.stderr
    assert (
        not (REPO / "benchmarks" / "results_gpu.json").exists()
        or "dry_run" in (REPO / "benchmarks" / "results_gpu.json").read_text()
    )


def test_unknown_section_is_refused() -> None:
    with pytest.raises(SystemExit):
        gpu_check.main(["--dry-run", "--sections", "nope"])


@pytest.mark.slow
def test_dry_run_oom_retry_and_training_sections(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    assert gpu_check.main(["--dry-run", "--sections", "oom,train", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["dry_run"] is True
    assert res["oom"]["calls"] == [4, 2, 2] and res["oom"]["estimates"] == 4
    assert res["oom"]["passed"] is True
    assert res["train"]["fp32"]["precision"] == "fp32"
    assert res["train"]["mixed"]["precision"] == "autocast bfloat16"
    assert res["train"]["fp32"]["samples_per_s"] > 0 and res["train"]["mixed"]["samples_per_s"] > 0


def test_a_python_without_torch_is_refused_naming_it(tmp_path: Path) -> None:
    fake = tmp_path / "python"  # answers every call as a Python without PyTorch would
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    proc = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh", "--dry-run"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHON": str(fake)},
    )
    assert proc.returncode == 2
    assert f"{fake} has no PyTorch" in proc.stderr and "make setup" in proc.stderr
