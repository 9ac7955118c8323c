r"""`homae-fit-anchor`: (re)train only the GT-free anchor head of a trained checkpoint.

Everything but the anchor head stays as in CHECKPOINT; the head's inputs are computed once per
augmented crop and the head is trained on them (homae_model/training/anchor_fit.py). With
`--boxes` the head also reads the hand and object boxes in the crop; with `--kind heatmap` it
gains the heatmap branch over the feature map.

Example::

    homae-fit-anchor --checkpoint runs/ft --data /data/synth_train --val /data/synth_test \\
        --boxes --out runs/ft_anchor
    homae-fit-anchor --checkpoint runs/ft ... --kind heatmap model.anchor.heatmap_pool=4
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from homae_model.cli.overrides import add_overrides_argument


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of homae-fit-anchor."""
    p = argparse.ArgumentParser(prog="homae-fit-anchor", description=__doc__.splitlines()[0])
    p.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="run folder (newest good checkpoint), checkpoint folder or weights file",
    )
    p.add_argument("--data", type=Path, required=True, help="training data folder")
    p.add_argument("--val", type=Path, required=True, help="validation data folder (selection)")
    p.add_argument("--out", type=Path, required=True, help="output checkpoint folder")
    p.add_argument("--kind", choices=("pooled", "heatmap"), default="pooled")
    p.add_argument("--boxes", action="store_true", help="the head also reads the hand/object boxes")
    p.add_argument("--split", default="train", help="split of --data (default train)")
    p.add_argument("--limit", type=int, help="use the first N training samples")
    p.add_argument("--val-limit", type=int, default=400, help="validation samples (default 400)")
    p.add_argument("--passes", type=int, default=2, help="augmented crops per training sample")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--anchor-weight", type=float, default=1.0, help="loss.anchor for the fit")
    p.add_argument(
        "--heatmap-weight", type=float, default=0.1, help="loss.anchor_heatmap for the fit"
    )
    p.add_argument("--workers", type=int, default=1, help="data workers while encoding")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--cache",
        type=Path,
        help="training-feature cache: loaded when it exists (same checkpoint, data and "
        "options), written otherwise; lets several fits share one feature pass",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    add_overrides_argument(
        p,
        "the checkpoint's config (and --kind / --boxes)",
        "homae-fit-anchor --checkpoint runs/ft --data D --val V --out runs/fa "
        "model.anchor.heatmap_pool=4",
        note="The new checkpoint saves the resolved config.",
    )
    return p


def _dataset(root: Path, split: str | None, cfg: Any, train: bool, limit: int | None) -> Any:
    from homae_model.data.dataset import HandObjectDataset
    from homae_model.data.pipeline import SamplePipeline
    from homae_model.data.sources import open_source

    if not root.exists():
        raise FileNotFoundError(f"data folder not found: {root}")
    mano = cfg.mano.resolved_path()
    opened = open_source(root, split=split, mano_dir=mano.parent, load_masks=False)
    pipeline = SamplePipeline(cfg.data, mano, opened.objects, train=train)
    dataset, report = HandObjectDataset.scanned(opened.source, pipeline, cfg.train.seed,
                                                opened.objects)  # fmt: skip
    if report.bad:
        print(f"data scan of {root}: {report.summary()}", file=sys.stderr)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    return dataset, list(range(n))


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Fit the head, write the checkpoint and `anchor_fit.json`; returns the summary."""
    import copy

    import torch

    from homae_model.checkpoint import init_weights, load_model, save_checkpoint, weights_file
    from homae_model.config import apply_overrides
    from homae_model.model import HomaeModel
    from homae_model.training.anchor_fit import (
        anchor_errors,
        collect_anchor_features,
        concat_features,
        error_summary,
        fit_anchor_head,
    )
    from homae_model.training.schedule import freeze_except
    from homae_model.training.state import file_sha256, resolve_checkpoint

    torch.manual_seed(args.seed)
    args.checkpoint = resolve_checkpoint(args.checkpoint)
    base, base_cfg = load_model(args.checkpoint)
    cfg = copy.deepcopy(base_cfg)
    cfg.model.anchor.kind = args.kind
    cfg.model.anchor.use_boxes = bool(args.boxes or cfg.model.anchor.use_boxes)
    cfg = apply_overrides(cfg, args.overrides)
    # the fit's own loss weights; the saved config keeps the checkpoint's training losses
    fit_loss = copy.deepcopy(cfg.loss)
    fit_loss.anchor, fit_loss.anchor_heatmap = args.anchor_weight, args.heatmap_weight
    model = HomaeModel(cfg)
    notes = init_weights(model, args.checkpoint)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    freeze_except(model, ["anchor_head."])
    progress = not args.no_progress

    key = {  # what the cached training features depend on
        "version": 2,
        "checkpoint": file_sha256(weights_file(args.checkpoint)),
        "kind": args.kind,
        "data": str(args.data.resolve()),
        "split": args.split,
        "limit": args.limit,
        "passes": args.passes,
        "overrides": list(args.overrides),
    }
    train = _load_cache(args.cache, key)
    if train is None:
        train_set, train_idx = _dataset(args.data, args.split, cfg, True, args.limit)
        passes = []
        for p in range(args.passes):
            train_set.set_epoch(p)
            passes.append(collect_anchor_features(
                model, train_set, train_idx, num_workers=args.workers, progress=progress,
                desc=f"features {p + 1}/{args.passes}",
            ))  # fmt: skip
        train = concat_features(passes)
        if args.cache is not None:
            args.cache.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"key": key, "train": vars(train)}, args.cache)
    val_set, val_idx = _dataset(args.val, None, cfg, False, args.val_limit)
    val = collect_anchor_features(model, val_set, val_idx, num_workers=args.workers,
                                  progress=progress, desc="validation features")  # fmt: skip
    before = error_summary(anchor_errors(base.anchor_head, val))  # a pooled head ignores maps
    history = fit_anchor_head(
        model.anchor_head, train, val, fit_loss, epochs=args.epochs, lr=args.lr,
        batch_size=args.batch_size, seed=args.seed, progress=progress,
    )  # fmt: skip
    after = error_summary(anchor_errors(model.anchor_head, val))
    summary = {
        "checkpoint": str(args.checkpoint),
        "kind": args.kind,
        "use_boxes": cfg.model.anchor.use_boxes,
        "train_crops": len(train),
        "val_crops": len(val),
        "before": before,
        "after": after,
        "train_loss": history.train_loss,
        "val_error_mm": history.val_error_mm,
        "best_epoch": history.best_epoch,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    save_checkpoint(args.out, model, cfg, extra={"anchor_fit": summary})
    (Path(args.out) / "anchor_fit.json").write_text(json.dumps(summary, indent=1))
    return summary


def _load_cache(path: Path | None, key: dict[str, Any]) -> Any:
    """Training `AnchorFeatures` from a cache made with the same key, else None."""
    import torch

    from homae_model.training.anchor_fit import AnchorFeatures

    if path is None or not path.is_file():
        return None
    blob = torch.load(path, weights_only=True)
    if blob.get("key") != key:
        print(f"note: feature cache {path} was made with other options; recomputing",
              file=sys.stderr)  # fmt: skip
        return None
    return AnchorFeatures(**blob["train"])


def main(argv: list[str] | None = None) -> int:
    """Entry point; prints the anchor error before and after, returns the exit status."""
    args = build_parser().parse_intermixed_args(argv)
    for name in ("limit", "val_limit", "passes", "epochs", "batch_size", "lr"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            print(f"homae-fit-anchor: --{name.replace('_', '-')} must be > 0, got {value}",
                  file=sys.stderr)  # fmt: skip
            return 2
    try:
        summary = run(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"homae-fit-anchor: {err}", file=sys.stderr)
        return 1
    b, a = summary["before"], summary["after"]
    print(
        f"anchor error on {summary['val_crops']} validation crops (mean / x / y / z mm): "
        f"before {b['mean_mm']:.1f} / {b['x_mm']:.1f} / {b['y_mm']:.1f} / {b['z_mm']:.1f}, "
        f"after {a['mean_mm']:.1f} / {a['x_mm']:.1f} / {a['y_mm']:.1f} / {a['z_mm']:.1f}"
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
