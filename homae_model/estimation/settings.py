"""How one image is estimated: the settings every entry point shares, with their defaults.

The node's parameter declarations (`homae_ros/node/params.py`), `homae-bag`, `homae-infer`
(`homae_model/estimation/cli_args.py`) and `homae-eval` read their defaults from `DEFAULT_SETTINGS`,
so a frame is processed the same way everywhere unless someone asks otherwise
(`tests/ros/test_estimation_defaults.py` fails when one of them drifts).
"""

from __future__ import annotations

from dataclasses import dataclass

from homae_model.runtimes import RUNTIMES

__all__ = [
    "DEFAULT_SETTINGS",
    "DETECTOR_BACKENDS",
    "RUNTIMES",
    "RUNTIME_PROVIDERS",
    "EstimationSettings",
]

DETECTOR_BACKENDS: tuple[str, ...] = ("torchvision", "track", "roi")
"""Box sources: the detector network, tracking the previous boxes, one fixed region."""
RUNTIME_PROVIDERS: tuple[str, ...] = ("cpu", "cuda", "tensorrt")
"""onnxruntime execution providers (`homae_model.export.runtime.PROVIDERS`); "cuda" and
"tensorrt" need the onnxruntime-gpu package."""


@dataclass(frozen=True)
class EstimationSettings:
    """Thresholds, pair limits, detector choice, device and runtime of the per-image estimation.

    Attributes:
        device: "auto" (cuda when available, else cpu), "cpu", "cuda" or "cuda:N".
        runtime: one of `RUNTIMES`: PyTorch, or the exported ONNX graphs run by onnxruntime
            (same crop, voxel search and outputs).
        runtime_provider: onnxruntime provider, one of `RUNTIME_PROVIDERS` (read with
            runtime "onnxruntime" only).
        detector_backend: one of `DETECTOR_BACKENDS`.
        score_threshold: hand and object detections below this score do not pair.
        max_detections: most detections kept per image (highest scores).
        max_pairs: most hand-object pairs per image run through the model (highest scores).
        min_hand_score: pairs whose hand detection scores lower are not reported.
    """

    device: str = "auto"
    runtime: str = "torch"
    runtime_provider: str = "cpu"
    detector_backend: str = "torchvision"
    score_threshold: float = 0.3
    max_detections: int = 10
    max_pairs: int = 4
    min_hand_score: float = 0.3

    def __post_init__(self) -> None:
        """Reject values no entry point accepts (ValueError naming the field)."""
        if self.detector_backend not in DETECTOR_BACKENDS:
            raise ValueError(
                f"detector_backend '{self.detector_backend}'; valid: {', '.join(DETECTOR_BACKENDS)}"
            )
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime '{self.runtime}'; valid: {', '.join(RUNTIMES)}")
        if self.runtime_provider not in RUNTIME_PROVIDERS:
            raise ValueError(
                f"runtime_provider '{self.runtime_provider}'; valid: {', '.join(RUNTIME_PROVIDERS)}"
            )
        for name in ("score_threshold", "min_hand_score"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        for name in ("max_detections", "max_pairs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


DEFAULT_SETTINGS = EstimationSettings()
"""The defaults of the node, homae-bag, homae-infer and homae-eval."""
