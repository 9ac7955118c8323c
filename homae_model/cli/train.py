"""`homae-train`: train HOMAE (one process, or DDP under torchrun).

Examples::

    homae-train --config config/model/small.yaml --data /data/synth --out runs/small
    homae-train --config config/model/small.yaml --data /data/synth model.masking.enabled=false
    homae-train --resume runs/small                       # continue where it stopped
    homae-train --config config/model/small.yaml --init runs/small --data ...  # fine-tune
    torchrun --nproc_per_node 2 -m homae_model.cli.train --config ... --data ... --out ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from homae_model.cli.overrides import add_overrides_argument
from homae_model.training.state import NoCheckpointError


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of homae-train."""
    p = argparse.ArgumentParser(prog="homae-train", description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, help="model/training YAML (required for a new run)")
    p.add_argument("--data", type=Path, required=True, help="training data folder")
    p.add_argument("--resume", type=Path, help="run folder (or checkpoint folder) to continue")
    p.add_argument(
        "--init",
        type=Path,
        help="run folder (newest good checkpoint), checkpoint folder or weights file whose "
        "weights start this new run (fine-tuning; fresh optimiser)",
    )
    p.add_argument("--out", type=Path, help="run folder (default runs/homae-<time>)")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: CUDA when available")
    p.add_argument("--max-steps", type=int, help="stop after N optimiser steps in total")
    p.add_argument(
        "--max-minutes",
        type=float,
        help="stop after this many minutes (held-out check and checkpoint at the step where it "
        "stops, as for SIGINT)",
    )
    p.add_argument("--epochs", type=int, help="override train.epochs (= train.epochs=N)")
    p.add_argument(
        "--batch-size",
        type=int,
        help="override train.batch_size, per process (= train.batch_size=N)",
    )
    p.add_argument("--val", type=Path, help="validation data folder (loss per epoch)")
    p.add_argument(
        "--eval-data",
        type=Path,
        help="held-out data folder: MJE / PA-MJE / ADD-S beside the constant baselines, printed "
        "and logged every --eval-every steps (RUN/heldout.jsonl, TensorBoard heldout/*)",
    )
    p.add_argument("--eval-every", type=int, default=500, help="steps between held-out checks")
    p.add_argument("--eval-samples", type=int, default=64, help="held-out samples (default 64)")
    p.add_argument("--split", default="train", help="split of the training data (default train)")
    p.add_argument(
        "--ckpt-every-steps",
        type=int,
        default=1000,
        help="checkpoint every N steps (default 1000; 0: every train.ckpt_every epochs)",
    )
    p.add_argument("--keep-last", type=int, default=3, help="checkpoints kept (default 3)")
    p.add_argument("--log-every", type=int, default=10, help="steps between TensorBoard scalars")
    p.add_argument("--preview-every", type=int, default=500, help="steps between previews (0 off)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_overrides_argument(
        p,
        "--config (with --resume alone: the checkpoint's config)",
        "homae-train --config config/model/small.yaml --data DIR model.masking.enabled=false "
        "train.lr=1e-4",
        note="--epochs N and --batch-size N are shorthands for train.epochs=N and "
        "train.batch_size=N. The run saves the resolved config, overrides included, as "
        "RUN/config.yaml.",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (errors are printed, not raised)."""
    from homae_model.training.trainer import NonFiniteLossError, TrainOptions, train

    args = build_parser().parse_intermixed_args(argv)
    for name in ("max_steps", "max_minutes", "epochs", "batch_size"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            print(
                f"homae-train: --{name.replace('_', '-')} must be > 0, got {value}", file=sys.stderr
            )
            return 2
    options = TrainOptions(
        data=args.data,
        config=args.config,
        out=args.out,
        resume=args.resume,
        init=args.init,
        device=args.device,
        max_steps=args.max_steps,
        max_minutes=args.max_minutes,
        overrides=tuple(args.overrides),
        epochs=args.epochs,
        batch_size=args.batch_size,
        val=args.val,
        eval_data=args.eval_data,
        eval_every=args.eval_every,
        eval_samples=args.eval_samples,
        split=args.split,
        ckpt_every_steps=args.ckpt_every_steps,
        keep_last=args.keep_last,
        log_every=args.log_every,
        preview_every=args.preview_every,
        progress=not args.no_progress,
    )
    try:
        result = train(options)
    except (FileNotFoundError, NoCheckpointError, ValueError, NonFiniteLossError) as exc:
        print(f"homae-train: error: {exc}", file=sys.stderr)
        return 1
    if result.checkpoint is not None:
        print(result.checkpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
