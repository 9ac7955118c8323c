"""Train the hand-side network (`side_net`) on RawSample sources, and score it.

Targets per hand, from labels every RawSample has: the 21 image joints (in crop units), whether
the palm faces the camera (`side_net.palm_facing`, from the camera-frame joints and the side),
and the side itself. The loss is an L1 on the keypoints, a BCE on the palm logit and a BCE on
P(left) combined from both cues (`side_net.left_from_cues`), so the turn's keypoints also learn
from the side label.

Augmentation: the crop is jittered in place, size and in-plane angle (a rotation keeps the side),
mirrored half the time (a mirrored left hand is a right hand: the side label swaps, the palm
label stays, the keypoints are mirrored), and its colours are jittered.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from homae_model.data.dataset import SampleSource
from homae_model.detector.infer import percent
from homae_model.detector.side_net import (
    CropJitter,
    SideNet,
    SideNetSpec,
    crop_frames,
    crop_hands,
    left_from_cues,
    left_probability,
    load_side_net,
    palm_facing,
    save_side_net,
    turn_sign,
)

__all__ = ["SideEval", "SideTrainConfig", "evaluate_side_net", "train_side_net"]


@dataclass
class SideTrainConfig:
    """Settings of `train_side_net`.

    Attributes:
        input_size: crop side, pixels.
        margin: crop side / the hand box's larger side.
        width: first-stage channels of the network.
        epochs: passes over the data.
        max_minutes: stop after this much wall time (None = no limit); the learning-rate
            schedule follows the epochs.
        batch_size: crops per step.
        lr: peak AdamW learning rate (one-cycle schedule).
        weight_decay: AdamW weight decay.
        keypoint_weight: weight of the keypoint L1 (crop units).
        side_weight: weight of the side BCE (the palm BCE has weight 1).
        rotation: in-plane rotation jitter, radians (uniform in +-rotation).
        scale_jitter: crop size jitter (relative, uniform).
        shift_jitter: crop centre jitter, fraction of half the crop (uniform).
        color_jitter: brightness/contrast jitter (relative, uniform).
        min_visible: hands less visible than this are left out of the loss.
        num_workers: DataLoader worker processes.
        seed: seed of the initialisation, the shuffling and the augmentation.
        device: torch device string.
    """

    input_size: int = 64
    margin: float = 1.3
    width: int = 32
    epochs: int = 30
    max_minutes: float | None = None
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    keypoint_weight: float = 5.0
    side_weight: float = 1.0
    rotation: float = math.pi
    scale_jitter: float = 0.15
    shift_jitter: float = 0.1
    color_jitter: float = 0.3
    min_visible: float = 0.1
    num_workers: int = 0
    seed: int = 0
    device: str = "cpu"

    @property
    def spec(self) -> SideNetSpec:
        """The network shape these settings train."""
        return SideNetSpec(self.input_size, self.margin, self.width)


def _image_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)


class HandCrops(Dataset):
    """Jittered hand crops with their keypoint, palm and side targets.

    Items: crop (3,S,S) float [0,1], keypoints (21,2) crop units, palm (), left (), weight ()
    (0 for hands below `min_visible`).
    """

    def __init__(
        self, sources: Sequence[SampleSource], cfg: SideTrainConfig, augment: bool = True
    ) -> None:
        """Index every sample of `sources` in order."""
        self.sources = list(sources)
        self.index = [(s, i) for s, src in enumerate(self.sources) for i in range(len(src))]
        self.cfg = cfg
        self.spec = cfg.spec
        self.augment = augment

    def __len__(self) -> int:
        """Number of samples over all sources."""
        return len(self.index)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, ...]:
        """One crop and its targets (see the class docstring)."""
        s, i = self.index[k]
        sample = self.sources[s][i]
        cfg = self.cfg
        box = torch.as_tensor(sample.hand_box, dtype=torch.float32).reshape(1, 4)
        jitter = None
        flip = False
        if self.augment:
            u = torch.rand(5)
            flip = bool(u[4] < 0.5)
            jitter = CropJitter(
                angle=(u[:1] * 2 - 1) * cfg.rotation,
                scale=1 + (u[1:2] * 2 - 1) * cfg.scale_jitter,
                shift=(u[2:4] * 2 - 1).reshape(1, 2) * cfg.shift_jitter,
                flip=torch.tensor([flip]),
            )
        crop = crop_hands(_image_tensor(sample.image), box, self.spec, jitter)[0]
        centre, m = crop_frames(box, self.spec, jitter)
        uv = torch.as_tensor(sample.hand_joints_2d, dtype=torch.float32)
        kp = torch.linalg.solve(m[0], (uv - centre).T).T  # (21,2) crop units
        if self.augment:
            c = torch.rand(2)
            gain = 1 + (c[0] * 2 - 1) * cfg.color_jitter
            crop = ((crop - 0.5) * gain + 0.5 + (c[1] - 0.5) * cfg.color_jitter * 0.5).clamp(0, 1)
        palm = palm_facing(np.asarray(sample.hand_joints), sample.side)
        left = (sample.side == "left") != flip
        weight = float(sample.hand_visible >= cfg.min_visible)
        return (
            crop,
            kp,
            torch.tensor(float(palm)),
            torch.tensor(float(left)),
            torch.tensor(weight),
        )


@dataclass
class SideEval:
    """Side-network quality on the labelled hands' boxes.

    Attributes:
        hands: hands scored (visible fraction >= the training `min_visible`).
        accuracy: fraction given the right side (P(left) >= 0.5 means left).
        left_accuracy: the same over left hands (None without any).
        right_accuracy: the same over right hands (None without any).
        palm_accuracy: fraction whose palm/back cue is right.
        turn_accuracy: fraction whose keypoint turn has the label's sign.
        keypoint_error: mean keypoint distance, fraction of the crop side.
        confident_fraction: fraction with P(left) outside [0.2, 0.8].
        confident_accuracy: accuracy over those (None when there are none).
    """

    hands: int
    accuracy: float
    left_accuracy: float | None
    right_accuracy: float | None
    palm_accuracy: float
    turn_accuracy: float
    keypoint_error: float
    confident_fraction: float
    confident_accuracy: float | None

    def summary(self) -> str:
        """One line for logs."""
        pct = percent
        return (
            f"side {pct(self.accuracy)} of {self.hands} hands (left {pct(self.left_accuracy)}, "
            f"right {pct(self.right_accuracy)}); palm cue {pct(self.palm_accuracy)}, turn "
            f"{pct(self.turn_accuracy)}, keypoints {100 * self.keypoint_error:.1f}% of the crop; "
            f"confident {pct(self.confident_fraction)} at {pct(self.confident_accuracy)}"
        )


@torch.no_grad()
def evaluate_side_net(
    net: SideNet, sources: Sequence[SampleSource], cfg: SideTrainConfig, max_hands: int = 1000
) -> SideEval:
    """Score `net` on the labelled hand boxes of `sources` (no jitter, mirror-averaged).

    Args:
        net: the side network.
        sources: held-out RawSample sources.
        cfg: the training settings (crop shape, `min_visible`).
        max_hands: most samples read (in order).

    Returns:
        The scores; `hands` is 0 (and the rates 0) when no hand qualifies.
    """
    data = HandCrops(sources, cfg, augment=False)
    n = min(len(data), max_hands)
    items = [data[k] for k in range(n)]
    items = [it for it in items if it[4] > 0]
    if not items:
        return SideEval(0, 0.0, None, None, 0.0, 0.0, 0.0, 0.0, None)
    crops, kp, palm, left, _ = (torch.stack(x) for x in zip(*items, strict=True))
    device = next(net.parameters()).device
    net.eval()
    p_left, kp_pred, palm_logit = [], [], []
    for i in range(0, len(crops), 256):
        batch = crops[i : i + 256].to(device)
        p_left.append(left_probability(net, batch).cpu())
        k, pl = net(batch)
        kp_pred.append(k.cpu())
        palm_logit.append(pl.cpu())
    p = torch.cat(p_left)
    kp_pred, palm_logit = torch.cat(kp_pred), torch.cat(palm_logit)
    right = (p >= 0.5) == left.bool()

    def rate(mask: torch.Tensor) -> float | None:
        return float(right[mask].float().mean()) if bool(mask.any()) else None

    confident = (p < 0.2) | (p > 0.8)
    turn_ok = (turn_sign(kp_pred) > 0) == (turn_sign(kp) > 0)
    return SideEval(
        hands=len(p),
        accuracy=float(right.float().mean()),
        left_accuracy=rate(left.bool()),
        right_accuracy=rate(~left.bool()),
        palm_accuracy=float(((palm_logit > 0) == palm.bool()).float().mean()),
        turn_accuracy=float(turn_ok.float().mean()),
        keypoint_error=float((kp_pred - kp).norm(dim=-1).mean() / 2),
        confident_fraction=float(confident.float().mean()),
        confident_accuracy=rate(confident),
    )


@dataclass
class SideTrainResult:
    """What `train_side_net` did.

    Attributes:
        path: the weights file written.
        steps: optimiser steps taken.
        first_loss: mean loss over the first 10 steps.
        last_loss: mean loss over the last 10 steps.
        seconds: wall time of the training loop.
        history: per epoch, the held-out `SideEval` (when held-out sources were given).
    """

    path: Path
    steps: int
    first_loss: float
    last_loss: float
    seconds: float
    history: list[tuple[int, SideEval]]


def side_loss(
    net: SideNet,
    batch: Sequence[torch.Tensor],
    cfg: SideTrainConfig,
) -> torch.Tensor:
    """Training loss of one batch from `HandCrops` (see the module docstring)."""
    crops, kp, palm, left, weight = batch
    kp_pred, palm_logit = net(crops)
    w = weight / weight.sum().clamp(min=1.0)
    l_kp = ((kp_pred - kp).abs().mean((1, 2)) * w).sum()
    l_palm = (F.binary_cross_entropy_with_logits(palm_logit, palm, reduction="none") * w).sum()
    p_left = left_from_cues(turn_sign(kp_pred), palm_logit).clamp(1e-6, 1 - 1e-6)
    l_side = (F.binary_cross_entropy(p_left, left, reduction="none") * w).sum()
    return cfg.keypoint_weight * l_kp + l_palm + cfg.side_weight * l_side


def train_side_net(
    sources: Sequence[SampleSource],
    out: str | Path,
    cfg: SideTrainConfig | None = None,
    eval_sources: Sequence[SampleSource] = (),
    eval_hands: int = 500,
    progress: bool = True,
    init: str | Path | None = None,
) -> SideTrainResult:
    """Train a side network on `sources` and save it to `out` (and its sidecar).

    Args:
        sources: RawSample training sources (both sides, or right hands only: the mirroring
            makes the left ones).
        out: the `.safetensors` file to write.
        cfg: settings (default `SideTrainConfig()`).
        eval_sources: held-out sources scored after every epoch (printed and in `history`).
        eval_hands: held-out samples read per evaluation.
        progress: show a progress bar.
        init: start from this side network file (fine-tuning); its width must be
            `cfg.spec.width` (the layers are convolutions, so its input size and margin may
            differ from `cfg.spec`'s: the network is then fine-tuned at the configured ones).

    Returns:
        What was done (see `SideTrainResult`).

    Raises:
        ValueError: no training samples, or an `init` network of another width.
    """
    cfg = cfg or SideTrainConfig()
    torch.manual_seed(cfg.seed)
    data = HandCrops(sources, cfg)
    if len(data) == 0:
        raise ValueError("side network training: the sources hold no samples")
    device = torch.device(cfg.device)
    net = SideNet(cfg.spec).to(device).train()
    if init is not None:
        start_net = load_side_net(init, device)
        if start_net.spec.width != cfg.spec.width:
            raise ValueError(
                f"--init {init}: its width {start_net.spec.width} is not the configured "
                f"{cfg.spec.width} (set width={start_net.spec.width})"
            )
        net.load_state_dict(start_net.state_dict())
    loader = DataLoader(
        data,
        batch_size=cfg.batch_size,
        shuffle=True,
        drop_last=len(data) >= cfg.batch_size,
        num_workers=cfg.num_workers,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    per_epoch = max(len(loader), 1)
    opt = torch.optim.AdamW(net.parameters(), cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.epochs * per_epoch)
    losses: list[float] = []
    history: list[tuple[int, SideEval]] = []
    start = time.monotonic()
    steps = 0
    bar = tqdm(total=cfg.epochs * per_epoch, desc="side net", unit="step", disable=not progress)
    out_of_time = False
    for epoch in range(cfg.epochs):
        net.train()
        for batch in loader:
            loss = side_loss(net, [t.to(device) for t in batch], cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            steps += 1
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            if cfg.max_minutes is not None and time.monotonic() - start > 60 * cfg.max_minutes:
                out_of_time = True
                break
        if eval_sources:
            ev = evaluate_side_net(net, eval_sources, cfg, eval_hands)
            history.append((epoch + 1, ev))
            bar.write(f"epoch {epoch + 1}: held-out {ev.summary()}")
        if out_of_time:
            break
    bar.close()
    path = save_side_net(net.eval(), out)
    return SideTrainResult(
        path=Path(path),
        steps=steps,
        first_loss=float(np.mean(losses[:10])) if losses else math.nan,
        last_loss=float(np.mean(losses[-10:])) if losses else math.nan,
        seconds=time.monotonic() - start,
        history=history,
    )
