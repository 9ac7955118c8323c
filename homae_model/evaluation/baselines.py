"""Trivial baselines measured beside the model, on the same frames: what a number is worth.

Two constant predictions, both placed at the TRUE hand root (camera frame of the full image,
metres, as the metrics use them), so they measure what knowing nothing but the root gives:

- constant hand: the mean root-relative 21 joints, at the true root (MJE, PA-MJE, ST-MJE, PCK);
- mean object pose: one constant object rotation, the chordal L2 mean of the GT rotations
  (their mean matrix projected onto SO(3)), and one constant translation relative to the true
  hand root (the mean of ``t_obj - root``), at the true root (OCE, MCE, ADD-S, OME and the
  HOISDF-convention ADD-S / MCE).

The means come from the evaluated frames themselves by default, or from another labelled split
(`collect_frames` over it, e.g. a validation split). The values go through the same
`MetricAccumulator` as the model's, so every convention is the model rows'.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from homae_model.data.sources import OpenedSource, open_source
from homae_model.evaluation.accumulator import METRIC_NAMES, EvaluationResult, MetricAccumulator
from homae_model.hand.constants import ROOT_JOINT
from homae_model.metrics.baselines import (
    BaselineMeans,
    GroundTruthFrame,
    baseline_means,
    chordal_mean_rotation,
    procrustes_mean_hand,
)
from homae_model.metrics.hand import pa_mje

__all__ = [
    "ARTICULATION_EXTRA",
    "BaselineMeans",
    "GroundTruthFrame",
    "baseline_means",
    "baseline_section",
    "chordal_mean_rotation",
    "collect_frames",
    "frame_from_raw",
    "measure",
    "measure_baselines",
    "procrustes_mean_hand",
]

HAND_METRICS: tuple[str, ...] = ("MJE", "PA-MJE", "ST-MJE", "J-AUC", "PA-J-AUC")
"""Metrics of the constant-hand baseline (the mesh metrics need vertices: not measured)."""
OBJECT_METRICS: tuple[str, ...] = ("OCE", "MCE", "ADD-S", "OME")
"""Metrics of the mean-object-pose baseline (plus the HOISDF-convention extras)."""
DESCRIPTION = (
    "constant hand = the mean root-relative 21 joints placed at the true hand root; mean "
    "articulation = the generalised-Procrustes mean hand (its PA-MJE is what a constant hand "
    "shape scores; the camera-frame mean above is a shrunken average of many orientations); "
    "mean object "
    "pose = the chordal mean of the GT object rotations (projected to SO(3)) and the mean "
    "object translation relative to the hand root, placed at the true root"
)

ARTICULATION_EXTRA = "PA-MJE (mean articulation)"
"""`extras` key: PA-MJE of the Procrustes-mean hand (`procrustes_mean_hand`)."""


def measure(
    means: BaselineMeans,
    frames: Iterable[GroundTruthFrame],
    object_model: Callable[[str], tuple[np.ndarray, np.ndarray | None]],
    allow_reflection: bool = True,
) -> EvaluationResult:
    """The baselines' metrics on some frames (the model's accumulator and conventions).

    Args:
        means: the constant predictions.
        frames: the frames to score.
        object_model: object name -> (model points (N, 3), corners (8, 3) or None), metres.
        allow_reflection: Procrustes variant of PA-MJE (as the model's rows).

    Returns:
        The `EvaluationResult` (hand metrics from the constant hand, object metrics from the
        mean object pose; mesh metrics None).

    Raises:
        ValueError: no frames.
    """
    acc = MetricAccumulator(allow_reflection=allow_reflection)
    frames = list(frames)
    for frame in frames:
        gt = np.asarray(frame.joints, np.float64)
        root = gt[ROOT_JOINT]
        points, corners = object_model(frame.obj_name)
        acc.add(
            means.root_relative_joints + root,
            gt,
            pred_obj_rot=means.obj_rot,
            pred_obj_trans=root + means.obj_offset,
            gt_obj_rot=np.asarray(frame.obj_rot, np.float64),
            gt_obj_trans=np.asarray(frame.obj_trans, np.float64),
            obj_points=points,
            obj_corners=corners,
            obj_name=frame.obj_name,
            occluded=frame.occluded,
        )
    if len(acc) == 0:
        raise ValueError("baselines: no frames to measure")
    result = acc.compute()
    if means.articulation is None:
        return result
    gts = np.stack([np.asarray(f.joints, np.float64) for f in frames])
    const = np.broadcast_to(means.articulation, gts.shape) + gts[:, ROOT_JOINT : ROOT_JOINT + 1]
    result.extras[ARTICULATION_EXTRA] = pa_mje(const, gts, allow_reflection)
    return result


def baseline_section(
    means: BaselineMeans,
    results: Mapping[str, EvaluationResult],
    source: Mapping[str, Any],
) -> dict[str, Any]:
    """``report["baselines"]``: per protocol, the baseline rows shown beside the model's.

    Args:
        means: the constant predictions used.
        results: ``{protocol: EvaluationResult}`` from `measure` on that protocol's frames.
        source: where the means came from (``{"frames": "evaluated"}`` or data / split).

    Returns:
        ``{"description", "source", "means", "metrics": {protocol: {name: value}},
        "extras": {protocol: {...}}, "occluded": {protocol: {...}}, "counts": {protocol: n}}``;
        only the baselines' own metrics are set (others None).
    """
    kept = set(HAND_METRICS) | set(OBJECT_METRICS)

    def only(values: Mapping[str, float | None]) -> dict[str, float | None]:
        return {n: (values.get(n) if n in kept else None) for n in METRIC_NAMES}

    return {
        "description": DESCRIPTION,
        "source": dict(source),
        "means": means.to_dict(),
        "metrics": {p: only(r.metrics) for p, r in results.items()},
        "occluded": {p: only(r.occluded) for p, r in results.items()},
        "extras": {p: dict(r.extras) for p, r in results.items()},
        "counts": {p: r.counts.get("all", 0) for p, r in results.items()},
    }


def frame_from_raw(raw: Any, occluded: bool = False) -> GroundTruthFrame:
    """The baseline labels of a labelled `RawSample` (camera frame, project order)."""
    from scipy.spatial.transform import Rotation

    return GroundTruthFrame(
        joints=np.asarray(raw.hand_joints, np.float64),
        obj_rot=Rotation.from_rotvec(np.asarray(raw.obj_rot, np.float64)).as_matrix(),
        obj_trans=np.asarray(raw.obj_trans, np.float64),
        obj_name=str(raw.obj_name),
        occluded=occluded,
    )


def collect_frames(opened: Any, limit: int | None = None) -> list[GroundTruthFrame]:
    """The right-hand frames of a labelled split (labels only: images are not read).

    Args:
        opened: an `data.sources.OpenedSource`.
        limit: read only the first N samples.

    Raises:
        ValueError: the split has no labels, or no right-hand frame.
    """
    if not opened.has_labels:
        raise ValueError(
            f"baseline data {opened.root} (split {opened.split}) has no labels; "
            "give a labelled split (e.g. a validation or training split)"
        )
    src = opened.source
    n = len(src) if limit is None else min(len(src), int(limit))
    load = getattr(src, "load", None)
    frames = []
    for i in range(n):
        raw = load(i, image=False) if callable(load) else src[i]
        if raw.side == "right":
            frames.append(frame_from_raw(raw))
    if not frames:
        raise ValueError(f"baseline data {opened.root}: no right-hand frame with labels")
    return frames


def measure_baselines(
    gt_frames: list[Any],
    frame_protocols: list[set[str]],
    protocols: Sequence[str],
    opened: OpenedSource,
    model_points: dict[str, np.ndarray],
    allow_reflection: bool,
    baseline_data: str | Path | None,
    baseline_split: str | None,
    mano_dir: Path,
    ycb_dir: str | Path | None,
) -> dict[str, Any]:
    """``report["baselines"]`` of an evaluation: the means measured on each protocol's frames.

    Args:
        gt_frames: the labels of the frames the model was scored on.
        frame_protocols: for each of `gt_frames`, the protocols it was scored under.
        protocols: the protocols evaluated.
        opened: the evaluated source (its object library).
        model_points: object name -> (N, 3) model points, metres (filled as needed).
        allow_reflection: Procrustes variant of PA-MJE (as the model's rows).
        baseline_data: take the means from this labelled folder instead of `gt_frames`.
        baseline_split: split of `baseline_data`.
        mano_dir: folder of the MANO files (DexYCB labels).
        ycb_dir: YCB models folder.

    Returns:
        `baseline_section` of the measured baselines.
    """
    if baseline_data is None:
        means = baseline_means(gt_frames)
        source: dict[str, Any] = {"frames": "the evaluated frames", "count": means.frames}
    else:
        other = open_source(baseline_data, baseline_split, mano_dir=mano_dir, ycb_dir=ycb_dir)
        means = baseline_means(collect_frames(other))
        source = {
            "data": str(baseline_data),
            "split": other.split,
            "layout": other.kind,
            "count": means.frames,
        }

    def object_model(name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in model_points:
            model_points[name] = np.asarray(opened.objects.get(name).vertices, np.float64)
        return model_points[name], np.asarray(opened.objects.get(name).corners, np.float64)

    results = {}
    for p in protocols:
        frames = [f for f, used in zip(gt_frames, frame_protocols, strict=True) if p in used]
        if frames:
            results[p] = measure(means, frames, object_model, allow_reflection)
    return baseline_section(means, results, source)
