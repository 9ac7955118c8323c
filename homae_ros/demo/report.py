"""The demo's accuracy beside the demo model's own evaluation report of the same clip.

`homae-eval` on the demo clip (GT-free protocol, the bundled weights) writes
`weights/demo/eval_demo_clip.json` with one row per frame (`report["per_sample"]`). The node
drops frames while it is busy, so the demo compares itself with the report's rows of exactly the
frames it answered: both are the same Predictor on the same images, so the means agree to
within a few mm (differences come only from detections made on different threads and floating
point), and `mje_gap_mm` shows by how much.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from homae_model.bundled import bundled_weights_dir
from homae_model.config import config_to_dict, load_config
from homae_model.training.state import file_sha256

CLIP_REPORT_NAME = "eval_demo_clip.json"
"""The demo clip's evaluation report beside the bundled weights."""
HELDOUT_REPORT_NAME = "eval_report.json"
"""The held-out synthetic split's evaluation report beside the bundled weights."""
PROTOCOL = "gt-free"
"""The node's situation: its own detector and anchor, no ground truth."""


def compare_rows(
    node_errors: dict[int, dict[str, float]], rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """Node per-frame errors beside the report's rows of the same frames.

    Args:
        node_errors: frame index -> {"MJE": mm, "ADD-S": mm} measured on the node's output.
        rows: `report["per_sample"][PROTOCOL]` (index, MJE, ADD-S, ...; `detected` False for
            frames where the offline detector found no pair).

    Returns:
        `frames_compared`, the node's and the report's mean MJE / ADD-S over those frames and
        the gaps (node minus report, mm); None values when no frame is shared.
    """
    by_index = {int(r["index"]): r for r in rows if r.get("MJE") is not None}
    shared = sorted(set(node_errors) & set(by_index))
    out: dict[str, Any] = {"frames_compared": len(shared)}
    for key, name in (("mje", "MJE"), ("adds", "ADD-S")):
        pairs = [
            (node_errors[i][name], by_index[i][name])
            for i in shared
            if node_errors[i].get(name) is not None and by_index[i].get(name) is not None
        ]
        node = float(np.mean([p[0] for p in pairs])) if pairs else None
        report = float(np.mean([p[1] for p in pairs])) if pairs else None
        out[f"node_{key}_mm"] = node
        out[f"report_{key}_mm"] = report
        out[f"{key}_gap_mm"] = None if node is None or report is None else node - report
    return out


def clip_fingerprint(clip: Path, count: int) -> str:
    """`homae-eval`'s data hash of the first `count` frames of a clip folder."""
    from homae_model.data.sources import dataset_fingerprint, open_source

    opened = open_source(clip, None)
    return str(dataset_fingerprint(opened, list(range(count)))["sha256"])


def _inference_settings(config: dict[str, Any]) -> dict[str, Any] | None:
    """`model.inference` of a config dict (what the Predictor does after the weights)."""
    return config.get("model", {}).get("inference")


def report_comparison(
    node_errors: dict[int, dict[str, float]],
    checkpoint: Path,
    clip: Path,
    weights_dir: Path | None = None,
) -> dict[str, Any]:
    """The summary's `report` block: the clip report on the node's frames, held-out numbers.

    The held-out synthetic split's GT-free MJE / ADD-S are added for scale.

    Args:
        node_errors: frame index -> {"MJE": mm, "ADD-S": mm} of the frames the node answered.
        checkpoint: the HOMAE weights file the node ran.
        clip: the clip folder the demo played (must be the one the report evaluated).
        weights_dir: where the reports are (default: the bundled weights folder).

    Returns:
        A JSON-ready dict; `status` says why no comparison was made when the report is missing
        or describes other weights or another clip.
    """
    folder = weights_dir or bundled_weights_dir()
    clip_report = folder / CLIP_REPORT_NAME
    out: dict[str, Any] = {"file": str(clip_report), "protocol": PROTOCOL}
    heldout = folder / HELDOUT_REPORT_NAME
    if heldout.is_file():
        metrics = json.loads(heldout.read_text())["metrics"].get(PROTOCOL, {})
        out["heldout_split"] = {"file": str(heldout), "MJE": metrics.get("MJE"),
                                "ADD-S": metrics.get("ADD-S")}  # fmt: skip
    if not clip_report.is_file():
        out["status"] = f"no clip report at {clip_report}"
        return out
    report = json.loads(clip_report.read_text())
    weights = Path(checkpoint)
    if not weights.is_file() or report["meta"].get("checkpoint_sha256") != file_sha256(weights):
        out["status"] = f"{clip_report} describes other weights than {checkpoint}"
        return out
    meta = report["meta"]
    if _inference_settings(meta.get("config", {})) != _inference_settings(
        config_to_dict(load_config(weights.parent / "config.yaml"))
    ):
        out["status"] = (
            f"{clip_report} was made with other inference settings (model.inference) than "
            f"{weights.parent / 'config.yaml'}"
        )
        return out
    if meta.get("data_hash", {}).get("sha256") != clip_fingerprint(clip, meta["counts"]["samples"]):
        out["status"] = f"{clip_report} describes another clip than {clip}"
        return out
    rows = report.get("per_sample", {}).get(PROTOCOL)
    if not rows:
        out["status"] = f"{clip_report} has no per-frame {PROTOCOL} rows"
        return out
    out["status"] = "compared"
    out["report_mje_mm_all_frames"] = report["metrics"][PROTOCOL]["MJE"]
    out.update(compare_rows(node_errors, rows))
    return out
