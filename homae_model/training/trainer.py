"""The training loop: paper recipe, DDP, AMP, logging, previews, atomic checkpoints, exact resume.

`train(options)` runs one process's share of a (possibly distributed) training run. A run
folder holds `config.yaml` (resolved), `checkpoints/step_XXXXXXXX/` (see
`homae_model.training.state`), `latest`, `tb/` (TensorBoard scalars: every loss term, lr,
samples/s) and `previews/` (predictions vs GT on the crops).

Resume is exact: the data order of an epoch is a function of (seed, epoch) and every sample's
augmentation of (seed, epoch, index); a checkpoint stores the epoch, the position within it,
the optimizer / scheduler / GradScaler states and every rank's python / numpy / torch RNG
states, so a run killed after k steps and resumed ends with the same weights as one that was
never interrupted.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from homae_model.checkpoint import init_weights
from homae_model.config import save_config
from homae_model.data.collate import PackedBatch
from homae_model.data.sources import OpenedSource
from homae_model.nn.encoder import encoder_init_note
from homae_model.training import distributed as ddp
from homae_model.training.loaders import (
    build_train_data,
    build_val_loader,
    describe_samples,
    to_device,
)
from homae_model.training.options import (
    RUNS_DIR,
    TrainOptions,
    TrainResult,
    resolve_config,
)
from homae_model.training.schedule import (
    build_optimizer,
    build_scheduler,
    freeze_except,
    seed_everything,
    use_gt_points,
    use_predicted_anchor,
)
from homae_model.training.state import (
    CONFIG_FILE,
    ResumeInfo,
    TrainProgress,
    capture_rng_state,
    find_resume_checkpoint,
    load_model_weights,
    load_train_state,
    resolve_checkpoint,
    restore_rng_state,
    write_checkpoint,
)
from homae_model.training.stop import StopRequest

HELDOUT_FILE = "heldout.jsonl"
"""Held-out metrics of a run, one JSON line per evaluation (step, then mm figures)."""
CURVES_FILE = "learning_curves.png"
"""The held-out learning curves of a run (`homae_model.training.curves`), redrawn each check."""


class NonFiniteLossError(RuntimeError):
    """The loss became NaN/inf; the message names the step and the batch's samples."""


def _log(info: ddp.DistInfo, msg: str) -> None:
    if info.is_main:
        print(f"[homae-train] {msg}", file=sys.stderr, flush=True)


class Trainer:
    """One process of a training run. Use `train(options)` unless you need the pieces.

    Args:
        options: the command-line options.
        info: this process's rank / device (from `init_distributed`).
        loss_fn: `(out, batch, loss_cfg) -> (scalar, {name: tensor})`; default
            `homae_model.losses.total_loss`.
    """

    def __init__(
        self,
        options: TrainOptions,
        info: ddp.DistInfo,
        loss_fn: Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]] | None = None,
    ) -> None:
        self.options = options
        self.info = info
        self._deadline: float | None = None  # time.monotonic() at which `fit` stops
        if loss_fn is None:
            from homae_model.losses import total_loss

            loss_fn = total_loss
        self.loss_fn = loss_fn
        init = self._find_start()
        self.cfg = cfg = resolve_config(options, self.resume)
        self.run_dir = self._run_dir()
        seed_everything(cfg.train.seed, info.rank)
        opened = self._setup_data()
        self.val_loader = build_val_loader(cfg, Path(options.val)) if options.val else None
        self._setup_model(init, opened)
        self._setup_optimisation()
        self.total_steps = cfg.train.epochs * self.steps_per_epoch
        if options.max_steps is not None:
            self.total_steps = min(self.total_steps, int(options.max_steps))
        self.last_checkpoint: Path | None = self.resume.path if self.resume else None
        self.logger: Any = None
        self.monitor = None
        self._evaluated_at = -1
        if options.eval_data is not None and info.is_main:
            from homae_model.training.monitor import HeldOutMonitor

            self.monitor = HeldOutMonitor(
                cfg,
                Path(options.eval_data),
                options.eval_samples,
                info.device,
                cfg.train.batch_size,
            )
        if info.is_main:
            self._write_run_files()

    # ------------------------------------------------------------------ setup steps

    def _find_start(self) -> Path | None:
        """Check the data folder and --resume / --init; sets `resume`, returns the --init path.

        Both are resolved before the data scan, so a wrong path fails at once.
        """
        options, info = self.options, self.info
        data = Path(options.data)
        if not data.exists():
            raise FileNotFoundError(f"training data folder not found: {data}")
        self.resume: ResumeInfo | None = None
        if options.resume is not None and options.init is not None:
            raise ValueError(
                "--init starts a new run from a checkpoint's weights and --resume continues a "
                "run; give one of them"
            )
        init = None if options.init is None else resolve_checkpoint(options.init, "--init")
        if options.resume is not None:
            self.resume = find_resume_checkpoint(options.resume)
            for path, reason in self.resume.skipped:
                _log(info, f"WARNING: skipping corrupt checkpoint {path}: {reason}")
            if self.resume.skipped:
                _log(info, f"falling back to the previous good checkpoint {self.resume.path}")
        return init

    def _setup_data(self) -> OpenedSource:
        """Open the training data and build its dataset, resumable sampler and loader."""
        data = Path(self.options.data)
        train_data = build_train_data(
            self.cfg, data, self.options.split, self.info, lambda msg: _log(self.info, msg)
        )
        self.objects = train_data.opened.objects
        self.pipeline = train_data.pipeline
        self.dataset = train_data.dataset
        self.sampler = train_data.sampler
        self.loader = train_data.loader
        self.drop_last = train_data.drop_last
        self.steps_per_epoch = train_data.steps_per_epoch
        return train_data.opened

    def _setup_model(self, init: Path | None, opened: OpenedSource) -> None:
        """Build the model (fingertips of the labels, --init weights, frozen parts) on device."""
        from homae_model.model import HomaeModel
        from homae_model.training.sampling import VoxelPointSampler

        cfg, info = self.cfg, self.info
        self.encoder_init = encoder_init_note(cfg.model.encoder)
        if not cfg.model.encoder.pretrained_path and init is None and self.resume is None:
            _log(info, f"WARNING: the image encoder starts {self.encoder_init}")
        self.model = HomaeModel(cfg)
        # predicted joints use the fingertip vertices of the labels' convention (HO3D differs)
        tips = self.model.mano.set_fingertips(opened.fingertips)
        _log(info, f"fingertips: {tips} ({opened.kind} labels: {opened.fingertips})")
        if init is not None:
            for note in init_weights(self.model, init):
                _log(info, f"WARNING: {note}")
            _log(info, f"weights initialised from {init}")
        if cfg.train.trainable:
            kept = freeze_except(self.model, cfg.train.trainable)
            _log(info, f"training {kept} parameter tensors under {cfg.train.trainable} only")
        self.model = self.model.to(info.device)
        self.model.train()
        faces = self.pipeline.mano.faces
        faces = faces.cpu().numpy() if isinstance(faces, torch.Tensor) else np.asarray(faces)
        self.point_sampler = VoxelPointSampler(cfg, self.objects, faces.astype(np.int64))

    def _setup_optimisation(self) -> None:
        """Optimizer, schedule, AMP scaler and progress (restored on resume); the DDP wrapper."""
        cfg, info = self.cfg, self.info
        self.optimizer = build_optimizer(self.model, cfg.train)
        self.scheduler = build_scheduler(self.optimizer, cfg.train)
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.amp_dtype == torch.float16 and info.device.type == "cuda"
        )
        self.progress = TrainProgress(world_size=info.world_size)
        if self.resume is not None:
            self._restore(self.resume.path)
        if info.distributed:
            self.ddp_model: torch.nn.Module = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[info.local_rank] if info.device.type == "cuda" else None
            )
        else:
            self.ddp_model = self.model

    def _write_run_files(self) -> None:
        """config.yaml (resolved) and train_args.json in the run folder (rank 0)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_config(self.cfg, self.run_dir / CONFIG_FILE)
        args = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self.options).items()}
        args["encoder_init"] = self.encoder_init
        (self.run_dir / "train_args.json").write_text(json.dumps(args, indent=1))

    # ------------------------------------------------------------------ setup helpers

    def _run_dir(self) -> Path:
        o = self.options
        if o.out is not None:
            return Path(o.out)
        if o.resume is not None:
            r = Path(o.resume)
            # A checkpoint folder given directly: RUN/checkpoints/step_X -> RUN.
            return r.parent.parent if r.parent.name == "checkpoints" else r
        return Path(RUNS_DIR) / datetime.now().strftime("homae-%Y%m%d-%H%M%S")

    def _amp_dtype(self) -> torch.dtype | None:
        if not self.cfg.train.amp or self.info.device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def _autocast(self) -> Any:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast("cuda", dtype=self.amp_dtype)

    # ------------------------------------------------------------------ state

    def _train_state(self) -> dict[str, Any]:
        rngs = ddp.gather_objects(capture_rng_state(), self.info)
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rngs,
        }

    def _restore(self, path: Path) -> None:
        load_model_weights(path, self.model)
        progress, state = load_train_state(path)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        rngs = state["rng"]
        if progress.world_size != self.info.world_size:
            _log(
                self.info,
                f"WARNING: checkpoint made with {progress.world_size} processes, resuming with "
                f"{self.info.world_size}: the data order differs from an uninterrupted run",
            )
            epoch_pos = progress.batch_in_epoch * progress.world_size // self.info.world_size
            progress = dataclasses.replace(
                progress, batch_in_epoch=epoch_pos, world_size=self.info.world_size
            )
            seed_everything(self.cfg.train.seed + progress.step, self.info.rank)
        else:
            restore_rng_state(rngs[self.info.rank])
        self.progress = progress
        _log(
            self.info,
            f"resumed from {path}: step {progress.step}, epoch {progress.epoch}, "
            f"batch {progress.batch_in_epoch} of the epoch",
        )

    def save(self) -> Path | None:
        """Checkpoint now (all ranks must call; rank 0 writes). Returns the folder on rank 0."""
        state = self._train_state()
        path = None
        if self.info.is_main:
            path = write_checkpoint(
                self.run_dir, self.model, self.cfg, self.progress, state, self.options.keep_last
            )
            self.last_checkpoint = path
        ddp.barrier(self.info)
        return path

    # ------------------------------------------------------------------ the loop

    def _nonfinite_error(
        self, loss: torch.Tensor, terms: dict[str, torch.Tensor], index: torch.Tensor, bad: bool
    ) -> NonFiniteLossError:
        p = self.progress
        mine = (
            bool(bad),
            index.tolist(),
            [k for k, v in terms.items() if not torch.isfinite(v).all()],
        )
        everyone = ddp.gather_objects(mine, self.info)
        parts = []
        for rank, (is_bad, idx, names) in enumerate(everyone):
            if is_bad:
                srcs = describe_samples(self.dataset, idx)
                parts.append(f"rank {rank}: non-finite terms {names}; samples {srcs}")
        ckpt = self.last_checkpoint or "none written yet"
        return NonFiniteLossError(
            f"non-finite loss ({float(loss.detach().float().cpu()):.4g}) at step {p.step + 1} "
            f"(epoch {p.epoch}, batch {p.batch_in_epoch} of the epoch): "
            + "; ".join(parts)
            + f". Stopped without saving this state; last good checkpoint: {ckpt}"
        )

    @torch.no_grad()
    def _predicted_anchor(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B,3) the anchor head's GT-free estimate for the batch (eval mode: no masking)."""
        model = self.model
        was_training = model.training
        model.eval()
        try:
            enc = model.encode(batch["image"])
            K = batch["K"].to(batch["image"].dtype)
            pred = model.predict_anchor(enc, K, batch.get("hand_box"), batch.get("obj_box"))
        finally:
            model.train(was_training)
        return pred.anchor.detach()

    def _step(
        self, batch: PackedBatch | dict[str, torch.Tensor], stop_requested: bool
    ) -> tuple[float, dict[str, float], Any, bool]:
        batch = to_device(batch, self.info.device)
        index = batch.pop("index")
        p = self.progress
        prob = self.cfg.model.anchor.train_on_predicted
        if use_predicted_anchor(prob, self.cfg.train.seed, p.step, self.info.rank):
            batch = dict(batch, grid_anchor=self._predicted_anchor(batch))
        if not use_gt_points(self.cfg.train, p.epoch, p.step, self.info.rank):
            batch = self.point_sampler(self.model, batch)
        with self._autocast():
            out = self.ddp_model(batch)
            loss, terms = self.loss_fn(out, batch, self.cfg.loss)
        bad = not bool(torch.isfinite(loss.detach()).all())
        flags = torch.tensor([float(bad), float(stop_requested)], device=self.info.device)
        if self.info.distributed:
            torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
        if flags[0] > 0:
            raise self._nonfinite_error(loss, terms, index, bad)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.train.grad_clip_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        bsz = int(index.shape[0])
        p.step += 1
        p.batch_in_epoch += 1
        p.samples_seen += bsz * self.info.world_size
        values = {k: float(v.detach().float().mean()) for k, v in terms.items()}
        return float(loss.detach().float()), values, (out, batch), bool(flags[1] > 0)

    def fit(self, on_step: Callable[[int], None] | None = None) -> TrainResult:
        """Train until `total_steps` (or the epochs) are done; checkpoint at the end.

        Args:
            on_step: called with the global step after every optimiser step (tests use it to
                simulate a crash).

        Returns:
            TrainResult.

        Raises:
            NonFiniteLossError: NaN/inf loss (the last good checkpoint is kept, nothing saved).
        """
        info, cfg, opt = self.info, self.cfg, self.options
        p = self.progress
        losses: list[float] = []
        if info.is_main:
            from homae_model.training.visualize import RunLogger

            self.logger = RunLogger(
                self.run_dir,
                self.total_steps,
                p.step,
                p.samples_seen,
                opt.log_every,
                opt.preview_every,
                opt.progress,
            )
        self._saved_at = p.step if self.resume is not None else -1
        minutes = opt.max_minutes
        self._deadline = None if minutes is None else time.monotonic() + 60.0 * minutes
        stopped = False
        try:
            if self.resume is None:
                self.evaluate_heldout()
            with StopRequest() as stop:
                while p.epoch < cfg.train.epochs and p.step < self.total_steps and not stopped:
                    stopped = self._run_epoch(stop, losses, on_step)
            if self._saved_at != p.step:
                self.save()
            if self._evaluated_at != p.step:
                self.evaluate_heldout()
            if stopped:
                why = "a signal" if not self._timed_out() else f"--max-minutes {minutes:g}"
                _log(info, f"stopped by {why} at step {p.step}; checkpoint written")
        finally:
            if self.logger is not None:
                self.logger.close()
        return TrainResult(
            self.run_dir,
            self.last_checkpoint if info.is_main else None,
            dataclasses.replace(p),
            losses,
            self.resume.path if self.resume else None,
            self.resume.skipped if self.resume else [],
        )

    def _run_epoch(
        self,
        stop: StopRequest,
        losses: list[float],
        on_step: Callable[[int], None] | None,
    ) -> bool:
        """Train the rest of the current epoch (or until the step budget); True if stopped."""
        p, opt = self.progress, self.options
        skip = p.batch_in_epoch * self.cfg.train.batch_size
        self.sampler.set_epoch(p.epoch, skip=min(skip, self.sampler.full_length))
        self.dataset.set_epoch(p.epoch)
        if p.batch_in_epoch >= self.steps_per_epoch:  # nothing left of this epoch
            self._end_epoch()
            return False
        for batch in self.loader:
            loss, terms, (out, b), stopped = self._step(batch, stop.requested or self._timed_out())
            losses.append(loss)
            if self.logger is not None:
                lr = self.optimizer.param_groups[0]["lr"]
                self.logger.step(p.step, p.samples_seen, loss, terms, lr, out, b)
            epoch_done = p.batch_in_epoch >= self.steps_per_epoch
            if epoch_done:
                self._end_epoch()
            if opt.eval_every and p.step % opt.eval_every == 0:
                self.evaluate_heldout()
            if (opt.ckpt_every_steps and p.step % opt.ckpt_every_steps == 0) or (
                not opt.ckpt_every_steps and epoch_done and p.epoch % self.cfg.train.ckpt_every == 0
            ):
                self.save()
                self._saved_at = p.step
            if on_step is not None:
                on_step(p.step)
            if epoch_done or stopped or p.step >= self.total_steps:
                return stopped
        self._end_epoch()  # the loader ran out early (cannot happen with drop_last)
        return False

    def _timed_out(self) -> bool:
        """Whether `max_minutes` have passed since `fit` started (never without a limit)."""
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _end_epoch(self) -> None:
        p = self.progress
        if self.val_loader is not None:
            val = self.validate()
            _log(self.info, f"epoch {p.epoch}: validation loss {val:.5g}")
            if self.logger is not None:
                self.logger.scalar("val/loss", val, p.step)
        self.scheduler.step()
        p.epoch += 1
        p.batch_in_epoch = 0

    @torch.no_grad()
    def validate(self) -> float:
        """Mean total loss over the validation set (eval mode, the batch's points, GT anchor).

        Eval mode: no masking, no reconstruction, no dense heads; the RNG is left untouched.
        """
        total, count = 0.0, 0
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.random.fork_rng(devices=[]):
                for batch in self.val_loader:
                    batch = to_device(batch, self.info.device)
                    with self._autocast():
                        out = self.model(batch, anchor=batch["anchor"])
                        loss, _ = self.loss_fn(out, batch, self.cfg.loss)
                    total += float(loss) * batch["image"].shape[0]
                    count += batch["image"].shape[0]
        finally:
            self.model.train(was_training)
        return total / max(count, 1)

    def evaluate_heldout(self) -> dict[str, float] | None:
        """Held-out errors now (rank 0, with --eval-data): printed, TensorBoard, heldout.jsonl."""
        if self.monitor is None:
            return None
        self._evaluated_at = self.progress.step
        from homae_model.training.monitor import format_metrics

        step = self.progress.step
        with torch.random.fork_rng(devices=[]):
            metrics = self.monitor(self.model)
        _log(self.info, f"step {step}, held-out ({len(self.monitor)}): {format_metrics(metrics)}")
        if self.logger is not None:
            for name, value in metrics.items():
                self.logger.scalar(f"heldout/{name.replace(' ', '_')}", value, step)
        with (self.run_dir / HELDOUT_FILE).open("a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        from homae_model.training.curves import plot_learning_curves, read_heldout

        records = read_heldout(self.run_dir / HELDOUT_FILE)
        plot_learning_curves(records, self.run_dir / CURVES_FILE, f"{self.run_dir.name}: held-out")
        return metrics


def train(
    options: TrainOptions,
    loss_fn: Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Run (this process's part of) a training run; starts/stops the process group itself.

    Args:
        options: see TrainOptions.
        loss_fn: loss override (default `homae_model.losses.total_loss`).
        on_step: callback after each optimiser step.

    Returns:
        TrainResult.
    """
    info = ddp.init_distributed(options.device)
    try:
        trainer = Trainer(options, info, loss_fn)
        result = trainer.fit(on_step)
        if info.is_main and result.checkpoint is not None:
            _log(info, f"done: step {result.progress.step}, checkpoint {result.checkpoint}")
        return result
    finally:
        ddp.cleanup_distributed(info)
