"""The paper's optimisation recipe (Adam, lr 1e-4, x0.7 every 5 epochs) and the point schedule.

HOISDF trains the SDF branches on ground-truth near-surface points before epoch
`gt_points_until_epoch` and afterwards, per batch, keeps the GT points with probability
`gt_points_prob_after` and otherwise uses points the current model picks from a voxel grid
(`homae_model.training.sampling`). The per-batch choice is a pure function of (seed, step, rank),
so a resumed run makes the same choices without storing any state.
"""

from __future__ import annotations

import numpy as np
import torch

from homae_model.config import TrainConfig


def freeze_except(model: torch.nn.Module, prefixes: list[str]) -> int:
    """Freeze every parameter whose name starts with none of `prefixes` (empty: train all).

    Returns:
        The number of trainable parameter tensors left.

    Raises:
        ValueError: a prefix that names no parameter (the top-level modules are listed).
    """
    if not prefixes:
        return sum(1 for p in model.parameters() if p.requires_grad)
    names = [n for n, _ in model.named_parameters()]
    unknown = [p for p in prefixes if not any(n.startswith(p) for n in names)]
    if unknown:
        tops = sorted({n.split(".")[0] + "." for n in names})
        raise ValueError(f"train.trainable {unknown} match no parameter; modules: {tops}")
    kept = 0
    for name, param in model.named_parameters():
        train = any(name.startswith(p) for p in prefixes)
        param.requires_grad_(train)
        kept += int(train)
    return kept


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam (paper) or AdamW over the trainable parameters.

    Parameters whose names start with one of `cfg.fast_prefixes` form a second group with the
    learning rate `cfg.lr * cfg.fast_lr_mult` (output heads whose weights must reach O(1) values:
    with Adam's per-parameter steps of about lr, they would need thousands of steps).

    Raises:
        ValueError: an unknown optimizer name (lists the valid ones), or a fast prefix that
            names no parameter.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("the model has no trainable parameters")
    prefixes = tuple(cfg.fast_prefixes)
    unknown = [f for f in prefixes if not any(n.startswith(f) for n, _ in named)]
    if unknown:
        raise ValueError(f"train.fast_prefixes {unknown} match no trainable parameter")
    is_fast = [bool(prefixes) and n.startswith(prefixes) for n, _ in named]
    slow = [p for (_, p), f in zip(named, is_fast, strict=True) if not f]
    fast = [p for (_, p), f in zip(named, is_fast, strict=True) if f]
    groups = [{"params": slow, "lr": cfg.lr}]
    if fast:
        groups.append({"params": fast, "lr": cfg.lr * cfg.fast_lr_mult})
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"train.optimizer={cfg.optimizer!r}; valid: ['adam', 'adamw']")


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig
) -> torch.optim.lr_scheduler.StepLR:
    """StepLR: lr x `lr_decay` every `lr_decay_every` epochs (stepped once per epoch)."""
    return torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=cfg.lr_decay_every, gamma=cfg.lr_decay
    )


def use_gt_points(cfg: TrainConfig, epoch: int, step: int, rank: int = 0) -> bool:
    """Whether the batch of `step` trains the SDF branches on the GT near-surface points.

    Args:
        cfg: training config (gt_points_until_epoch, gt_points_prob_after, seed).
        epoch: current epoch (0-based).
        step: global optimiser step of this batch.
        rank: DDP rank (each rank draws for its own batch).

    Returns:
        True before `gt_points_until_epoch`; afterwards True with probability
        `gt_points_prob_after`, drawn deterministically from (seed, step, rank).
    """
    if epoch < cfg.gt_points_until_epoch:
        return True
    rng = np.random.default_rng([cfg.seed, step, rank, 0x5D])
    return bool(rng.random() < cfg.gt_points_prob_after)


def use_predicted_anchor(prob: float, seed: int, step: int, rank: int = 0) -> bool:
    """Whether the batch of `step` centres its grid on the predicted anchor.

    True with probability `prob`, drawn deterministically from (seed, step, rank), so a
    resumed run draws the same.
    """
    if prob <= 0.0:
        return False
    rng = np.random.default_rng([seed, step, rank, 0xA7])
    return bool(rng.random() < prob)


def seed_everything(seed: int, rank: int = 0) -> None:
    """Seed python, numpy and torch (per rank, so masking noise differs across ranks)."""
    import random

    s = seed + 1000003 * rank
    random.seed(s)
    np.random.seed(s % (2**32))  # noqa: NPY002 - the legacy global RNG, for third-party code
    torch.manual_seed(s)
