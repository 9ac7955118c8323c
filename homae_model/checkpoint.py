"""Checkpoints: `model.safetensors` (weights) + `config.yaml` (the resolved config), safe to load.

Nothing is unpickled: weights are read with safetensors, the config with `yaml.safe_load`.
Both files are written atomically (temporary file + `os.replace`). The MANO layer's buffers are
not saved (the hand model is a separate, licensed file named by `config.mano.model_path`).
`extra` (e.g. epoch, metrics) is stored as JSON in the safetensors metadata.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import safe_open
from safetensors.torch import save_file

from homae_model.config import HomaeConfig, config_to_dict, load_config
from homae_model.model import HomaeModel

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.yaml"
EXCLUDED_PREFIXES = ("mano.",)
"""State-dict keys never written to checkpoints (the hand model ships separately)."""
EXTRA_KEY = "homae_extra"


def _atomic_write(path: Path, write: Any) -> None:
    """Call `write(tmp_path)` then move the temporary file onto `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The saved part of the state dict: contiguous CPU copies, MANO buffers excluded."""
    return {
        k: v.detach().cpu().contiguous().clone()
        for k, v in model.state_dict().items()
        if not k.startswith(EXCLUDED_PREFIXES)
    }


def save_checkpoint(
    directory: str | Path,
    model: torch.nn.Module,
    cfg: HomaeConfig,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write `model.safetensors` and `config.yaml` into `directory` (created if needed).

    Args:
        directory: output folder.
        model: the `HomaeModel`.
        cfg: its resolved config.
        extra: JSON-serialisable information (epoch, metrics ...), stored as metadata.

    Returns:
        The weights file path.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    metadata = {"format": "pt", EXTRA_KEY: json.dumps(extra or {})}
    state = model_state(model)
    weights = directory / WEIGHTS_NAME
    _atomic_write(weights, lambda tmp: save_file(state, tmp, metadata=metadata))
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
    _atomic_write(directory / CONFIG_NAME, lambda tmp: Path(tmp).write_text(text))
    return weights


def _resolve(path: str | Path) -> tuple[Path, Path]:
    """(weights file, config file) of a checkpoint folder or weights file."""
    path = Path(path).expanduser()
    weights = path / WEIGHTS_NAME if path.is_dir() else path
    if not weights.is_file():
        raise FileNotFoundError(f"checkpoint weights not found: {weights}")
    config = weights.parent / CONFIG_NAME
    if not config.is_file():
        raise FileNotFoundError(f"checkpoint config not found next to the weights: {config}")
    return weights, config


def weights_file(path: str | Path) -> Path:
    """The weights file of a checkpoint folder or weights file (config.yaml must be beside it)."""
    return _resolve(path)[0]


def load_extra(path: str | Path) -> dict[str, Any]:
    """The `extra` dict stored by `save_checkpoint` (empty when none)."""
    weights, _ = _resolve(path)
    with safe_open(str(weights), framework="pt") as f:
        meta = f.metadata() or {}
    return json.loads(meta.get(EXTRA_KEY, "{}"))


def _read_state(weights: Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file; ValueError naming the file when it is unreadable."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise ValueError(
            f"{weights}: not a readable safetensors file ({exc}); checkpoints are only ever "
            "read as safetensors, never unpickled"
        ) from exc


ADDED_LATER: tuple[str, ...] = ("hand_head.rot_bias",)
"""Parameters added after weights were first published, whose initial value (zero) reproduces
the older network exactly: a file without them loads, keeping the model's initial value."""


def load_state_into(model: torch.nn.Module, weights: Path) -> None:
    """Load a safetensors file into `model`, strictly (MANO buffers and `ADDED_LATER` excepted).

    Raises:
        ValueError: not a safetensors file (e.g. a pickle, a truncated file), or missing,
            unexpected or differently shaped tensors; the message names the file and lists
            the keys.
    """
    state = _read_state(weights)
    expected = model_state(model)
    missing = sorted(k for k in set(expected) - set(state) if k not in ADDED_LATER)
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(state) & set(expected)
        if state[k].shape != expected[k].shape
    )
    if missing or unexpected or shapes:
        raise ValueError(
            f"{weights}: checkpoint does not match its config: "
            f"{len(missing)} missing {missing[:20]}, {len(unexpected)} unexpected "
            f"{unexpected[:20]}, {len(shapes)} shape mismatches {shapes[:20]}"
        )
    model.load_state_dict(state, strict=False)


def init_weights(model: torch.nn.Module, path: str | Path) -> list[str]:
    """Load a checkpoint's weights into an already built model (a fine-tuning start).

    Tensors are matched by name. Tensors the model has and the checkpoint lacks keep their
    initial values (a head added for fine-tuning, e.g. the heatmap anchor branch); checkpoint
    tensors the model lacks are ignored. Settings that hold no weights (jitter, sampling, loss
    weights) may differ freely.

    Args:
        model: the model built from the new run's config.
        path: checkpoint folder or its weights file (config.yaml beside it).

    Returns:
        Messages naming the tensors left at their initial values and those ignored (empty when
        the checkpoint matched exactly).

    Raises:
        FileNotFoundError: missing weights or config.
        ValueError: unreadable weights, a tensor whose shape differs (the network differs, not
            just a head), or no tensor in common.
    """
    weights, _ = _resolve(path)
    state = _read_state(weights)
    expected = model_state(model)
    common = sorted(set(state) & set(expected))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in common
        if state[k].shape != expected[k].shape
    ]
    if shapes or not common:
        raise ValueError(
            f"{weights}: checkpoint does not match its config: {len(shapes)} shape mismatches "
            f"{shapes[:20]}" + ("" if common else "; no tensor in common")
        )
    model.load_state_dict({k: state[k] for k in common}, strict=False)
    notes = []
    missing = sorted(set(expected) - set(state))
    unused = sorted(set(state) - set(expected))
    if missing:
        notes.append(f"{len(missing)} tensors not in {weights} keep their initial values: "
                     f"{missing[:12]}")  # fmt: skip
    if unused:
        notes.append(f"{len(unused)} tensors of {weights} are not in the model: {unused[:12]}")
    return notes


def load_model(
    path: str | Path, device: str | torch.device = "cpu", cfg: HomaeConfig | None = None
) -> tuple[HomaeModel, HomaeConfig]:
    """Build the model from the checkpoint's config and load its weights (eval mode).

    Args:
        path: checkpoint folder or its `model.safetensors`.
        device: where to put the model.
        cfg: use this config instead of the saved one (e.g. another MANO path); the weights
            must still match it.

    Returns:
        (model in eval mode, config).

    Raises:
        FileNotFoundError: missing weights or config.
        ValueError: bad config, or weights that do not match the config (keys listed).
    """
    weights, config = _resolve(path)
    cfg = load_config(config) if cfg is None else copy.deepcopy(cfg)
    cfg.model.encoder.pretrained_path = None  # the checkpoint holds the trained encoder
    model = HomaeModel(cfg)
    load_state_into(model, weights)
    return model.to(device).eval(), cfg
