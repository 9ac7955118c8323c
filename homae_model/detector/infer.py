"""Run a trained detector on full images, and score it (mAP@0.5, recall) on labelled images."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from homae_model.detector.model import has_side_classes, load_detector, spec_of
from homae_model.detector.pairing import HAND_LABEL, HAND_SIDE_CLASSES, Detection, box_iou
from homae_model.detector.side_net import SideNet, crop_hands, left_probability, load_side_net
from homae_model.device import resolve_device

RAW_CANDIDATES_PER_CLASS = 100
"""Boxes per class kept before NMS inside the network (SSD `topk_candidates`)."""


def image_to_tensor(image: np.ndarray, where: str = "image") -> torch.Tensor:
    """(H,W,3) uint8 RGB -> (3,H,W) float32 in [0,1]; `where` names the input in errors."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8 or 0 in arr.shape:
        raise ValueError(f"{where}: expected (H,W,3) uint8 RGB, got {arr.shape} {arr.dtype}")
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float().div_(255.0)


class Detector:
    """Hands and known objects in full images.

    Args:
        weights_path: `.safetensors` file from `save_detector` (its `.json` sidecar beside it).
        device: torch device string, e.g. "cpu", "cuda" or "auto".
        score_threshold: detections scoring below this are dropped.
        max_detections: most detections returned per image (highest scores first); the network
            itself is capped to this number so raw boxes never pile up.
        class_names: if given, the file's classes must equal these (else ValueError naming it).
        side_net: a side network file (`homae-train-sides`, see `homae_model.detector.side_net`)
            that decides the side of every hand box; None: a left/right detector's hand class
            gives it, a single-class detector leaves it unknown.
    """

    def __init__(
        self,
        weights_path: str | Path,
        device: str | torch.device = "cpu",
        score_threshold: float = 0.5,
        max_detections: int = 10,
        class_names: Sequence[str] | None = None,
        side_net: str | Path | None = None,
    ) -> None:
        device = torch.device(resolve_device(device, "device"))
        model = load_detector(weights_path, device, expected_class_names=class_names)
        sides = load_side_net(side_net, device) if side_net else None
        self._setup(model, device, score_threshold, max_detections, sides)

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        device: str | torch.device = "cpu",
        score_threshold: float = 0.5,
        max_detections: int = 10,
        side_net: SideNet | None = None,
    ) -> Detector:
        """Wrap an in-memory model from `build_detector` (training, tests), and a side net."""
        self = cls.__new__(cls)
        device = torch.device(resolve_device(device, "device"))
        if side_net is not None:
            side_net = side_net.to(device).eval()
        self._setup(model.to(device).eval(), device, score_threshold, max_detections, side_net)
        return self

    def _setup(
        self,
        model: nn.Module,
        device: str | torch.device,
        score: float,
        max_det: int,
        side_net: SideNet | None = None,
    ) -> None:
        self.model = model
        self.spec = spec_of(model)
        self.device = torch.device(device)
        self.side_net = side_net
        self.configure(score, max_det)

    def configure(self, score_threshold: float, max_detections: int) -> None:
        """Change the score threshold and the detection cap (also inside the network).

        Raises:
            ValueError: threshold outside [0, 1] or a cap below 1.
        """
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        if max_detections < 1:
            raise ValueError(f"max_detections must be >= 1, got {max_detections}")
        self.score_threshold = float(score_threshold)
        self.max_detections = int(max_detections)
        model = self.model
        if hasattr(model, "roi_heads"):  # Faster R-CNN
            model.roi_heads.score_thresh = self.score_threshold
            model.roi_heads.detections_per_img = self.max_detections
        else:  # SSD
            model.score_thresh = self.score_threshold
            model.detections_per_img = self.max_detections
            model.topk_candidates = RAW_CANDIDATES_PER_CLASS

    @property
    def class_names(self) -> tuple[str, ...]:
        """Foreground class names (label i+1 = class_names[i])."""
        return self.spec.class_names

    @property
    def has_sides(self) -> bool:
        """True when the detector tells left and right hands apart (else hands' side is None)."""
        return self.side_net is not None or has_side_classes(self.spec.class_names)

    @torch.no_grad()
    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Detect in several images at once.

        Args:
            images: each (H,W,3) uint8 RGB; sizes may differ.

        Returns:
            Per image, at most `max_detections` detections with score >= `score_threshold`,
            highest score first, boxes clipped to [0, W-1] x [0, H-1] (full-image pixels).
            Hands are labelled "hand" whatever their class, with `side` "right"/"left" from
            the side network or a left/right detector, and None from a single-class one.
        """
        if len(images) == 0:
            return []
        batch = [image_to_tensor(im, f"image {i}").to(self.device) for i, im in enumerate(images)]
        self.model.eval()
        outputs = self.model(batch)
        results = []
        for im, image, out in zip(images, batch, outputs, strict=True):
            h, w = im.shape[:2]
            boxes = out["boxes"].float().cpu().numpy().astype(np.float64)
            scores = out["scores"].float().cpu().numpy()
            labels = out["labels"].cpu().numpy()
            order = np.argsort(-scores, kind="stable")
            dets = []
            for k in order:
                if scores[k] < self.score_threshold or not 1 <= labels[k] <= len(self.class_names):
                    continue
                box = boxes[k].copy()
                box[[0, 2]] = np.clip(box[[0, 2]], 0.0, w - 1.0)
                box[[1, 3]] = np.clip(box[[1, 3]], 0.0, h - 1.0)
                name = self.class_names[labels[k] - 1]
                side = HAND_SIDE_CLASSES.get(name)
                label = HAND_LABEL if side is not None else name
                dets.append(Detection(label, float(scores[k]), box, side=side))
                if len(dets) == self.max_detections:
                    break
            results.append(self._sides(image, dets) if self.side_net is not None else dets)
        return results

    def _sides(self, image: torch.Tensor, dets: list[Detection]) -> list[Detection]:
        """`dets` with each hand's side decided by the side network (P(left) >= 0.5: left)."""
        hands = [k for k, d in enumerate(dets) if d.label == HAND_LABEL]
        if not hands:
            return dets
        boxes = torch.as_tensor(np.stack([dets[k].box for k in hands]), dtype=torch.float32)
        crops = crop_hands(image, boxes.to(image.device), self.side_net.spec)
        p_left = left_probability(self.side_net, crops).cpu().numpy()
        out = list(dets)
        for k, p in zip(hands, p_left, strict=True):
            d = dets[k]
            out[k] = Detection(d.label, d.score, d.box, side="left" if p >= 0.5 else "right")
        return out

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Detect in one (H,W,3) uint8 RGB image; see `detect_batch`."""
        return self.detect_batch([image])[0]


@dataclass
class DetectionEval:
    """Detection quality at IoU 0.5.

    Attributes:
        map50: mean over classes with ground truth of the average precision (all-point
            interpolated precision-recall area).
        recall: fraction of ground-truth boxes matched by a detection scoring >= the recall
            score threshold.
        ap: per-class AP.
        num_images: images scored.
        num_gt: ground-truth boxes.
        side: left/right accuracy of the hands found (see `side_accuracy`); empty when the
            detector or the labels have no sides.
    """

    map50: float
    recall: float
    ap: dict[str, float] = field(default_factory=dict)
    num_images: int = 0
    num_gt: int = 0
    side: dict[str, float | int | None] = field(default_factory=dict)


def detection_class(det: Detection) -> str:
    """The detector class of a detection: "right_hand"/"left_hand" for a sided hand, else label."""
    if det.label == HAND_LABEL and det.side is not None:
        return next(name for name, side in HAND_SIDE_CLASSES.items() if side == det.side)
    return det.label


def percent(value: float | None) -> str:
    """A fraction as "87.5%", or "n/a" for None."""
    return "n/a" if value is None else f"{100 * value:.1f}%"


def format_side_accuracy(side: dict) -> str:
    """One line from a `side_accuracy` result."""
    pct = percent
    return (
        f"{pct(side['accuracy'])} of {side['found']} hands found "
        f"(left {pct(side['left_accuracy'])} of {side['left_found']}, "
        f"right {pct(side['right_accuracy'])} of {side['right_found']}; "
        f"{side['labelled']} labelled)"
    )


def side_accuracy(
    predictions: Iterable[list[Detection]],
    ground_truth: Iterable[tuple[np.ndarray, Sequence[str]]],
    iou_threshold: float = 0.5,
    min_score: float = 0.5,
) -> dict[str, float | int | None]:
    """Left/right accuracy: of the labelled hands found, the fraction given the right side.

    A labelled hand ("right_hand"/"left_hand" box) is found by the best-overlapping detected
    hand (IoU >= `iou_threshold`, score >= `min_score`, any side); it counts as correct when
    that detection's side is the label's.

    Returns:
        {"accuracy", "left_accuracy", "right_accuracy" (None without hands of that side),
        "found", "left_found", "right_found", "labelled"}.
    """
    found = {"left": 0, "right": 0}
    correct = {"left": 0, "right": 0}
    labelled = 0
    for dets, (gt_boxes, gt_labels) in zip(predictions, ground_truth, strict=True):
        hands = [d for d in dets if d.label == HAND_LABEL and d.score >= min_score]
        gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
        for box, name in zip(gt_boxes, gt_labels, strict=True):
            side = HAND_SIDE_CLASSES.get(name)
            if side is None:
                continue
            labelled += 1
            if not hands:
                continue
            ious = box_iou(box[None], np.stack([h.box for h in hands]))[0]
            if ious.max() < iou_threshold:
                continue
            found[side] += 1
            correct[side] += int(hands[int(ious.argmax())].side == side)

    def ratio(c: int, n: int) -> float | None:
        return c / n if n else None

    return {
        "accuracy": ratio(sum(correct.values()), sum(found.values())),
        "left_accuracy": ratio(correct["left"], found["left"]),
        "right_accuracy": ratio(correct["right"], found["right"]),
        "found": sum(found.values()),
        "left_found": found["left"],
        "right_found": found["right"],
        "labelled": labelled,
    }


def _average_precision(tp: np.ndarray, scores: np.ndarray, num_gt: int) -> float:
    if num_gt == 0:
        return float("nan")
    if len(tp) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    tp = tp[order].astype(np.float64)
    ctp, cfp = np.cumsum(tp), np.cumsum(1.0 - tp)
    rec = np.concatenate([[0.0], ctp / num_gt, [1.0]])
    prec = np.concatenate([[1.0], ctp / np.maximum(ctp + cfp, 1e-12), [0.0]])
    prec = np.maximum.accumulate(prec[::-1])[::-1]
    steps = np.nonzero(rec[1:] != rec[:-1])[0]
    return float(np.sum((rec[steps + 1] - rec[steps]) * prec[steps + 1]))


def evaluate_detections(
    predictions: Iterable[list[Detection]],
    ground_truth: Iterable[tuple[np.ndarray, Sequence[str]]],
    iou_threshold: float = 0.5,
    recall_score: float = 0.5,
) -> DetectionEval:
    """Score detections against labelled boxes (greedy matching by score, per class).

    Args:
        predictions: per image, the detections (use a low score threshold for a fair AP).
        ground_truth: per image, (N,4) xyxy boxes and their N class names.
        iou_threshold: IoU for a true positive.
        recall_score: detections at or above this score count for `recall`.

    Returns:
        `DetectionEval`.
    """
    per_class: dict[str, list[tuple[float, bool]]] = {}
    gt_count: dict[str, int] = {}
    found = 0
    num_images = 0
    for dets, (gt_boxes, gt_labels) in zip(predictions, ground_truth, strict=True):
        num_images += 1
        gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
        for name in gt_labels:
            gt_count[name] = gt_count.get(name, 0) + 1
        taken = np.zeros(len(gt_labels), dtype=bool)
        for det in sorted(dets, key=lambda d: -d.score):
            label = detection_class(det)
            same = np.array([g == label for g in gt_labels], dtype=bool)
            ious = box_iou(det.box[None], gt_boxes)[0] if len(gt_labels) else np.zeros(0)
            ious = np.where(same & ~taken, ious, -1.0)
            hit = len(ious) > 0 and ious.max() >= iou_threshold
            if hit:
                k = int(ious.argmax())
                taken[k] = True
                found += int(det.score >= recall_score)
            per_class.setdefault(label, []).append((det.score, bool(hit)))
    ap = {}
    for name, count in sorted(gt_count.items()):
        rows = per_class.get(name, [])
        tp = np.array([r[1] for r in rows], dtype=bool)
        sc = np.array([r[0] for r in rows], dtype=np.float64)
        ap[name] = _average_precision(tp, sc, count)
    num_gt = sum(gt_count.values())
    return DetectionEval(
        map50=float(np.mean(list(ap.values()))) if ap else 0.0,
        recall=found / num_gt if num_gt else 0.0,
        ap=ap,
        num_images=num_images,
        num_gt=num_gt,
    )
