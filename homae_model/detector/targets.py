"""Detector training targets from RawSample sources, with flip and colour augmentation.

A RawSample gives two boxes: `hand_box` (class "right_hand" or "left_hand" by the sample's
`side`, or "hand" for a single-class detector) and `obj_box` (class `obj_name`), in
full-image pixels. The random horizontal flip mirrors the image and the boxes, so a flipped
right hand is a left hand: a left/right detector's hand class is swapped with it (the
training scenes' left hands come from these flips and from left-hand scenes).

Boxes are clipped to the image ([0, W-1] x [0, H-1]); a box whose part is
barely visible (visible fraction below `MIN_VISIBLE`) or that is smaller than `MIN_BOX_SIDE`
pixels after clipping is left out of the targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from homae_model.data.dataset import SampleSource
from homae_model.data.schema import RawSample
from homae_model.detector.pairing import HAND_LABEL, HAND_SIDE_CLASSES

_SWAP = {"right_hand": "left_hand", "left_hand": "right_hand"}
"""Hand class of the mirror image."""

MIN_VISIBLE = 0.1
"""Boxes of parts with a smaller visible fraction are not trained on."""

MIN_BOX_SIDE = 2.0
"""Boxes narrower or lower than this (pixels, after clipping) are not trained on."""

DEFAULT_COLOR_JITTER = (0.3, 0.3, 0.3, 0.05)
"""Brightness, contrast, saturation (relative) and hue (fraction of a turn) jitter."""


@dataclass
class DetectionTarget:
    """Boxes of one image.

    Attributes:
        boxes: (N,4) float32 xyxy full-image pixels.
        labels: the N class names.
    """

    boxes: np.ndarray
    labels: list[str]


def hand_class(side: str, sides: bool = True) -> str:
    """Detector class of a hand of `side` ("right"/"left"): "<side>_hand", or "hand"."""
    if not sides:
        return HAND_LABEL
    return next(name for name, s in HAND_SIDE_CLASSES.items() if s == side)


def sample_target(sample: RawSample, sides: bool = False) -> DetectionTarget:
    """The hand and object boxes of `sample`, clipped, with tiny/invisible ones left out.

    `sides`: label the hand by its side ("right_hand"/"left_hand") instead of "hand".
    """
    h, w = sample.image.shape[:2]
    boxes, labels = [], []
    for box, label, visible in (
        (sample.hand_box, hand_class(sample.side, sides), sample.hand_visible),
        (sample.obj_box, sample.obj_name, sample.obj_visible),
    ):
        b = np.asarray(box, dtype=np.float64).copy()
        b[[0, 2]] = np.clip(b[[0, 2]], 0.0, w - 1.0)
        b[[1, 3]] = np.clip(b[[1, 3]], 0.0, h - 1.0)
        if visible < MIN_VISIBLE or min(b[2] - b[0], b[3] - b[1]) < MIN_BOX_SIDE:
            continue
        boxes.append(b)
        labels.append(label)
    return DetectionTarget(np.array(boxes, dtype=np.float32).reshape(-1, 4), labels)


def hflip(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror an image left-right and its (N,4) xyxy boxes with it (x -> W-1-x)."""
    w = image.shape[1]
    out = boxes.copy()
    out[:, 0] = (w - 1) - boxes[:, 2]
    out[:, 2] = (w - 1) - boxes[:, 0]
    return np.ascontiguousarray(image[:, ::-1]), out


def color_jitter(
    image: np.ndarray,
    rng: np.random.Generator,
    strength: tuple[float, float, float, float] = DEFAULT_COLOR_JITTER,
) -> np.ndarray:
    """Random brightness, contrast, saturation and hue change of an (H,W,3) uint8 RGB image."""
    b, c, s, hue = strength
    img = image.astype(np.float32)
    img *= rng.uniform(1 - b, 1 + b)
    mean = img.mean()
    img = (img - mean) * rng.uniform(1 - c, 1 + c) + mean
    gray = img @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    img = (img - gray[..., None]) * rng.uniform(1 - s, 1 + s) + gray[..., None]
    img = np.clip(img, 0, 255).astype(np.uint8)
    if hue > 0:
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)  # OpenCV hue in [0, 180)
        shift = round(float(rng.uniform(-hue, hue)) * 180)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + shift) % 180).astype(np.uint8)
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return img


class DetectionDataset(Dataset):
    """Torch dataset of (image tensor, torchvision target) from one or more sources.

    Args:
        sources: RawSample sources; indices run through them in order.
        class_names: detector foreground classes; label of name n is class_names.index(n) + 1.
        augment: random horizontal flip (p=0.5) and colour jitter.
        seed: base seed; item i of epoch e uses its own generator (reproducible with workers).
    """

    def __init__(
        self,
        sources: Sequence[SampleSource],
        class_names: Sequence[str],
        augment: bool = True,
        seed: int = 0,
    ) -> None:
        self.sources = list(sources)
        self.class_index = {n: i + 1 for i, n in enumerate(class_names)}
        self.sides = all(n in self.class_index for n in HAND_SIDE_CLASSES)
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self._offsets = np.cumsum([0] + [len(s) for s in self.sources])

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def raw(self, index: int) -> RawSample:
        """The RawSample behind dataset item `index`."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        k = int(np.searchsorted(self._offsets, index, side="right") - 1)
        return self.sources[k][index - int(self._offsets[k])]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        sample = self.raw(index)
        target = sample_target(sample, self.sides)
        labels_in = list(target.labels)
        unknown = [n for n in target.labels if n not in self.class_index]
        if unknown:
            raise ValueError(
                f"sample {sample.source!r}: object {unknown[0]!r} is not a detector class; "
                f"valid: {', '.join(self.class_index)}"
            )
        image, boxes = np.asarray(sample.image), target.boxes
        if self.augment:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            if rng.random() < 0.5:
                image, boxes = hflip(image, boxes)
                labels_in = [_SWAP.get(n, n) for n in labels_in]  # a mirrored right hand is left
            image = color_jitter(image, rng)
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
        labels = torch.tensor([self.class_index[n] for n in labels_in], dtype=torch.int64)
        return tensor, {"boxes": torch.from_numpy(boxes).float().reshape(-1, 4), "labels": labels}


def collate_detection(batch: list[tuple[Any, Any]]) -> tuple[list[Any], list[Any]]:
    """Keep images and targets as lists (torchvision detectors take variable sizes)."""
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)
