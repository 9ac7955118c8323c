#!/usr/bin/env python3
"""Gather what `scripts/gpu_train_demo.sh` brings back from its work folder into a few files.

    python scripts/gpu_train_summary.py WORK OUT

WORK is the script's work folder: stages.jsonl, pre/heldout.jsonl, full/heldout.jsonl,
final/{model.safetensors,config.yaml}, eval/report.json (any may be missing: a stage that did
not finish). OUT gets:

- ``weights.partNN``: final/model.safetensors cut into parts of at most PART_BYTES (a machine
  may return only small files); ``cat OUT/weights.part* > OUT/model.safetensors`` restores it,
  and OUT is then a checkpoint folder (``homae-eval --checkpoint OUT``);
- ``config.yaml``: the model's config;
- ``summary.json``: the stages' seconds and exit statuses, both held-out curves, the evaluation
  report, and the weights' size, part names and sha256.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

PART_BYTES = 15 * 1024 * 1024
"""The largest part written (returned files may be limited to 16 MiB each)."""


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file, or [] when it is missing."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def split_file(path: Path, out: Path, stem: str, part_bytes: int = PART_BYTES) -> list[str]:
    """Cut ``path`` into ``out/{stem}.part00``, ``part01``, ... of at most ``part_bytes`` each.

    Returns:
        The part file names, in order.
    """
    out.mkdir(parents=True, exist_ok=True)
    names = []
    with path.open("rb") as f:
        while chunk := f.read(part_bytes):
            name = f"{stem}.part{len(names):02d}"
            (out / name).write_bytes(chunk)
            names.append(name)
    return names


def summarize(work: Path, out: Path) -> dict[str, Any]:
    """Write OUT's files from WORK (see the module docstring); returns summary.json's dict."""
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
        "stages": read_jsonl(work / "stages.jsonl"),
        "pretrain_heldout": read_jsonl(work / "pre" / "heldout.jsonl"),
        "train_heldout": read_jsonl(work / "full" / "heldout.jsonl"),
    }
    weights = work / "final" / "model.safetensors"
    if weights.is_file():
        data = weights.read_bytes()
        summary["weights"] = {
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "parts": split_file(weights, out, "weights"),
            "restore": "cat weights.part* > model.safetensors (beside config.yaml)",
        }
        shutil.copyfile(work / "final" / "config.yaml", out / "config.yaml")
    else:
        summary["weights"] = None
    report = work / "eval" / "report.json"
    summary["evaluation"] = json.loads(report.read_text()) if report.is_file() else None
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv: list[str]) -> int:
    """Entry point: ``WORK OUT``."""
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    s = summarize(Path(argv[0]), Path(argv[1]))
    w = s["weights"]
    stages = [(r["stage"], r["seconds"], r["status"]) for r in s["stages"]]
    weights = "none" if w is None else f"{w['bytes']} B in {len(w['parts'])} parts"
    evaluation = "yes" if s["evaluation"] else "none"
    print(f"[gpu_train_summary] stages {stages}; weights {weights}; evaluation {evaluation}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
