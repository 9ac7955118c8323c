"""Lower precision for the onnxruntime runtime: int8 weights of the matrix products (an option).

`precision="int8"` runs the graphs of an export folder with their MatMul weights quantized to
int8 (onnxruntime's dynamic quantization: per-tensor weight scales, activations quantized to
uint8 per run, int32 accumulation). It is about 1.7x faster than fp32 on a CPU with AVX-512
VNNI, but it is NOT equivalent to torch: on the benchmark model (paper config) the joints
move by a few millimetres (benchmarks/results.json, `onnxruntime.int8`), and on the bundled
demo model by about 10 mm (median of 6 synthetic frames; 18 mm at most), mostly through the
encoder's and the SDF heads' graphs (the SDF values choose the query points); with the heads'
graph alone quantized the demo's joints move by about 2 mm. The default precision is "fp32",
which reproduces torch within the equivalence test's tolerances.

The quantized graphs are written on first use into the cache (`runtime.cache_dir()`), one
folder per fp32 export (keyed by the sha256 of its manifest), never into the export folder.
The window and pixels graphs (small, with dynamic spatial axes) stay fp32.
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

__all__ = ["PRECISIONS", "QUANTIZED_GRAPHS", "quantized_folder"]

PRECISIONS = ("fp32", "int8")
"""Graph precisions of the onnxruntime runtime ("fp32": the exported graphs, the default)."""
QUANTIZED_GRAPHS = ("encoder", "heads", "sdf_hand", "sdf_obj")
"""The graphs whose MatMul weights "int8" quantizes (nearly all of the network's work)."""
QUANTIZATION = "onnxruntime.quantization.quantize_dynamic: MatMul weights int8 (per tensor)"


def _quantize(src: Path, dst: Path) -> None:
    """Write `dst`: `src`'s graph with int8 MatMul weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"]
    )


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
                _quantize(src / info.file, tmp / info.file)
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
