"""One image in, hand-object estimates out: detector boxes -> Predictor (no ROS imports).

The node, the bag tool, `homae-infer` and the demo all go through `FrameEstimator`, so a
frame is processed the same way everywhere. It holds the loaded resources (Predictor,
detection backend, object library, hand faces) and turns (RGB image, K, stamp) into a list
of `PairEstimate`s in the image's camera frame.

Hand side: the detector's hand class decides it (a left/right detector, `Detection.side`);
a left hand is estimated through the mirror (`estimation.mirror.predict_sided`) and its
estimate is a left MANO hand. A detector with a single "hand" class (older weights) or a
fixed ROI leaves the side unknown: the hand is then taken as right (`PairEstimate.side`,
with `side_source` "default"), as before.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from safetensors import SafetensorError

from homae_model.bundled import DEMO_CHECKPOINT_NAME, DEMO_DETECTOR_NAME, bundled_weights_dir
from homae_model.detector.pairing import Pair
from homae_model.device import resolve_device
from homae_model.estimation.detection import DetectionBackend, DetectionConfig, create_backend
from homae_model.estimation.errors import (
    OUT_OF_MEMORY_ERRORS,
    FrameSkipped,
    check_intrinsics,
    parameter_error,
)
from homae_model.estimation.mirror import predict_sided, resolve_side
from homae_model.estimation.settings import DEFAULT_SETTINGS, RUNTIMES
from homae_model.geometry.mirror import symmetry_reflection
from homae_model.inference import PairPrediction, Predictor
from homae_model.objects.library import ObjectLibrary, ObjectMesh

__all__ = [
    "FrameEstimator",
    "NonFiniteOutputError",
    "PairEstimate",
    "check_finite",
    "empty_cuda_cache",
    "resolve_device",
    "resolve_path",
]

LOG = logging.getLogger(__name__)


def resolve_path(value: str, default: Path, parameter: str) -> Path:
    """A user-given path, or the bundled default when empty; must exist.

    Raises:
        FileNotFoundError: the message names the parameter and the path.
    """
    path = Path(value).expanduser() if value else default
    if not path.exists():
        origin = (
            f"parameter '{parameter}' = '{value}'"
            if value
            else (f"parameter '{parameter}' is empty, so the bundled default was used")
        )
        raise FileNotFoundError(f"{origin}: {path} does not exist")
    return path


T = TypeVar("T")


def _named(parameter: str, value: str, path: Path, load: Callable[[], T]) -> T:
    """Run `load()`; re-raise its FileNotFoundError / ValueError naming the parameter and path.

    Safetensors errors (not ValueErrors) and pickle errors (the safe MANO unpickler's refusals
    included) are turned into ValueError too.
    """
    try:
        return load()
    except (FileNotFoundError, ValueError) as err:
        if getattr(err, "parameter", None) is not None:
            raise  # an inner `_named` already said which parameter
        text = f"parameter '{parameter}' = '{value or path}' ({path}): {err}"
        raise parameter_error(type(err), parameter, text) from err
    except (SafetensorError, pickle.UnpicklingError) as err:
        raise ValueError(
            f"parameter '{parameter}' = '{value or path}' ({path}): cannot be read safely: {err}"
        ) from err


def _check_runtime(runtime: str, provider: str, onnx_dir: str, precision: str = "fp32") -> None:
    """Reject a runtime, provider or ONNX folder before anything is loaded (names the parameter).

    Raises:
        ValueError: unknown runtime, provider or ONNX precision, a provider that is not
            installed (`ProviderUnavailableError`), or a bad `onnx_dir` manifest.
        FileNotFoundError: `onnx_dir` holds no manifest or lacks a graph file.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"parameter 'runtime' = '{runtime}'; valid: {', '.join(RUNTIMES)}")
    from homae_model.export.quantize import PRECISIONS

    if precision not in PRECISIONS:
        raise ValueError(
            f"parameter 'onnx_precision' = '{precision}'; valid: {', '.join(PRECISIONS)}"
        )
    if runtime != "onnxruntime":
        return
    from homae_model.export.manifest import read_manifest
    from homae_model.export.runtime import resolve_providers

    try:
        resolve_providers(provider)
    except ValueError as err:
        raise type(err)(f"parameter 'runtime_provider' = '{provider}': {err}") from err
    if onnx_dir:
        folder = Path(onnx_dir).expanduser()
        _named("onnx_dir", onnx_dir, folder, lambda: read_manifest(folder))


class NonFiniteOutputError(FrameSkipped):
    """The model produced NaN or infinite values for a frame (nothing of it is published)."""

    reason = "non_finite_output"

    def __init__(self, message: str) -> None:
        """Make the error (reason non_finite_output)."""
        super().__init__(type(self).reason, message)


def check_finite(prediction: PairPrediction, index: int = 0) -> None:
    """Raise NonFiniteOutputError when any array of `prediction` holds NaN or inf."""
    for name in ("joints", "vertices", "mano_pose", "mano_shape", "obj_rot_matrix", "obj_trans"):
        value = np.asarray(getattr(prediction, name))
        if not np.all(np.isfinite(value)):
            raise NonFiniteOutputError(
                f"pair {index}: the model output '{name}' holds NaN or infinite values"
            )


@dataclass
class PairEstimate:
    """One hand-object pair of one image.

    Attributes:
        pair: the boxes and labels that were estimated (full-image pixels).
        prediction: the Predictor's output (camera frame of the image, metres).
        obj_mesh: the object's library mesh (object frame), or None when unknown.
    """

    pair: Pair
    prediction: PairPrediction
    obj_mesh: ObjectMesh | None

    @property
    def side(self) -> str:
        """The hand's side, "right" or "left" (right when the detector cannot tell)."""
        return resolve_side(self.pair.hand.side)

    @property
    def side_source(self) -> str:
        """Where `side` comes from: "detector", or "default" (unknown, taken as right).

        "detector" is the detection stage: the side network, or a left/right detector's class.
        """
        return "default" if self.pair.hand.side is None else "detector"

    @property
    def score(self) -> float:
        """Pair score: detector confidence x how well the SDF found the surfaces."""
        return self.pair.score * float(self.prediction.scores.get("hand", 1.0))


class FrameEstimator:
    """Detector + Predictor on one image at a time."""

    def __init__(
        self,
        predictor: Predictor,
        backend: DetectionBackend,
        objects: ObjectLibrary,
        max_pairs: int = 4,
        min_hand_score: float = 0.0,
    ) -> None:
        """Wrap loaded parts.

        Args:
            predictor: the HOMAE Predictor.
            backend: detection backend (torchvision, track, roi).
            objects: object library (meshes for markers and names for the pairs).
            max_pairs: most pairs per image, highest detector scores first.
            min_hand_score: pairs whose hand detection scores lower are skipped.
        """
        self.predictor = predictor
        self.backend = backend
        self.objects = objects
        self.max_pairs = max_pairs
        self.min_hand_score = min_hand_score
        self.hand_faces = np.asarray(predictor.model.mano.faces, dtype=np.int64)
        self._last_stamp: float | None = None
        self._symmetry: dict[str, np.ndarray] = {}

    @classmethod
    def load(
        cls,
        checkpoint: str = "",
        device: str = "cpu",
        mano_model_path: str = "",
        object_library: str = "",
        detection: DetectionConfig | None = None,
        backend: str = DEFAULT_SETTINGS.detector_backend,
        max_pairs: int = DEFAULT_SETTINGS.max_pairs,
        min_hand_score: float = DEFAULT_SETTINGS.min_hand_score,
        runtime: str = DEFAULT_SETTINGS.runtime,
        runtime_provider: str = DEFAULT_SETTINGS.runtime_provider,
        onnx_dir: str = "",
        onnx_precision: str = "fp32",
    ) -> FrameEstimator:
        """Load everything from paths ("" = the bundled defaults).

        The defaults of `backend`, `max_pairs`, `min_hand_score`, `runtime` and
        `runtime_provider` are `DEFAULT_SETTINGS`'. With `runtime="onnxruntime"` the network
        runs as ONNX graphs: those of `onnx_dir` (a `homae-export` folder of this checkpoint),
        or, when empty, exported once into the cache (`homae_model.export.runtime.cache_dir`);
        `onnx_precision="int8"` runs them with int8 weights (faster, NOT equivalent to torch:
        `homae_model.export.quantize`; "fp32", the default, is).

        Every file is read without running code (safetensors, YAML, the safe MANO unpickler).

        Raises:
            FileNotFoundError: a path is missing (names the parameter and the path).
            ValueError: a file does not match what it should hold, or cannot be read safely
                (names the parameter and the path).
        """
        _check_runtime(runtime, runtime_provider, onnx_dir, onnx_precision)
        weights = bundled_weights_dir()
        ckpt = resolve_path(checkpoint, weights / DEMO_CHECKPOINT_NAME, "checkpoint")
        mano = resolve_path(mano_model_path, Path(), "mano_model_path") if mano_model_path else None
        if mano is not None:
            from homae_model.hand.mano import load_mano_dict

            _named("mano_model_path", mano_model_path, mano, lambda: load_mano_dict(mano))
        predictor = _named(
            "checkpoint",
            checkpoint,
            ckpt,
            lambda: Predictor.from_checkpoint(
                ckpt,
                device,
                mano_path=mano,
                runtime=runtime,
                provider=runtime_provider,
                onnx_dir=onnx_dir or None,
                onnx_precision=onnx_precision,
            ),
        )
        if object_library:
            lib_dir = resolve_path(object_library, Path(), "object_library")
            objects = _named(
                "object_library", object_library, lib_dir, lambda: ObjectLibrary.from_ycb(lib_dir)
            )
        else:
            objects = ObjectLibrary.procedural()
        det = detection or DetectionConfig(device=device, max_pairs=max_pairs)
        if backend in ("torchvision", "track"):
            det.weights = str(
                resolve_path(det.weights, weights / DEMO_DETECTOR_NAME, "detector.weights")
            )
            if det.side_net:  # checked here, so its errors name its own parameter
                from homae_model.detector.side_net import load_side_net

                sides = resolve_path(det.side_net, Path(), "detector.side_net")
                _named("detector.side_net", det.side_net, sides, lambda: load_side_net(sides))
                det.side_net = str(sides)
            corners = {name: objects.get(name).corners for name in objects.names}
            box_source = _named(
                "detector.weights", det.weights, Path(det.weights),
                lambda: create_backend(backend, det, object_corners=corners),
            )  # fmt: skip
        else:
            box_source = create_backend(backend, det)
        return cls(predictor, box_source, objects, max_pairs, min_hand_score)

    def configure(self, detection: DetectionConfig, max_pairs: int, min_hand_score: float) -> None:
        """Change the detection settings and caps from the next `process` call on.

        Raises:
            ValueError: a setting the backend cannot take (e.g. a bad ROI).
        """
        self.backend.configure(detection)
        self.max_pairs = int(max_pairs)
        self.min_hand_score = float(min_hand_score)

    def reset(self) -> None:
        """Forget tracking state (e.g. time jumped backwards: a bag looped)."""
        self.backend.reset()
        self._last_stamp = None

    def process(self, rgb: np.ndarray, K: np.ndarray, stamp_s: float) -> list[PairEstimate]:
        """Estimate every hand-object pair of one image.

        Args:
            rgb: (H,W,3) uint8 RGB image.
            K: (3,3) intrinsics of `rgb`.
            stamp_s: image time (s); a stamp older than the previous one resets tracking.

        Returns:
            Pair estimates, best first; empty when nothing was detected.

        Raises:
            ValueError: bad image or K (`errors.check_intrinsics`, whose errors are
                ConversionErrors, i.e. `FrameSkipped` with a `reason`, and the Predictor's
                checks); NonFiniteOutputError (a FrameSkipped) when the model returns NaN or inf.
            RuntimeError: the model failed (torch.OutOfMemoryError even after the split).
        """
        K = check_intrinsics(K)  # implausible K would overflow inside the model
        if self._last_stamp is not None and stamp_s < self._last_stamp:
            LOG.info("time jumped back %.3f s: tracking reset", self._last_stamp - stamp_s)
            self.backend.reset()
        self._last_stamp = stamp_s
        pairs = [
            p for p in self.backend.propose(rgb, K, stamp_s) if p.hand.score >= self.min_hand_score
        ]
        pairs = sorted(pairs, key=lambda p: -p.score)[: self.max_pairs]
        if not pairs:
            self.backend.update([], [])
            return []
        predictions = self.predict_pairs(rgb, K, pairs)
        try:
            for i, pred in enumerate(predictions):
                check_finite(pred, i)
        except NonFiniteOutputError:
            self.backend.update([], [])  # nothing trustworthy to track from
            raise
        self.backend.update(pairs, predictions)
        return [
            PairEstimate(
                pair,
                pred,
                self.objects.get(pair.obj.label) if pair.obj.label in self.objects else None,
            )
            for pair, pred in zip(pairs, predictions, strict=True)
        ]

    def predict_pairs(
        self, rgb: np.ndarray, K: np.ndarray, pairs: Sequence[Pair]
    ) -> list[PairPrediction]:
        """Run the Predictor on `pairs` as one batch.

        On a CUDA out-of-memory error the batch is retried once, split in halves; any other
        error (or a second failure) goes to the caller.
        """
        boxes = [(p.hand.box, p.obj.box) for p in pairs]
        sides = [p.hand.side for p in pairs]
        # only a mirrored (left-hand) estimate needs the object's symmetry plane
        refl = [
            self._object_reflection(p.obj.label) if resolve_side(side) == "left" else None
            for p, side in zip(pairs, sides, strict=True)
        ]

        def run(lo: int, hi: int) -> list[PairPrediction]:
            return predict_sided(
                self.predictor, rgb, K, boxes[lo:hi], sides[lo:hi], obj_reflections=refl[lo:hi]
            )

        try:
            return run(0, len(boxes))
        except OUT_OF_MEMORY_ERRORS:
            if len(boxes) < 2:
                raise
            LOG.warning("CUDA out of memory on %d pairs: retrying in two halves", len(boxes))
            empty_cuda_cache()
            half = len(boxes) // 2
            return run(0, half) + run(half, len(boxes))

    def _object_reflection(self, name: str) -> np.ndarray | None:
        """The symmetry reflection of a library object (for mirrored estimates), or None."""
        if name not in self.objects:
            return None
        if name not in self._symmetry:
            self._symmetry[name] = symmetry_reflection(self.objects.get(name).vertices)[0]
        return self._symmetry[name]


def empty_cuda_cache() -> None:
    """Give cached GPU memory back to the driver (no-op without CUDA)."""
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass
