r"""`homae-export`: write a checkpoint's network stages as ONNX graphs plus a manifest JSON.

Four graphs (encoder + anchor, hand SDF, object SDF, fusion + transformer heads; the voxel
search stays in the Predictor between them), plus a window graph and a pixels graph for models
whose feature map is computed over the boxes' window (layout "window": no image skip, no
heatmap anchor; `homae_model.export.graphs`), and `onnx_manifest.json` (opset, layout,
input/output names and shapes, the checkpoint's sha256, the export's own onnxruntime-vs-torch
check).
Run them with `--runtime onnxruntime --onnx-dir DIR` in homae-infer / homae-bag, or
`Predictor.from_checkpoint(..., runtime="onnxruntime", onnx_dir=DIR)`.

Example::

    homae-export --checkpoint weights/demo --out weights/demo_onnx
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from homae_model.export.manifest import MANIFEST_NAME


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of homae-export."""
    from homae_model.export.onnx_export import DEFAULT_OPSET

    p = argparse.ArgumentParser(prog="homae-export", description=__doc__.splitlines()[0])
    p.add_argument(
        "--checkpoint",
        default="",
        help="checkpoint folder (model.safetensors or the bundled demo's weights) or weights "
        "file (default: the bundled demo)",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})"
    )
    p.add_argument("--mano-model", default="", help="MANO model file (default: the config's)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `homae-export`; returns the exit code (2: cannot export, says why)."""
    args = build_parser().parse_args(argv)
    from homae_model.bundled import bundled_weights_dir
    from homae_model.export.onnx_export import ExportError, export_checkpoint

    checkpoint = args.checkpoint or str(bundled_weights_dir())
    try:
        manifest = export_checkpoint(
            checkpoint, args.out, opset=args.opset, mano_path=args.mano_model or None
        )
    except ExportError as exc:
        print(f"homae-export: {exc}", file=sys.stderr)
        return 2
    summary = {
        "out": str(args.out),
        "manifest": str(args.out / MANIFEST_NAME),
        "opset": manifest.opset,
        "layout": manifest.model["layout"],
        "checkpoint_sha256": manifest.source["sha256"],
        "graphs": {
            name: {
                "inputs": {t.name: t.shape for t in g.inputs},
                "outputs": {t.name: t.shape for t in g.outputs},
            }
            for name, g in manifest.graphs.items()
        },
        "max_abs_diff_vs_torch": {k: max(v.values()) for k, v in manifest.check.items()},
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
