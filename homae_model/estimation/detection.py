"""Detection backends: where the hand-object boxes of each frame come from (no ROS imports).

Backends, chosen by name with `create_backend` (`BACKENDS` lists them):

- ``torchvision``: the trained detector network (`homae_model.detector.Detector`) on every
  frame, then `pair_detections` (each hand with the object it overlaps/neighbours best).
- ``track``: boxes from projecting the previous frame's predicted poses (hand joints and object
  box corners, camera frame) with K, enlarged by a margin. Its confidence starts at 1 after a
  detection and is multiplied by `track_decay` every frame; once it would fall below
  `track_min_confidence`, when no previous pose exists, when a tracked part leaves the view, or
  when time jumps backwards (`reset`), the frame is re-detected with the torchvision backend.
- ``roi``: one fixed region from the parameters used as the union crop: hand box = object box =
  the ROI, labelled with the configured object name; all-zero ROI = the whole image.

All share `DetectionBackend.propose(image, K, stamp_s) -> list[Pair]` and
`update(pairs, predictions)` (the node passes each pair's `PairPrediction` back; only `track`
uses it, reading the joints and the object pose, see `prediction_points`). Boxes are
full-image pixels, clipped to [0, W-1] x [0, H-1].
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy.spatial.transform import Rotation

from homae_model.bundled import demo_detector
from homae_model.detector.pairing import (
    HAND_LABEL,
    OBJECT_HINT_MIN_SCORE,
    Detection,
    Pair,
    pair_detections,
)
from homae_model.estimation.errors import parameter_error
from homae_model.estimation.settings import DEFAULT_SETTINGS, DETECTOR_BACKENDS
from homae_model.geometry.camera import MIN_DEPTH_M, project_points, validate_intrinsics

BACKENDS: tuple[str, ...] = DETECTOR_BACKENDS
"""Valid backend names."""

DEFAULT_DETECTOR_WEIGHTS = demo_detector()
"""Bundled demo detector used when no weights file is configured."""


@dataclass
class DetectionConfig:
    """Settings of the detection backends.

    Attributes:
        weights: detector weights file; "" = `DEFAULT_DETECTOR_WEIGHTS`.
        side_net: hand-side network file (`homae-train-sides`) that decides each hand box's
            side; "" = none (a left/right detector's class decides, else the side is unknown).
        device: torch device of the detector network.
        score_threshold: detections below this score are ignored.
        max_detections: most detections kept per image (highest scores).
        max_pairs: most hand-object pairs per image (highest scores).
        allowed_objects: object names that may pair; empty = all.
        roi: backend roi region (x_min, y_min, x_max, y_max) pixels; all zero = whole image.
        roi_object: object library name of the roi backend's object.
        track_margin: box enlargement of tracked boxes, fraction of the box side on each side.
        track_decay: factor on the track confidence per frame (0 < decay <= 1).
        track_min_confidence: re-detect once the confidence would fall below this.
    """

    weights: str = ""
    side_net: str = ""
    device: str = "cpu"
    score_threshold: float = DEFAULT_SETTINGS.score_threshold
    max_detections: int = DEFAULT_SETTINGS.max_detections
    max_pairs: int = DEFAULT_SETTINGS.max_pairs
    allowed_objects: tuple[str, ...] = ()
    roi: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    roi_object: str = ""
    track_margin: float = 0.15
    track_decay: float = 0.8
    track_min_confidence: float = 0.3

    @classmethod
    def from_params(cls, params: Any, device: str = "cpu") -> DetectionConfig:
        """From the node's `NodeParams` (detector_*, objects_allowed, max_batch_pairs).

        The roi backend's object is the single entry of `objects.allowed` (empty otherwise).
        """
        allowed = tuple(n for n in getattr(params, "objects_allowed", ()) if n)
        return cls(
            weights=params.detector_weights,
            side_net=params.detector_side_net,
            device=device,
            score_threshold=params.detector_score_threshold,
            max_detections=params.detector_max_detections,
            max_pairs=params.max_batch_pairs,
            allowed_objects=allowed,
            roi=tuple(params.detector_roi),
            roi_object=allowed[0] if len(allowed) == 1 else "",
        )


class DetectsBoxes(Protocol):
    """What the torchvision backend needs from a detector (`homae_model.detector.Detector`)."""

    def detect(self, image: np.ndarray) -> list[Detection]:  # noqa: D102
        ...


def _check_image(image: np.ndarray) -> tuple[int, int]:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or 0 in arr.shape:
        raise ValueError(f"image: expected (H,W,3) RGB, got shape {arr.shape}")
    return arr.shape[0], arr.shape[1]


def clip_box(box: np.ndarray, height: int, width: int) -> np.ndarray:
    """(4,) xyxy box clipped to [0, width-1] x [0, height-1]."""
    b = np.asarray(box, dtype=np.float64).copy()
    b[[0, 2]] = np.clip(b[[0, 2]], 0.0, width - 1.0)
    b[[1, 3]] = np.clip(b[[1, 3]], 0.0, height - 1.0)
    return b


def projected_box(
    points: np.ndarray, K: np.ndarray, margin: float, height: int, width: int
) -> np.ndarray | None:
    """Box around camera-frame points projected with K, enlarged, clipped to the image.

    Args:
        points: (N,3) camera frame, metres.
        K: (3,3) intrinsics.
        margin: added on each side, as a fraction of the box's larger side.
        height: image height, pixels.
        width: image width, pixels.

    Returns:
        (4,) xyxy pixels, or None when a point is behind the camera or the box is empty after
        clipping (the part left the view).
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(pts) == 0 or not np.all(np.isfinite(pts)) or np.any(pts[:, 2] <= MIN_DEPTH_M):
        return None
    uv = project_points(pts, np.asarray(K, dtype=np.float64))
    lo, hi = uv.min(axis=0), uv.max(axis=0)
    pad = margin * float(max(hi - lo))
    box = clip_box(np.concatenate([lo - pad, hi + pad]), height, width)
    if box[2] - box[0] < 1.0 or box[3] - box[1] < 1.0:
        return None
    return box


class DetectionBackend(ABC):
    """Common interface of the box sources."""

    name: str = ""

    @abstractmethod
    def propose(self, image: np.ndarray, K: np.ndarray, stamp_s: float) -> list[Pair]:
        """Hand-object pairs of one frame.

        Args:
            image: (H,W,3) uint8 RGB.
            K: (3,3) intrinsics of `image`.
            stamp_s: image time stamp, seconds.

        Returns:
            Pairs sorted by score, boxes in full-image pixels.
        """

    def update(self, pairs: Sequence[Pair], predictions: Sequence[Any]) -> None:  # noqa: B027
        """Feed back the pose predicted for each proposed pair (used by `track`)."""

    def reset(self) -> None:  # noqa: B027
        """Forget any state carried between frames."""

    def configure(self, config: DetectionConfig) -> None:  # noqa: B027
        """Take changed settings (thresholds, caps, names, ROI) from the next frame on."""


class TorchvisionBackend(DetectionBackend):
    """Detector network on every frame, then `pair_detections` with the in-hand fallback.

    Args:
        detector: anything with `detect(image) -> list[Detection]` (normally `Detector`, run
            down to `OBJECT_HINT_MIN_SCORE` so weak object candidates can name objects).
        max_pairs: most pairs per frame.
        allowed_objects: object names that may pair; empty = all.
        min_score: detections below this score do not pair (`detector.score_threshold`).
    """

    name = "torchvision"

    def __init__(
        self,
        detector: DetectsBoxes,
        max_pairs: int,
        allowed_objects: Sequence[str] = (),
        min_score: float = 0.0,
    ) -> None:
        self.detector = detector
        self.max_pairs = int(max_pairs)
        self.allowed_objects = tuple(allowed_objects)
        self.min_score = float(min_score)

    @classmethod
    def from_config(cls, config: DetectionConfig) -> TorchvisionBackend:
        """Load the detector network named by `config.weights` (or the bundled one).

        Raises:
            FileNotFoundError: the weights file (or its sidecar) does not exist.
        """
        from homae_model.detector.infer import Detector

        path = Path(config.weights) if config.weights else DEFAULT_DETECTOR_WEIGHTS
        if not path.is_file():
            raise parameter_error(
                FileNotFoundError,
                "detector.weights",
                f"detector weights {path} not found (parameter 'detector.weights'"
                + ("" if config.weights else ", empty = bundled demo detector")
                + "); train one with homae-train-detector",
            )
        if config.side_net and not Path(config.side_net).is_file():
            raise parameter_error(
                FileNotFoundError,
                "detector.side_net",
                f"hand-side network {config.side_net} not found (parameter 'detector.side_net'"
                ", empty = none); train one with homae-train-sides",
            )
        threshold = min(config.score_threshold, OBJECT_HINT_MIN_SCORE)
        detector = Detector(
            path, config.device, threshold, config.max_detections, side_net=config.side_net or None
        )
        return cls(detector, config.max_pairs, config.allowed_objects, config.score_threshold)

    def configure(self, config: DetectionConfig) -> None:
        """New score threshold, detection cap, pair cap and allowed names (next frame on)."""
        self.max_pairs = int(config.max_pairs)
        self.allowed_objects = tuple(config.allowed_objects)
        self.min_score = float(config.score_threshold)
        if hasattr(self.detector, "configure"):
            self.detector.configure(
                min(config.score_threshold, OBJECT_HINT_MIN_SCORE), config.max_detections
            )

    def propose(self, image: np.ndarray, K: np.ndarray, stamp_s: float) -> list[Pair]:
        """Detect, then pair (see `DetectionBackend.propose`)."""
        _check_image(image)
        return pair_detections(
            self.detector.detect(image),
            self.max_pairs,
            self.allowed_objects,
            min_score=self.min_score,
            object_fallback=True,
        )


@dataclass
class _Track:
    obj_name: str
    hand_score: float
    obj_score: float
    hand_joints: np.ndarray | None = None
    side: str | None = None
    obj_corners: np.ndarray | None = None


def _get(prediction: Any, key: str) -> Any:
    if isinstance(prediction, Mapping):
        return prediction.get(key)
    return getattr(prediction, key, None)


def _array(value: Any, key: str, shape: tuple[int, ...]) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value, dtype=np.float64)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"prediction field {key!r} has shape {arr.shape}, expected {shape}")
    return arr.reshape(shape)


def prediction_points(
    prediction: Any, obj_name: str, object_corners: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame hand joints and object box corners of one pose prediction.

    Args:
        prediction: an object or mapping with the hand joints as `hand_joints` or `joints`
            (21,3) and the object as `obj_corners` (8,3), or as a pose (`obj_rot_matrix` (3,3)
            or `obj_rot` (3,) axis-angle, and `obj_trans` (3,)) applied to
            `object_corners[obj_name]`. `homae_model.inference.PairPrediction` qualifies.
        obj_name: object library name of the pair.
        object_corners: object-frame (8,3) corners by object name, metres.

    Returns:
        (21,3) joints and (8,3) corners, camera frame, metres.

    Raises:
        ValueError: a field is missing or wrongly shaped.
    """
    joints = _get(prediction, "hand_joints")
    key = "hand_joints"
    if joints is None:
        joints, key = _get(prediction, "joints"), "joints"
    if joints is None:
        raise ValueError("prediction has no 'hand_joints' (or 'joints') field")
    joints = _array(joints, key, (21, 3))
    corners = _get(prediction, "obj_corners")
    if corners is not None:
        return joints, _array(corners, "obj_corners", (8, 3))
    trans, rot_m, rot = (_get(prediction, k) for k in ("obj_trans", "obj_rot_matrix", "obj_rot"))
    if trans is None or (rot_m is None and rot is None) or obj_name not in object_corners:
        raise ValueError(
            f"prediction for {obj_name!r} needs 'obj_corners', or 'obj_rot'/'obj_rot_matrix' and "
            "'obj_trans' with the object's corners given to TrackBackend(object_corners=...)"
        )
    if rot_m is not None:
        R = _array(rot_m, "obj_rot_matrix", (3, 3))
    else:
        R = Rotation.from_rotvec(_array(rot, "obj_rot", (3,))).as_matrix()
    local = np.asarray(object_corners[obj_name], dtype=np.float64).reshape(8, 3)
    return joints, local @ R.T + _array(trans, "obj_trans", (3,))


class TrackBackend(DetectionBackend):
    """Boxes from the previous frame's poses, re-detecting when confidence runs out.

    Args:
        redetect: backend used when there is nothing (good enough) to track.
        margin: tracked-box enlargement, fraction of the box side on each side.
        decay: confidence factor per tracked frame, in (0, 1].
        min_confidence: re-detect once the confidence would fall below this.
        object_corners: object-frame (8,3) box corners by object name (e.g.
            `{m.name: m.corners for m in library}`), used for predictions that give the object
            as a pose rather than as camera-frame corners.
    """

    name = "track"

    def __init__(
        self,
        redetect: DetectionBackend,
        margin: float = 0.15,
        decay: float = 0.8,
        min_confidence: float = 0.3,
        object_corners: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"track_decay must be in (0, 1], got {decay}")
        if margin < 0:
            raise ValueError(f"track_margin must be >= 0, got {margin}")
        self.redetect = redetect
        self.margin = float(margin)
        self.decay = float(decay)
        self.min_confidence = float(min_confidence)
        self.object_corners = dict(object_corners or {})
        self.reset()

    def reset(self) -> None:
        """Drop the tracks and the last stamp (next frame is re-detected)."""
        self._tracks: list[_Track] = []
        self._proposed: dict[int, _Track] = {}
        self.confidence = 0.0
        self._last_stamp: float | None = None
        self.last_source = ""
        self.redetect.reset()

    def configure(self, config: DetectionConfig) -> None:
        """Pass the settings to the re-detecting backend."""
        self.redetect.configure(config)

    def propose(self, image: np.ndarray, K: np.ndarray, stamp_s: float) -> list[Pair]:
        """Tracked pairs, or re-detected ones (`last_source` says which)."""
        h, w = _check_image(image)
        validate_intrinsics(K)
        if self._last_stamp is not None and stamp_s < self._last_stamp:
            self.reset()
        self._last_stamp = float(stamp_s)
        confidence = self.confidence * self.decay
        if self._tracks and confidence >= self.min_confidence:
            pairs = self._tracked_pairs(K, h, w, confidence)
            if pairs:
                self.confidence = confidence
                self.last_source = "track"
                return pairs
        pairs = self.redetect.propose(image, K, stamp_s)
        self._tracks = []
        self._proposed = {
            p.pair_id: _Track(p.obj.label, p.hand.score, p.obj.score, side=p.hand.side)
            for p in pairs
        }
        self.confidence = 1.0
        self.last_source = "detect"
        return pairs

    def _tracked_pairs(self, K: np.ndarray, h: int, w: int, confidence: float) -> list[Pair]:
        pairs = []
        self._proposed = {}
        for t in self._tracks:
            if t.hand_joints is None or t.obj_corners is None:
                continue
            hb = projected_box(t.hand_joints, K, self.margin, h, w)
            ob = projected_box(t.obj_corners, K, self.margin, h, w)
            if hb is None or ob is None:
                continue
            hand = Detection(HAND_LABEL, t.hand_score * confidence, hb, side=t.side)
            obj = Detection(t.obj_name, t.obj_score * confidence, ob)
            self._proposed[len(pairs)] = t
            pairs.append(Pair(hand, obj, len(pairs)))
        return pairs

    def update(self, pairs: Sequence[Pair], predictions: Sequence[Any]) -> None:
        """Store each pair's predicted pose for the next frame.

        Args:
            pairs: the pairs `propose` returned for this frame.
            predictions: one per pair (None = lost), e.g. `PairPrediction`; see
                `prediction_points` for the fields read (camera frame, metres).

        Raises:
            ValueError: lengths differ, or a prediction has a wrongly shaped field.
        """
        if len(pairs) != len(predictions):
            raise ValueError(f"update: {len(pairs)} pairs but {len(predictions)} predictions")
        tracks = []
        for pair, pred in zip(pairs, predictions, strict=True):
            if pred is None:
                continue
            base = self._proposed.get(pair.pair_id)  # undecayed detection scores
            track = _Track(
                pair.obj.label,
                base.hand_score if base else pair.hand.score,
                base.obj_score if base else pair.obj.score,
                side=pair.hand.side,
            )
            points = prediction_points(pred, pair.obj.label, self.object_corners)
            track.hand_joints, track.obj_corners = points
            tracks.append(track)
        self._tracks = tracks


class RoiBackend(DetectionBackend):
    """One fixed region as the union crop: hand box = object box = the ROI.

    Args:
        roi: (x_min, y_min, x_max, y_max) pixels; all zero = the whole image.
        obj_name: object library name reported for the region.
    """

    name = "roi"

    def __init__(self, roi: Sequence[float], obj_name: str) -> None:
        self._set(roi, obj_name)

    def configure(self, config: DetectionConfig) -> None:
        """New region and object name (next frame on); bad ones raise ValueError."""
        self._set(config.roi, config.roi_object)

    def _set(self, roi: Sequence[float], obj_name: str) -> None:
        roi_arr = np.asarray(roi, dtype=np.float64).reshape(-1)
        if roi_arr.shape != (4,) or not np.all(np.isfinite(roi_arr)):
            raise ValueError(f"parameter 'detector.roi' must be 4 finite numbers, got {roi}")
        if np.any(roi_arr) and (roi_arr[2] <= roi_arr[0] or roi_arr[3] <= roi_arr[1]):
            raise ValueError(f"parameter 'detector.roi' {list(roi)} needs x_min<x_max, y_min<y_max")
        if not obj_name:
            raise ValueError(
                "backend 'roi' needs an object name: set exactly one name in 'objects.allowed'"
            )
        self.roi = roi_arr
        self.obj_name = obj_name

    def propose(self, image: np.ndarray, K: np.ndarray, stamp_s: float) -> list[Pair]:
        """The ROI (clipped to the image) as one pair with score 1."""
        h, w = _check_image(image)
        box = self.roi if np.any(self.roi) else np.array([0.0, 0.0, w - 1.0, h - 1.0])
        box = clip_box(box, h, w)
        if box[2] - box[0] < 1.0 or box[3] - box[1] < 1.0:
            raise ValueError(
                f"parameter 'detector.roi' {self.roi.tolist()} lies outside the {w}x{h} image"
            )
        return [Pair(Detection(HAND_LABEL, 1.0, box), Detection(self.obj_name, 1.0, box), 0)]


def create_backend(
    name: str,
    config: DetectionConfig,
    detector: DetectsBoxes | None = None,
    object_corners: Mapping[str, np.ndarray] | None = None,
) -> DetectionBackend:
    """Build a backend by name.

    Args:
        name: one of `BACKENDS`.
        config: settings.
        detector: a ready detector for torchvision/track (tests); None = load `config.weights`.
        object_corners: object-frame corners by name for the track backend (see TrackBackend).

    Raises:
        ValueError: unknown name (the message lists the valid names) or bad settings.
        FileNotFoundError: the detector weights are missing (torchvision, track).
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown detector backend {name!r}; valid: {', '.join(BACKENDS)}")
    if name == "roi":
        return RoiBackend(config.roi, config.roi_object)
    if detector is None:
        base = TorchvisionBackend.from_config(config)
    else:
        base = TorchvisionBackend(detector, config.max_pairs, config.allowed_objects)
    if name == "torchvision":
        return base
    return TrackBackend(
        base,
        config.track_margin,
        config.track_decay,
        config.track_min_confidence,
        object_corners=object_corners,
    )
