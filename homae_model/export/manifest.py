"""The JSON beside the exported graphs (`onnx_manifest.json`): what was exported, from what.

It records the ONNX opset, the exporter and library versions, the source checkpoint (path and
the sha256 of its weights file and of its config), the model facts the runtime needs (crop
side, SDF scale, point counts), and per graph its file, sha256 and input/output names, shapes
(a dimension is a number, or a name such as "batch" when it is dynamic) and element types.
`check` holds the export's own comparison of onnxruntime against torch on example inputs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "GRAPH_NAMES",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "WINDOW_GRAPH_NAMES",
    "ExportManifest",
    "GraphInfo",
    "TensorInfo",
    "file_sha256",
    "read_manifest",
]

MANIFEST_NAME = "onnx_manifest.json"
MANIFEST_FORMAT = "homae-onnx/2"
"""/2: `model.layout` and the window graphs (an export of /1 is re-exported, or refused)."""
GRAPH_NAMES: tuple[str, ...] = ("encoder", "sdf_hand", "sdf_obj", "heads")
"""The exported stages, one `.onnx` file each."""
WINDOW_GRAPH_NAMES: tuple[str, ...] = ("window", "pixels")
"""The further stages of layout "window" (`homae_model.export.graphs`)."""


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class TensorInfo:
    """One graph input or output.

    Attributes:
        name: ONNX value name.
        shape: per axis a size, or the name of a dynamic axis ("batch", "points", ...).
        dtype: element type ("float32").
    """

    name: str
    shape: list[int | str]
    dtype: str


@dataclass
class GraphInfo:
    """One exported stage.

    Attributes:
        file: file name inside the export folder.
        sha256: of that file.
        inputs: in the order the graph takes them.
        outputs: in the order the graph returns them.
    """

    file: str
    sha256: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]


@dataclass
class ExportManifest:
    """Everything `homae-export` records (see the module docstring).

    Attributes:
        opset: ONNX default-domain opset of every graph.
        exporter: which torch exporter wrote the graphs.
        versions: torch, onnx and onnxruntime versions at export time.
        source: `checkpoint` (path as given), `sha256` (weights file) and `config_sha256`;
            None values for a model exported from memory.
        model: image_size, feat_channels, fmap_size (of the whole F~), layout ("whole":
            the encoder graph makes F~; "window": the levels above the finest, and the
            window graphs), sdf_scale, num_hand, num_obj.
        graphs: `GRAPH_NAMES` (+ `WINDOW_GRAPH_NAMES`) -> `GraphInfo`.
        check: per graph, the largest |onnxruntime - torch| per output on example inputs.
        format: `MANIFEST_FORMAT`.
    """

    opset: int
    exporter: str
    versions: dict[str, str]
    source: dict[str, str | None]
    model: dict[str, Any]
    graphs: dict[str, GraphInfo]
    check: dict[str, dict[str, float]] = field(default_factory=dict)
    format: str = MANIFEST_FORMAT

    def write(self, folder: str | Path) -> Path:
        """Write `folder/onnx_manifest.json` (indented, stable key order); returns its path."""
        path = Path(folder) / MANIFEST_NAME
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path


def read_manifest(folder: str | Path) -> ExportManifest:
    """Read and check the manifest of an export folder.

    Raises:
        FileNotFoundError: no manifest, or a graph file it names is missing.
        ValueError: not a homae-onnx manifest, or fields missing (names the file).
    """
    path = Path(folder).expanduser() / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: not a homae-export folder (run homae-export --out {folder})"
        )
    try:
        raw = json.loads(path.read_text())
        if raw.get("format") != MANIFEST_FORMAT:
            raise ValueError(
                f"format {raw.get('format')!r}, expected {MANIFEST_FORMAT!r} (written by "
                "another version of homae-export: export the checkpoint again)"
            )
        graphs = {
            name: GraphInfo(
                file=g["file"],
                sha256=g["sha256"],
                inputs=[TensorInfo(**t) for t in g["inputs"]],
                outputs=[TensorInfo(**t) for t in g["outputs"]],
            )
            for name, g in raw["graphs"].items()
        }
        manifest = ExportManifest(
            opset=int(raw["opset"]),
            exporter=str(raw["exporter"]),
            versions=dict(raw["versions"]),
            source=dict(raw["source"]),
            model=dict(raw["model"]),
            graphs=graphs,
            check=dict(raw.get("check", {})),
        )
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a valid homae-export manifest: {err}") from err
    layout = manifest.model.get("layout")
    if layout not in ("whole", "window"):
        raise ValueError(f"{path}: model.layout {layout!r}, expected 'whole' or 'window'")
    names = GRAPH_NAMES + (WINDOW_GRAPH_NAMES if layout == "window" else ())
    missing = [n for n in names if n not in manifest.graphs]
    if missing:
        raise ValueError(f"{path}: graphs {missing} missing (expected {list(names)})")
    for name in names:
        graph_file = path.parent / manifest.graphs[name].file
        if not graph_file.is_file():
            raise FileNotFoundError(f"{path}: graph '{name}' file {graph_file} is missing")
    return manifest
