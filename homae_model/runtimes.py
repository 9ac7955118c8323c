"""What can run the HOMAE network: the names shared by the Predictor and the settings."""

from __future__ import annotations

RUNTIMES: tuple[str, ...] = ("torch", "onnxruntime")
"""PyTorch, or the exported ONNX graphs run by onnxruntime (`homae_model.export`)."""
