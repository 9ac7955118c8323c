"""onnxruntime as the Predictor's network runtime: `OnnxStages` runs the `homae-export` graphs.

`OnnxStages` implements `homae_model.stages.NetworkStages` with one onnxruntime session per
graph; the Predictor keeps its crop, voxel search and post-processing (torch), so only the
network calls change. Providers: "cpu" (onnxruntime's CPU provider, the default), "cuda"
and "tensorrt" (need the onnxruntime-gpu package; asking for one that is not installed is an
error, never a silent fallback). CPU threads: torch's (`torch.get_num_threads()`), so both
runtimes use the same number. Precision: "fp32" (the default, equivalent to torch) or "int8"
(`homae_model.export.quantize`: faster, not equivalent).

Layout "window" (`homae_model.export.graphs`): F~ is computed over the window of the boxes,
as the torch Predictor does; the SDF and heads graphs read that window, and points whose
bilinear taps lie beyond it get F~ at those pixels from the pixels graph (`_uncovered`).

A model with `model.hand_head.image_token`: the encoder graph's `image_token` output is kept
with the features and fed to the heads graph (whose input it is).

`onnx_stages_for_checkpoint` finds the graphs of a checkpoint: a folder the user exported
(checked against the checkpoint's sha256), or the cache, where they are exported on first use:
`$HOMAE_ONNX_CACHE`, else `$XDG_CACHE_HOME/homae_ros/onnx`, else `~/.cache/homae_ros/onnx`, one
folder per (weights sha256, config sha256, opset).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from homae_model.config import HomaeConfig
from homae_model.export.graphs import IMAGE_TOKEN
from homae_model.export.manifest import ExportManifest, file_sha256, read_manifest
from homae_model.export.quantize import PRECISIONS, quantized_folder
from homae_model.geometry.camera import project_points
from homae_model.geometry.voxels import VoxelSelection
from homae_model.model import HomaeModel
from homae_model.nn.feature_sampling import map_pixels
from homae_model.nn.feature_window import FeatureWindow, window_for_boxes, window_part
from homae_model.nn.fmap_pixels import sample_outside
from homae_model.nn.hand_head import HandLayerOutput
from homae_model.stages import HeadOutputs, StageFeatures

__all__ = [
    "PROVIDERS",
    "OnnxStages",
    "ProviderUnavailableError",
    "cache_dir",
    "onnx_stages_for_checkpoint",
    "resolve_providers",
]

PROVIDERS: dict[str, tuple[str, ...]] = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}
"""Provider choice -> onnxruntime execution providers, in priority order (the first one is
required; the later ones run what it does not support)."""


class ProviderUnavailableError(ValueError):
    """The onnxruntime provider asked for is not part of the installed onnxruntime."""


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as err:  # pragma: no cover - pinned in requirements/core.txt
        raise RuntimeError(
            "runtime 'onnxruntime' needs the onnxruntime package (requirements/core.txt; "
            "run make setup)"
        ) from err
    return onnxruntime


def resolve_providers(provider: str) -> list[str]:
    """Onnxruntime providers for a choice of `PROVIDERS`.

    Raises:
        ValueError: unknown choice.
        ProviderUnavailableError: the provider is not in this onnxruntime build (names what
            is installed and what to install).
    """
    if provider not in PROVIDERS:
        raise ValueError(f"runtime provider '{provider}'; valid: {', '.join(PROVIDERS)}")
    ort = _onnxruntime()
    available = list(ort.get_available_providers())
    wanted = PROVIDERS[provider]
    if wanted[0] not in available:
        raise ProviderUnavailableError(
            f"runtime provider '{provider}' ({wanted[0]}) is not installed: onnxruntime "
            f"{ort.__version__} offers {available}. The CUDA and TensorRT providers come with "
            "the onnxruntime-gpu package (installed instead of onnxruntime, matching the CUDA "
            "version; TensorRT also needs the TensorRT libraries)"
        )
    return [p for p in wanted if p in available]


def _session(path: Path, providers: list[str], threads: int) -> Any:
    ort = _onnxruntime()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), opts, providers=providers)


def _np(t: torch.Tensor) -> np.ndarray:
    """float32 C-contiguous host copy (or view) of a tensor."""
    return np.ascontiguousarray(t.detach().to("cpu", torch.float32).numpy())


@dataclass
class _OrtFeatures:
    """onnxruntime's form of `StageFeatures.features`.

    Attributes:
        fmap: (B,C,h,w) F~, or its window (layout "window").
        window: that window, or None (layout "whole").
        bounds: (B,4) float32 window bounds (x0, y0, x1, y1), the graphs' `window` input.
        levels: the encoder graph's levels (layout "window": `PixelsGraph`'s inputs).
        image_token: (B,d_model) the encoder graph's image token (the heads graph's input),
            or None (a model without `model.hand_head.image_token`).
    """

    fmap: np.ndarray
    window: FeatureWindow | None = None
    bounds: np.ndarray | None = None
    levels: list[np.ndarray] | None = None
    image_token: np.ndarray | None = None


class _OnnxSdf:
    """One branch's SDF graph as a voxel-search function (see `geometry.voxels.SdfFn`)."""

    supports_row = True

    def __init__(
        self, stages: OnnxStages, branch: str, feats: _OrtFeatures, K: torch.Tensor, anchor: Any
    ) -> None:
        self.stages, self.branch, self.feats, self.K = stages, branch, feats, K
        self.K_np, self.anchor = _np(K), anchor

    def __call__(self, points: torch.Tensor, row: int | None = None) -> torch.Tensor:
        """(B,M,3) points (or (1,M,3) of image `row`) -> (B,M) SDF in metres."""
        sl = slice(None) if row is None else slice(row, row + 1)
        f = self.feats
        feeds = {
            "fmap": f.fmap[sl],
            "K": self.K_np[sl],
            "anchor": self.anchor[sl],
            "points": _np(points),
        }
        if f.window is not None:
            assert f.bounds is not None
            inside, outside = self.stages._uncovered(f, self.K, points, row)
            feeds.update(window=f.bounds[sl], inside=inside, outside=outside)
        (sdf,) = self.stages._run(f"sdf_{self.branch}", ["sdf"], feeds)
        return torch.from_numpy(sdf).to(points.device)


class OnnxStages:
    """`NetworkStages` running the exported graphs with onnxruntime."""

    runtime = "onnxruntime"

    def __init__(
        self,
        folder: str | Path,
        provider: str = "cpu",
        threads: int | None = None,
        precision: str = "fp32",
    ):
        """Open the graphs of a `homae-export` folder.

        Args:
            folder: export folder (`onnx_manifest.json` + graphs).
            provider: one of `PROVIDERS`.
            threads: CPU threads per session (default: `torch.get_num_threads()`).
            precision: one of `quantize.PRECISIONS`: "fp32" (the default: equivalent to
                torch) or "int8" (faster, not equivalent: `homae_model.export.quantize`).

        Raises:
            FileNotFoundError: no manifest or a graph file missing.
            ValueError: bad manifest, provider or precision choice.
            ProviderUnavailableError: provider not installed.
        """
        if precision not in PRECISIONS:
            raise ValueError(f"onnx precision '{precision}'; valid: {', '.join(PRECISIONS)}")
        self.folder = Path(folder).expanduser()
        if precision == "int8":
            self.folder = quantized_folder(self.folder, cache_dir())
        self.manifest: ExportManifest = read_manifest(self.folder)
        self.precision = str(self.manifest.model.get("precision", "fp32"))  # of the graphs
        self.provider = provider
        self.providers = resolve_providers(provider)
        n = int(threads or torch.get_num_threads())
        self.sessions = {
            name: _session(self.folder / g.file, self.providers, n)
            for name, g in self.manifest.graphs.items()
        }
        # inputs the graph reads (the tracer drops unused ones, e.g. boxes of an anchor head
        # without `use_boxes`)
        self._inputs = {
            name: {i.name for i in sess.get_inputs()} for name, sess in self.sessions.items()
        }
        m = self.manifest.model
        self.layout = str(m["layout"])
        self.image_size = int(m["image_size"])
        self.full = (int(m["fmap_size"][0]), int(m["fmap_size"][1]))
        self.channels = int(m["feat_channels"])
        self._outputs = {
            name: [o.name for o in g.outputs] for name, g in self.manifest.graphs.items()
        }

    def _run(self, name: str, outputs: list[str] | None, feeds: dict[str, Any]) -> list[Any]:
        used = self._inputs[name]
        return self.sessions[name].run(outputs, {k: v for k, v in feeds.items() if k in used})

    def check_model(self, cfg: HomaeConfig) -> None:
        """Raise ValueError when the graphs were exported for another crop size or point count."""
        m = self.manifest.model
        want = {
            "image_size": int(cfg.model.encoder.img_size),
            "sdf_scale": float(cfg.model.points.sdf_scale),
            "num_hand": int(cfg.model.points.num_hand),
            "num_obj": int(cfg.model.points.num_obj),
        }
        wrong = {k: (m.get(k), v) for k, v in want.items() if m.get(k) != v}
        if wrong:
            raise ValueError(
                f"{self.folder}: graphs exported for another model (exported, config): {wrong}"
            )

    def encode(
        self, image: torch.Tensor, K: torch.Tensor, hand_box: torch.Tensor, obj_box: torch.Tensor
    ) -> StageFeatures:
        """Encoder graph (+ window graph): F~ (or its window, as arrays) and the anchor.

        With `model.hand_head.image_token`, the features keep the encoder graph's image token.

        Layout "window": the window holds the boxes (`window_for_boxes`, as the torch
        Predictor's `HomaeModel.encode(roi=...)`); the window graph makes it from slices of
        the encoder graph's levels.
        """
        feeds = {
            "image": _np(image),
            "K": _np(K),
            "hand_box": _np(hand_box),
            "obj_box": _np(obj_box),
        }
        names = self._outputs["encoder"]
        outs = dict(zip(names, self._run("encoder", names, feeds), strict=True))
        anchor, token = outs["anchor"], outs.get(IMAGE_TOKEN)
        if self.layout == "whole":
            feats = _OrtFeatures(outs["fmap"], image_token=token)
            return StageFeatures(feats, torch.from_numpy(anchor).to(image.device))
        levels = [outs[n] for n in names if n.startswith("level")]
        s = self.image_size
        window = window_for_boxes(
            torch.cat([hand_box, obj_box]), (s, s), self.full, 2 ** (len(levels) - 1)
        )
        parts = {}
        for name in sorted(self._inputs["window"]):
            # (B,h,w,c) channels-last -> a (B,c,h,w) view
            level = torch.from_numpy(levels[int(name.removeprefix("part"))]).permute(0, 3, 1, 2)
            factor = self.full[0] // int(level.shape[-2])
            parts[name] = np.ascontiguousarray(window_part(level, factor, window).numpy())
        (fmap,) = self._run("window", ["fmap"], parts)
        bounds = np.array([window.x0, window.y0, window.x1, window.y1], dtype=np.float32)
        bounds = np.ascontiguousarray(np.broadcast_to(bounds, (fmap.shape[0], 4)))
        feats = _OrtFeatures(fmap, window, bounds, levels, token)
        return StageFeatures(feats, torch.from_numpy(anchor).to(image.device))

    def _pixels(
        self, levels: list[np.ndarray], b: torch.Tensor, py: torch.Tensor, px: torch.Tensor
    ) -> torch.Tensor:
        """(m,C) F~ at finest-grid pixels (b, py, px) (m,) each, by the pixels graph."""
        out = torch.empty(int(b.numel()), self.channels)
        images = torch.unique(b)
        counts = [int((b == i).sum()) for i in images.tolist()]
        n = max(counts)
        pixels = np.zeros((len(counts), n, 2), dtype=np.float32)  # padded with pixel (0, 0)
        for k, i in enumerate(images.tolist()):
            sel = b == i
            pixels[k, : counts[k]] = torch.stack([py[sel], px[sel]], dim=-1).numpy()
        feeds = {f"level{j}": lv[images.numpy()] for j, lv in enumerate(levels)}
        (feats,) = self._run("pixels", ["features"], {**feeds, "pixels": pixels})
        for k, i in enumerate(images.tolist()):
            out[b == i] = torch.from_numpy(feats[k, : counts[k]])
        return out

    def _uncovered(
        self, feats: _OrtFeatures, K: torch.Tensor, points: torch.Tensor, row: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """`inside` (B,N) and `outside` (B,N,C) inputs of the windowed graphs for (B,N,3) points.

        As `HomaeModel.features`: points whose bilinear taps the window does not cover get
        F~ made at those taps' pixels (`PixelsGraph`) and sampled here (`sample_outside`).
        """
        assert feats.window is not None and feats.levels is not None
        k = K if row is None else K[row : row + 1]
        s = self.image_size
        px = map_pixels(project_points(points.to(torch.float32), k), (s, s), self.full)
        covered = feats.window.covered(px)
        b, n = int(points.shape[0]), int(points.shape[1])
        outside = np.zeros((b, n, self.channels), dtype=np.float32)
        if not bool(covered.all()):
            bi, ni = torch.nonzero(~covered, as_tuple=True)
            rows = bi if row is None else torch.full_like(bi, row)
            levels = feats.levels

            def pixels(ib: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
                return self._pixels(levels, ib, y, x)

            vals = sample_outside(pixels, px[bi, ni], rows, self.full)
            outside[bi.numpy(), ni.numpy()] = vals.numpy()
        return covered.to(torch.float32).numpy(), outside

    def sdf_fn(
        self, feats: StageFeatures, K: torch.Tensor, anchor: torch.Tensor, branch: str
    ) -> _OnnxSdf:
        """The branch's SDF graph bound to these features, K and anchor."""
        if branch not in ("hand", "obj"):
            raise ValueError(f"branch={branch!r}; valid: ['hand', 'obj']")
        return _OnnxSdf(self, branch, feats.features, K, _np(anchor))

    def heads(
        self,
        feats: StageFeatures,
        K: torch.Tensor,
        anchor: torch.Tensor,
        hand: VoxelSelection,
        obj: VoxelSelection,
    ) -> HeadOutputs:
        """Heads graph on the selected points and their SDF (and the encoder's image token).

        Raises:
            ValueError: the heads graph takes an image token the features lack.
        """
        f: _OrtFeatures = feats.features
        feeds = {
            "fmap": f.fmap,
            "K": _np(K),
            "anchor": _np(anchor),
            "hand_points": _np(hand.points),
            "hand_sdf": _np(hand.sdf),
            "obj_points": _np(obj.points),
            "obj_sdf": _np(obj.sdf),
        }
        if f.window is not None:
            feeds["window"] = f.bounds
            for name, sel in (("hand", hand), ("obj", obj)):
                inside, outside = self._uncovered(f, K, sel.points, None)
                feeds[f"{name}_inside"], feeds[f"{name}_outside"] = inside, outside
        if IMAGE_TOKEN in self._inputs["heads"]:
            if f.image_token is None:
                raise ValueError(
                    f"{self.folder}: the heads graph takes '{IMAGE_TOKEN}' but the encoder "
                    "graph gave none (an incomplete export: export the checkpoint again)"
                )
            feeds[IMAGE_TOKEN] = f.image_token
        outs = self._run("heads", None, feeds)
        rot6d, shape, offset, rotmat, trans = (torch.from_numpy(o).to(anchor.device) for o in outs)
        return HeadOutputs(HandLayerOutput(rot6d, shape, offset), rotmat, trans)


def cache_dir() -> Path:
    """Root of the exported-graph cache (see the module docstring)."""
    env = os.environ.get("HOMAE_ONNX_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "homae_ros" / "onnx"


def _check_source(manifest: ExportManifest, folder: Path, weights: Path, config: Path) -> None:
    """ValueError unless `folder` was exported from exactly these weights and config."""
    src = manifest.source
    have = {"sha256": file_sha256(weights), "config_sha256": file_sha256(config)}
    wrong = [k for k, v in have.items() if src.get(k) != v]
    if wrong:
        raise ValueError(
            f"onnx_dir {folder} was exported from checkpoint {src.get('checkpoint')} "
            f"(sha256 {str(src.get('sha256'))[:12]}...), not from {weights} "
            f"(sha256 {have['sha256'][:12]}...; differs: {wrong}): run "
            f"homae-export --checkpoint {weights} --out {folder}"
        )


def onnx_stages_for_checkpoint(
    checkpoint: str | Path,
    model: HomaeModel,
    cfg: HomaeConfig,
    provider: str = "cpu",
    onnx_dir: str | Path | None = None,
    precision: str = "fp32",
) -> OnnxStages:
    """`OnnxStages` for a loaded checkpoint: its export folder, or the cache (exported once).

    Args:
        checkpoint: the checkpoint folder or weights file `model` was loaded from.
        model: the loaded network (exported from when the cache lacks the graphs).
        cfg: its config.
        provider: one of `PROVIDERS`.
        onnx_dir: a `homae-export` folder of this checkpoint, or None (the cache).
        precision: "fp32" (default) or "int8" (`OnnxStages`).

    Raises:
        ValueError: the folder's graphs come from another checkpoint or model.
        ProviderUnavailableError: provider not installed.
        homae_model.export.onnx_export.ExportError: the checkpoint cannot be exported.
    """
    from homae_model.checkpoint import weights_file
    from homae_model.export.onnx_export import DEFAULT_OPSET, export_model

    resolve_providers(provider)  # fail before any export work
    if precision not in PRECISIONS:
        raise ValueError(f"onnx precision '{precision}'; valid: {', '.join(PRECISIONS)}")
    weights = weights_file(checkpoint)
    config = weights.parent / "config.yaml"
    if onnx_dir:
        folder = Path(onnx_dir).expanduser()
        _check_source(read_manifest(folder), folder, weights, config)
    else:
        key = f"{file_sha256(weights)[:16]}-{file_sha256(config)[:8]}-opset{DEFAULT_OPSET}"
        folder = cache_dir() / key
        try:
            read_manifest(folder)
        except (FileNotFoundError, ValueError):
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=folder.parent))
            try:
                source = {
                    "checkpoint": str(checkpoint),
                    "sha256": file_sha256(weights),
                    "config_sha256": file_sha256(config),
                }
                export_model(model, cfg, tmp, source=source)
                shutil.rmtree(folder, ignore_errors=True)  # an incomplete earlier export
                try:
                    tmp.rename(folder)
                except OSError:  # another process finished the same export first
                    pass
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    stages = OnnxStages(folder, provider, precision=precision)
    stages.check_model(cfg)
    return stages
