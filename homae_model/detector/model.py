"""Hand/object box detector: a torchvision detection network, built offline, saved safely.

The detector finds hands and known objects in the full image. Its classes are background
(index 0), then `class_names` in order: by convention the hand classes ("right_hand",
"left_hand": the detector tells the sides apart) followed by the object library names
(`detector_class_names`). Older files have a single "hand" class instead; they still load and
report hands with an unknown side (`homae_model.detector.pairing.HAND_SIDE_CLASSES`).
Networks are always built with `weights=None, weights_backbone=None`, so nothing is ever
downloaded; trained weights come from `homae-train-detector`.

On disk a detector is two files: `<name>.safetensors` (the state dict, floating tensors stored
as float16 to stay small, loaded back as float32) and `<name>.json` beside it (arch, class
names, input size). Loading reads only these two files and never unpickles code.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from homae_model.detector.pairing import HAND_LABEL, HAND_SIDE_CLASSES

ARCHS: tuple[str, ...] = ("ssdlite320_mobilenet_v3_large", "fasterrcnn_mobilenet_v3_large_320_fpn")
"""Detector networks that `build_detector` knows."""

DEFAULT_ARCH = "ssdlite320_mobilenet_v3_large"
"""Default network: fastest on the CPU and about 4x smaller than the Faster R-CNN variant."""

BACKGROUND_LABEL = "__background__"
"""Name of class index 0 (never reported)."""

DEFAULT_INPUT_SIZE = 320
"""Network input side in pixels (SSD: the square the image is resized to; Faster R-CNN: the
shorter image side after resizing)."""

FASTER_RCNN_HEAD_DIM = 128
"""Width of the Faster R-CNN box head (torchvision's default 1024 makes a 38 MB fp16 file)."""

SIDECAR_SUFFIX = ".json"
"""Suffix of the metadata file written next to the weights."""

FORMAT_VERSION = 1
"""Version of the sidecar layout."""

FILE_MODE = 0o644
"""Permissions of written files (temporary files start private)."""


@dataclass(frozen=True)
class DetectorSpec:
    """Everything needed to rebuild a detector network before loading its weights.

    Attributes:
        arch: one of `ARCHS`.
        class_names: foreground class names in label order (label i+1 is class_names[i]).
        input_size: network input side in pixels (see `DEFAULT_INPUT_SIZE`).
    """

    arch: str
    class_names: tuple[str, ...]
    input_size: int = DEFAULT_INPUT_SIZE

    @property
    def num_classes(self) -> int:
        """Number of network classes, background included."""
        return len(self.class_names) + 1


def detector_class_names(
    object_names: list[str] | tuple[str, ...], sides: bool = False
) -> tuple[str, ...]:
    """Foreground classes of a hand + objects detector.

    Args:
        object_names: the object library names.
        sides: one class per hand side ("right_hand", "left_hand", what
            `homae-train-detector` trains); False: the single "hand" class of older detectors.

    Returns:
        ("right_hand", "left_hand", *object_names), or ("hand", *object_names).
    """
    hands = tuple(HAND_SIDE_CLASSES) if sides else (HAND_LABEL,)
    return (*hands, *object_names)


def has_side_classes(class_names: tuple[str, ...] | list[str]) -> bool:
    """True when a detector's classes tell left and right hands apart."""
    return all(name in class_names for name in HAND_SIDE_CLASSES)


def _check_spec(spec: DetectorSpec) -> None:
    if spec.arch not in ARCHS:
        raise ValueError(f"unknown detector arch {spec.arch!r}; valid: {', '.join(ARCHS)}")
    names = list(spec.class_names)
    if not names or any(not isinstance(n, str) or not n for n in names):
        raise ValueError(f"class_names must be non-empty strings, got {names}")
    if len(set(names)) != len(names):
        raise ValueError(f"class_names has duplicates: {names}")
    if BACKGROUND_LABEL in names:
        raise ValueError(f"class_names must not contain {BACKGROUND_LABEL!r} (it is index 0)")
    if not 64 <= int(spec.input_size) <= 2048:
        raise ValueError(f"input_size must be in [64, 2048] pixels, got {spec.input_size}")


def build_detector(
    arch: str = DEFAULT_ARCH,
    class_names: list[str] | tuple[str, ...] = (HAND_LABEL,),
    input_size: int = DEFAULT_INPUT_SIZE,
) -> nn.Module:
    """Build an untrained torchvision detector offline (nothing is downloaded).

    Args:
        arch: one of `ARCHS`.
        class_names: foreground class names; label i+1 is class_names[i], 0 is background.
        input_size: network input side in pixels.

    Returns:
        The torchvision model (train mode). In eval mode `model(list of (3,H,W) float [0,1])`
        returns per image a dict with "boxes" (N,4) xyxy pixels, "scores" (N,), "labels" (N,).

    Raises:
        ValueError: unknown arch (the message lists the valid ones) or bad class names/size.
    """
    spec = DetectorSpec(arch, tuple(class_names), int(input_size))
    _check_spec(spec)
    from torchvision.models import detection as tvd
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    size = spec.input_size
    if arch == "ssdlite320_mobilenet_v3_large":
        model = tvd.ssdlite320_mobilenet_v3_large(
            weights=None, weights_backbone=None, num_classes=spec.num_classes
        )
        # Anchors are relative to the image, so the fixed 320 input can be changed safely.
        old = model.transform
        model.transform = GeneralizedRCNNTransform(
            size, size, old.image_mean, old.image_std, size_divisible=1, fixed_size=(size, size)
        )
    else:
        model = tvd.fasterrcnn_mobilenet_v3_large_320_fpn(
            weights=None,
            weights_backbone=None,
            num_classes=spec.num_classes,
            min_size=size,
            max_size=2 * size,
        )
        heads = model.roi_heads
        resolution = heads.box_roi_pool.output_size[0]
        in_channels = model.backbone.out_channels * resolution**2
        heads.box_head = TwoMLPHead(in_channels, FASTER_RCNN_HEAD_DIM)
        heads.box_predictor = FastRCNNPredictor(FASTER_RCNN_HEAD_DIM, spec.num_classes)
    model.homae_spec = spec  # type: ignore[attr-defined]
    return model


def spec_of(model: nn.Module) -> DetectorSpec:
    """The `DetectorSpec` a model was built with by `build_detector`."""
    spec = getattr(model, "homae_spec", None)
    if not isinstance(spec, DetectorSpec):
        raise ValueError("model was not built by build_detector (no homae_spec attribute)")
    return spec


def sidecar_path(weights_path: str | Path) -> Path:
    """Path of the metadata file of `weights_path` (same stem, `.json`)."""
    return Path(weights_path).with_suffix(SIDECAR_SUFFIX)


def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_detector(model: nn.Module, path: str | Path, half: bool = True) -> Path:
    """Write the weights (safetensors) and the JSON sidecar, each atomically.

    Args:
        model: a model from `build_detector`.
        path: the `.safetensors` file to write; the sidecar goes to `sidecar_path(path)`.
        half: store floating tensors as float16 (half the size; loaded back as float32).

    Returns:
        The weights path.
    """
    path = Path(path)
    spec = spec_of(model)
    tensors = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        if half and value.is_floating_point():
            value = value.half()
        tensors[key] = value.contiguous()
    meta = {"format_version": FORMAT_VERSION, **asdict(spec)}
    meta["class_names"] = list(spec.class_names)
    header = {"homae_detector": json.dumps(meta)}
    _atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=header))
    text = json.dumps(meta, indent=2) + "\n"
    _atomic_write(sidecar_path(path), lambda tmp: Path(tmp).write_text(text))
    return path


def read_spec(path: str | Path) -> DetectorSpec:
    """Read the `DetectorSpec` from the sidecar of the weights file `path`.

    Raises:
        FileNotFoundError: the weights file or its sidecar is missing (both paths named).
        ValueError: the sidecar is not valid JSON or lacks a field.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"detector weights file not found: {path}")
    side = sidecar_path(path)
    if not side.is_file():
        raise FileNotFoundError(f"detector sidecar {side} (arch, classes) missing for {path}")
    try:
        meta = json.loads(side.read_text())
        spec = DetectorSpec(str(meta["arch"]), tuple(meta["class_names"]), int(meta["input_size"]))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"detector sidecar {side} is invalid: {exc}") from exc
    try:
        _check_spec(spec)
    except ValueError as exc:
        raise ValueError(f"detector sidecar {side}: {exc}") from exc
    return spec


def load_detector(
    path: str | Path,
    device: str | torch.device = "cpu",
    expected_class_names: list[str] | tuple[str, ...] | None = None,
    expected_arch: str | None = None,
) -> nn.Module:
    """Rebuild a detector from its sidecar and load its weights (float32, eval mode).

    Args:
        path: the `.safetensors` file written by `save_detector`.
        device: torch device for the model.
        expected_class_names: if given, the file's classes must equal these (same order).
        expected_arch: if given, the file's arch must equal this.

    Returns:
        The model in eval mode on `device`.

    Raises:
        FileNotFoundError: weights or sidecar missing.
        ValueError: classes/arch differ from the expected ones, or the tensors do not fit the
            network the sidecar describes; the message names the file.
    """
    path = Path(path)
    spec = read_spec(path)
    if expected_arch is not None and spec.arch != expected_arch:
        raise ValueError(f"detector {path}: arch is {spec.arch!r}, expected {expected_arch!r}")
    if expected_class_names is not None and tuple(expected_class_names) != spec.class_names:
        raise ValueError(
            f"detector {path}: classes {list(spec.class_names)} do not match the expected "
            f"{list(expected_class_names)}"
        )
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"detector {path}: not a readable safetensors file: {exc}") from exc
    model = build_detector(spec.arch, spec.class_names, spec.input_size)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise ValueError(
            f"detector {path}: weights do not fit arch {spec.arch!r} with "
            f"{spec.num_classes} classes from {sidecar_path(path)} (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, wrong shape {wrong[:3]})"
        )
    state = {k: v.to(expected[k].dtype) for k, v in tensors.items()}
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()
