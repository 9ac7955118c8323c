"""Fakes shared by the robustness tests: a scripted Predictor, a box source, an estimator."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace

import numpy as np
import torch

from homae_model.detector.pairing import HAND_LABEL, Detection, Pair
from homae_model.estimation.detection import DetectionBackend
from homae_model.inference import PairPrediction

OBJECT = "006_mustard_bottle"
OOM_TEXT = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.11 GiB total capacity)"


def oom() -> RuntimeError:
    """What torch raises when GPU memory runs out (recognised by its type, not its text)."""
    return torch.OutOfMemoryError(OOM_TEXT)


def prediction(tag: float, finite: bool = True) -> PairPrediction:
    """A plausible PairPrediction whose joints' x equals `tag` (to follow pairs through)."""
    joints = np.zeros((21, 3))
    joints[:, 0] = tag
    joints[:, 2] = 0.5
    if not finite:
        joints[3, 1] = np.nan
    return PairPrediction(
        joints=joints,
        vertices=np.full((778, 3), 0.5),
        mano_pose=np.zeros(48),
        mano_shape=np.zeros(10),
        hand_transl=np.zeros(3),
        obj_rot=np.zeros(3),
        obj_trans=np.array([0.0, 0.0, 0.5]),
        obj_rot_matrix=np.eye(3),
        crop_box=np.array([0.0, 0.0, 10.0, 10.0]),
        anchor=np.array([0.0, 0.0, 0.5]),
        anchor_source="predicted",
        scores={"hand": 0.9, "obj": 0.9},
    )


class ScriptedPredictor:
    """Stands in for `homae_model.inference.Predictor`.

    Each call records the batch size; `fail(boxes)` may return an exception to raise. The
    prediction of a pair carries the x of its hand box's left edge as its joints' x.
    """

    def __init__(self, fail: Callable[[Sequence], Exception | None] | None = None) -> None:
        self.model = SimpleNamespace(mano=SimpleNamespace(faces=np.zeros((1538, 3), np.int64)))
        self.fail = fail or (lambda boxes: None)
        self.calls: list[int] = []
        self.finite = True

    def predict(self, image, K, boxes) -> list[PairPrediction]:
        self.calls.append(len(boxes))
        err = self.fail(boxes)
        if err is not None:
            raise err
        return [prediction(float(hand[0]), self.finite) for hand, _ in boxes]


def pair(i: int, score: float = 0.9) -> Pair:
    """A pair whose hand box starts at x = i (so predictions can be traced back)."""
    box = np.array([float(i), 0.0, float(i) + 10.0, 10.0])
    return Pair(Detection(HAND_LABEL, score, box), Detection(OBJECT, score, box), i)


class ScriptedBackend(DetectionBackend):
    """Returns the pairs it is given; counts resets and updates."""

    name = "scripted"

    def __init__(self, pairs: Sequence[Pair] = ()) -> None:
        self.pairs = list(pairs)
        self.resets = 0
        self.updates: list[int] = []
        self.stamps: list[float] = []

    def propose(self, image, K, stamp_s):
        self.stamps.append(stamp_s)
        return list(self.pairs)

    def update(self, pairs, predictions) -> None:
        self.updates.append(len(pairs))

    def reset(self) -> None:
        self.resets += 1
