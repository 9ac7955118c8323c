"""Evaluate a checkpoint on a data set under the GT-anchored and/or GT-free protocol.

For every raw sample (full image + K) the Predictor runs on the FULL image with the pair's boxes,
exactly as a deployed node would, and its camera-frame outputs are compared with the labels:

- ``gt-anchored`` (the papers' protocol, HOISDF): GT hand and object boxes, and the voxel grid
  centred on the GT hand root;
- ``gt-free`` (what a robot sees): boxes from the detector stage (`homae_model.detector`) when
  its weights are available, paired and matched to the labelled pair by hand-box IoU (samples
  without a matching detection are counted as misses and left out of the metrics), and the
  model's own anchor estimate. Without detector weights the GT boxes are used with the model's
  anchor, and the report's meta says that the detector stage was not available.

Metrics come from `homae_model.evaluation.report.MetricAccumulator`; the report (report.json,
report.md, pck_curves.png) from `write_report`, with the checkpoint's and the data's sha256 and the
resolved config in its meta. HO3D's evaluation split has no labels: the predictions are written as
the official `pred.json` instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from homae_model.bundled import demo_detector
from homae_model.evaluation.sources import OpenedSource, dataset_fingerprint, open_source
from homae_model.training.state import MODEL_FILE, file_sha256, resolve_checkpoint

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
DETECTOR_MIN_SCORE = 0.3
"""Detection score a pair needs in the GT-free protocol (the node's default threshold)."""
DEFAULT_DETECTOR_WEIGHTS = demo_detector()
"""Detector weights tried for the GT-free protocol when none are given (relative to the cwd)."""
PER_SAMPLE_METRICS = ("MJE", "PA-MJE", "OCE", "ADD-S")
"""Metrics stored per sample in `report["per_sample"][PROTOCOL]` (mm; null where undefined)."""


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


@dataclass
class _Detector:
    """The detector stage used for GT-free boxes (or None fields when unavailable)."""

    detector: Any
    pair_fn: Any
    weights: Path | None
    note: str


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


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
        iou = _box_iou(np.asarray(pair.hand.box, float), gt_hand_box)
        if iou >= best_iou:
            best, best_iou = pair, iou
    if best is None:
        return None
    return np.asarray(best.hand.box, np.float64), np.asarray(best.obj.box, np.float64)


class _GroundTruthHand:
    """GT MANO vertices of a raw sample (camera frame) through ManoLayer."""

    def __init__(self, mano_path: Path) -> None:
        self.mano_path = mano_path
        self._layers: dict[str, Any] = {}

    def vertices(self, raw: Any) -> np.ndarray:
        import torch

        from homae_model.hand.mano import ManoLayer

        if raw.side not in self._layers:
            self._layers[raw.side] = ManoLayer(self.mano_path, side=raw.side).eval()
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
) -> dict[str, Any]:
    """Evaluate a checkpoint and write the report.

    Args:
        checkpoint: run folder, checkpoint folder or model.safetensors.
        data: data folder (synthetic / DexYCB / HO3D; auto-detected).
        protocols: "gt-anchored", "gt-free", "both", or a list of protocol names.
        split: data split (default: synthetic whole folder, DexYCB test, HO3D evaluation).
        out_dir: report folder (default: <checkpoint folder>/eval-<split>).
        limit: evaluate only the first N samples.
        device: torch device for the Predictor.
        detector_weights: detector weights for the GT-free protocol (default: the demo file
            if present).
        ycb_dir: YCB models folder for real data sets.
        allow_reflection: Procrustes variant of the PA- metrics (True: the official toolkits).
        progress: show a tqdm bar.

    Returns:
        The report dict as written to report.json (metrics at
        `report["metrics"][PROTOCOL][NAME]`), with `report["files"]` listing what was written.

    Raises:
        FileNotFoundError: missing checkpoint / data.
        ValueError: unknown protocol, empty data set.
    """
    from tqdm import tqdm

    from homae_model.config import config_to_dict
    from homae_model.evaluation.report import MetricAccumulator, write_ho3d_submission, write_report
    from homae_model.inference import Predictor

    if isinstance(protocols, str):
        if protocols not in PROTOCOL_CHOICES:
            raise ValueError(f"protocol {protocols!r}; valid: {list(PROTOCOL_CHOICES)}")
        protocols = PROTOCOL_CHOICES[protocols]
    protocols = tuple(protocols)
    bad = [p for p in protocols if p not in PROTOCOL_CHOICES["both"]]
    if bad or not protocols:
        raise ValueError(f"protocols {list(protocols)}; valid: {list(PROTOCOL_CHOICES['both'])}")

    ckpt = resolve_checkpoint(checkpoint)
    data = Path(data)
    if not data.exists():
        raise FileNotFoundError(f"evaluation data folder not found: {data}")
    predictor = Predictor.from_checkpoint(ckpt, device)
    cfg = predictor.cfg
    opened: OpenedSource = open_source(
        data, split, mano_dir=cfg.mano.resolved_path().parent, ycb_dir=ycb_dir
    )
    n = len(opened.source)
    if limit is not None:
        n = min(n, int(limit))
    if n == 0:
        raise ValueError(f"evaluation data {data} (split {opened.split}) has no samples")
    ckpt_dir = ckpt.parent if ckpt.is_file() else ckpt
    weights_file = ckpt if ckpt.is_file() else ckpt / MODEL_FILE
    out = Path(out_dir) if out_dir is not None else ckpt_dir / f"eval-{opened.split or 'all'}"

    detector = _load_detector(detector_weights, device) if "gt-free" in protocols else None
    gt_hand = _GroundTruthHand(cfg.mano.resolved_path())
    acc = {p: MetricAccumulator(allow_reflection=allow_reflection) for p in protocols}
    submissions: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {
        p: ([], []) for p in protocols
    }
    counts = {"samples": n, "evaluated": 0, "left_hand_skipped": 0, "detector_misses": 0}
    seconds: dict[str, float] = dict.fromkeys(protocols, 0.0)
    per_sample: dict[str, list[dict[str, Any]]] = {p: [] for p in protocols}
    model_points: dict[str, np.ndarray] = {}

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
        counts["evaluated"] += 1
        for protocol in protocols:
            boxes, anchors = (hand_box, obj_box), [root]
            if protocol == "gt-free":
                anchors = None
                if detector is not None and detector.detector is not None:
                    boxes = _detected_pair(detector, raw.image, hand_box)
                    if boxes is None:
                        counts["detector_misses"] += 1
                        per_sample[protocol].append({"index": index, "detected": False})
                        continue
            t0 = time.perf_counter()
            pred = predictor.predict(raw.image, raw.K, pairs=[boxes], anchors=anchors)[0]
            seconds[protocol] += time.perf_counter() - t0
            joints = np.asarray(pred.joints, np.float64)
            verts = np.asarray(pred.vertices, np.float64)
            if not opened.has_labels:
                submissions[protocol][0].append(joints)
                submissions[protocol][1].append(verts)
                continue
            name = raw.obj_name
            if name not in model_points:
                model_points[name] = np.asarray(opened.objects.get(name).vertices, np.float64)
            occluded = min(raw.hand_visible, raw.obj_visible) < OCCLUDED_VISIBLE_FRACTION
            row = acc[protocol].add(
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
            per_sample[protocol].append(
                {"index": index, **{k: _finite(row[k]) for k in PER_SAMPLE_METRICS}}
            )

    written: dict[str, str] = {}
    if opened.has_labels:
        results: dict[str, Any] = {}
        for p in protocols:
            if len(acc[p]) == 0:
                raise ValueError(
                    f"protocol {p}: no sample could be evaluated ({counts}); "
                    "check the detector weights or the data"
                )
            results[p] = acc[p].compute()
    else:
        from homae_model.evaluation.report import METRIC_NAMES

        results = {p: dict.fromkeys(METRIC_NAMES) for p in protocols}
        for p in protocols:
            joints_list, verts_list = submissions[p]
            name = "pred.json" if p == protocols[0] else f"pred_{p}.json"
            written[f"ho3d_submission_{p}"] = str(
                write_ho3d_submission(out / name, joints_list, verts_list)
            )

    notes = list(opened.notes)
    if not opened.has_labels:
        notes.append("no labels in this split: submit pred.json to the HO3D evaluation server")
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
        "gt_anchored": "GT hand and object boxes; voxel grid centred on the GT hand root",
        "gt_free": (
            None
            if detector is None
            else {
                "boxes": detector.note,
                "detector_available": detector.detector is not None,
                "anchor": "the model's own anchor estimate",
                "min_hand_iou": DETECTOR_MIN_IOU,
            }
        ),
        "occluded_subset": f"min(hand_visible, obj_visible) < {OCCLUDED_VISIBLE_FRACTION}",
        "procrustes_allows_reflection": allow_reflection,
        "notes": notes,
        "config": config_to_dict(cfg),
    }
    files = write_report(out, results, meta, per_sample if opened.has_labels else None)
    report = json.loads(Path(files.json_path).read_text())
    written.update(
        report_json=str(files.json_path),
        report_md=str(files.markdown_path),
        pck_plot=str(files.plot_path),
    )
    report["files"] = written
    return report
