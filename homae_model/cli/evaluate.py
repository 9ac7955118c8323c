"""`homae-eval`: evaluate a checkpoint (GT-anchored and/or GT-free) and write the report.

Example::

    homae-eval --checkpoint runs/small --data /data/synth_test --protocol both --out eval/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from homae_model.evaluation.evaluate import PROTOCOL_CHOICES


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of homae-eval."""
    p = argparse.ArgumentParser(prog="homae-eval", description=__doc__.splitlines()[0])
    p.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="run folder (newest good checkpoint), checkpoint folder or model file",
    )
    p.add_argument("--data", type=Path, required=True, help="data folder (layout auto-detected)")
    p.add_argument("--protocol", choices=tuple(PROTOCOL_CHOICES), default="both")
    p.add_argument("--split", help="split (default: DexYCB test, HO3D evaluation)")
    p.add_argument("--out", type=Path, help="report folder (default <checkpoint>/eval-<split>)")
    p.add_argument("--limit", type=int, help="evaluate the first N samples only")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--detector", type=Path, help="detector weights for the GT-free protocol")
    p.add_argument("--ycb", type=Path, help="YCB models folder for DexYCB / HO3D")
    p.add_argument(
        "--no-reflection",
        action="store_true",
        help="Procrustes without reflections (HOISDF) instead of the toolkits'",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; prints the report path and the main metrics, returns the exit status."""
    from homae_model.evaluation.evaluate import evaluate

    args = build_parser().parse_args(argv)
    if args.limit is not None and args.limit <= 0:
        print(f"homae-eval: --limit must be > 0, got {args.limit}", file=sys.stderr)
        return 2
    try:
        report = evaluate(
            args.checkpoint,
            args.data,
            args.protocol,
            split=args.split,
            out_dir=args.out,
            limit=args.limit,
            device=args.device,
            detector_weights=args.detector,
            ycb_dir=args.ycb,
            allow_reflection=not args.no_reflection,
            progress=not args.no_progress,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"homae-eval: error: {exc}", file=sys.stderr)
        return 1
    for protocol, metrics in report["metrics"].items():
        shown = ", ".join(
            f"{k} {v:.2f}"
            for k, v in metrics.items()
            if v is not None and k in ("MJE", "PA-MJE", "OCE", "ADD-S")
        )
        print(f"{protocol}: {shown}")
    print(report["files"]["report_json"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
