"""Command-line options of the offline tools (homae-infer, homae-bag) -> `FrameEstimator`.

No ROS imports. The options mirror the node's parameters: checkpoint, device, detector backend
and its settings, object library and MANO model ("" = the bundled defaults). The estimation
defaults (device, detector, thresholds, pair limits) are the node's: `DEFAULT_SETTINGS`.
"""

from __future__ import annotations

import argparse

from homae_model.device import resolve_device
from homae_model.estimation.detection import BACKENDS, DetectionConfig
from homae_model.estimation.estimator import FrameEstimator
from homae_model.estimation.settings import DEFAULT_SETTINGS, RUNTIME_PROVIDERS, RUNTIMES
from homae_model.export.quantize import PRECISIONS

__all__ = ["add_device_argument", "add_estimator_arguments", "load_estimator"]

_LIMITS: tuple[tuple[str, type, str], ...] = (
    ("score_threshold", float, "hand and object detections below this score do not pair"),
    ("min_hand_score", float, "hands below this score are not reported"),
    ("max_detections", int, "most detections kept per frame"),
    ("max_pairs", int, "most hand-object pairs per frame"),
)
"""Numeric estimation settings exposed as --score-threshold etc.: (field, type, help)."""


def add_device_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add --device (default: the estimation settings' device) to `parser`."""
    device = DEFAULT_SETTINGS.device
    parser.add_argument(
        "--device", default=device, help=f"auto, cpu, cuda or cuda:N (default: {device})"
    )


def add_estimator_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --checkpoint, --device, --runtime, --detector, --roi, --object and friends."""
    g = parser.add_argument_group("model and detector")
    g.add_argument("--checkpoint", default="", help="HOMAE checkpoint (default: bundled demo)")
    s = DEFAULT_SETTINGS
    add_device_argument(g)
    g.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default=s.runtime,
        help=f"what runs the network: PyTorch, or the exported ONNX graphs with onnxruntime "
        f"(default: {s.runtime})",
    )
    g.add_argument(
        "--runtime-provider",
        choices=RUNTIME_PROVIDERS,
        default=s.runtime_provider,
        help="onnxruntime provider for --runtime onnxruntime; cuda and tensorrt need "
        f"onnxruntime-gpu (default: {s.runtime_provider})",
    )
    g.add_argument(
        "--onnx-dir",
        default="",
        help="homae-export folder of --checkpoint for --runtime onnxruntime (default: exported "
        "once into the cache, $HOMAE_ONNX_CACHE or ~/.cache/homae_ros/onnx)",
    )
    g.add_argument(
        "--onnx-precision",
        choices=PRECISIONS,
        default=PRECISIONS[0],
        help="graph precision for --runtime onnxruntime: fp32 (the default, the same outputs "
        "as torch) or int8 (weights of the ViT blocks and heads; faster on CPUs with VNNI, "
        "NOT equivalent: about 2 mm on the demo model's joints)",
    )
    g.add_argument(
        "--detector",
        choices=BACKENDS,
        default=None,
        help=f"box source (default: roi when --roi is given, else {s.detector_backend})",
    )
    g.add_argument("--detector-weights", default="", help="detector weights (default: bundled)")
    g.add_argument(
        "--side-net",
        default="",
        help="hand-side network (homae-train-sides) deciding each hand's side (default: none)",
    )
    for name, kind, text in _LIMITS:
        default = getattr(s, name)
        flag = "--" + name.replace("_", "-")
        g.add_argument(flag, type=kind, default=default, help=f"{text} (default: {default})")
    g.add_argument(
        "--roi",
        nargs=4,
        type=float,
        metavar=("X0", "Y0", "X1", "Y1"),
        default=None,
        help="fixed hand-object region in pixels for --detector roi (default: whole image)",
    )
    g.add_argument(
        "--object",
        default="",
        help="object library name: the roi backend's object, or the only object to pair",
    )
    g.add_argument("--object-library", default="", help="YCB folder (default: procedural set)")
    g.add_argument("--mano-model", default="", help="MANO model file (default: bundled hand)")


def load_estimator(args: argparse.Namespace) -> FrameEstimator:
    """Build the `FrameEstimator` from `add_estimator_arguments`' options.

    Raises:
        FileNotFoundError: a file is missing (bundled demo weights included; names the path).
        ValueError: bad option values (names the option).
        RuntimeError: CUDA requested but not available.
        homae_model.export.runtime.ProviderUnavailableError: --runtime-provider not installed
            (a ValueError).
    """
    backend = args.detector or (
        "roi" if args.roi is not None else DEFAULT_SETTINGS.detector_backend
    )
    if backend == "roi" and not args.object:
        raise ValueError("--detector roi needs --object NAME (the object held in the region)")
    if args.max_pairs < 1:
        raise ValueError(f"--max-pairs must be >= 1, got {args.max_pairs}")
    if args.max_detections < 1:
        raise ValueError(f"--max-detections must be >= 1, got {args.max_detections}")
    for option, value in (
        ("--score-threshold", args.score_threshold),
        ("--min-hand-score", args.min_hand_score),
    ):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{option} must lie in [0, 1], got {value}")
    device = resolve_device(args.device, "--device")
    det = DetectionConfig(
        weights=args.detector_weights,
        side_net=args.side_net,
        device=device,
        score_threshold=args.score_threshold,
        max_detections=args.max_detections,
        max_pairs=args.max_pairs,
        allowed_objects=(args.object,) if args.object and backend != "roi" else (),
        roi=tuple(args.roi) if args.roi is not None else (0.0, 0.0, 0.0, 0.0),
        roi_object=args.object if backend == "roi" else "",
    )
    estimator = FrameEstimator.load(
        checkpoint=args.checkpoint,
        device=device,
        mano_model_path=args.mano_model,
        object_library=args.object_library,
        detection=det,
        backend=backend,
        max_pairs=args.max_pairs,
        min_hand_score=args.min_hand_score,
        runtime=args.runtime,
        runtime_provider=args.runtime_provider,
        onnx_dir=args.onnx_dir,
        onnx_precision=args.onnx_precision,
    )
    if args.object and args.object not in estimator.objects:
        raise ValueError(
            f"--object {args.object!r} is not in the object library; valid: "
            f"{', '.join(estimator.objects.names)}"
        )
    return estimator
