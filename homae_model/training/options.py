"""What a training run is asked to do (`TrainOptions`) and the config it runs with.

`resolve_config` gives a new run its --config and a resumed run its checkpoint's config
(checked against --config where given), with the command line's overrides applied.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from homae_model.config import HomaeConfig, config_to_dict, load_config
from homae_model.training.state import CONFIG_FILE, ResumeInfo, TrainProgress

RUNS_DIR = "runs"
"""Default parent folder of new runs (relative to the working directory)."""
CONFIG_MUST_MATCH = ("model", "data", "mano")
"""Config sections a resumed run must share with its checkpoint."""


@dataclass
class TrainOptions:
    """Everything `homae-train` takes.

    Attributes:
        config: config YAML (required for a new run; optional with `resume`).
        data: training data folder (synthetic / DexYCB / HO3D layout).
        out: run folder (default runs/homae-<time>; with `resume` the resumed run folder).
        resume: run folder (or checkpoint folder) to continue.
        init: checkpoint (folder or weights file) whose weights start a new run (fine-tuning):
            the optimiser, schedule and data position start fresh; the weights must match
            --config's model section.
        device: "cpu", "cuda" or None (CUDA when available).
        max_steps: stop after this many optimiser steps in total (a checkpoint is written).
        max_minutes: stop after the first step that ends this many minutes after training
            started (held-out check and checkpoint there, as for SIGINT); None: no limit.
        overrides: dotted ``KEY=VALUE`` config overrides applied after `config` (or, on resume,
            after the checkpoint's config), e.g. ``("model.masking.enabled=false",)``.
        epochs: overrides train.epochs.
        batch_size: overrides train.batch_size (per process).
        val: optional validation data folder (mean loss per epoch, eval mode, TensorBoard).
        eval_data: optional held-out data folder: every `eval_every` steps the model is evaluated
            on its first `eval_samples` samples (MJE, PA-MJE, ADD-S, GT-anchored and GT-free)
            beside the constant baselines (`homae_model.training.monitor`); printed, written to
            TensorBoard (`heldout/*`) and to RUN/heldout.jsonl.
        eval_every: steps between held-out evaluations (0: only at the start and the end).
        eval_samples: held-out samples evaluated.
        ckpt_every_steps: checkpoint every N steps (and at the end); 0: every
            `train.ckpt_every` epochs instead.
        keep_last: checkpoints kept.
        log_every: steps between TensorBoard scalars.
        preview_every: steps between preview PNGs (0: off).
        progress: show the tqdm bar (rank 0).
        split: split of the training data to read.
    """

    data: Path
    config: Path | None = None
    out: Path | None = None
    resume: Path | None = None
    init: Path | None = None
    device: str | None = None
    max_steps: int | None = None
    max_minutes: float | None = None
    overrides: tuple[str, ...] = ()
    epochs: int | None = None
    batch_size: int | None = None
    val: Path | None = None
    eval_data: Path | None = None
    eval_every: int = 500
    eval_samples: int = 64
    ckpt_every_steps: int = 1000
    keep_last: int = 3
    log_every: int = 10
    preview_every: int = 500
    progress: bool = True
    split: str = "train"


@dataclass
class TrainResult:
    """Outcome of `train` (on every rank).

    Attributes:
        run_dir: the run folder.
        checkpoint: the last checkpoint written (None on ranks other than 0).
        progress: final epoch / step / position.
        losses: total loss of every step of this process (this invocation only).
        resumed_from: checkpoint folder resumed from, if any.
        skipped_checkpoints: corrupt checkpoints skipped on resume, with reasons.
    """

    run_dir: Path
    checkpoint: Path | None
    progress: TrainProgress
    losses: list[float] = field(default_factory=list)
    resumed_from: Path | None = None
    skipped_checkpoints: list[tuple[Path, str]] = field(default_factory=list)


def _config_diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(a) | set(b)):
        path = f"{prefix}.{key}" if prefix else key
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            diffs += _config_diff(va, vb, path)
        elif va != vb:
            diffs.append(f"{path}: checkpoint {va!r} vs config {vb!r}")
    return diffs


def resolve_config(options: TrainOptions, resume: ResumeInfo | None) -> HomaeConfig:
    """The run's config: the checkpoint's on resume (checked against --config), else --config.

    `options.overrides` apply on top of --config (on resume without --config: of the
    checkpoint's config).

    Raises:
        ValueError: no config given for a new run, a bad override, or --config / the overrides
            differ from the checkpoint in the model / data / mano sections (differences listed).
    """
    overrides = tuple(options.overrides)
    if resume is None:
        if options.config is None:
            raise ValueError("a new run needs --config (e.g. config/model/tiny.yaml)")
        cfg = load_config(options.config, overrides)
    else:
        cfg = load_config(resume.path / CONFIG_FILE)
        if options.config is not None or overrides:
            given = load_config(options.config or resume.path / CONFIG_FILE, overrides)
            a, b = config_to_dict(cfg), config_to_dict(given)
            diffs = [d for s in CONFIG_MUST_MATCH for d in _config_diff(a[s], b[s], s)]
            if diffs:
                given_by = f"--config {options.config}" if options.config is not None else ""
                given_by += f" overrides {list(overrides)}" if overrides else ""
                raise ValueError(
                    f"{given_by.strip()} does not match checkpoint {resume.path}: "
                    + "; ".join(diffs[:12])
                )
            cfg = dataclasses.replace(cfg, train=given.train, loss=given.loss)
    train = cfg.train
    if options.epochs is not None:
        train = dataclasses.replace(train, epochs=int(options.epochs))
    if options.batch_size is not None:
        train = dataclasses.replace(train, batch_size=int(options.batch_size))
    cfg = dataclasses.replace(cfg, train=train)
    cfg.validate()
    return cfg
