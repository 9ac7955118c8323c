"""Fine-tune the object head alone on the inputs the Predictor gives it (frozen network, cached).

The object head averages per-point votes over the voxels that the search selects with the
model's own SDF. `homae-train` feeds it mostly voxels picked with the GT SDF (tight around the
object); at inference the selected voxels spread along the camera ray (on data/val, 68 mm
depth spread), and the head's translation inherits that. Running the frozen network once over
a labelled set in inference mode and training the head alone on what it received takes minutes
on a CPU, where a `homae-train` run over the same frames would take hours.

Each frame can be run with two anchors (voxel-grid centres): the GT hand root with the labelled
boxes (the gt-anchored protocol) and the anchor head's estimate from the detector's boxes (the
GT-free protocol, what the node sees). A head tuned on one kind alone learns where that anchor
sits relative to the object and how those boxes frame it, so the default keeps both.

Data flow: `collect_object_inputs` (Predictor, a forward pre-hook on `model.object_head`) ->
`ObjectHeadInputs` -> `tune_object_head` (the training loss's `object_loss`, every layer) ->
`object_head_errors` (OCE and ADD-S per anchor kind) for the report.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from homae_model.config import LossConfig
from homae_model.data.pipeline import model_point_subset
from homae_model.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from homae_model.losses import object_loss

ANCHOR_KINDS = ("given", "predicted")
"""`given`: the GT hand root (gt-anchored); `predicted`: the anchor head's (GT-free)."""


@dataclass
class ObjectHeadInputs:
    """What the object head received on a set of frames, with the labels it should answer.

    Attributes:
        tokens: (N,P,C) float16 fused point tokens (float16 halves the cache; the head runs in
            float32).
        pos: (N,P,D) point position encodings.
        points: (N,P,3) selected voxels, camera frame, metres.
        obj_rot: (N,3) GT rotation, axis-angle (object -> camera).
        obj_trans: (N,3) GT translation, metres.
        obj_model_points: (N,M,3) object-frame model points (`model_point_subset`), metres.
        anchor_kind: (N,) index into `ANCHOR_KINDS`.
        frames: (N,) index of the frame in its data source.
        skipped: frames left out, with the reason (e.g. left hands).
    """

    tokens: torch.Tensor
    pos: torch.Tensor
    points: torch.Tensor
    obj_rot: torch.Tensor
    obj_trans: torch.Tensor
    obj_model_points: torch.Tensor
    anchor_kind: torch.Tensor
    frames: torch.Tensor
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The object head's inputs of samples `idx`: (tokens as float32, pos, points)."""
        return (
            self.tokens[idx].float(),
            self.pos[idx],
            self.points[idx],
        )

    def labels(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """The `object_loss` batch of samples `idx`."""
        return {
            "obj_rot": self.obj_rot[idx],
            "obj_trans": self.obj_trans[idx],
            "obj_model_points": self.obj_model_points[idx],
        }


class _Recorder:
    """Forward pre-hook of the object head: keeps the last call's inputs."""

    def __init__(self) -> None:
        self.last: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def __call__(self, module: Any, args: tuple, kwargs: dict) -> None:
        tokens, pos, points = args[:3]
        self.last = (tokens.detach().cpu(), pos.detach().cpu(), points.detach().cpu())


def collect_object_inputs(
    predictor: Any,
    opened: Any,
    indices: Sequence[int],
    anchors: Sequence[str] = ANCHOR_KINDS,
    on_frame: Callable[[], None] | None = None,
    detected: Callable[[np.ndarray, np.ndarray], tuple | None] | None = None,
) -> ObjectHeadInputs:
    """Run the Predictor (torch runtime) on labelled frames and keep the object head's inputs.

    Args:
        predictor: a `homae_model.inference.Predictor` with the torch runtime.
        opened: `homae_model.data.sources.OpenedSource` with labels.
        indices: frames of `opened.source` to run.
        anchors: subset of `ANCHOR_KINDS`; each frame is run once per kind.
        on_frame: called after each frame (progress bars).
        detected: for the `predicted` kind, (image, labelled hand box) -> the detected (hand
            box, object box) matching that hand or None (`evaluation.evaluate.gt_free_boxes`):
            the GT-free protocol's boxes, what the node sees; a miss skips that row. None: the
            labelled boxes.

    Returns:
        `ObjectHeadInputs` (one row per frame and anchor kind). Left hands are skipped (the
        Predictor sees them mirrored, with a mirrored object) and listed in `skipped`, as are
        detector misses.

    Raises:
        ValueError: an unknown anchor kind, a Predictor without a torch object head, or a
            source without labels.
    """
    bad = [a for a in anchors if a not in ANCHOR_KINDS]
    if bad or not anchors:
        raise ValueError(f"anchors: {list(anchors)} must be a non-empty subset of {ANCHOR_KINDS}")
    if not opened.has_labels:
        raise ValueError(f"{opened.root}: the object head is tuned on labelled frames only")
    head = getattr(getattr(predictor, "model", None), "object_head", None)
    if head is None or getattr(predictor, "runtime", "torch") != "torch":
        raise ValueError("collect_object_inputs needs a Predictor with the torch runtime")
    recorder = _Recorder()
    handle = head.register_forward_pre_hook(recorder, with_kwargs=True)
    rows: dict[str, list] = {k: [] for k in ("tok", "pos", "pts", "rot", "trans", "mp", "kind")}
    frames: list[int] = []
    skipped: list[dict[str, Any]] = []
    points_of: dict[str, np.ndarray] = {}
    try:
        for index in indices:
            raw = opened.source[index]
            raw.validate()
            if raw.side != "right":
                skipped.append({"index": int(index), "reason": f"{raw.side} hand"})
            else:
                if raw.obj_name not in points_of:
                    verts = opened.objects.get(raw.obj_name).vertices
                    points_of[raw.obj_name] = model_point_subset(verts)
                labelled = (np.asarray(raw.hand_box), np.asarray(raw.obj_box))
                for kind in anchors:
                    given = [np.asarray(raw.hand_joints[0])] if kind == "given" else None
                    pair = [labelled]
                    if kind == "predicted" and detected is not None:
                        found = detected(raw.image, labelled[0])
                        if found is None:
                            skipped.append({"index": int(index), "reason": "detector miss"})
                            continue
                        pair = [(np.asarray(found[0]), np.asarray(found[1]))]
                    recorder.last = None
                    predictor.predict(raw.image, raw.K, pair, anchors=given)
                    if recorder.last is None:
                        raise ValueError("the Predictor did not run its torch object head")
                    tok, pos, pts = recorder.last
                    rows["tok"].append(tok[0].half())
                    rows["pos"].append(pos[0])
                    rows["pts"].append(pts[0])
                    rows["rot"].append(
                        torch.as_tensor(np.asarray(raw.obj_rot), dtype=torch.float32)
                    )
                    rows["trans"].append(
                        torch.as_tensor(np.asarray(raw.obj_trans), dtype=torch.float32)
                    )
                    rows["mp"].append(torch.as_tensor(points_of[raw.obj_name], dtype=torch.float32))
                    rows["kind"].append(ANCHOR_KINDS.index(kind))
                    frames.append(int(index))
            if on_frame is not None:
                on_frame()
    finally:
        handle.remove()
    if not frames:
        raise ValueError(
            f"{opened.root}: none of the {len(indices)} frames given is usable (right hands, "
            "found by the detector for the predicted anchor)"
        )
    return ObjectHeadInputs(
        tokens=torch.stack(rows["tok"]),
        pos=torch.stack(rows["pos"]),
        points=torch.stack(rows["pts"]),
        obj_rot=torch.stack(rows["rot"]),
        obj_trans=torch.stack(rows["trans"]),
        obj_model_points=torch.stack(rows["mp"]),
        anchor_kind=torch.as_tensor(rows["kind"], dtype=torch.int64),
        frames=torch.as_tensor(frames, dtype=torch.int64),
        skipped=skipped,
    )


@torch.no_grad()
def object_head_errors(
    head: torch.nn.Module, data: ObjectHeadInputs, chunk: int = 256
) -> dict[str, dict[str, float]]:
    """OCE and ADD-S (mm) of `head` on `data`, per anchor kind and over all rows.

    OCE: distance between the predicted and GT object origins. ADD-S: mean distance from each
    GT-posed model point to the nearest predicted-posed one (BOP's `adi`, as the report's
    ADD-S), over the `obj_model_points` subset (the report uses every vertex). Also the
    median rotation error (degrees, no symmetry).

    Returns:
        {kind or "all": {"OCE", "ADD-S", "rot_deg_median", "n"}}.
    """
    was = head.training
    head.eval()
    oce, adds, ang = [], [], []
    for lo in range(0, len(data), chunk):
        idx = torch.arange(lo, min(lo + chunk, len(data)))
        tok, pos, pts = data.batch(idx)
        out = head(tok, pos, pts, final_only=True)[-1]
        gt_r = axis_angle_to_matrix(data.obj_rot[idx])
        gt_t = data.obj_trans[idx]
        x = data.obj_model_points[idx]
        oce.append((out.trans - gt_t).norm(dim=1))
        a = x @ out.rotmat.transpose(1, 2) + out.trans[:, None]
        b = x @ gt_r.transpose(1, 2) + gt_t[:, None]
        adds.append(torch.cdist(b, a).min(dim=2).values.mean(dim=1))
        rel = matrix_to_axis_angle(out.rotmat.transpose(1, 2) @ gt_r)
        ang.append(torch.rad2deg(rel.norm(dim=1)))
    head.train(was)
    oce_t, adds_t, ang_t = torch.cat(oce), torch.cat(adds), torch.cat(ang)
    result = {}
    for name, mask in [("all", torch.ones_like(data.anchor_kind, dtype=torch.bool))] + [
        (k, data.anchor_kind == i) for i, k in enumerate(ANCHOR_KINDS)
    ]:
        if bool(mask.any()):
            result[name] = {
                "OCE": 1e3 * float(oce_t[mask].mean()),
                "ADD-S": 1e3 * float(adds_t[mask].mean()),
                "rot_deg_median": float(ang_t[mask].median()),
                "n": int(mask.sum()),
            }
    return result


@dataclass
class TuneSettings:
    """Optimisation of `tune_object_head`.

    Attributes:
        steps: optimiser steps.
        batch_size: samples per step.
        lr: Adam learning rate (cosine decay to 5% of it).
        eval_every: steps between held-out checks (0: only at the end).
        seed: sampling seed.
    """

    steps: int = 2000
    batch_size: int = 64
    lr: float = 3e-4
    eval_every: int = 200
    seed: int = 0


def tune_object_head(
    head: torch.nn.Module,
    train: ObjectHeadInputs,
    loss_cfg: LossConfig,
    settings: TuneSettings,
    val: ObjectHeadInputs | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> tuple[torch.nn.Module, list[dict[str, Any]]]:
    """Train a copy of `head` on `train` with the training loss's object terms.

    Every layer's estimate is supervised (`object_loss`, as `total_loss` with deep
    supervision): `loss.obj_rot`, `loss.obj_rot_points`, `loss.obj_trans` weigh the terms.
    The copy with the lowest held-out OCE + ADD-S seen at the checks is returned (the last one
    without `val`).

    Args:
        head: the model's `ObjectHead` (not modified).
        train: cached inputs and labels.
        loss_cfg: loss weights.
        settings: `TuneSettings`.
        val: held-out inputs scored every `settings.eval_every` steps.
        on_step: called with (step, loss) after each step.

    Returns:
        (the tuned head in eval mode, curve: one dict per check with step, loss and the
        `object_head_errors` of `val`).
    """
    gen = torch.Generator().manual_seed(settings.seed)
    tuned = copy.deepcopy(head).train()
    for p in tuned.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(tuned.parameters(), lr=settings.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * s / max(settings.steps, 1)))
    )
    curve: list[dict[str, Any]] = []
    best: tuple[float, dict[str, torch.Tensor]] | None = None

    def check(step: int, loss: float) -> None:
        nonlocal best
        if val is None:
            return
        errs = object_head_errors(tuned, val)
        curve.append({"step": step, "loss": loss, "val": errs})
        score = errs["all"]["OCE"] + errs["all"]["ADD-S"]
        if best is None or score < best[0]:
            best = (score, copy.deepcopy(tuned.state_dict()))

    check(0, float("nan"))
    loss_v = float("nan")
    for step in range(1, settings.steps + 1):
        idx = torch.randint(0, len(train), (settings.batch_size,), generator=gen)
        tok, pos, pts = train.batch(idx)
        labels = train.labels(idx)
        loss = tok.new_zeros(())
        for layer in tuned(tok, pos, pts):
            terms = object_loss(layer.rotmat, layer.trans, labels, loss_cfg)
            loss = loss + sum(terms.values(), tok.new_zeros(()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss_v = float(loss.detach())
        if on_step is not None:
            on_step(step, loss_v)
        if settings.eval_every > 0 and step % settings.eval_every == 0 and step < settings.steps:
            check(step, loss_v)
    check(settings.steps, loss_v)
    if best is not None:
        tuned.load_state_dict(best[1])
    return tuned.eval(), curve
