"""Dense pretraining of the image path (`homae-pretrain`): many crops, image-level targets only.

The full training step spends most of its time in the 3D half (voxel search, SDF MLP, the
transformer heads over hundreds of points), so at a CPU budget the encoder sees few images.
This stage trains only what reads the image, at several times the crops per second:

    crop (B,3,S,S) --masking--> ViT --> decoder --> multi-scale F~ [+ image skip]
      F~ --> dense heads (`model.aux`): 21 joint + 9 object keypoint heatmaps, joint depths
      F~ + pooled feature + boxes --> anchor head: root pixel (heatmap) and root depth
      [decoder --> RGB reconstruction of the masked crop, when `loss.lambda_rec` > 0]

Its losses are the full model's own terms for these parts (`losses.total_loss` weights), so a
pretrained checkpoint is a full `HomaeModel` checkpoint whose 3D heads are still at their
initial values: `homae-train --init RUN` starts from it (the DINOv2 weights of the paper are
the same idea at a larger scale; they cannot be shipped).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from homae_model.config import HomaeConfig
from homae_model.losses import (
    anchor_heatmap_loss,
    anchor_loss,
    aux_targets,
    depth_map_losses,
    keypoint_heatmap_loss,
    reconstruction_loss,
)
from homae_model.model import Encoding, HomaeModel
from homae_model.nn.anchor import AnchorPrediction
from homae_model.nn.aux import NUM_HAND_KEYPOINTS, AuxPrediction


@dataclass
class PretrainOptions:
    """What `pretrain` runs.

    Attributes:
        steps: optimiser steps in total (a resumed run continues to this count).
        batch_size: crops per step.
        lr: Adam learning rate (`train.fast_prefixes` get `train.fast_lr_mult` times it).
        eval_every: steps between held-out evaluations (0: only at the end).
        ckpt_every: steps between checkpoints (0: only at the end).
        eval_samples: held-out crops per evaluation.
        workers: data-loader worker processes.
        joints_weight: weight of the global joints head's L1 (m) on the root-relative joints
            (`GlobalJointsHead`; 0 = no such head).
    """

    steps: int = 2000
    batch_size: int = 64
    lr: float = 5e-4
    eval_every: int = 250
    ckpt_every: int = 250
    eval_samples: int = 128
    workers: int = 1
    joints_weight: float = 0.0


class GlobalJointsHead(nn.Module):
    """Pretraining only: the crop's global features -> the 21 joints relative to the root.

    The class token and the spatial mean of F~ (so both the ViT and the decoder must carry the
    hand's orientation and articulation) go through a two-layer MLP. It is not part of the
    model's checkpoint: the 3D heads of `homae-train` read F~ at points instead.
    """

    def __init__(self, token_dim: int, fmap_channels: int, hidden: int = 256) -> None:
        """MLP from `token_dim + fmap_channels` to 21 x 3."""
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(token_dim + fmap_channels, hidden), nn.GELU(), nn.Linear(hidden, 63)
        )
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, pooled: torch.Tensor, fmap: torch.Tensor) -> torch.Tensor:
        """(B,D) class token, (B,C,h,w) F~ -> (B,21,3) joints minus root, crop frame, metres."""
        x = torch.cat([pooled, fmap.mean(dim=(2, 3))], dim=1)
        return 0.1 * self.mlp(x).reshape(-1, NUM_HAND_KEYPOINTS, 3)


def root_relative(joints: torch.Tensor) -> torch.Tensor:
    """(B,21,3) joints -> the same minus the root joint (index 0)."""
    return joints - joints[:, :1]


@dataclass
class DenseOutput:
    """What the image path predicts for one batch.

    Attributes:
        enc: the encoding (F~, class token, reconstruction when asked).
        anchor: the anchor head's prediction.
        aux: the dense heads' prediction.
        rel_joints: (B,21,3) the global joints head's root-relative joints (m), or None.
    """

    enc: Encoding
    anchor: AnchorPrediction
    aux: AuxPrediction
    rel_joints: torch.Tensor | None


def dense_forward(
    model: HomaeModel,
    batch: dict[str, torch.Tensor],
    cfg: HomaeConfig,
    joints_head: GlobalJointsHead | None = None,
) -> DenseOutput:
    """Run the image path on a batch (masking in training mode only).

    Args:
        model: the network.
        batch: training dicts without query points (`SamplePipeline(sdf_samples=False)`):
            `image`, `K`, `hand_box`, `obj_box` (and the labels `dense_terms` reads).
        cfg: the run's config (the reconstruction runs when `loss.lambda_rec * loss.rec` > 0).
        joints_head: the global joints head, or None; a model with
            `model.hand_head.image_token` uses its own token's readout instead.

    Raises:
        ValueError: the model has no dense heads (`model.aux.enabled: false`).
    """
    if model.aux_head is None:
        raise ValueError("homae-pretrain needs the dense heads: set model.aux.enabled: true")
    reconstruct = cfg.loss.lambda_rec > 0 and cfg.loss.rec > 0
    enc = model.encode(batch["image"], batch["obj_box"], reconstruct=reconstruct)
    anchor = model.predict_anchor(enc, batch["K"], batch["hand_box"], batch["obj_box"])
    token = model.global_token(enc)
    if token is not None:  # the model's own image token (model.hand_head.image_token)
        rel_joints = model.image_token.joints(token)
    else:
        rel_joints = joints_head(enc.pooled, enc.fmap) if joints_head is not None else None
    return DenseOutput(enc, anchor, model.aux_head(enc.fmap), rel_joints)


def dense_terms(
    out: DenseOutput,
    batch: dict[str, torch.Tensor],
    cfg: HomaeConfig,
    joints_weight: float = 0.0,
) -> dict[str, torch.Tensor]:
    """The image-level loss terms of one batch, weighted as in `losses.total_loss`.

    Args:
        out: `dense_forward` of the batch.
        batch: its training dicts: `image`, `K`, `hand_joints`, `obj_corners`, `anchor` (and
            the depth maps with `model.aux.depth_maps`).
        cfg: the run's config (`loss` weights).
        joints_weight: the global joints head's L1 weight (per metre).

    Returns:
        Named weighted terms (tensors with gradients); their sum is the loss.
    """
    lc = cfg.loss
    K, size = batch["K"], out.enc.image_size[1]
    terms: dict[str, torch.Tensor] = {}
    if out.enc.recon is not None:
        terms["rec"] = lc.lambda_rec * lc.rec * reconstruction_loss(out.enc.recon, batch["image"])
    pred, aux = out.anchor, out.aux
    w = lc.lambda_others
    terms["anchor"] = w * lc.anchor * anchor_loss(pred.uvd, batch["anchor"], K, size)
    if pred.logits is not None and lc.anchor_heatmap > 0:
        terms["anchor_heatmap"] = (
            w
            * lc.anchor_heatmap
            * anchor_heatmap_loss(pred.logits, batch["anchor"], K, size, lc.anchor_heatmap_sigma)
        )
    uv, valid, rel = aux_targets(batch, size)
    terms["aux_heatmap"] = (
        w * lc.aux_heatmap * keypoint_heatmap_loss(aux.logits, uv, valid, size, lc.aux_sigma_px)
    )
    terms["aux_depth"] = w * lc.aux_depth * F.l1_loss(aux.rel_depth, rel)
    if aux.mask_logits is not None and aux.depth_maps is not None:
        bce, l1 = depth_map_losses(aux.mask_logits, aux.depth_maps, batch)
        terms["aux_mask"] = w * lc.aux_mask * bce
        terms["aux_depth_map"] = w * lc.aux_depth_map * l1
    if out.rel_joints is not None and joints_weight > 0:
        target = root_relative(batch["hand_joints"])
        terms["joints"] = joints_weight * F.l1_loss(out.rel_joints, target)
    return terms


def soft_argmax_pixels(logits: torch.Tensor, image_size: int) -> torch.Tensor:
    """(B,J,h,w) keypoint logits -> (B,J,2) expected crop pixel (x, y) of each heatmap.

    Cell (i, j) covers crop pixels [j*S/w, (j+1)*S/w) x [i*S/h, (i+1)*S/h); its centre stands
    for it.
    """
    b, j, h, w = logits.shape
    p = torch.softmax(logits.reshape(b, j, -1), dim=-1).reshape(b, j, h, w)
    xs = (torch.arange(w, dtype=p.dtype, device=p.device) + 0.5) * (image_size / w) - 0.5
    ys = (torch.arange(h, dtype=p.dtype, device=p.device) + 0.5) * (image_size / h) - 0.5
    x = (p.sum(dim=2) * xs).sum(dim=-1)
    y = (p.sum(dim=3) * ys).sum(dim=-1)
    return torch.stack([x, y], dim=-1)


@dataclass
class DenseEval:
    """Held-out figures of the image path, each beside a constant guess on the same crops.

    Attributes:
        crops: number of held-out crops.
        joint_px: mean 2D joint error (crop pixels) of the keypoint heatmaps' soft-argmax.
        joint_px_const: the same for the mean joint pixel of the held-out crops.
        rel_depth_mm: mean |joint depth - root depth| error (mm) of the dense heads.
        rel_depth_mm_const: the same for predicting 0 (every joint at the root's depth).
        anchor_mm: mean 3D distance (mm) of the anchor head's root to the GT root.
        anchor_depth_mm: mean |z error| (mm) of that root.
        loss: mean weighted dense loss (eval mode).
        joints_mm: root-relative MJE (mm) of the global joints head, or NaN without one.
        joints_mm_const: the same for the mean root-relative hand of the held-out crops.
    """

    crops: int
    joint_px: float
    joint_px_const: float
    rel_depth_mm: float
    rel_depth_mm_const: float
    anchor_mm: float
    anchor_depth_mm: float
    loss: float
    joints_mm: float = float("nan")
    joints_mm_const: float = float("nan")

    def line(self) -> str:
        """One log line."""
        joints = ""
        if np.isfinite(self.joints_mm):
            joints = f"joints 3D {self.joints_mm:.1f} mm (mean hand {self.joints_mm_const:.1f}), "
        return (
            joints + f"joints 2D {self.joint_px:.1f} px (mean pixel {self.joint_px_const:.1f}), "
            f"joint depth {self.rel_depth_mm:.1f} mm (root depth {self.rel_depth_mm_const:.1f}), "
            f"anchor {self.anchor_mm:.1f} mm (depth {self.anchor_depth_mm:.1f}), "
            f"loss {self.loss:.3f}, {self.crops} crops"
        )


@torch.no_grad()
def evaluate_dense(
    model: HomaeModel,
    batches: list[dict[str, torch.Tensor]],
    cfg: HomaeConfig,
    joints_head: GlobalJointsHead | None = None,
    joints_weight: float = 0.0,
) -> DenseEval:
    """Held-out figures of the image path (eval mode: no masking, also in the loss).

    Args:
        model: the network.
        batches: held-out batches (`SamplePipeline(train=False, sdf_samples=False)`).
        cfg: the run's config.
        joints_head: the global joints head, or None.
        joints_weight: its weight in the reported loss.
    """
    was_training = model.training
    model.eval()
    errs, uvs, rels, rel_pred, anc, anc_z, losses = [], [], [], [], [], [], []
    rel_joints, rel_joints_gt = [], []
    for batch in batches:
        out = dense_forward(model, batch, cfg, joints_head)
        size = out.enc.image_size[1]
        uv, _, rel = aux_targets(batch, size)
        px = soft_argmax_pixels(out.aux.logits[:, :NUM_HAND_KEYPOINTS], size)
        errs.append((px - uv[:, :NUM_HAND_KEYPOINTS]).norm(dim=-1))
        uvs.append(uv[:, :NUM_HAND_KEYPOINTS])
        rels.append(rel)
        rel_pred.append(out.aux.rel_depth)
        d = out.anchor.anchor - batch["anchor"]
        anc.append(d.norm(dim=-1))
        anc_z.append(d[:, 2].abs())
        rel_joints_gt.append(root_relative(batch["hand_joints"]))
        if out.rel_joints is not None:
            rel_joints.append(out.rel_joints)
        losses.append(float(sum(dense_terms(out, batch, cfg, joints_weight).values())))
    model.train(was_training)
    uv_all = torch.cat(uvs)
    rel_all = torch.cat(rels)
    gt = torch.cat(rel_joints_gt)
    joints = {
        "joints_mm_const": 1000.0 * float((gt - gt.mean(dim=0)).norm(dim=-1).mean()),
    }
    if rel_joints:
        joints["joints_mm"] = 1000.0 * float((torch.cat(rel_joints) - gt).norm(dim=-1).mean())
    return DenseEval(
        crops=int(uv_all.shape[0]),
        joint_px=float(torch.cat(errs).mean()),
        joint_px_const=float((uv_all - uv_all.mean(dim=0)).norm(dim=-1).mean()),
        rel_depth_mm=1000.0 * float((torch.cat(rel_pred) - rel_all).abs()[:, 1:].mean()),
        rel_depth_mm_const=1000.0 * float(rel_all.abs()[:, 1:].mean()),
        anchor_mm=1000.0 * float(torch.cat(anc).mean()),
        anchor_depth_mm=1000.0 * float(torch.cat(anc_z).mean()),
        loss=float(np.mean(losses)),
        **joints,
    )


def build_pretrain_optimizer(
    model: HomaeModel, cfg: HomaeConfig, lr: float, joints_head: GlobalJointsHead | None = None
) -> torch.optim.Optimizer:
    """`homae-train`'s optimiser (`train.optimizer`, fast prefixes) at the learning rate `lr`.

    The global joints head, when given, is a last parameter group at the fast learning rate.
    """
    from dataclasses import replace

    from homae_model.training.schedule import build_optimizer

    optimizer = build_optimizer(model, replace(cfg.train, lr=lr))
    if joints_head is not None:
        fast = lr * cfg.train.fast_lr_mult
        optimizer.add_param_group({"params": list(joints_head.parameters()), "lr": fast})
    return optimizer


def pretrain_loop(
    model: HomaeModel,
    cfg: HomaeConfig,
    batches: Callable[[], dict[str, torch.Tensor]],
    options: PretrainOptions,
    *,
    start_step: int = 0,
    optimizer: torch.optim.Optimizer | None = None,
    on_eval: Callable[[int], None] | None = None,
    on_ckpt: Callable[[int, torch.optim.Optimizer], None] | None = None,
    log: Callable[[str], None] = print,
    joints_head: GlobalJointsHead | None = None,
    stop: Callable[[], bool] | None = None,
) -> int:
    """Optimise the dense terms for `options.steps - start_step` steps (or until `stop`).

    Args:
        model: the network (put in training mode here).
        cfg: the run's config (loss weights, `train.fast_prefixes`, `train.grad_clip_norm`).
        batches: returns the next training batch.
        options: steps, learning rate, evaluation / checkpoint periods.
        start_step: the step a resumed run continues from.
        optimizer: a resumed optimiser (built from `cfg.train` and `options.lr` otherwise).
        on_eval: called with the step every `eval_every` steps and at the end.
        on_ckpt: called with the step and the optimiser every `ckpt_every` steps and at the end.
        log: where progress lines go.
        joints_head: the global joints head (`options.joints_weight`), trained beside the
            model at the fast learning rate, or None.
        stop: asked after every step; True ends the run there, after its held-out check and
            checkpoint (a signal or a time limit, say).

    Returns:
        The last step done.

    Raises:
        FloatingPointError: a non-finite loss (the step and its terms named).
    """
    model.train()
    if optimizer is None:
        optimizer = build_pretrain_optimizer(model, cfg, options.lr, joints_head)
    params = list(model.parameters())
    if joints_head is not None:
        joints_head.train()
        params += list(joints_head.parameters())
    t0 = time.monotonic()
    for step in range(start_step + 1, options.steps + 1):
        batch = batches()
        out = dense_forward(model, batch, cfg, joints_head)
        terms = dense_terms(out, batch, cfg, options.joints_weight)
        loss = sum(terms.values())
        assert isinstance(loss, torch.Tensor)
        if not torch.isfinite(loss):
            named = {k: float(v) for k, v in terms.items()}
            raise FloatingPointError(f"homae-pretrain: non-finite loss at step {step}: {named}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.train.grad_clip_norm)
        optimizer.step()
        last = step == options.steps or (stop is not None and stop())
        if step % 25 == 0 or last:
            rate = (step - start_step) / max(time.monotonic() - t0, 1e-9)
            parts = ", ".join(f"{k} {float(v.detach()):.3f}" for k, v in terms.items())
            total = float(loss.detach())
            log(f"step {step}/{options.steps}: loss {total:.3f} ({parts}), {rate:.2f} steps/s")
        if on_eval is not None and (last or _every(step, options.eval_every)):
            on_eval(step)
        if on_ckpt is not None and (last or _every(step, options.ckpt_every)):
            on_ckpt(step, optimizer)
        if last:
            return step
    return options.steps


def _every(step: int, period: int) -> bool:
    return period > 0 and step % period == 0


def batch_stream(loader: torch.utils.data.DataLoader) -> Callable[[], dict[str, torch.Tensor]]:
    """An endless source of batches from a loader.

    When a pass ends the next one starts with the dataset's next epoch (`set_epoch`, when it
    has one), so each pass draws new augmentations; the loader must not keep its workers.
    """
    it = iter(loader)
    epoch = int(getattr(loader.dataset, "epoch", 0))

    def next_batch() -> dict[str, torch.Tensor]:
        nonlocal it, epoch
        try:
            return next(it)
        except StopIteration:
            epoch += 1
            if hasattr(loader.dataset, "set_epoch"):
                loader.dataset.set_epoch(epoch)
            it = iter(loader)
            return next(it)

    return next_batch


def write_report(path: Path, rows: list[dict[str, float]]) -> None:
    """Write the held-out rows (one JSON object per line)."""
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
