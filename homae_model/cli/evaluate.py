"""`homae-eval`: evaluate a checkpoint (GT-anchored and/or GT-free) and write the report.

Example::

    homae-eval --checkpoint runs/small --data /data/synth_test --protocol both --out eval/
    homae-eval --checkpoint weights/demo --data ~/data/HO3D_v2 --split evaluation  # pred.json
    homae-eval --checkpoint runs/small --data /data/synth_test model.inference.voxel_res=32

The GT-free protocol (``--protocol gt-free`` or ``both``, the default) needs the box detector:
``--detector WEIGHTS``, else the bundled demo detector; without either it is an error.

On a split without labels (HO3D evaluation) it writes the server's ``pred.json`` with one entry
per frame, in the split's order: a frame the detector misses (GT-free protocol) is answered from
the split's own boxes, else from the previous estimate, and named in a warning and the report.
``--limit`` there writes ``pred_partial_<N>of<TOTAL>.json`` instead (a server rejects it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from homae_model.cli.overrides import add_overrides_argument
from homae_model.device import resolve_device
from homae_model.estimation.cli_args import add_device_argument
from homae_model.evaluation.evaluate import PROTOCOL_CHOICES

SHOWN_METRICS = ("MJE", "PA-MJE", "OCE", "MCE", "ADD-S")
"""Metrics printed per protocol (all of them are in report.json / report.md)."""
FILE_LABELS = {
    "report_json": "report (JSON)",
    "report_md": "report (Markdown)",
    "pck_plot": "PCK curves",
}


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of homae-eval."""
    p = argparse.ArgumentParser(prog="homae-eval", description=__doc__.splitlines()[0])
    p.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="run folder (newest good checkpoint), checkpoint folder, weights folder "
        "(a .safetensors file + config.yaml, e.g. weights/demo) or weights file",
    )
    p.add_argument("--data", type=Path, required=True, help="data folder (layout auto-detected)")
    p.add_argument("--protocol", choices=tuple(PROTOCOL_CHOICES), default="both")
    p.add_argument("--split", help="split (default: DexYCB test, HO3D evaluation)")
    p.add_argument("--out", type=Path, help="report folder (default <checkpoint>/eval-<split>)")
    p.add_argument(
        "--limit",
        type=int,
        help="evaluate the first N samples only (a split without labels then writes "
        "pred_partial_<N>of<TOTAL>.json, not pred.json)",
    )
    add_device_argument(p)
    p.add_argument(
        "--detector",
        type=Path,
        help="detector weights for the GT-free protocol (default: the bundled demo detector; "
        "without one the GT-free protocol is an error)",
    )
    p.add_argument(
        "--side-net",
        type=Path,
        help="hand-side network (homae-train-sides) deciding each detected hand's side under "
        "the GT-free protocol (default: none; the detector's left/right classes, if any)",
    )
    p.add_argument("--ycb", type=Path, help="YCB models folder for DexYCB / HO3D")
    p.add_argument(
        "--baseline-data",
        type=Path,
        help="labelled data folder the baselines' mean hand and object pose come from "
        "(default: the evaluated frames)",
    )
    p.add_argument("--baseline-split", help="split of --baseline-data (default: its layout's)")
    p.add_argument(
        "--no-reflection",
        action="store_true",
        help="Procrustes without reflections (HOISDF) instead of the toolkits'",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_overrides_argument(
        p,
        "the checkpoint's config.yaml",
        "homae-eval --checkpoint weights/demo --data DIR model.inference.sampling=dense",
        note="Inference settings (model.inference.*) can change; the network's keys must "
        "still match the weights.",
    )
    return p


def _values(metrics: Mapping[str, Any], extras: Mapping[str, Any] | None = None) -> str:
    shown = [f"{k} {metrics[k]:.2f}" for k in SHOWN_METRICS if metrics.get(k) is not None]
    for name, value in (extras or {}).items():
        if "HOISDF" in name and value is not None:
            shown.append(f"{name} {value:.2f}")
    return ", ".join(shown)


def print_summary(report: Mapping[str, Any], out: TextIO | None = None) -> None:
    """Print the metrics, baselines, detector misses and written files of a report."""
    out = out if out is not None else sys.stdout
    for protocol, metrics in report["metrics"].items():
        shown = _values(metrics, report.get("extras", {}).get(protocol))
        if shown:
            n = report.get("counts", {}).get(protocol, {}).get("all", "?")
            print(f"{protocol} ({n} samples): {shown} (mm)", file=out)
    baselines = report.get("baselines") or {}
    for protocol, metrics in baselines.get("metrics", {}).items():
        shown = _values(metrics, baselines.get("extras", {}).get(protocol))
        if shown:
            print(f"baseline, {protocol} (constant hand, mean object pose): {shown}", file=out)
    gt_free = report["meta"].get("gt_free") or {}
    misses, fallbacks = gt_free.get("misses") or [], gt_free.get("fallbacks") or []
    if misses:
        frames = ", ".join(m["frame"] for m in misses[:5]) + (" ..." if len(misses) > 5 else "")
        print(f"gt-free: detector missed {len(misses)} frame(s): {frames}", file=out)
    if fallbacks:
        print(
            f"submission: {len(fallbacks)} frame(s) answered by a fallback "
            "(report.json meta.gt_free.fallbacks)",
            file=out,
        )
    for note in report["meta"].get("notes", []):
        if "--limit" in note or "no labels" in note:
            print(f"note: {note}", file=out)
    for key, path in report.get("files", {}).items():
        label = FILE_LABELS.get(key)
        if label is None and key.startswith("ho3d_submission_"):
            label = f"HO3D submission ({key.removeprefix('ho3d_submission_')})"
        print(f"{label or key}: {path}", file=out)


def main(argv: list[str] | None = None) -> int:
    """Entry point; prints the main metrics and every written file, returns the exit status."""
    from homae_model.evaluation.evaluate import evaluate

    args = build_parser().parse_intermixed_args(argv)
    if args.limit is not None and args.limit <= 0:
        print(f"homae-eval: --limit must be > 0, got {args.limit}", file=sys.stderr)
        return 2
    try:
        device = resolve_device(args.device, "--device")
    except RuntimeError as exc:
        print(f"homae-eval: error: {exc}", file=sys.stderr)
        return 1
    try:
        report = evaluate(
            args.checkpoint,
            args.data,
            args.protocol,
            split=args.split,
            out_dir=args.out,
            limit=args.limit,
            device=device,
            detector_weights=args.detector,
            side_net=args.side_net,
            ycb_dir=args.ycb,
            allow_reflection=not args.no_reflection,
            progress=not args.no_progress,
            baseline_data=args.baseline_data,
            baseline_split=args.baseline_split,
            config_overrides=tuple(args.overrides),
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"homae-eval: error: {exc}", file=sys.stderr)
        return 1
    print_summary(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
