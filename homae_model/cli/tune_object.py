"""homae-tune-object: fine-tune the object head on what the frozen network gives it at inference.

Runs the checkpoint's Predictor (torch) over labelled frames, with the GT hand root and the
labelled boxes (gt-anchored) and with the anchor head's estimate and the detector's boxes
(GT-free, as homae-eval and the node), keeps the object head's inputs, trains
the object head alone on them (`homae_model.training.object_tuning`) and writes a checkpoint
folder (model.safetensors + config.yaml) in which only `object_head.*` changed, with
tune_report.json (held-out OCE / ADD-S before and after, per anchor) and tune_curves.png.

Example (the bundled demo model's last step; 25 minutes on 2 CPU threads):
    homae-tune-object --checkpoint weights/demo --data data/train --limit 6000 \
        --val data/val --val-limit 400 --out runs/object_tune loss.obj_rot_points=10
    homae-eval --checkpoint runs/object_tune --data data/test --protocol both --limit 200
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from homae_model.cli.overrides import add_overrides_argument
from homae_model.training.object_tuning import ANCHOR_KINDS, TuneSettings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="homae-tune-object", description=__doc__.split("\n")[0])
    p.add_argument(
        "--checkpoint",
        required=True,
        help="checkpoint folder, run folder's checkpoint or weights folder (e.g. weights/demo)",
    )
    p.add_argument("--data", required=True, type=Path, help="labelled training data folder")
    p.add_argument("--split", default=None, help="split of --data (default: its layout's)")
    p.add_argument("--limit", type=int, default=None, help="first N frames of --data")
    p.add_argument("--val", type=Path, default=None, help="held-out labelled data folder")
    p.add_argument("--val-split", default=None, help="split of --val")
    p.add_argument("--val-limit", type=int, default=400, help="first N frames of --val")
    p.add_argument("--out", required=True, type=Path, help="output checkpoint folder")
    p.add_argument(
        "--anchors",
        nargs="+",
        choices=ANCHOR_KINDS,
        default=list(ANCHOR_KINDS),
        help="grid centres each frame is run with: the GT root (given) and/or the anchor "
        "head's estimate (predicted); default both",
    )
    p.add_argument(
        "--detector",
        default=None,
        help="detector weights giving the predicted anchor's boxes, as homae-eval's GT-free "
        "protocol (default: the bundled demo detector)",
    )
    p.add_argument(
        "--labelled-boxes",
        action="store_true",
        help="run the predicted anchor on the labelled boxes instead of the detector's",
    )
    p.add_argument("--steps", type=int, default=TuneSettings.steps)
    p.add_argument("--batch-size", type=int, default=TuneSettings.batch_size)
    p.add_argument("--lr", type=float, default=TuneSettings.lr)
    p.add_argument("--eval-every", type=int, default=TuneSettings.eval_every)
    p.add_argument("--seed", type=int, default=TuneSettings.seed)
    p.add_argument("--device", default="cpu", help="where the frozen network runs")
    p.add_argument("--ycb", default=None, help="YCB models folder for DexYCB / HO3D")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    add_overrides_argument(
        p,
        "the checkpoint's config.yaml (the loss weights: loss.obj_rot, loss.obj_rot_points, "
        "loss.obj_trans, loss.smooth_l1_beta)",
        "homae-tune-object --checkpoint C --data D --out O loss.obj_rot_points=10",
    )
    return p


def _collect(
    predictor: Any, folder: Path, split: str | None, limit: int | None, args: Any, detected: Any
):
    from tqdm import tqdm

    from homae_model.data.sources import open_source
    from homae_model.training.object_tuning import collect_object_inputs

    opened = open_source(folder, split, ycb_dir=args.ycb)
    n = len(opened.source) if limit is None else min(limit, len(opened.source))
    with tqdm(total=n, desc=f"run {folder.name}", unit="img", disable=args.no_progress) as bar:
        return collect_object_inputs(
            predictor, opened, range(n), args.anchors, lambda: bar.update(1), detected
        )


def _format(errs: dict[str, dict[str, float]]) -> str:
    return "; ".join(
        f"{k}: OCE {v['OCE']:.1f}, ADD-S {v['ADD-S']:.1f} mm (n={v['n']})" for k, v in errs.items()
    )


def _plot(curve: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    steps = [c["step"] for c in curve]
    for i, metric in enumerate(("OCE", "ADD-S")):
        for kind in ("all", *ANCHOR_KINDS):
            if kind in curve[0]["val"]:
                ax[i].plot(steps, [c["val"][kind][metric] for c in curve], label=kind)
        ax[i].set_xlabel("step")
        ax[i].set_ylabel(f"held-out {metric} (mm)")
        ax[i].grid(alpha=0.3)
    ax[0].legend(title="anchor")
    fig.suptitle("homae-tune-object: the object head on the frozen network's inputs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, collect, tune, save; returns the exit status."""
    args = _parser().parse_intermixed_args(argv)
    import torch
    from tqdm import tqdm

    from homae_model.checkpoint import load_extra, save_checkpoint
    from homae_model.evaluation.evaluate import gt_free_boxes
    from homae_model.evaluation.weights import resolve_weights
    from homae_model.inference import Predictor
    from homae_model.training.object_tuning import object_head_errors, tune_object_head

    t0 = time.time()
    try:
        source = resolve_weights(args.checkpoint)
        predictor = Predictor.from_checkpoint(source, args.device, overrides=args.overrides)
        settings = TuneSettings(args.steps, args.batch_size, args.lr, args.eval_every, args.seed)
        if min(settings.steps, settings.batch_size) < 1 or settings.lr <= 0:
            raise ValueError("--steps, --batch-size and --lr must be positive")
        detected = None
        if "predicted" in args.anchors and not args.labelled_boxes:
            detected = gt_free_boxes(args.detector, args.device)
        train = _collect(predictor, args.data, args.split, args.limit, args, detected)
        val = None
        if args.val is not None:
            val = _collect(predictor, args.val, args.val_split, args.val_limit, args, detected)
    except (ValueError, FileNotFoundError) as exc:
        print(f"homae-tune-object: error: {exc}", file=sys.stderr)
        return 2
    model, cfg = predictor.model, predictor.cfg
    print(f"cached {len(train)} training rows ({len(train.skipped)} skipped: left hands, misses)")
    before = object_head_errors(model.object_head, val) if val is not None else None
    if before is not None:
        print(f"held-out before: {_format(before)}")
    with tqdm(total=settings.steps, desc="tune", unit="step", disable=args.no_progress) as bar:

        def on_step(step: int, loss: float) -> None:
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss:.4f}")

        torch.manual_seed(settings.seed)
        tuned, curve = tune_object_head(
            model.object_head.cpu(), train, cfg.loss, settings, val, on_step
        )
    model.object_head.load_state_dict(tuned.state_dict())
    after = object_head_errors(model.object_head, val) if val is not None else None
    if after is not None:
        print(f"held-out after:  {_format(after)}")
    recipe = {
        "tuned_from": str(source),
        "data": str(args.data),
        "limit": args.limit,
        "anchors": list(args.anchors),
        "predicted_anchor_boxes": "labelled" if detected is None else "detector",
        "detector": None if detected is None else str(args.detector or "bundled demo detector"),
        "settings": asdict(settings),
        "overrides": list(args.overrides),
        "changed": "object_head.*",
    }
    # the source's own record (its training runs) stays, with this step added
    extra = {**load_extra(source), "object_tune": recipe}
    weights = save_checkpoint(args.out, model, cfg, extra=extra)
    report = {
        **recipe,
        "val": None if args.val is None else str(args.val),
        "val_limit": args.val_limit,
        "train_rows": len(train),
        "skipped_frames": train.skipped,
        "before": before,
        "after": after,
        "curve": curve,
        "minutes": round((time.time() - t0) / 60, 1),
    }
    (args.out / "tune_report.json").write_text(json.dumps(report, indent=2) + "\n")
    if curve:
        _plot(curve, args.out / "tune_curves.png")
    print(f"saved {weights} ({report['minutes']} min); report {args.out / 'tune_report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
