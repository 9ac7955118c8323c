"""Evaluate a checkpoint on a data set under the GT-anchored and/or GT-free protocol.

For every raw sample (full image + K) the Predictor runs on the FULL image with the pair's boxes,
exactly as a deployed node would, and its camera-frame outputs are compared with the labels:

- ``gt-anchored`` (the papers' protocol, HOISDF): GT hand and object boxes, and the voxel grid
  centred on the GT hand root;
- ``gt-free`` (what a robot sees): boxes from the detector stage (`homae_model.detector`) when
  its weights are available, paired and matched to the labelled pair by hand-box IoU, and the
  model's own anchor estimate. Without detector weights the GT boxes are used with the model's
  anchor, and the report's meta says that the detector stage was not available.

A detector miss (no pair matching the labelled hand box) on a labelled split is counted, warned
about with the frame id and left out of the metrics (the GT-free numbers measure the detector
too). On a submission split (HO3D evaluation: no labels) every frame must be answered, in the
split's order, or the server rejects the file: a miss falls back to the split's own boxes
(HO3D ships ``handBoundingBox``; the object box is that of the shipped object corners) with the
model's own anchor, and where those boxes are unusable to the previous frame's estimate (the
next one for leading frames). Every fallback is warned about with the frame id and listed in
``report["meta"]["gt_free"]["fallbacks"]``. ``limit`` on a
submission split writes ``pred_partial_<N>of<TOTAL>.json``, never ``pred.json``.

The predicted joints' fingertips follow the data's label convention
(`hand.constants.FINGERTIP_CONVENTION_BY_LAYOUT`: HO3D's tip vertices on HO3D, manopth's on
DexYCB and synthetic sets).

Metrics come from `homae_model.evaluation.accumulator.MetricAccumulator`; the report (report.json,
report.md, pck_curves.png) from `write_report`, with the checkpoint's and the data's sha256, the
resolved config, the written files and two baselines measured on the same frames
(`homae_model.evaluation.baselines`) in it. HO3D's evaluation split has no labels: the
predictions are written as the official `pred.json` instead.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from homae_model.bundled import demo_detector
from homae_model.data.sources import OpenedSource, dataset_fingerprint, open_source
from homae_model.detector.pairing import box_iou
from homae_model.estimation.settings import DEFAULT_SETTINGS
from homae_model.nn.encoder import encoder_init_note
from homae_model.training.state import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    MODEL_FILE,
    file_sha256,
    resolve_checkpoint,
)

PROTOCOL_CHOICES: dict[str, tuple[str, ...]] = {
    "gt-anchored": ("gt-anchored",),
    "gt-free": ("gt-free",),
    "both": ("gt-anchored", "gt-free"),
}
"""`--protocol` values and the protocols they run."""
OCCLUDED_VISIBLE_FRACTION = 0.5
"""A sample is in the occluded subset when its hand or object is less visible than this."""
DETECTOR_MIN_IOU = 0.1
"""A detected pair matches the labelled pair when the hand boxes overlap at least this much."""
DETECTOR_MIN_SCORE = DEFAULT_SETTINGS.score_threshold
"""Detection score a pair needs in the GT-free protocol (the node's default threshold)."""
MIN_HAND_SCORE = DEFAULT_SETTINGS.min_hand_score
"""Hand score a pair needs in the GT-free protocol (the node's default `min_hand_score`)."""
DEFAULT_DETECTOR_WEIGHTS = demo_detector()
"""Detector weights tried for the GT-free protocol when none are given (relative to the cwd)."""
PER_SAMPLE_METRICS = ("MJE", "PA-MJE", "OCE", "ADD-S")
"""Metrics stored per sample in `report["per_sample"][PROTOCOL]` (mm; null where undefined)."""
FALLBACK_SPLIT_BOXES = "split boxes"
FALLBACK_PREVIOUS = "previous estimate"
FALLBACK_NEXT = "next estimate"
"""What a submission frame without a detected pair was answered with (in this order)."""
MAX_FRAME_WARNINGS = 20
"""Frames named in warnings per run; the rest are summed up (all are in report.json)."""
DETECTOR_METADATA_KEY = "homae_detector"
"""safetensors metadata key of the box detector's weights (not a HOMAE checkpoint)."""


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


class _FrameWarnings:
    """Warns about single frames (misses, fallbacks), the first MAX_FRAME_WARNINGS by name."""

    def __init__(self, limit: int = MAX_FRAME_WARNINGS) -> None:
        self.limit = limit
        self.count = 0

    def warn(self, message: str) -> None:
        self.count += 1
        if self.count <= self.limit:
            warnings.warn(message, UserWarning, stacklevel=3)

    def close(self) -> None:
        if self.count > self.limit:
            warnings.warn(
                f"{self.count - self.limit} more frame(s) missed or answered by a fallback; "
                "report.json lists them all (meta.gt_free.misses, meta.gt_free.fallbacks)",
                UserWarning,
                stacklevel=3,
            )


def _is_detector_file(path: Path) -> bool:
    try:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            return DETECTOR_METADATA_KEY in (f.metadata() or {})
    except Exception:  # unreadable: not ours to judge here; loading reports it
        return False


def resolve_weights(path: str | Path, flag: str = "--checkpoint") -> Path:
    """`training.state.resolve_checkpoint`, plus weights folders such as ``weights/demo``.

    A weights folder holds one HOMAE ``*.safetensors`` file (any name; the box detector's
    weights beside it are recognised by their metadata and skipped) and ``config.yaml``; the
    weights file is returned. Run folders (``checkpoints/``) and checkpoint folders
    (``model.safetensors``) resolve as before.

    Args:
        path: run folder, checkpoint folder, weights folder or weights file.
        flag: the command-line option the path came from, for the error messages.

    Returns:
        A checkpoint folder or a weights file with config.yaml beside it.

    Raises:
        FileNotFoundError: nothing usable there (the message says what each kind needs).
    """
    path = Path(path)
    if not path.is_dir() or (path / MODEL_FILE).is_file() or (path / CHECKPOINTS_DIR).is_dir():
        return resolve_checkpoint(path, flag)
    weights = [p for p in sorted(path.glob("*.safetensors")) if not _is_detector_file(p)]
    if not weights:
        raise FileNotFoundError(
            f"{flag} {path}: not a run folder (no {CHECKPOINTS_DIR}/), a checkpoint folder (no "
            f"{MODEL_FILE}) or a weights folder (no *.safetensors with {CONFIG_FILE}); pass the "
            "run folder, the checkpoint folder or the .safetensors weights file"
        )
    if len(weights) > 1:
        names = ", ".join(p.name for p in weights)
        raise FileNotFoundError(
            f"{flag} {path}: several weights files ({names}); pass the one to evaluate"
        )
    if not (path / CONFIG_FILE).is_file():
        raise FileNotFoundError(
            f"{flag} {path}: weights {weights[0].name} without {CONFIG_FILE} beside them"
        )
    return weights[0]


@dataclass
class _Detector:
    """The detector stage used for GT-free boxes (or None fields when unavailable)."""

    detector: Any
    pair_fn: Any
    weights: Path | None
    note: str


def _usable_box(box: np.ndarray) -> bool:
    b = np.asarray(box, np.float64).reshape(-1)
    return b.shape == (4,) and bool(np.all(np.isfinite(b))) and b[2] > b[0] and b[3] > b[1]


def _load_detector(weights: str | Path | None, device: str) -> _Detector:
    try:
        from homae_model.detector.infer import Detector
        from homae_model.detector.pairing import OBJECT_HINT_MIN_SCORE, pair_detections
    except ImportError as exc:
        return _Detector(None, None, None, f"detector stage not available ({exc}): GT boxes used")
    path = Path(weights) if weights is not None else DEFAULT_DETECTOR_WEIGHTS
    if not path.is_file():
        if weights is not None:
            raise FileNotFoundError(f"detector weights not found: {path}")
        return _Detector(
            None, None, None, f"detector stage not available (no weights at {path}): GT boxes used"
        )
    detector = Detector(path, device=device, score_threshold=OBJECT_HINT_MIN_SCORE)
    return _Detector(detector, pair_detections, path, f"detector {path}")


def _detected_pair(det: _Detector, image: np.ndarray, gt_hand_box: np.ndarray) -> Any:
    """(hand_box, obj_box) of the detected pair matching the labelled hand, or None (miss)."""
    # The node's rule: pairs from detections >= DETECTOR_MIN_SCORE, in-hand fallback objects.
    pairs = det.pair_fn(
        det.detector.detect(image), 8, min_score=DETECTOR_MIN_SCORE, object_fallback=True
    )
    best, best_iou = None, DETECTOR_MIN_IOU
    for pair in pairs:
        if pair.hand.score < MIN_HAND_SCORE:
            continue
        iou = float(box_iou(pair.hand.box, gt_hand_box)[0, 0])
        if iou >= best_iou:
            best, best_iou = pair, iou
    if best is None:
        return None
    return np.asarray(best.hand.box, np.float64), np.asarray(best.obj.box, np.float64)


class _GroundTruthHand:
    """GT MANO vertices of a raw sample (camera frame) through ManoLayer."""

    def __init__(self, mano_path: Path, fingertips: str | None = None) -> None:
        self.mano_path = mano_path
        self.fingertips = fingertips
        self._layers: dict[str, Any] = {}

    def vertices(self, raw: Any) -> np.ndarray:
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


def submission_name(protocol: str, first: bool, frames: int, total: int) -> str:
    """File name of a protocol's HO3D submission.

    Args:
        protocol: the protocol.
        first: whether it is the first protocol evaluated (its file is ``pred.json``).
        frames: frames answered.
        total: frames in the split.

    Returns:
        ``pred.json`` / ``pred_<protocol>.json`` when every frame is answered, else
        ``pred_partial_<N>of<TOTAL>.json`` / ``pred_<protocol>_partial_<N>of<TOTAL>.json``
        (a server rejects a partial file; the name says so).
    """
    stem = "pred" if first else f"pred_{protocol}"
    if frames < total:
        stem += f"_partial_{frames}of{total}"
    return stem + ".json"


def _fill_missing(
    entries: list[Any],
    frame_ids: Sequence[str],
    protocol: str,
    warner: _FrameWarnings | None = None,
) -> list[dict[str, Any]]:
    """Answer the frames without an estimate with the previous one (leading ones: the next)."""
    filled: list[dict[str, Any]] = []
    known = [i for i, e in enumerate(entries) if e is not None]
    if not known:
        raise ValueError(f"protocol {protocol}: no frame could be estimated; nothing to submit")
    last = None
    for i, entry in enumerate(entries):
        if entry is not None:
            last = entry
            continue
        if last is not None:
            entries[i], used = last, FALLBACK_PREVIOUS
        else:
            entries[i], used = entries[known[0]], FALLBACK_NEXT
        filled.append({"index": i, "frame": frame_ids[i], "protocol": protocol, "used": used})
        (warner or _FrameWarnings()).warn(
            f"{protocol}: frame {frame_ids[i]} (index {i}) answered with the {used}"
        )
    return filled


def _baselines(
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
    from homae_model.evaluation.baselines import (
        baseline_means,
        baseline_section,
        collect_frames,
        measure,
    )

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


def evaluate(
    checkpoint: str | Path,
    data: str | Path,
    protocols: Sequence[str] | str = "both",
    *,
    split: str | None = None,
    out_dir: str | Path | None = None,
    limit: int | None = None,
    device: str = "cpu",
    detector_weights: str | Path | None = None,
    ycb_dir: str | Path | None = None,
    allow_reflection: bool = True,
    progress: bool = True,
    baseline_data: str | Path | None = None,
    baseline_split: str | None = None,
) -> dict[str, Any]:
    """Evaluate a checkpoint and write the report.

    Args:
        checkpoint: run folder, checkpoint folder, weights folder (e.g. ``weights/demo``) or
            weights file (see `resolve_weights`).
        data: data folder (synthetic / DexYCB / HO3D; auto-detected).
        protocols: "gt-anchored", "gt-free", "both", or a list of protocol names.
        split: data split (default: synthetic whole folder, DexYCB test, HO3D evaluation).
        out_dir: report folder (default: <checkpoint folder>/eval-<split>).
        limit: evaluate only the first N samples (a submission split then writes
            ``pred_partial_<N>of<TOTAL>.json``, not ``pred.json``).
        device: torch device for the Predictor.
        detector_weights: detector weights for the GT-free protocol (default: the demo file
            if present).
        ycb_dir: YCB models folder for real data sets.
        allow_reflection: Procrustes variant of the PA- metrics (True: the official toolkits).
        progress: show a tqdm bar.
        baseline_data: take the baselines' means from this labelled data folder instead of the
            evaluated frames.
        baseline_split: split of `baseline_data` (default: that layout's default).

    Returns:
        The report dict exactly as written to report.json (metrics at
        `report["metrics"][PROTOCOL][NAME]`, baselines at `report["baselines"]`, the files
        written at `report["files"]`).

    Raises:
        FileNotFoundError: missing checkpoint / data.
        ValueError: unknown protocol, empty data set, unlabelled baseline data.
    """
    from tqdm import tqdm

    from homae_model.config import config_to_dict
    from homae_model.evaluation.accumulator import METRIC_NAMES, MetricAccumulator
    from homae_model.evaluation.baselines import frame_from_raw
    from homae_model.evaluation.report import write_report
    from homae_model.evaluation.submission import write_ho3d_submission
    from homae_model.inference import Predictor

    if isinstance(protocols, str):
        if protocols not in PROTOCOL_CHOICES:
            raise ValueError(f"protocol {protocols!r}; valid: {list(PROTOCOL_CHOICES)}")
        protocols = PROTOCOL_CHOICES[protocols]
    protocols = tuple(protocols)
    bad = [p for p in protocols if p not in PROTOCOL_CHOICES["both"]]
    if bad or not protocols:
        raise ValueError(f"protocols {list(protocols)}; valid: {list(PROTOCOL_CHOICES['both'])}")

    ckpt = resolve_weights(checkpoint)
    data = Path(data)
    if not data.exists():
        raise FileNotFoundError(f"evaluation data folder not found: {data}")
    if baseline_data is not None and not Path(baseline_data).exists():
        raise FileNotFoundError(f"baseline data folder not found: {baseline_data}")
    predictor = Predictor.from_checkpoint(ckpt, device)
    cfg = predictor.cfg
    mano_dir = cfg.mano.resolved_path().parent
    opened: OpenedSource = open_source(data, split, mano_dir=mano_dir, ycb_dir=ycb_dir)
    total = len(opened.source)
    n = total if limit is None else min(total, int(limit))
    if n == 0:
        raise ValueError(f"evaluation data {data} (split {opened.split}) has no samples")
    ckpt_dir = ckpt.parent if ckpt.is_file() else ckpt
    weights_file = ckpt if ckpt.is_file() else ckpt / MODEL_FILE
    out = Path(out_dir) if out_dir is not None else ckpt_dir / f"eval-{opened.split or 'all'}"
    submission = not opened.has_labels
    tips = predictor.set_fingertips(opened.fingertips)

    detector = _load_detector(detector_weights, device) if "gt-free" in protocols else None
    gt_hand = _GroundTruthHand(cfg.mano.resolved_path(), opened.fingertips)
    acc = {
        p: MetricAccumulator(allow_reflection=allow_reflection, mce_mode="object_box")
        for p in protocols
    }
    entries: dict[str, list[tuple[np.ndarray, np.ndarray] | None]] = {
        p: [None] * n for p in protocols
    }
    counts = {"samples": n, "evaluated": 0, "left_hand_skipped": 0, "detector_misses": 0}
    seconds: dict[str, float] = dict.fromkeys(protocols, 0.0)
    per_sample: dict[str, list[dict[str, Any]]] = {p: [] for p in protocols}
    model_points: dict[str, np.ndarray] = {}
    frame_ids = [opened.frame_id(i) for i in range(n)]
    misses: list[dict[str, Any]] = []
    fallbacks: list[dict[str, Any]] = []
    gt_frames: list[Any] = []
    frame_protocols: list[set[str]] = []
    warner = _FrameWarnings()

    for index in tqdm(range(n), desc="eval", unit="img", disable=not progress):
        raw = opened.source[index]
        raw.validate()
        if opened.has_labels and raw.side != "right":
            counts["left_hand_skipped"] += 1
            continue
        hand_box = np.asarray(raw.hand_box, np.float64)
        obj_box = np.asarray(raw.obj_box, np.float64)
        root = np.asarray(raw.hand_joints[0] if opened.has_labels else raw.root_joint, np.float64)
        gt_verts = gt_hand.vertices(raw) if opened.has_labels else None
        occluded = opened.has_labels and (
            min(raw.hand_visible, raw.obj_visible) < OCCLUDED_VISIBLE_FRACTION
        )
        counts["evaluated"] += 1
        used_by: set[str] = set()
        for protocol in protocols:
            boxes, anchors = (hand_box, obj_box), [root]
            row: dict[str, Any] = {"index": index}
            fallback = None
            if protocol == "gt-free":
                anchors = None
                if detector is not None and detector.detector is not None:
                    found = _detected_pair(detector, raw.image, hand_box)
                    if found is not None:
                        boxes = found
                    else:
                        counts["detector_misses"] += 1
                        misses.append({"index": index, "frame": frame_ids[index]})
                        if not submission:
                            warner.warn(
                                f"gt-free: detector missed frame {frame_ids[index]} (index "
                                f"{index}); left out of the metrics"
                            )
                            row.update(detected=False, frame=frame_ids[index])
                            per_sample[protocol].append(row)
                            continue
                        fallback = FALLBACK_SPLIT_BOXES
            if submission:
                if not (_usable_box(boxes[0]) and _usable_box(boxes[1])):
                    continue  # answered with a neighbouring estimate after the loop
                if fallback is not None:
                    frame = frame_ids[index]
                    fallbacks.append(
                        {"index": index, "frame": frame, "protocol": protocol, "used": fallback}
                    )
                    warner.warn(
                        f"{protocol}: detector missed frame {frame_ids[index]} (index {index}); "
                        "answered from the split's own hand and object boxes"
                    )
            t0 = time.perf_counter()
            pred = predictor.predict(raw.image, raw.K, pairs=[boxes], anchors=anchors)[0]
            seconds[protocol] += time.perf_counter() - t0
            joints = np.asarray(pred.joints, np.float64)
            verts = np.asarray(pred.vertices, np.float64)
            if submission:
                entries[protocol][index] = (joints, verts)
                continue
            used_by.add(protocol)
            name = raw.obj_name
            if name not in model_points:
                model_points[name] = np.asarray(opened.objects.get(name).vertices, np.float64)
            values = acc[protocol].add(
                joints,
                np.asarray(raw.hand_joints, np.float64),
                verts,
                gt_verts,
                pred_obj_rot=np.asarray(pred.obj_rot_matrix, np.float64),
                pred_obj_trans=np.asarray(pred.obj_trans, np.float64),
                gt_obj_rot=_rotation_matrix(raw.obj_rot),
                gt_obj_trans=np.asarray(raw.obj_trans, np.float64),
                obj_points=model_points[name],
                obj_corners=np.asarray(opened.objects.get(name).corners, np.float64),
                obj_name=name,
                occluded=bool(occluded),
            )
            row.update({k: _finite(values[k]) for k in PER_SAMPLE_METRICS})
            per_sample[protocol].append(row)
        if opened.has_labels and used_by:
            gt_frames.append(frame_from_raw(raw, bool(occluded)))
            frame_protocols.append(used_by)

    written: dict[str, str] = {}
    notes = list(opened.notes)
    baselines: dict[str, Any] | None = None
    if not submission:
        results: dict[str, Any] = {}
        for p in protocols:
            if len(acc[p]) == 0:
                raise ValueError(
                    f"protocol {p}: no sample could be evaluated ({counts}); "
                    "check the detector weights or the data"
                )
            results[p] = acc[p].compute()
        baselines = _baselines(
            gt_frames,
            frame_protocols,
            protocols,
            opened,
            model_points,
            allow_reflection,
            baseline_data,
            baseline_split,
            mano_dir,
            ycb_dir,
        )
    else:
        results = {p: dict.fromkeys(METRIC_NAMES) for p in protocols}
        for p in protocols:
            filled = _fill_missing(entries[p], frame_ids, p, warner)
            fallbacks.extend(filled)
            joints_list = [e[0] for e in entries[p] if e is not None]
            verts_list = [e[1] for e in entries[p] if e is not None]
            name = submission_name(p, p == protocols[0], n, total)
            written[f"ho3d_submission_{p}"] = str(
                write_ho3d_submission(out / name, joints_list, verts_list)
            )
        notes.append(
            "no labels in this split: submit pred.json to the HO3D evaluation server "
            "(one entry per frame, in the split's list order)"
        )
        if n < total:
            note = (
                f"--limit {limit}: only {n} of the split's {total} frames were answered; the "
                "submission is written as pred_partial_*.json, which a server rejects"
            )
            notes.append(note)
            warnings.warn(note, stacklevel=2)
        notes.append("no labels in this split: no baselines")
    warner.close()

    meta = {
        "protocols": list(protocols),
        "checkpoint": str(ckpt),
        "checkpoint_sha256": file_sha256(weights_file),
        "data": str(data),
        "data_layout": opened.kind,
        "split": opened.split,
        "data_hash": dataset_fingerprint(opened, list(range(n))),
        "limit": limit,
        "counts": counts,
        "device": device,
        "seconds_per_image": {p: seconds[p] / max(counts["evaluated"], 1) for p in protocols},
        "fingertips": {
            "labels": opened.fingertips,
            "predicted": tips,
            "ids": predictor.model.mano.fingertip_ids.tolist(),
        },
        "gt_anchored": "GT hand and object boxes; voxel grid centred on the GT hand root",
        "gt_free": (
            None
            if detector is None
            else {
                "boxes": detector.note,
                "detector_available": detector.detector is not None,
                "anchor": "the model's own anchor estimate",
                "min_hand_iou": DETECTOR_MIN_IOU,
                "on_miss": (
                    "answered (split boxes, else the previous / next estimate): every frame "
                    "needs an entry"
                    if submission
                    else "left out of the metrics"
                ),
                "misses": misses,
                "fallbacks": fallbacks,
            }
        ),
        "occluded_subset": f"min(hand_visible, obj_visible) < {OCCLUDED_VISIBLE_FRACTION}",
        "procrustes_allows_reflection": allow_reflection,
        "object_metric_modes": {"OCE": "origin", "MCE": "object_box", "ADD-S": "over GT points"},
        "encoder_init": encoder_init_note(cfg.model.encoder),
        "notes": notes,
        "config": config_to_dict(cfg),
    }
    files = write_report(
        out,
        results,
        meta,
        None if submission else per_sample,
        baselines=baselines,
        files=written,
    )
    return json.loads(Path(files.json_path).read_text())
