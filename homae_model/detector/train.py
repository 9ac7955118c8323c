"""Train the hand/object detector on RawSample sources and evaluate it on held-out ones."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from homae_model.data.dataset import SampleSource
from homae_model.detector.infer import (
    DetectionEval,
    Detector,
    evaluate_detections,
    side_accuracy,
)
from homae_model.detector.model import (
    DEFAULT_ARCH,
    DEFAULT_INPUT_SIZE,
    build_detector,
    load_detector,
    read_spec,
    save_detector,
)
from homae_model.detector.sides import init_sided_from_single, is_single_to_sided
from homae_model.detector.targets import (
    DetectionDataset,
    collate_detection,
    sample_target,
)

EVAL_SCORE_THRESHOLD = 0.05
"""Score threshold while collecting detections for mAP (low, so the PR curve is complete)."""


@dataclass
class DetectorTrainConfig:
    """Training settings of `train_detector`.

    Attributes:
        arch: detector network (see `homae_model.detector.model.ARCHS`).
        input_size: network input side, pixels.
        epochs: passes over the data.
        max_steps: stop after this many optimiser steps (None = no limit).
        max_minutes: stop after this much wall time (None = no limit); the learning-rate
            schedule follows whichever of steps and time runs out first.
        batch_size: images per step.
        lr: peak AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_fraction: fraction of training with a linear learning-rate ramp.
        grad_clip: gradient-norm clip.
        num_workers: DataLoader worker processes.
        augment: random flip and colour jitter.
        seed: seed of the model initialisation, the shuffling and the augmentation.
        device: torch device string.
    """

    arch: str = DEFAULT_ARCH
    input_size: int = DEFAULT_INPUT_SIZE
    epochs: int = 10
    max_steps: int | None = None
    max_minutes: float | None = None
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    grad_clip: float = 10.0
    num_workers: int = 0
    augment: bool = True
    seed: int = 0
    device: str = "cpu"


@dataclass
class DetectorTrainResult:
    """What `train_detector` did.

    Attributes:
        path: the weights file written.
        steps: optimiser steps taken.
        epochs: epochs started.
        first_loss: mean loss over the first 10 steps.
        last_loss: mean loss over the last 10 steps.
        seconds: wall time of the training loop.
    """

    path: Path
    steps: int
    epochs: int
    first_loss: float
    last_loss: float
    seconds: float


def _lr_factor(progress: float, warmup: float) -> float:
    """Linear warm-up to 1, then cosine decay to 0 (progress in [0, 1])."""
    if warmup > 0 and progress < warmup:
        return max(progress / warmup, 0.01)
    rest = (progress - warmup) / max(1.0 - warmup, 1e-6)
    return 0.5 * (1.0 + math.cos(math.pi * min(max(rest, 0.0), 1.0)))


def train_detector(
    sources: Sequence[SampleSource],
    class_names: Sequence[str],
    out_path: str | Path,
    config: DetectorTrainConfig | None = None,
    init_path: str | Path | None = None,
    progress: bool = True,
) -> DetectorTrainResult:
    """Train a detector and write it (weights + sidecar, atomically) to `out_path`.

    Args:
        sources: RawSample sources (e.g. `SyntheticSource(dir)`).
        class_names: foreground classes, "hand" first then the object library names.
        out_path: `.safetensors` file to write.
        config: settings (defaults when None).
        init_path: start from these weights (same arch and classes) instead of from scratch;
            a single-"hand" detector may start a left/right one (`detector.sides`).
        progress: show a tqdm bar with the running loss.

    Returns:
        `DetectorTrainResult`.
    """
    cfg = config or DetectorTrainConfig()
    if cfg.batch_size < 2:
        raise ValueError(f"batch_size must be >= 2 (BatchNorm on 1x1 maps), got {cfg.batch_size}")
    torch.manual_seed(cfg.seed)
    classes = tuple(class_names)
    if init_path is not None and is_single_to_sided(read_spec(init_path).class_names, classes):
        model = init_sided_from_single(init_path, classes)  # "hand" -> both sides, then tune
    elif init_path is not None:
        model = load_detector(init_path, expected_class_names=class_names, expected_arch=cfg.arch)
    else:
        model = build_detector(cfg.arch, class_names, cfg.input_size)
    model.to(cfg.device).train()
    data = DetectionDataset(sources, class_names, augment=cfg.augment, seed=cfg.seed)
    if len(data) < cfg.batch_size:
        raise ValueError(f"{len(data)} training samples, fewer than batch_size {cfg.batch_size}")
    gen = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(
        data,
        batch_size=cfg.batch_size,
        shuffle=True,
        drop_last=True,
        collate_fn=collate_detection,
        num_workers=cfg.num_workers,
        generator=gen,
    )
    total = cfg.epochs * len(loader)
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    max_s = cfg.max_minutes * 60.0 if cfg.max_minutes else math.inf
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    losses: list[float] = []
    step, epoch, start = 0, 0, time.perf_counter()
    bar = tqdm(total=total, disable=not progress, desc="detector", unit="step")
    done = total == 0
    while not done:
        data.epoch = epoch
        epoch += 1
        for images, targets in loader:
            elapsed = time.perf_counter() - start
            frac = max(step / max(total, 1), elapsed / max_s)
            if step >= total or frac >= 1.0:
                done = True
                break
            for group in opt.param_groups:
                group["lr"] = cfg.lr * _lr_factor(frac, cfg.warmup_fraction)
            images = [im.to(cfg.device) for im in images]
            targets = [{k: v.to(cfg.device) for k, v in t.items()} for t in targets]
            loss_parts = model(images, targets)
            loss = sum(loss_parts.values())
            if not torch.isfinite(loss):
                raise FloatingPointError(f"detector loss is {loss.item()} at step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            losses.append(float(loss.item()))
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", epoch=epoch)
        if epoch >= cfg.epochs:
            done = True
    bar.close()
    seconds = time.perf_counter() - start
    path = save_detector(model.eval(), out_path)
    return DetectorTrainResult(
        path=path,
        steps=step,
        epochs=epoch,
        first_loss=float(np.mean(losses[:10])) if losses else float("nan"),
        last_loss=float(np.mean(losses[-10:])) if losses else float("nan"),
        seconds=seconds,
    )


def evaluate_on_sources(
    detector: Detector,
    sources: Sequence[SampleSource],
    max_images: int | None = None,
    recall_score: float = 0.5,
    batch_size: int = 8,
) -> DetectionEval:
    """mAP@0.5 and recall of `detector` on labelled RawSample sources (and its sides' accuracy).

    The detector's score threshold is lowered to `EVAL_SCORE_THRESHOLD` for the duration so
    the precision-recall curve is complete; recall counts detections >= `recall_score`.

    Args:
        detector: the detector to score.
        sources: held-out RawSample sources.
        max_images: score at most this many images (first ones), None = all.
        recall_score: score threshold of the recall figure.
        batch_size: images per detector call.

    Returns:
        `DetectionEval`.
    """
    data = DetectionDataset(sources, detector.class_names, augment=False)
    n = len(data) if max_images is None else min(max_images, len(data))
    sides = data.sides
    saved = (detector.score_threshold, detector.max_detections)
    detector.configure(EVAL_SCORE_THRESHOLD, saved[1])
    preds, gts, sided = [], [], []
    try:
        for lo in range(0, n, batch_size):
            samples = [data.raw(i) for i in range(lo, min(lo + batch_size, n))]
            preds.extend(detector.detect_batch([s.image for s in samples]))
            for s in samples:
                t = sample_target(s, sides)
                gts.append((t.boxes, t.labels))
                t = sample_target(s, sides=True)  # the labelled sides, whatever the classes
                sided.append((t.boxes, t.labels))
    finally:
        detector.configure(*saved)
    result = evaluate_detections(preds, gts, recall_score=recall_score)
    if detector.has_sides:  # side classes, or a side network on single-class boxes
        result.side = side_accuracy(preds, sided, min_score=recall_score)
    return result
