"""Hand and object box detector: network, training targets, training, inference, pairing.

`pairing` (Detection, Pair, pair_detections) needs only numpy and is imported eagerly; the torch
parts (`build_detector`, `Detector`, ...) load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from homae_model.detector.pairing import HAND_LABEL, Detection, Pair, pair_detections

_LAZY = {
    "ARCHS": "model",
    "DEFAULT_ARCH": "model",
    "DetectorSpec": "model",
    "build_detector": "model",
    "detector_class_names": "model",
    "load_detector": "model",
    "save_detector": "model",
    "Detector": "infer",
    "DetectionEval": "infer",
    "evaluate_detections": "infer",
    "DetectorTrainConfig": "train",
    "train_detector": "train",
    "evaluate_on_sources": "train",
}

__all__ = ["HAND_LABEL", "Detection", "Pair", "pair_detections", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"homae_model.detector.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'homae_model.detector' has no attribute {name!r}")
