"""Evaluate a checkpoint on a data set under the GT-anchored and/or GT-free protocol.

For every raw sample (full image + K) the Predictor runs on the FULL image with the pair's boxes,
exactly as a deployed node would, and its camera-frame outputs are compared with the labels:

- ``gt-anchored`` (the papers' protocol, HOISDF): GT hand and object boxes, and the voxel grid
  centred on the GT hand root;
- ``gt-free`` (what a robot sees): boxes from the detector stage (`homae_model.detector`) when
  its weights are available, paired and matched to the labelled pair by hand-box IoU, and the
  model's own anchor estimate. Without detector weights (none given and no bundled demo
  detector) the protocol fails with an error instead of measuring on GT boxes.

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
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from homae_model.bundled import demo_detector
from homae_model.data.sources import OpenedSource, dataset_fingerprint, open_source
from homae_model.detector.pairing import box_iou
from homae_model.estimation.settings import DEFAULT_SETTINGS
from homae_model.evaluation.baselines import measure_baselines
from homae_model.evaluation.frames import (
    OCCLUDED_VISIBLE_FRACTION,
    EvaluationRun,
    Tally,
    estimate_frames,
)
from homae_model.evaluation.report import write_report
from homae_model.evaluation.submission import fill_missing, submission_name
from homae_model.evaluation.weights import resolve_weights
from homae_model.nn.encoder import encoder_init_note
from homae_model.training.state import MODEL_FILE, file_sha256

PROTOCOL_CHOICES: dict[str, tuple[str, ...]] = {
    "gt-anchored": ("gt-anchored",),
    "gt-free": ("gt-free",),
    "both": ("gt-anchored", "gt-free"),
}
"""`--protocol` values and the protocols they run."""
DETECTOR_MIN_IOU = 0.1
"""A detected pair matches the labelled pair when the hand boxes overlap at least this much."""
DETECTOR_MIN_SCORE = DEFAULT_SETTINGS.score_threshold
"""Detection score a pair needs in the GT-free protocol (the node's default threshold)."""
MIN_HAND_SCORE = DEFAULT_SETTINGS.min_hand_score
"""Hand score a pair needs in the GT-free protocol (the node's default `min_hand_score`)."""
DEFAULT_DETECTOR_WEIGHTS = demo_detector()
"""Detector weights tried for the GT-free protocol when none are given (relative to the cwd)."""


@dataclass
class _Detector:
    """The detector stage used for GT-free boxes (or None fields when unavailable)."""

    detector: Any
    pair_fn: Any
    weights: Path | None
    note: str


def _load_detector(
    weights: str | Path | None, device: str, side_net: str | Path | None = None
) -> _Detector:
    try:
        from homae_model.detector.infer import Detector
        from homae_model.detector.pairing import OBJECT_HINT_MIN_SCORE, pair_detections
    except ImportError as exc:
        raise ValueError(f"the gt-free protocol needs the detector stage ({exc})") from exc
    path = Path(weights) if weights is not None else DEFAULT_DETECTOR_WEIGHTS
    if not path.is_file():
        if weights is not None:
            raise FileNotFoundError(f"detector weights not found: {path}")
        raise FileNotFoundError(
            f"the gt-free protocol needs a detector, and none was given (--detector) nor found "
            f"at the bundled demo detector's path {path}: pass --detector WEIGHTS, or run "
            "--protocol gt-anchored"
        )
    detector = Detector(
        path, device=device, score_threshold=OBJECT_HINT_MIN_SCORE, side_net=side_net
    )
    note = f"detector {path}" + (f", hand sides from {side_net}" if side_net else "")
    return _Detector(detector, pair_detections, path, note)


def _detected_pair(det: _Detector, image: np.ndarray, gt_hand_box: np.ndarray) -> Any:
    """(hand_box, obj_box, side) of the detected pair matching the labelled hand, or None."""
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
    # the side: "right"/"left" from a left/right detector, None from a single-class one
    return (
        np.asarray(best.hand.box, np.float64),
        np.asarray(best.obj.box, np.float64),
        best.hand.side,
    )


def gt_free_boxes(
    weights: str | Path | None = None, device: str = "cpu"
) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
    """The GT-free protocol's boxes for a labelled hand, as `evaluate` finds them.

    Args:
        weights: detector weights (None: the bundled demo detector).
        device: where the detector runs.

    Returns:
        A function (image (H,W,3) uint8, labelled hand box (4,) px) -> (hand box, object box)
        of the detected pair matching that hand, or None for a miss.

    Raises:
        FileNotFoundError: no detector weights.
    """
    det = _load_detector(weights, device)

    def boxes(image: np.ndarray, hand_box: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        found = _detected_pair(det, image, hand_box)
        return None if found is None else (found[0], found[1])

    return boxes


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
    side_net: str | Path | None = None,
    ycb_dir: str | Path | None = None,
    allow_reflection: bool = True,
    progress: bool = True,
    baseline_data: str | Path | None = None,
    baseline_split: str | None = None,
    config_overrides: Sequence[str] = (),
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
        side_net: hand-side network deciding the GT-free hands' sides (default: none, the
            detector's classes decide).
        ycb_dir: YCB models folder for real data sets.
        allow_reflection: Procrustes variant of the PA- metrics (True: the official toolkits).
        progress: show a tqdm bar.
        baseline_data: take the baselines' means from this labelled data folder instead of the
            evaluated frames.
        baseline_split: split of `baseline_data` (default: that layout's default).
        config_overrides: dotted ``KEY=VALUE`` overrides of the checkpoint's config (e.g.
            ``model.inference.voxel_res=32``).

    Returns:
        The report dict exactly as written to report.json (metrics at
        `report["metrics"][PROTOCOL][NAME]`, baselines at `report["baselines"]`, the files
        written at `report["files"]`).

    Raises:
        FileNotFoundError: missing checkpoint / data, or no detector for the gt-free protocol.
        ValueError: unknown protocol, empty data set, unlabelled baseline data.
    """
    protocols = _protocol_names(protocols)
    run = _open_run(
        checkpoint, data, split, out_dir, limit, device, ycb_dir, baseline_data, config_overrides
    )
    detector = (
        _load_detector(detector_weights, device, side_net) if "gt-free" in protocols else None
    )
    tally = estimate_frames(run, protocols, detector, _detected_pair, allow_reflection, progress)
    notes = list(run.opened.notes)
    if run.submission:
        results, written = _write_submissions(run, protocols, tally, limit, notes)
        baselines = None
    else:
        results, written = _labelled_results(protocols, tally), {}
        baselines = measure_baselines(
            tally.gt_frames,
            tally.frame_protocols,
            protocols,
            run.opened,
            tally.model_points,
            allow_reflection,
            baseline_data,
            baseline_split,
            run.mano_dir,
            ycb_dir,
        )
    tally.warner.close()
    meta = _report_meta(run, protocols, tally, detector, limit, device, allow_reflection, notes)
    files = write_report(
        run.out,
        results,
        meta,
        None if run.submission else tally.per_sample,
        baselines=baselines,
        files=written,
    )
    return json.loads(Path(files.json_path).read_text())


def side_accuracy_of(check: dict[str, list[int]]) -> dict[str, Any]:
    """GT-free left/right accuracy of the detector from `Tally.side_check` (None: no hands)."""

    def ratio(c: int, n: int) -> float | None:
        return c / n if n else None

    total = [sum(v[0] for v in check.values()), sum(v[1] for v in check.values())]
    out: dict[str, Any] = {"accuracy": ratio(total[1], total[0]), "checked": total[0]}
    for side, (n, c) in check.items():
        out[f"{side}_accuracy"], out[f"{side}_checked"] = ratio(c, n), n
    return out


def per_side_results(tally: Tally) -> dict[str, dict[str, Any]]:
    """``meta["per_side"]``: per protocol and labelled side, the samples and main metrics."""
    out: dict[str, dict[str, Any]] = {}
    for protocol, sides in tally.acc_side.items():
        out[protocol] = {}
        for side, acc in sides.items():
            if len(acc) == 0:
                out[protocol][side] = {"samples": 0}
                continue
            res = acc.compute()
            out[protocol][side] = {"samples": len(acc), **dict(res.metrics)}
    return out


def _protocol_names(protocols: Sequence[str] | str) -> tuple[str, ...]:
    """`--protocol` value or list of names -> the protocols to run (validated)."""
    if isinstance(protocols, str):
        if protocols not in PROTOCOL_CHOICES:
            raise ValueError(f"protocol {protocols!r}; valid: {list(PROTOCOL_CHOICES)}")
        protocols = PROTOCOL_CHOICES[protocols]
    protocols = tuple(protocols)
    bad = [p for p in protocols if p not in PROTOCOL_CHOICES["both"]]
    if bad or not protocols:
        raise ValueError(f"protocols {list(protocols)}; valid: {list(PROTOCOL_CHOICES['both'])}")
    return protocols


def _open_run(
    checkpoint: str | Path,
    data: str | Path,
    split: str | None,
    out_dir: str | Path | None,
    limit: int | None,
    device: str,
    ycb_dir: str | Path | None,
    baseline_data: str | Path | None,
    config_overrides: Sequence[str] = (),
) -> EvaluationRun:
    """Resolve the weights, load the predictor and open the data (see `evaluate`)."""
    from homae_model.inference import Predictor

    ckpt = resolve_weights(checkpoint)
    data = Path(data)
    if not data.exists():
        raise FileNotFoundError(f"evaluation data folder not found: {data}")
    if baseline_data is not None and not Path(baseline_data).exists():
        raise FileNotFoundError(f"baseline data folder not found: {baseline_data}")
    predictor = Predictor.from_checkpoint(ckpt, device, overrides=config_overrides)
    mano_dir = predictor.cfg.mano.resolved_path().parent
    opened: OpenedSource = open_source(data, split, mano_dir=mano_dir, ycb_dir=ycb_dir)
    total = len(opened.source)
    n = total if limit is None else min(total, int(limit))
    if n == 0:
        raise ValueError(f"evaluation data {data} (split {opened.split}) has no samples")
    ckpt_dir = ckpt.parent if ckpt.is_file() else ckpt
    weights_file = ckpt if ckpt.is_file() else ckpt / MODEL_FILE
    out = Path(out_dir) if out_dir is not None else ckpt_dir / f"eval-{opened.split or 'all'}"
    tips = predictor.set_fingertips(opened.fingertips)
    return EvaluationRun(ckpt, weights_file, data, predictor, opened, n, total, out, tips, mano_dir)


def _labelled_results(protocols: Sequence[str], tally: Tally) -> dict[str, Any]:
    """Each protocol's aggregated metrics (labelled splits).

    Raises:
        ValueError: a protocol scored no frame.
    """
    results: dict[str, Any] = {}
    for p in protocols:
        if len(tally.acc[p]) == 0:
            raise ValueError(
                f"protocol {p}: no sample could be evaluated ({tally.counts}); "
                "check the detector weights or the data"
            )
        results[p] = tally.acc[p].compute()
    return results


def _write_submissions(
    run: EvaluationRun, protocols: Sequence[str], tally: Tally, limit: int | None, notes: list[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """HO3D pred.json per protocol (every frame answered); empty metrics; notes appended."""
    from homae_model.evaluation.accumulator import METRIC_NAMES
    from homae_model.evaluation.submission import write_ho3d_submission

    results = {p: dict.fromkeys(METRIC_NAMES) for p in protocols}
    written: dict[str, str] = {}
    for p in protocols:
        entries = tally.entries[p]
        tally.fallbacks.extend(fill_missing(entries, tally.frame_ids, p, tally.warner.warn))
        joints_list = [e[0] for e in entries if e is not None]
        verts_list = [e[1] for e in entries if e is not None]
        name = submission_name(p, p == protocols[0], run.n, run.total)
        written[f"ho3d_submission_{p}"] = str(
            write_ho3d_submission(run.out / name, joints_list, verts_list)
        )
    notes.append(
        "no labels in this split: submit pred.json to the HO3D evaluation server "
        "(one entry per frame, in the split's list order)"
    )
    if run.n < run.total:
        note = (
            f"--limit {limit}: only {run.n} of the split's {run.total} frames were answered; "
            "the submission is written as pred_partial_*.json, which a server rejects"
        )
        notes.append(note)
        warnings.warn(note, stacklevel=3)
    notes.append("no labels in this split: no baselines")
    return results, written


def _report_meta(
    run: EvaluationRun,
    protocols: Sequence[str],
    tally: Tally,
    detector: _Detector | None,
    limit: int | None,
    device: str,
    allow_reflection: bool,
    notes: list[str],
) -> dict[str, Any]:
    """`report["meta"]`: what was evaluated, how, and with which files (hashed)."""
    from homae_model.config import config_to_dict

    opened, counts = run.opened, tally.counts
    return {
        "protocols": list(protocols),
        "checkpoint": str(run.ckpt),
        "checkpoint_sha256": file_sha256(run.weights_file),
        "data": str(run.data),
        "data_layout": opened.kind,
        "split": opened.split,
        "data_hash": dataset_fingerprint(opened, list(range(run.n))),
        "limit": limit,
        "counts": counts,
        "device": device,
        "seconds_per_image": {p: tally.seconds[p] / max(counts["evaluated"], 1) for p in protocols},
        "fingertips": {
            "labels": opened.fingertips,
            "predicted": run.tips,
            "ids": run.predictor.model.mano.fingertip_ids.tolist(),
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
                    if run.submission
                    else "left out of the metrics"
                ),
                "misses": tally.misses,
                "fallbacks": tally.fallbacks,
                "hand_side": (
                    "the side network's answer on each hand box"
                    if getattr(detector.detector, "side_net", None) is not None
                    else "the detector's left/right class"
                    if getattr(detector.detector, "has_sides", False)
                    else "unknown (single-class detector): every hand taken as right"
                ),
                "side_accuracy": side_accuracy_of(tally.side_check),
            }
        ),
        "per_side": per_side_results(tally),
        "occluded_subset": f"min(hand_visible, obj_visible) < {OCCLUDED_VISIBLE_FRACTION}",
        "procrustes_allows_reflection": allow_reflection,
        "object_metric_modes": {"OCE": "origin", "MCE": "object_box", "ADD-S": "over GT points"},
        "encoder_init": encoder_init_note(run.predictor.cfg.model.encoder),
        "hand_orientation": (
            "the heads' own"
            if run.predictor.orientation is None
            else run.predictor.orientation.describe()
        ),
        "notes": notes,
        "config": config_to_dict(run.predictor.cfg),
    }
