"""The evaluation's frame loop: every frame under every protocol through the Predictor.

Each labelled frame is scored into one `MetricAccumulator` per protocol (and its labels kept for
the baselines); on a submission split (no labels) the estimates are kept for `pred.json`.
The GT-free protocol asks the detector stage for the pair matching the labelled hand; what a
miss does (left out, or answered from the split's boxes) is described in `evaluate`.

Left hands are estimated through the mirror (`estimation.mirror.predict_sided`). The side
is the label's under the gt-anchored protocol and the detector's under the GT-free one (a
single-class detector cannot tell: taken as right, as the node does); each frame is also
scored into its labelled side's accumulator (`Tally.acc_side`), and under GT-free the
detector's side is checked against the label (`Tally.side_check`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from homae_model.data.sources import OpenedSource
from homae_model.estimation.mirror import predict_sided, resolve_side
from homae_model.evaluation.submission import FALLBACK_SPLIT_BOXES
from homae_model.geometry.mirror import symmetry_reflection

OCCLUDED_VISIBLE_FRACTION = 0.5
"""A sample is in the occluded subset when its hand or object is less visible than this."""
PER_SAMPLE_METRICS = ("MJE", "PA-MJE", "OCE", "ADD-S")
"""Metrics stored per sample in `report["per_sample"][PROTOCOL]` (mm; null where undefined)."""
MAX_FRAME_WARNINGS = 20
"""Frames named in warnings per run; the rest are summed up (all are in report.json)."""


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


class FrameWarnings:
    """Warns about single frames (misses, fallbacks), the first MAX_FRAME_WARNINGS by name."""

    def __init__(self, limit: int = MAX_FRAME_WARNINGS) -> None:
        self.limit = limit
        self.count = 0

    def warn(self, message: str) -> None:
        """Warn with `message` (a UserWarning) while under the limit; count it either way."""
        self.count += 1
        if self.count <= self.limit:
            warnings.warn(message, UserWarning, stacklevel=3)

    def close(self) -> None:
        """One warning that sums up the frames past the limit (if any)."""
        if self.count > self.limit:
            warnings.warn(
                f"{self.count - self.limit} more frame(s) missed or answered by a fallback; "
                "report.json lists them all (meta.gt_free.misses, meta.gt_free.fallbacks)",
                UserWarning,
                stacklevel=3,
            )


def _usable_box(box: np.ndarray) -> bool:
    b = np.asarray(box, np.float64).reshape(-1)
    return b.shape == (4,) and bool(np.all(np.isfinite(b))) and b[2] > b[0] and b[3] > b[1]


class GroundTruthHand:
    """GT MANO vertices of a raw sample (camera frame) through ManoLayer."""

    def __init__(self, mano_path: Path, fingertips: str | None = None) -> None:
        self.mano_path = mano_path
        self.fingertips = fingertips
        self._layers: dict[str, Any] = {}

    def vertices(self, raw: Any) -> np.ndarray:
        """(778, 3) GT hand mesh of a labelled `RawSample`, camera frame, metres."""
        import torch

        from homae_model.hand.mano import ManoLayer

        if raw.side not in self._layers:
            self._layers[raw.side] = ManoLayer(
                self.mano_path, side=raw.side, fingertips=self.fingertips
            ).eval()
        f32 = {"dtype": torch.float32}
        with torch.no_grad():
            out = self._layers[raw.side](
                torch.as_tensor(np.asarray(raw.mano_pose), **f32)[None],
                torch.as_tensor(np.asarray(raw.mano_shape), **f32)[None],
                torch.as_tensor(np.asarray(raw.mano_transl), **f32)[None],
            )
        return out.vertices[0].double().numpy()


def _rotation_matrix(rotvec: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(np.asarray(rotvec, dtype=np.float64)).as_matrix()


@dataclass
class EvaluationRun:
    """What one evaluation works on: the weights, the predictor, the data and where to write.

    Attributes:
        ckpt: the resolved checkpoint folder or weights file.
        weights_file: the weights file hashed into the report.
        data: the data folder.
        predictor: the `inference.Predictor`.
        opened: the opened data source.
        n: frames evaluated (the first n).
        total: frames in the split.
        out: report folder.
        tips: fingertip convention the predictor uses.
        mano_dir: folder of the MANO files.
    """

    ckpt: Path
    weights_file: Path
    data: Path
    predictor: Any
    opened: OpenedSource
    n: int
    total: int
    out: Path
    tips: str
    mano_dir: Path

    @property
    def submission(self) -> bool:
        """A split without labels: predictions go to HO3D's pred.json, not into metrics."""
        return not self.opened.has_labels


@dataclass
class Tally:
    """What the frame loop collects, per protocol where keyed by protocol.

    Attributes:
        acc: metric accumulators (labelled splits).
        entries: (joints, vertices) per frame, None where not estimated (submission splits).
        counts: samples / evaluated / left_hand_skipped / detector_misses.
        seconds: predictor time.
        per_sample: `PER_SAMPLE_METRICS` rows.
        model_points: object name -> model points (m), loaded once.
        frame_ids: readable id of each frame.
        misses: frames where the detector found no matching pair.
        fallbacks: submission frames answered by a fallback.
        gt_frames: the baselines' labels of the frames scored.
        frame_protocols: the protocols each of `gt_frames` was scored under.
        warner: the capped per-frame warnings.
        acc_side: per protocol, per labelled side ("right"/"left"), the metric accumulators.
        side_check: GT-free frames whose detected hand has a side, per labelled side:
            {"right": [checked, correct], "left": [...]}.
    """

    acc: dict[str, Any]
    entries: dict[str, list[tuple[np.ndarray, np.ndarray] | None]]
    counts: dict[str, int]
    seconds: dict[str, float]
    per_sample: dict[str, list[dict[str, Any]]]
    model_points: dict[str, np.ndarray]
    frame_ids: list[str]
    misses: list[dict[str, Any]]
    fallbacks: list[dict[str, Any]]
    gt_frames: list[Any]
    frame_protocols: list[set[str]]
    warner: FrameWarnings
    acc_side: dict[str, dict[str, Any]] = field(default_factory=dict)
    reflections: dict[str, np.ndarray] = field(default_factory=dict)
    side_check: dict[str, list[int]] = field(
        default_factory=lambda: {"right": [0, 0], "left": [0, 0]}
    )

    @classmethod
    def empty(cls, run: EvaluationRun, protocols: Sequence[str], allow_reflection: bool) -> Tally:
        """Nothing collected yet: one accumulator and one empty entry list per protocol."""
        from homae_model.evaluation.accumulator import MetricAccumulator

        return cls(
            acc={
                p: MetricAccumulator(allow_reflection=allow_reflection, mce_mode="object_box")
                for p in protocols
            },
            entries={p: [None] * run.n for p in protocols},
            counts={
                "samples": run.n,
                "evaluated": 0,
                "right_hands": 0,
                "left_hands": 0,
                "detector_misses": 0,
            },
            acc_side={
                p: {
                    s: MetricAccumulator(allow_reflection=allow_reflection, mce_mode="object_box")
                    for s in ("right", "left")
                }
                for p in protocols
            },
            seconds=dict.fromkeys(protocols, 0.0),
            per_sample={p: [] for p in protocols},
            model_points={},
            frame_ids=[run.opened.frame_id(i) for i in range(run.n)],
            misses=[],
            fallbacks=[],
            gt_frames=[],
            frame_protocols=[],
            warner=FrameWarnings(),
        )

    def reflection(self, opened: OpenedSource, name: str) -> np.ndarray:
        """(3,3) symmetry reflection of object `name` (for left-hand estimates), cached."""
        if name not in self.reflections:
            self.reflections[name] = symmetry_reflection(self.object_points(opened, name))[0]
        return self.reflections[name]

    def object_points(self, opened: OpenedSource, name: str) -> np.ndarray:
        """(N, 3) model points of object `name`, metres (loaded once)."""
        if name not in self.model_points:
            self.model_points[name] = np.asarray(opened.objects.get(name).vertices, np.float64)
        return self.model_points[name]


@dataclass
class _Frame:
    """One frame's labels as the protocols use them (camera frame, metres, pixels)."""

    index: int
    raw: Any
    hand_box: np.ndarray
    obj_box: np.ndarray
    root: np.ndarray
    gt_verts: np.ndarray | None
    occluded: bool


def estimate_frames(
    run: EvaluationRun,
    protocols: Sequence[str],
    detector: Any,
    match: Callable[[Any, np.ndarray, np.ndarray], Any],
    allow_reflection: bool,
    progress: bool,
) -> Tally:
    """Run the predictor on every frame under every protocol; score or keep the estimates.

    Args:
        run: what is evaluated.
        protocols: "gt-anchored" and/or "gt-free".
        detector: the GT-free detector stage (`evaluate._Detector`), or None.
        match: (detector stage, image (H, W, 3), labelled hand box (4,) px) -> the matching
            detected (hand box, object box), or None for a miss.
        allow_reflection: Procrustes variant of the PA- metrics.
        progress: show a tqdm bar.

    Returns:
        The collected estimates, metrics and counts.
    """
    from tqdm import tqdm

    from homae_model.evaluation.baselines import frame_from_raw

    tally = Tally.empty(run, protocols, allow_reflection)
    opened = run.opened
    gt_hand = GroundTruthHand(run.predictor.cfg.mano.resolved_path(), opened.fingertips)
    for index in tqdm(range(run.n), desc="eval", unit="img", disable=not progress):
        raw = opened.source[index]
        raw.validate()
        if opened.has_labels:
            tally.counts[f"{raw.side}_hands"] += 1
        occluded = opened.has_labels and (
            min(raw.hand_visible, raw.obj_visible) < OCCLUDED_VISIBLE_FRACTION
        )
        frame = _Frame(
            index,
            raw,
            np.asarray(raw.hand_box, np.float64),
            np.asarray(raw.obj_box, np.float64),
            np.asarray(raw.hand_joints[0] if opened.has_labels else raw.root_joint, np.float64),
            gt_hand.vertices(raw) if opened.has_labels else None,
            bool(occluded),
        )
        tally.counts["evaluated"] += 1
        used_by = {p for p in protocols if _estimate_frame(run, tally, detector, match, frame, p)}
        if opened.has_labels and used_by:
            tally.gt_frames.append(frame_from_raw(raw, frame.occluded))
            tally.frame_protocols.append(used_by)
    return tally


def _estimate_frame(
    run: EvaluationRun,
    tally: Tally,
    detector: Any,
    match: Callable[[Any, np.ndarray, np.ndarray], Any],
    frame: _Frame,
    protocol: str,
) -> bool:
    """One frame under one protocol; True when it was scored (labelled splits)."""
    index, raw = frame.index, frame.raw
    boxes, anchors = (frame.hand_box, frame.obj_box), [frame.root]
    side: str | None = raw.side if run.opened.has_labels else None
    row: dict[str, Any] = {"index": index}
    fallback = None
    if protocol == "gt-free":
        anchors = None
        side = None  # GT-free: the detector's side, or unknown (-> right)
        if detector is not None and detector.detector is not None:
            found = match(detector, raw.image, frame.hand_box)
            if found is not None:
                boxes, side = (found[0], found[1]), (found[2] if len(found) > 2 else None)
                if side is not None and run.opened.has_labels:
                    check = tally.side_check[raw.side]
                    check[0] += 1
                    check[1] += int(side == raw.side)
            else:
                tally.counts["detector_misses"] += 1
                tally.misses.append({"index": index, "frame": tally.frame_ids[index]})
                if not run.submission:
                    tally.warner.warn(
                        f"gt-free: detector missed frame {tally.frame_ids[index]} (index "
                        f"{index}); left out of the metrics"
                    )
                    row.update(detected=False, frame=tally.frame_ids[index])
                    tally.per_sample[protocol].append(row)
                    return False
                fallback = FALLBACK_SPLIT_BOXES
    if run.submission:
        if not (_usable_box(boxes[0]) and _usable_box(boxes[1])):
            return False  # answered with a neighbouring estimate after the loop
        if fallback is not None:
            name = tally.frame_ids[index]
            tally.fallbacks.append(
                {"index": index, "frame": name, "protocol": protocol, "used": fallback}
            )
            tally.warner.warn(
                f"{protocol}: detector missed frame {name} (index {index}); "
                "answered from the split's own hand and object boxes"
            )
    t0 = time.perf_counter()
    refl = None
    if run.opened.has_labels and raw.obj_name in run.opened.objects.names:
        refl = tally.reflection(run.opened, raw.obj_name)
    pred = predict_sided(run.predictor, raw.image, raw.K, [boxes], [side], anchors, [refl])[0]
    row["side"] = resolve_side(side)
    tally.seconds[protocol] += time.perf_counter() - t0
    joints = np.asarray(pred.joints, np.float64)
    verts = np.asarray(pred.vertices, np.float64)
    if run.submission:
        tally.entries[protocol][index] = (joints, verts)
        return False
    name = raw.obj_name
    args = (
        joints,
        np.asarray(raw.hand_joints, np.float64),
        verts,
        frame.gt_verts,
    )
    kwargs = dict(
        pred_obj_rot=np.asarray(pred.obj_rot_matrix, np.float64),
        pred_obj_trans=np.asarray(pred.obj_trans, np.float64),
        gt_obj_rot=_rotation_matrix(raw.obj_rot),
        gt_obj_trans=np.asarray(raw.obj_trans, np.float64),
        obj_points=tally.object_points(run.opened, name),
        obj_corners=np.asarray(run.opened.objects.get(name).corners, np.float64),
        obj_name=name,
        occluded=frame.occluded,
    )
    values = tally.acc[protocol].add(*args, **kwargs)
    tally.acc_side[protocol][raw.side].add(*args, **kwargs)
    row.update({k: _finite(values[k]) for k in PER_SAMPLE_METRICS})
    tally.per_sample[protocol].append(row)
    return True
