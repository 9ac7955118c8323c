"""Fit the GT-free anchor head alone, on features of a frozen network.

The anchor head only reads the encoder's pooled feature and the multi-scale feature map, so once
the rest of the network is trained its inputs are fixed: they are computed once per augmented
crop (`collect_anchor_features`) and the head is trained on that cache for many epochs
(`fit_anchor_head`) at the cost of the head alone. This is how a heatmap anchor head is added to
a trained checkpoint (`homae-fit-anchor`); the losses are the training losses
(`losses.anchor_loss` + `losses.anchor_heatmap_loss`) with the config's weights.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from homae_model.config import LossConfig
from homae_model.losses import anchor_heatmap_loss, anchor_loss
from homae_model.nn.anchor import AnchorHead


@dataclass
class AnchorFeatures:
    """Cached anchor-head inputs and targets of N crops.

    Attributes:
        pooled: (N,D) pooled encoder features, float32.
        fmap: (N,C,h,w) feature maps after `AnchorHead.pool_map`, float16 (memory), or an
            empty (N,0) tensor for a pooled head.
        K: (N,3,3) crop intrinsics.
        anchor: (N,3) GT hand root, crop camera frame, metres.
        image_size: crop side S in pixels.
        boxes: (N,2,4) hand and object boxes, xyxy crop pixels.
    """

    pooled: torch.Tensor
    fmap: torch.Tensor
    K: torch.Tensor
    anchor: torch.Tensor
    image_size: int
    boxes: torch.Tensor

    def __len__(self) -> int:
        return int(self.pooled.shape[0])

    def batch(self, idx: torch.Tensor) -> tuple[Any, ...]:
        """(pooled, fmap float32 or None, K, anchor, boxes) of the rows `idx`."""
        fmap = self.fmap[idx].float() if self.fmap.dim() == 4 else None
        return self.pooled[idx], fmap, self.K[idx], self.anchor[idx], self.boxes[idx]

    def predict(self, head: AnchorHead, idx: torch.Tensor) -> tuple[Any, torch.Tensor, Any]:
        """(head's `AnchorPrediction`, K, GT anchor) on the rows `idx`."""
        pooled, fmap, K, gt, boxes = self.batch(idx)
        boxes = boxes if head.box is not None else None
        pred = head(pooled, K, self.image_size, fmap, map_is_pooled=True, boxes=boxes)
        return pred, K, gt


@dataclass
class FitHistory:
    """Per-epoch record of `fit_anchor_head`.

    Attributes:
        train_loss: mean training loss per epoch.
        val_error_mm: mean Euclidean anchor error on the validation cache per epoch (mm).
        best_epoch: index of the epoch whose weights were kept.
    """

    train_loss: list[float] = field(default_factory=list)
    val_error_mm: list[float] = field(default_factory=list)
    best_epoch: int = -1


class _Picked(Dataset):
    """`dataset[i]` for i in `indices`, keeping only the keys the anchor needs."""

    KEYS = ("image", "K", "anchor", "hand_box", "obj_box")

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset, self.indices = dataset, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        sample = self.dataset[self.indices[i]]
        return {k: sample[k] for k in self.KEYS}


@torch.no_grad()
def collect_anchor_features(
    model: torch.nn.Module,
    dataset: Any,
    indices: Sequence[int] | None = None,
    *,
    batch_size: int = 32,
    num_workers: int = 1,
    progress: bool = False,
    desc: str = "features",
) -> AnchorFeatures:
    """Run the frozen encoder over samples and cache what the anchor head reads.

    Args:
        model: a `HomaeModel` (put in eval mode here: no masking; it is left in eval mode).
        dataset: training-dict dataset (`HandObjectDataset`); its current epoch's augmentation
            is used, so call `set_epoch` between passes for new crops.
        indices: positions in `dataset` (default: all).
        batch_size: crops per encoder forward.
        num_workers: DataLoader workers preparing samples while the encoder runs.
        progress: show a tqdm bar.
        desc: the bar's label.

    Returns:
        `AnchorFeatures` on the CPU.
    """
    from tqdm import tqdm

    model.eval()
    head: AnchorHead = model.anchor_head
    device = next(model.parameters()).device
    picked = _Picked(dataset, range(len(dataset)) if indices is None else indices)
    loader = DataLoader(picked, batch_size=batch_size, num_workers=num_workers)
    pooled, fmaps, Ks, anchors, boxes = [], [], [], [], []
    size = 0
    for batch in tqdm(loader, desc=desc, unit="batch", disable=not progress):
        image = batch["image"].to(device)
        enc = model.encode(image)
        size = int(enc.image_size[1])
        pooled.append(enc.pooled.float().cpu())
        if head.heatmap is not None:
            fmaps.append(head.pool_map(enc.fmap).to(torch.float16).cpu())
        Ks.append(batch["K"].float())
        anchors.append(batch["anchor"].float())
        boxes.append(torch.stack([batch["hand_box"], batch["obj_box"]], dim=1).float())
    n = sum(len(p) for p in pooled)
    return AnchorFeatures(
        pooled=torch.cat(pooled),
        fmap=torch.cat(fmaps) if fmaps else torch.zeros(n, 0),
        K=torch.cat(Ks),
        anchor=torch.cat(anchors),
        image_size=size,
        boxes=torch.cat(boxes) if boxes else torch.zeros(0, 2, 4),
    )


def concat_features(parts: Sequence[AnchorFeatures]) -> AnchorFeatures:
    """Stack caches of the same network and crop size (e.g. several augmentation passes)."""
    sizes = {p.image_size for p in parts}
    if len(sizes) != 1:
        raise ValueError(f"feature caches of different crop sizes {sorted(sizes)}")
    return AnchorFeatures(
        pooled=torch.cat([p.pooled for p in parts]),
        fmap=torch.cat([p.fmap for p in parts]),
        K=torch.cat([p.K for p in parts]),
        anchor=torch.cat([p.anchor for p in parts]),
        image_size=parts[0].image_size,
        boxes=torch.cat([p.boxes for p in parts]),
    )


def head_loss(
    head: AnchorHead, feats: AnchorFeatures, idx: torch.Tensor, cfg: LossConfig
) -> torch.Tensor:
    """The training loss of the anchor terms (`anchor` + `anchor_heatmap`, weighted) on rows idx."""
    pred, K, gt = feats.predict(head, idx)
    loss = cfg.anchor * anchor_loss(pred.uvd, gt, K, feats.image_size)
    if pred.logits is not None and cfg.anchor_heatmap > 0:
        loss = loss + cfg.anchor_heatmap * anchor_heatmap_loss(
            pred.logits, gt, K, feats.image_size, cfg.anchor_heatmap_sigma
        )
    return loss


@torch.no_grad()
def anchor_errors(head: AnchorHead, feats: AnchorFeatures, batch_size: int = 256) -> np.ndarray:
    """(N,3) predicted minus GT hand root, crop camera frame, metres."""
    was_training = head.training
    head.eval()
    out = []
    for start in range(0, len(feats), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(feats)))
        pred, _, gt = feats.predict(head, idx)
        out.append((pred.anchor - gt).numpy())
    head.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, 3))


def fit_anchor_head(
    head: AnchorHead,
    train: AnchorFeatures,
    val: AnchorFeatures,
    loss_cfg: LossConfig,
    *,
    epochs: int = 20,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = False,
) -> FitHistory:
    """Train `head` on cached features with Adam and a cosine schedule; keep the best epoch.

    Args:
        head: the anchor head (trained in place; ends with the weights of the epoch with the
            lowest mean validation error).
        train: training features.
        val: validation features (the selection criterion).
        loss_cfg: loss weights (`anchor`, `anchor_heatmap`, `anchor_heatmap_sigma`).
        epochs: passes over `train`.
        lr: peak learning rate.
        batch_size: rows per step.
        seed: shuffling seed.
        progress: show a tqdm bar over epochs with the current numbers.

    Returns:
        `FitHistory`.

    Raises:
        ValueError: empty caches, or a non-finite loss (epoch and step named).
    """
    from tqdm import tqdm

    if len(train) == 0 or len(val) == 0:
        raise ValueError(f"anchor fit needs features: {len(train)} train, {len(val)} validation")
    params = [p for p in head.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    steps = epochs * max(1, len(train) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    gen = torch.Generator().manual_seed(seed)
    history = FitHistory()
    best = float(np.linalg.norm(anchor_errors(head, val), axis=1).mean() * 1000.0)
    best_state = copy.deepcopy(head.state_dict())
    bar = tqdm(range(epochs), desc="anchor fit", unit="epoch", disable=not progress)
    for epoch in bar:
        head.train()
        order = torch.randperm(len(train), generator=gen)
        losses = []
        for step, start in enumerate(range(0, len(order) - batch_size + 1, batch_size)):
            loss = head_loss(head, train, order[start : start + batch_size], loss_cfg)
            if not torch.isfinite(loss):
                raise ValueError(f"anchor fit: non-finite loss at epoch {epoch}, step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        err = float(np.linalg.norm(anchor_errors(head, val), axis=1).mean() * 1000.0)
        history.train_loss.append(float(np.mean(losses)) if losses else float("nan"))
        history.val_error_mm.append(err)
        if err < best:
            best, history.best_epoch = err, epoch
            best_state = copy.deepcopy(head.state_dict())
        bar.set_postfix(loss=f"{history.train_loss[-1]:.4f}", val_mm=f"{err:.1f}")
    head.load_state_dict(best_state)
    return history


def error_summary(errors: np.ndarray) -> dict[str, float]:
    """Mean Euclidean and per-axis mean absolute error (mm) of (N,3) metre errors."""
    if len(errors) == 0:
        return {"mean_mm": float("nan"), "x_mm": float("nan"), "y_mm": float("nan"),
                "z_mm": float("nan")}  # fmt: skip
    absolute = np.abs(errors) * 1000.0
    return {
        "mean_mm": float(np.linalg.norm(errors, axis=1).mean() * 1000.0),
        "x_mm": float(absolute[:, 0].mean()),
        "y_mm": float(absolute[:, 1].mean()),
        "z_mm": float(absolute[:, 2].mean()),
    }
