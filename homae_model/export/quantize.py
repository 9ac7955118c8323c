"""Lower precision for the onnxruntime runtime: int8 weights of the matrix products (an option).

`precision="int8"` runs the graphs of an export folder with the weights of the big linear
layers quantized to int8 (onnxruntime's dynamic quantization: per-tensor weight scales,
activations quantized to uint8 per run, int32 accumulation): the ViT blocks of the encoder
graph and every linear layer of the heads graph. It is NOT equivalent to torch, and it is an
option, never the default ("fp32", which reproduces torch within the equivalence test's
tolerances).

What stays fp32, and why (measured on the bundled demo model, 6 synthetic frames, joints
max / median): quantizing everything moved the joints by 18 / 10 mm. The anchor head's layers
set the voxel grid's centre (6.7 mm of anchor shift); the decoder and multi-scale layers make
F~, which the SDF heads read to choose the query points (11 mm); the SDF heads themselves
choose them (12 mm); the attention products (activation x activation, quantized on both
sides) cost the heads 1-2 mm. With the policy here the demo's joints move by 2.4 / 2.1 mm,
the object translation by 9.0 / 3.3 mm and its rotation by 0.19 / 0.13 degree; the Predictor
takes about 0.65 of torch's time at the paper config (benchmarks/results.json).

The quantized graphs are written on first use into the cache (`runtime.cache_dir()`), one
folder per fp32 export (keyed by the sha256 of its manifest), never into the export folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from homae_model.export.manifest import (
    MANIFEST_NAME,
    ExportManifest,
    file_sha256,
    read_manifest,
)

__all__ = ["PRECISIONS", "QUANTIZED_GRAPHS", "linear_nodes", "quantized_folder"]

PRECISIONS = ("fp32", "int8")
"""Graph precisions of the onnxruntime runtime ("fp32": the exported graphs, the default)."""
QUANTIZED_GRAPHS = ("encoder", "heads")
"""The graphs "int8" quantizes (in the encoder graph: the ViT blocks only)."""
QUANTIZATION = (
    "onnxruntime.quantization.quantize_dynamic: int8 weights (per tensor) of the linear layers "
    "of the ViT blocks and the heads"
)
ENCODER_SCOPE = "/blocks."
"""Node-name part of the ViT blocks' layers in the encoder graph (timm's module names)."""


def linear_nodes(path: str | Path, scope: str = "") -> list[str]:
    """Names of the graph's linear layers (MatMul / Gemm by a constant weight) under `scope`.

    A product of two activations (attention) is left out. A Gemm is listed also under the
    name of the MatMul the quantizer rewrites it to.
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    consts = {i.name for i in graph.initializer}
    consts |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    names = []
    for n in graph.node:
        if n.op_type in ("MatMul", "Gemm") and n.input[1] in consts and scope in n.name:
            names.append(n.name)
            if n.op_type == "Gemm":
                names.append(f"{n.name}_MatMul")
    return names


def _quantize(src: Path, dst: Path, scope: str) -> None:
    """Write `dst`: `src`'s graph with int8 weights in its linear layers under `scope`."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # its "consider pre-processing" advice
    try:
        quantize_dynamic(
            str(src),
            str(dst),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gemm"],
            nodes_to_quantize=linear_nodes(src, scope),
        )
    finally:
        logging.getLogger().setLevel(level)


def quantized_folder(folder: str | Path, cache: str | Path) -> Path:
    """The int8 version of an export folder (written into `cache` when missing).

    Args:
        folder: a `homae-export` folder (fp32).
        cache: root of the cache (`homae_model.export.runtime.cache_dir()`).

    Returns:
        A folder with the same manifest layout: the `QUANTIZED_GRAPHS` quantized, the other
        graphs copied; its manifest's `model.precision` is "int8".

    Raises:
        FileNotFoundError / ValueError: `folder` is not a valid export (`read_manifest`).
    """
    src = Path(folder).expanduser()
    manifest = read_manifest(src)
    key = file_sha256(src / MANIFEST_NAME)[:16]
    out = Path(cache).expanduser() / f"int8-{key}"
    try:
        if read_manifest(out).model.get("precision") == "int8":
            return out
    except (FileNotFoundError, ValueError):
        pass
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".int8-{key}.", dir=out.parent))
    try:
        graphs = dict(manifest.graphs)
        for name, info in manifest.graphs.items():
            if name in QUANTIZED_GRAPHS:
                scope = ENCODER_SCOPE if name == "encoder" else ""
                _quantize(src / info.file, tmp / info.file, scope)
            else:
                shutil.copyfile(src / info.file, tmp / info.file)
            graphs[name] = type(info)(
                file=info.file,
                sha256=file_sha256(tmp / info.file),
                inputs=info.inputs,
                outputs=info.outputs,
            )
        model = {
            **manifest.model,
            "precision": "int8",
            "quantization": QUANTIZATION,
            "quantized_graphs": [n for n in QUANTIZED_GRAPHS if n in graphs],
            "fp32_export": str(src),
        }
        ExportManifest(
            opset=manifest.opset,
            exporter=manifest.exporter,
            versions=manifest.versions,
            source=manifest.source,
            model=model,
            graphs=graphs,
            check={},  # the export's torch comparison holds for fp32 only
        ).write(tmp)
        shutil.rmtree(out, ignore_errors=True)  # an incomplete earlier one
        try:
            os.rename(tmp, out)
        except OSError:  # another process finished first
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
