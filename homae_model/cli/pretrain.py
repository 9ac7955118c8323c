r"""`homae-pretrain`: dense pretraining of the image encoder, then `homae-train --init`.

Trains only the image path (encoder, decoder, multi-scale features, dense keypoint / depth
heads, anchor head; `homae_model.training.pretrain`) on many crops per second, and writes full
model checkpoints that `homae-train --init RUN` starts from.

Examples::

    homae-pretrain --config config/model/small.yaml --data data/train --eval-data data/val \
        --out runs/pretrain --steps 2000
    homae-pretrain --resume runs/pretrain --data data/train --steps 3000   # continue
    homae-pretrain --config config/model/small_cnn.yaml --data data/train --out runs/pretrain2 \
        --init weights/demo/homae_small_synthetic.safetensors   # more, from trained weights
    homae-pretrain --config config/model/small_cnn.yaml --data data/train --device cuda \
        --workers 12 --batch-size 256 --max-minutes 3   # a GPU, for a fixed time
    homae-train --config config/model/small.yaml --init runs/pretrain --data data/train ...
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from homae_model.cli.overrides import add_overrides_argument


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of homae-pretrain."""
    p = argparse.ArgumentParser(prog="homae-pretrain", description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, help="model/training YAML (required for a new run)")
    p.add_argument("--data", type=Path, required=True, help="training data folder")
    p.add_argument("--resume", type=Path, help="run folder to continue (its config and optimiser)")
    p.add_argument("--out", type=Path, help="run folder (new run; default runs/pretrain)")
    p.add_argument(
        "--init",
        type=Path,
        help="new run only: start from these weights (run folder, checkpoint folder or "
        "weights file, as homae-train --init; fresh optimiser, steps counted from 0)",
    )
    p.add_argument(
        "--eval-data", type=Path, help="held-out data folder (figures every --eval-every)"
    )
    p.add_argument(
        "--steps", type=int, default=2000, help="optimiser steps in total (default 2000)"
    )
    p.add_argument("--batch-size", type=int, default=64, help="crops per step (default 64)")
    p.add_argument("--lr", type=float, default=5e-4, help="learning rate (default 5e-4)")
    p.add_argument("--eval-every", type=int, default=250, help="steps between held-out checks")
    p.add_argument("--eval-samples", type=int, default=128, help="held-out crops (default 128)")
    p.add_argument("--ckpt-every", type=int, default=250, help="steps between checkpoints")
    p.add_argument("--workers", type=int, default=1, help="data-loader processes (default 1)")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: CUDA when available")
    p.add_argument(
        "--max-minutes",
        type=float,
        help="stop after this many minutes of training (held-out check and checkpoint at the "
        "step where it stops); SIGINT / SIGTERM stop the same way",
    )
    p.add_argument("--split", default="train", help="split of the training data (default train)")
    p.add_argument(
        "--joints-weight",
        type=float,
        default=0.0,
        help="also train a global head (class token + mean of F~ -> the 21 root-relative "
        "joints) with this L1 weight per metre, e.g. 100; 0 (default): none. With "
        "model.hand_head.image_token the model's own token is trained instead, at this weight "
        "or (0) at loss.global_joints",
    )
    add_overrides_argument(
        p,
        "--config (with --resume: the run's config)",
        "homae-pretrain --config config/model/small.yaml --data DIR loss.aux_heatmap=4",
    )
    return p


def _positive(args: argparse.Namespace) -> str | None:
    for name in ("steps", "batch_size", "eval_samples"):
        if getattr(args, name) <= 0:
            return f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}"
    if args.joints_weight < 0:
        return f"--joints-weight must be >= 0, got {args.joints_weight}"
    if args.lr <= 0:
        return f"--lr must be > 0, got {args.lr}"
    if args.max_minutes is not None and args.max_minutes <= 0:
        return f"--max-minutes must be > 0, got {args.max_minutes}"
    for name in ("eval_every", "ckpt_every", "workers"):
        if getattr(args, name) < 0:
            return f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}"
    if (args.config is None) == (args.resume is None):
        return "give --config for a new run or --resume RUN to continue one (not both)"
    if args.init is not None and args.resume is not None:
        return "--init starts a new run from a checkpoint's weights; --resume continues one"
    return None


def _loader(
    cfg: Any,
    data: Path,
    split: str | None,
    train: bool,
    batch: int,
    workers: int,
    start: int = 0,
    pin: bool = False,
) -> Any:
    """A loader of label-only crops (no SDF samples) from `data`.

    `start`: the step a resumed run continues from; it seeds the shuffle and the augmentation
    epoch, so a resumed run does not replay the first batches of the original one (the
    position inside an epoch is not restored).
    """
    import torch
    from torch.utils.data import DataLoader

    from homae_model.data.dataset import HandObjectDataset, worker_init_fn
    from homae_model.data.pipeline import SamplePipeline
    from homae_model.data.sources import open_source

    mano_path = cfg.mano.resolved_path()
    if not data.exists():
        raise FileNotFoundError(f"data folder not found: {data}")
    opened = open_source(data, split=split, mano_dir=mano_path.parent, load_masks=False)
    pipe = SamplePipeline(cfg.data, mano_path, opened.objects, train=train, sdf_samples=False)
    ds, _ = HandObjectDataset.scanned(opened.source, pipe, cfg.train.seed, opened.objects)
    ds.set_epoch(start)
    return DataLoader(
        ds,
        batch_size=batch,
        shuffle=train,
        drop_last=train and len(ds) >= batch,
        num_workers=workers if train else 0,
        worker_init_fn=worker_init_fn,
        generator=torch.Generator().manual_seed(cfg.train.seed + start),
        pin_memory=pin,
    )


def run(args: argparse.Namespace) -> Path:
    """Build, (resume,) train and checkpoint; returns the last checkpoint folder."""
    import torch

    from homae_model.checkpoint import init_weights
    from homae_model.config.loading import apply_overrides, load_config, save_config
    from homae_model.device import resolve_device
    from homae_model.model import HomaeModel
    from homae_model.training.loaders import to_device
    from homae_model.training.pretrain import (
        GlobalJointsHead,
        PretrainOptions,
        batch_stream,
        build_pretrain_optimizer,
        evaluate_dense,
        pretrain_loop,
        write_report,
    )
    from homae_model.training.schedule import seed_everything
    from homae_model.training.state import (
        TrainProgress,
        find_resume_checkpoint,
        load_train_state,
        resolve_checkpoint,
        write_checkpoint,
    )
    from homae_model.training.stop import StopRequest

    if args.resume is not None:
        out = args.resume
        cfg = apply_overrides(load_config(out / "config.yaml"), args.overrides)
    else:
        out = args.out or Path("runs/pretrain")
        cfg = load_config(args.config, args.overrides)
    options = PretrainOptions(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        eval_every=args.eval_every,
        ckpt_every=args.ckpt_every,
        eval_samples=args.eval_samples,
        workers=args.workers,
        joints_weight=args.joints_weight,
    )
    device = torch.device(resolve_device(args.device or "auto", "--device"))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    seed_everything(cfg.train.seed)
    model = HomaeModel(cfg)
    joints_head = None
    if cfg.model.hand_head.image_token:
        # the model's image token has its own joints readout (nn/image_token.py)
        if options.joints_weight <= 0:
            options = replace(options, joints_weight=cfg.loss.global_joints)
    elif options.joints_weight > 0:
        joints_head = GlobalJointsHead(cfg.model.encoder.feat_dim, cfg.model.decoder.feat_channels)
    model.to(device)
    if joints_head is not None:
        joints_head.to(device)
    optimizer = None
    start = 0
    if args.resume is not None:
        ckpt = find_resume_checkpoint(out).path
        for note in init_weights(model, ckpt):
            print(f"[homae-pretrain] {note}")
        progress, state = load_train_state(ckpt)
        start = progress.step
        if (joints_head is not None) != ("joints_head" in state):
            raise ValueError(
                f"{ckpt} was trained {'with' if 'joints_head' in state else 'without'} the "
                "global joints head; resume with the same --joints-weight (0 = without)"
            )
        if joints_head is not None:
            joints_head.load_state_dict(state["joints_head"])
        optimizer = build_pretrain_optimizer(model, cfg, options.lr, joints_head)
        optimizer.load_state_dict(state["optimizer"])
        print(f"[homae-pretrain] resumed from {ckpt} at step {start}")
    else:
        if args.init is not None:
            init = resolve_checkpoint(args.init, "--init")
            for note in init_weights(model, init):
                print(f"[homae-pretrain] {note}")
            print(f"[homae-pretrain] weights initialised from {init}")
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
    if start >= options.steps:
        raise ValueError(f"{out} is at step {start}; --steps {options.steps} leaves nothing to do")
    loader = _loader(
        cfg,
        args.data,
        args.split,
        True,
        options.batch_size,
        options.workers,
        start,
        pin=device.type == "cuda",
    )
    held: list[dict[str, torch.Tensor]] = []
    if args.eval_data is not None:
        ev = _loader(cfg, args.eval_data, None, False, min(64, options.eval_samples), 0)
        for batch in ev:
            held.append(to_device(batch, device))
            if sum(len(b["image"]) for b in held) >= options.eval_samples:
                break
    report = out / "heldout.jsonl"
    rows = (
        [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
        if args.resume is not None and report.exists()
        else []
    )

    def on_eval(step: int) -> None:
        if not held:
            return
        ev = evaluate_dense(model, held, cfg, joints_head, options.joints_weight)
        print(f"[homae-pretrain] step {step}, held-out: {ev.line()}", flush=True)
        rows.append({"step": step, **ev.__dict__})
        write_report(report, rows)

    last: list[Path] = []

    def on_ckpt(step: int, opt: torch.optim.Optimizer) -> None:
        progress = TrainProgress(step=step, samples_seen=step * options.batch_size)
        state: dict[str, Any] = {"optimizer": opt.state_dict()}
        if joints_head is not None:
            state["joints_head"] = joints_head.state_dict()
        last.append(write_checkpoint(out, model, cfg, progress, state))

    print(
        f"[homae-pretrain] {len(loader.dataset)} training scenes, {options.batch_size} crops per "
        f"step, steps {start} -> {options.steps}, {device}, out {out}",
        flush=True,
    )
    next_batch = batch_stream(loader)
    deadline = None if args.max_minutes is None else time.monotonic() + 60.0 * args.max_minutes
    with StopRequest() as request:

        def stop() -> bool:
            return request.requested or (deadline is not None and time.monotonic() >= deadline)

        done = pretrain_loop(
            model,
            cfg,
            lambda: to_device(next_batch(), device),
            options,
            start_step=start,
            optimizer=optimizer,
            on_eval=on_eval,
            on_ckpt=on_ckpt,
            log=lambda s: print(f"[homae-pretrain] {s}", flush=True),
            joints_head=joints_head,
            stop=stop,
        )
    if done < options.steps:
        why = "a signal" if request.requested else f"--max-minutes {args.max_minutes:g}"
        print(f"[homae-pretrain] stopped by {why} at step {done}; checkpoint written", flush=True)
    return last[-1]


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (errors are printed, not raised)."""
    from homae_model.training.state import NoCheckpointError

    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    problem = _positive(args)
    if problem:
        print(f"homae-pretrain: {problem}", file=sys.stderr)
        return 2
    expected = (FileNotFoundError, NoCheckpointError, ValueError, FloatingPointError, RuntimeError)
    try:  # RuntimeError: --device cuda without CUDA, among others
        path = run(args)
    except expected as exc:
        print(f"homae-pretrain: error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
