"""Export the network's stages to ONNX (`homae-export`) and check each graph against torch.

Four graphs (`homae_model.export.graphs`): `encoder` (crops -> feature map + anchor),
`sdf_hand` / `sdf_obj` (the voxel search's SDF functions) and `heads` (fusion + transformer
heads at the selected points); for a model whose F~ the torch Predictor computes over the
boxes' window (layout "window": no image skip, no heatmap anchor), the encoder graph stops
above the finest decoder level and two more graphs make the window of F~ (`window`) and F~ at
single pixels beyond it (`pixels`). With `model.hand_head.image_token`, the encoder graph
also outputs the hand head's `image_token` (B,d_model), an input of the heads graph. The
voxel search, MANO and the scores stay in the Predictor (torch), between the graphs. Batch,
point-count and window axes are dynamic; the crop side is fixed by the checkpoint's config.

The graphs are traced by torch's TorchScript-based exporter (`dynamo=False`: it needs no
onnxscript and handles the network's ops at opset 17: GridSample, LayerNormalization,
scaled dot-product attention as MatMul/Softmax). Each graph is then checked: `onnx.checker`,
and onnxruntime (CPU) against torch on example inputs of another batch size and point count
than the traced ones, so that a shape frozen by tracing fails here rather than at run time.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from homae_model.bundled import DEMO_CHECKPOINT_NAME
from homae_model.checkpoint import CONFIG_NAME, WEIGHTS_NAME
from homae_model.config import HomaeConfig
from homae_model.export.graphs import (
    IMAGE_TOKEN,
    EncoderGraph,
    EncoderLevelsGraph,
    HeadsGraph,
    PixelsGraph,
    SdfGraph,
    WindowGraph,
    level_factors,
    window_level_ids,
    windowed_layout,
)
from homae_model.export.manifest import (
    GRAPH_NAMES,
    MANIFEST_NAME,
    WINDOW_GRAPH_NAMES,
    ExportManifest,
    GraphInfo,
    TensorInfo,
    file_sha256,
)
from homae_model.model import HomaeModel
from homae_model.nn.feature_window import window_for_boxes, window_part

__all__ = [
    "DEFAULT_OPSET",
    "ExportError",
    "export_checkpoint",
    "export_model",
    "resolve_checkpoint",
]

DEFAULT_OPSET = 17
"""ONNX opset of the graphs (GridSample needs >= 16, LayerNormalization >= 17)."""
EXPORTER = "torch.onnx.export (TorchScript tracer, dynamo=False)"
CHECK_RTOL = 1e-3
"""Largest |onnxruntime - torch| accepted at export, relative to the output's largest value."""
CHECK_ATOL = 1e-4


class ExportError(ValueError):
    """A checkpoint or stage that cannot be exported; the message says which and why."""


def resolve_checkpoint(path: str | Path) -> Path:
    """The weights file of a checkpoint argument: a `.safetensors` file or a folder.

    A folder gives its `model.safetensors` (what training writes) or, failing that, the bundled
    demo's `homae_small_synthetic.safetensors` (so `weights/demo` works). `config.yaml` must be
    beside the weights (checked when the model is loaded).

    Raises:
        FileNotFoundError: nothing usable at `path` (the message lists what the folder holds).
    """
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if p.is_dir():
        for name in (WEIGHTS_NAME, DEMO_CHECKPOINT_NAME):
            if (p / name).is_file():
                return p / name
        found = sorted(x.name for x in p.glob("*.safetensors"))
        raise FileNotFoundError(
            f"checkpoint folder {p} holds neither {WEIGHTS_NAME} nor {DEMO_CHECKPOINT_NAME}"
            + (f"; name one of its weights files instead: {found}" if found else "")
        )
    raise FileNotFoundError(f"checkpoint {p} does not exist")


def _examples(
    model: HomaeModel, batch: int, n_hand: int, n_obj: int, seed: int, windowed: bool
) -> dict:
    """Plausible inputs of every graph: a crop, its K and boxes, points around the anchor.

    Layout "window" (`windowed`) adds the levels, their window slices, the window of F~ and
    its bounds, features of uncovered points (every 7th point) and pixels for `PixelsGraph`.
    With `model.hand_head.image_token`, `image_token` is the encoder graph's token.
    """
    s = int(model.cfg.model.encoder.img_size)
    dev = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, s, s, generator=g)
    f = 1.2 * s
    K = torch.tensor([[f, 0.0, (s - 1) / 2], [0.0, f, (s - 1) / 2], [0.0, 0.0, 1.0]])
    K = K.expand(batch, 3, 3).contiguous()
    shrink = 0.05 * seed  # another window size for another seed (dynamic window axes)
    hand_box = torch.tensor([0.30, 0.30, 0.60 - shrink, 0.65]) * s
    hand_box = hand_box + torch.rand(batch, 4, generator=g)
    obj_box = torch.tensor([0.45, 0.35, 0.85 - shrink, 0.80]) * s
    obj_box = obj_box + torch.rand(batch, 4, generator=g)
    ex: dict[str, Any] = {
        "image": image.to(dev),
        "K": K.to(dev),
        "hand_box": hand_box.to(dev),
        "obj_box": obj_box.to(dev),
    }
    args = (ex["image"], ex["K"], ex["hand_box"], ex["obj_box"])
    with torch.no_grad():
        if not windowed:
            fmap, anchor, *token = EncoderGraph(model).eval()(*args)
        else:
            n = len(model.decoder.stages)
            outs = EncoderLevelsGraph(model).eval()(*args)
            levels, anchor, token = list(outs[:n]), outs[n], list(outs[n + 1 :])
            factors = level_factors(model)
            full = (int(levels[-1].shape[1]) * 2, int(levels[-1].shape[2]) * 2)
            boxes = torch.cat([ex["hand_box"], ex["obj_box"]])
            window = window_for_boxes(boxes, (s, s), full, factors[0] // 2)
            for i, level in enumerate(levels):
                ex[f"level{i}"] = level
            levels = [x.permute(0, 3, 1, 2) for x in levels]  # channels-last -> (B,c,h,w)
            parts = [window_part(levels[i], factors[i], window) for i in window_level_ids(model)]
            for i, part in zip(window_level_ids(model), parts, strict=True):
                ex[f"part{i}"] = part.contiguous()
            fmap = WindowGraph(model).eval()(*parts)
            bounds = [window.x0, window.y0, window.x1, window.y1]
            ex["window"] = torch.tensor(bounds, dtype=torch.float32).expand(batch, 4).to(dev)
            pix = torch.randint(0, min(full), (batch, 11, 2), generator=g)
            ex["pixels"] = pix.to(torch.float32).to(dev)
    ex["fmap"], ex["anchor"] = fmap, anchor
    if token:
        ex[IMAGE_TOKEN] = token[0]
    c = int(fmap.shape[1])
    for name, n in (("hand", n_hand), ("obj", n_obj)):
        pts = anchor[:, None, :] + 0.06 * torch.randn(batch, n, 3, generator=g).to(dev)
        ex[f"{name}_points"] = pts
        ex[f"{name}_sdf"] = 0.01 * torch.randn(batch, n, generator=g).to(dev)
        inside = (torch.arange(n) % 7 != 3).to(torch.float32).expand(batch, n).contiguous()
        outside = torch.randn(batch, n, c, generator=g) * (1.0 - inside[..., None])
        ex[f"{name}_inside"], ex[f"{name}_outside"] = inside.to(dev), outside.to(dev)
    ex["points"] = ex["hand_points"]
    ex["inside"], ex["outside"] = ex["hand_inside"], ex["hand_outside"]
    return ex


def _specs(model: HomaeModel, full: tuple[int, int] | None) -> dict[str, dict[str, Any]]:
    """Per graph: module, input names, output names, dynamic axes (layout "window": `full`)."""
    batch = {0: "batch"}
    spatial = {0: "batch", 2: "window_rows", 3: "window_cols"}
    fmap_axes = batch if full is None else spatial
    heads_out = ["hand_rot6d", "hand_shape", "hand_root_offset", "obj_rotmat", "obj_trans"]
    heads = HeadsGraph(model, full)
    token = [IMAGE_TOKEN] if model.image_token is not None else []
    sdf_in = ["fmap", "K", "anchor", "points"]
    point_axes = {
        "hand_points": {0: "batch", 1: "hand_points"},
        "hand_sdf": {0: "batch", 1: "hand_points"},
        "obj_points": {0: "batch", 1: "obj_points"},
        "obj_sdf": {0: "batch", 1: "obj_points"},
    }
    if full is not None:
        sdf_in += ["window", "inside", "outside"]
        for name in ("hand", "obj"):
            point_axes[f"{name}_inside"] = point_axes[f"{name}_sdf"]
            point_axes[f"{name}_outside"] = point_axes[f"{name}_sdf"]
    if full is None:
        encoder = {
            "module": EncoderGraph(model),
            "inputs": ["image", "K", "hand_box", "obj_box"],
            "outputs": ["fmap", "anchor", *token],
        }
    else:
        levels = [f"level{i}" for i in range(len(model.decoder.stages))]
        encoder = {
            "module": EncoderLevelsGraph(model),
            "inputs": ["image", "K", "hand_box", "obj_box"],
            "outputs": [*levels, "anchor", *token],
        }
    encoder["dynamic"] = {n: batch for n in (*encoder["inputs"], *encoder["outputs"])}
    specs: dict[str, dict[str, Any]] = {
        "encoder": encoder,
        "heads": {
            "module": heads,
            "inputs": list(heads.input_names),
            "outputs": heads_out,
            "dynamic": {
                **{n: batch for n in ("K", "anchor", "window", *token, *heads_out)},
                "fmap": fmap_axes,
                **point_axes,
            },
        },
    }
    for branch in ("hand", "obj"):
        specs[f"sdf_{branch}"] = {
            "module": SdfGraph(model, branch, full),
            "inputs": sdf_in,
            "outputs": ["sdf"],
            "dynamic": {
                **{n: batch for n in ("K", "anchor", "window")},
                "fmap": fmap_axes,
                "points": {0: "batch", 1: "points"},
                "inside": {0: "batch", 1: "points"},
                "outside": {0: "batch", 1: "points"},
                "sdf": {0: "batch", 1: "points"},
            },
        }
    names = GRAPH_NAMES
    if full is not None:
        parts = [f"part{i}" for i in window_level_ids(model)]
        specs["window"] = {
            "module": WindowGraph(model),
            "inputs": parts,
            "outputs": ["fmap"],
            "dynamic": {**{n: spatial for n in parts}, "fmap": spatial},
        }
        specs["pixels"] = {
            "module": PixelsGraph(model),
            "inputs": [*levels, "pixels"],
            "outputs": ["features"],
            "dynamic": {
                **{n: batch for n in levels},
                "pixels": {0: "batch", 1: "pixels"},
                "features": {0: "batch", 1: "pixels"},
            },
        }
        names = (*GRAPH_NAMES, *WINDOW_GRAPH_NAMES)
    return {name: specs[name] for name in names}


def _tensor_infos(
    values: Sequence[Any], examples: dict[str, torch.Tensor], dynamic: dict[str, dict[int, str]]
) -> list[TensorInfo]:
    """Names, shapes and element types of ONNX graph values.

    An axis is named when it was exported as dynamic, else it has the traced example's size
    (the graph's own shape annotation can leave fixed axes unnamed-symbolic after slicing).
    """
    from onnx import helper

    infos = []
    for v in values:
        axes = dynamic.get(v.name, {})
        size = tuple(examples[v.name].shape)
        shape: list[int | str] = [axes.get(i, int(n)) for i, n in enumerate(size)]
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)).name
        infos.append(TensorInfo(name=v.name, shape=shape, dtype=dtype))
    return infos


def _check_graph(
    name: str, path: Path, spec: dict[str, Any], ex: dict[str, Any]
) -> dict[str, float]:
    """onnx.checker + onnxruntime (CPU) vs torch on `ex`; largest |difference| per output."""
    import onnx
    import onnxruntime as ort

    try:
        onnx.checker.check_model(str(path))
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        used = {i.name for i in sess.get_inputs()}  # the tracer drops unused inputs
        feeds = {n: ex[n].detach().cpu().numpy() for n in spec["inputs"] if n in used}
        got = sess.run(None, feeds)
    except Exception as err:  # onnx / onnxruntime raise their own exception types
        raise ExportError(
            f"graph '{name}' ({path}) does not load or run in onnxruntime: {err}"
        ) from err
    if IMAGE_TOKEN in spec["inputs"] and IMAGE_TOKEN not in used:
        raise ExportError(f"graph '{name}' ({path}) does not read its input '{IMAGE_TOKEN}'")
    with torch.no_grad():
        want = spec["module"](*[ex[n] for n in spec["inputs"]])
    want = want if isinstance(want, tuple) else (want,)
    diffs = {}
    for out_name, a, b in zip(spec["outputs"], got, want, strict=True):
        ref = b.detach().cpu().numpy()
        if a.shape != ref.shape:
            raise ExportError(
                f"graph '{name}': output '{out_name}' has shape {a.shape} in onnxruntime but "
                f"{ref.shape} in torch (an axis was frozen by tracing)"
            )
        diff = float(np.max(np.abs(a - ref))) if ref.size else 0.0
        tol = CHECK_ATOL + CHECK_RTOL * float(np.max(np.abs(ref), initial=0.0))
        if not np.isfinite(diff) or diff > tol:
            raise ExportError(
                f"graph '{name}': onnxruntime differs from torch on output '{out_name}' by "
                f"{diff:.3g} (tolerance {tol:.3g})"
            )
        diffs[out_name] = diff
    return diffs


def export_model(
    model: HomaeModel,
    cfg: HomaeConfig,
    out_dir: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    source: dict[str, str | None] | None = None,
) -> ExportManifest:
    """Write the four stage graphs and `onnx_manifest.json` into `out_dir`.

    Args:
        model: the network (any device; exported from a CPU copy, left in eval mode).
        cfg: its config.
        out_dir: folder, created when missing; earlier graphs there are replaced.
        opset: ONNX opset (>= 17).
        source: `checkpoint`, `sha256`, `config_sha256` of the checkpoint the model came from
            (recorded in the manifest; None: an in-memory model).

    Returns:
        The manifest written.

    Raises:
        ExportError: a stage cannot be traced or converted at this opset, or its graph does
            not reproduce torch (the message names the stage and the reason).
    """
    import onnx
    import onnxruntime as ort

    if opset < DEFAULT_OPSET:
        raise ExportError(f"opset {opset}: the graphs need opset >= {DEFAULT_OPSET}")
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST_NAME).unlink(missing_ok=True)  # no manifest until every graph is written
    model.eval()
    if next(model.parameters()).device.type != "cpu":
        model = copy.deepcopy(model).cpu()
    windowed = windowed_layout(model)
    nh, no = cfg.model.points.num_hand, cfg.model.points.num_obj
    trace_ex = _examples(model, 2, nh, no, seed=0, windowed=windowed)
    check_ex = _examples(model, 3, nh + 7, max(no - 5, 1), seed=1, windowed=windowed)
    full = None
    if windowed:
        last = trace_ex[f"level{len(model.decoder.stages) - 1}"]  # (B,h,w,c)
        full = (int(last.shape[1]) * 2, int(last.shape[2]) * 2)
    specs = _specs(model, full)
    graphs: dict[str, GraphInfo] = {}
    check: dict[str, dict[str, float]] = {}
    for name, spec in specs.items():
        path = out / f"{name}.onnx"
        module: nn.Module = spec["module"].eval()
        args = tuple(trace_ex[n] for n in spec["inputs"])
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer and deprecation warnings
                torch.onnx.export(
                    module,
                    args,
                    str(path),
                    dynamo=False,
                    opset_version=opset,
                    input_names=spec["inputs"],
                    output_names=spec["outputs"],
                    dynamic_axes=spec["dynamic"],
                )
        except Exception as err:  # the exporter raises many types (UnsupportedOperatorError..)
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ExportError(
                f"stage '{name}' cannot be exported to ONNX opset {opset}: {first}"
            ) from err
        finally:
            model.eval()
        check[name] = _check_graph(name, path, spec, check_ex)
        proto = onnx.load(str(path), load_external_data=False)
        with torch.no_grad():
            outs = module(*args)
        outs = outs if isinstance(outs, tuple) else (outs,)
        values = {**trace_ex, **dict(zip(spec["outputs"], outs, strict=True))}
        graphs[name] = GraphInfo(
            file=path.name,
            sha256=file_sha256(path),
            inputs=_tensor_infos(proto.graph.input, values, spec["dynamic"]),
            outputs=_tensor_infos(proto.graph.output, values, spec["dynamic"]),
        )
    fmap_size = list(full) if full else [int(n) for n in trace_ex["fmap"].shape[2:]]
    manifest = ExportManifest(
        opset=opset,
        exporter=EXPORTER,
        versions={
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
        },
        source=dict(source)
        if source
        else {"checkpoint": None, "sha256": None, "config_sha256": None},
        model={
            "image_size": int(cfg.model.encoder.img_size),
            "feat_channels": int(trace_ex["fmap"].shape[1]),
            "fmap_size": fmap_size,
            "layout": "window" if windowed else "whole",
            "sdf_scale": float(cfg.model.points.sdf_scale),
            "num_hand": int(nh),
            "num_obj": int(no),
        },
        graphs=graphs,
        check=check,
    )
    manifest.write(out)
    return manifest


def export_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    mano_path: str | Path | None = None,
) -> ExportManifest:
    """Load a checkpoint (CPU) and `export_model` it, recording its path and sha256.

    Args:
        checkpoint: `.safetensors` weights file or checkpoint folder (`resolve_checkpoint`).
        out_dir: output folder.
        opset: ONNX opset.
        mano_path: hand model file overriding the config's (the graphs do not contain MANO,
            but building the model reads it).

    Raises:
        ExportError: the checkpoint cannot be found, loaded or exported (says why).
    """
    from homae_model.checkpoint import load_model
    from homae_model.config import load_config

    try:
        weights = resolve_checkpoint(checkpoint)
        config = weights.parent / CONFIG_NAME
        cfg = None
        if mano_path is not None:
            cfg = load_config(config)
            cfg.mano.model_path = str(Path(mano_path).expanduser().resolve())
        model, cfg = load_model(weights, "cpu", cfg)
    except (FileNotFoundError, ValueError, OSError) as err:
        raise ExportError(f"checkpoint {checkpoint} cannot be exported: {err}") from err
    source = {
        "checkpoint": str(checkpoint),
        "sha256": file_sha256(weights),
        "config_sha256": file_sha256(config),
    }
    return export_model(model, cfg, out_dir, opset=opset, source=source)
