"""The onnxruntime Predictor beside the torch one: export, equivalence figures (for `make bench`).

The benchmark's model (paper config, fitted SDF heads) is exported with `export_model` into a
temporary folder and run by `OnnxStages` (onnxruntime CPU provider, the benchmark's thread
count). The equivalence figures compare the two Predictors on the benchmark scene: joints,
object translation and rotation, anchor, and whether the voxel search spent the same number
of SDF evaluations.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from homae_model.export.onnx_export import export_model
from homae_model.export.quantize import quantized_folder
from homae_model.export.runtime import OnnxStages
from homae_model.inference import Predictor


def onnx_predictor(predictor: Predictor, folder: Path, threads: int) -> tuple[Predictor, dict]:
    """Export `predictor`'s model into `folder`; a Predictor on the same model with onnxruntime."""
    t0 = time.perf_counter()
    manifest = export_model(predictor.model, predictor.cfg, folder)
    t1 = time.perf_counter()
    stages = OnnxStages(folder, "cpu", threads=threads)
    t2 = time.perf_counter()
    info = {
        "export_seconds": round(t1 - t0, 1),
        "session_seconds": round(t2 - t1, 1),
        "opset": manifest.opset,
        "provider": "CPUExecutionProvider",
        "threads": threads,
        "graph_mb": {
            name: round((folder / g.file).stat().st_size / 2**20, 1)
            for name, g in manifest.graphs.items()
        },
        "export_check_max_abs_diff": {k: max(v.values()) for k, v in manifest.check.items()},
    }
    ort_pred = Predictor(predictor.model, predictor.cfg, predictor.device, stages)
    return ort_pred, info


def int8_predictor(predictor: Predictor, folder: Path, threads: int) -> tuple[Predictor, dict]:
    """The int8 option (`homae_model.export.quantize`) of the export in `folder`.

    The quantized graphs go to `folder/cache` (removed with the benchmark's temporary folder).
    """
    t0 = time.perf_counter()
    q_folder = quantized_folder(folder, folder / "cache")
    stages = OnnxStages(q_folder, "cpu", threads=threads)
    info = {
        "quantize_seconds": round(time.perf_counter() - t0, 1),
        "precision": stages.precision,
        "quantization": stages.manifest.model["quantization"],
        "quantized_graphs": stages.manifest.model["quantized_graphs"],
        "graph_mb": {
            name: round((q_folder / g.file).stat().st_size / 2**20, 1)
            for name, g in stages.manifest.graphs.items()
        },
    }
    return Predictor(predictor.model, predictor.cfg, predictor.device, stages), info


def rotation_difference_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two rotations from ||a - b||_F = 2 sqrt(2) sin(angle / 2).

    Precise for small angles, where arccos((trace(a^T b) - 1) / 2) of float32 matrices has a
    floor of about 0.02 degree.
    """
    chord = float(np.linalg.norm(np.asarray(a) - np.asarray(b))) / (2.0 * np.sqrt(2.0))
    return float(np.degrees(2.0 * np.arcsin(min(1.0, chord))))


def equivalence(
    torch_pred: Predictor, ort_pred: Predictor, image: np.ndarray, K: np.ndarray, pairs: list
) -> dict[str, Any]:
    """Largest onnxruntime-vs-torch differences over `pairs` of one image."""
    want = torch_pred.predict(image, K, pairs)
    got = ort_pred.predict(image, K, pairs)
    joints, trans, rot, anchor, same_evals = [], [], [], [], True
    for a, b in zip(want, got, strict=True):
        joints.append(1e3 * float(np.linalg.norm(a.joints - b.joints, axis=-1).max()))
        trans.append(1e3 * float(np.linalg.norm(a.obj_trans - b.obj_trans)))
        rot.append(rotation_difference_deg(a.obj_rot_matrix, b.obj_rot_matrix))
        anchor.append(1e3 * float(np.linalg.norm(a.anchor - b.anchor)))
        same_evals &= a.scores["sdf_evals"] == b.scores["sdf_evals"]
    return {
        "pairs": len(pairs),
        "hand_joints_max_mm": max(joints),
        "obj_trans_mm": max(trans),
        "obj_rot_deg": max(rot),
        "anchor_mm": max(anchor),
        "same_sdf_evaluations": bool(same_evals),
        "goals": {"hand_joints_max_mm": 0.5, "obj_trans_mm": 0.5, "obj_rot_deg": 0.1},
    }
