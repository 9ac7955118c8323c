"""Training checkpoints that never lose work: atomic step folders, a `latest` link, resume state.

Layout of a run folder::

    RUN/checkpoints/step_00000120/
        model.safetensors, config.yaml   (homae_model.checkpoint: load_model / Predictor read it)
        train_state.safetensors          (every tensor: optimizer moments, RNG states, ...)
        train_state.json                 (everything else: epoch, step, position, scheduler, ...)
        manifest.json                    (size + sha256 of each file above, written last)
    RUN/latest -> checkpoints/step_00000120   (symlink, replaced atomically)

A checkpoint folder is written under a temporary name, every file is fsync'ed, then the folder is
renamed into place (atomic on POSIX) and `latest` is swapped with `os.replace`. A checkpoint counts
as good only when its manifest matches the files (a truncated or half-written file fails); resume
walks back from the newest to the newest good one and reports what it skipped.

Nothing is unpickled: tensors go through safetensors and the rest through JSON (`pack_tree`).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

CHECKPOINTS_DIR = "checkpoints"
LATEST_LINK = "latest"
STEP_PREFIX = "step_"
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.yaml"
STATE_TENSORS_FILE = "train_state.safetensors"
STATE_JSON_FILE = "train_state.json"
MANIFEST_FILE = "manifest.json"
STATE_FORMAT_VERSION = 1


class CorruptCheckpointError(RuntimeError):
    """A checkpoint folder whose files do not match its manifest (truncated, missing, edited)."""


class NoCheckpointError(FileNotFoundError):
    """A run folder without any good checkpoint."""


@dataclass
class TrainProgress:
    """Where training stands; saved in every checkpoint.

    Attributes:
        epoch: current epoch (0-based); the data order of an epoch depends on (seed, epoch).
        batch_in_epoch: batches of `epoch` already consumed (the data position to resume at).
        step: optimiser steps done in total.
        samples_seen: training samples consumed in total (all ranks).
        world_size: number of DDP processes that produced this state.
    """

    epoch: int = 0
    batch_in_epoch: int = 0
    step: int = 0
    samples_seen: int = 0
    world_size: int = 1


@dataclass
class ResumeInfo:
    """Result of looking for a checkpoint to resume from.

    Attributes:
        path: the good checkpoint folder used.
        skipped: (folder, reason) of newer checkpoints that were corrupt.
    """

    path: Path
    skipped: list[tuple[Path, str]] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------
# tensors + JSON instead of pickle
# ------------------------------------------------------------------------------------------------


def pack_tree(obj: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a nested structure into a JSON-able tree and a flat dict of tensors.

    Dicts keep non-string keys (e.g. optimizer state ids), tuples stay tuples, numpy arrays come
    back as numpy arrays.

    Args:
        obj: nested dict / list / tuple of tensors, arrays, numbers, strings, bools and None.

    Returns:
        `(tree, tensors)` for `unpack_tree`.

    Raises:
        TypeError: an unsupported leaf type (named with its path in the tree).
    """
    tensors: dict[str, torch.Tensor] = {}

    def pack(x: Any, where: str) -> Any:
        if isinstance(x, torch.Tensor):
            key = f"t{len(tensors)}"
            tensors[key] = x.detach().cpu().clone().contiguous()
            return {"__tensor__": key}
        if isinstance(x, np.ndarray):
            key = f"t{len(tensors)}"
            tensors[key] = torch.from_numpy(np.ascontiguousarray(x).copy())
            return {"__ndarray__": key}
        if isinstance(x, dict):
            return {"__dict__": [[pack(k, where), pack(v, f"{where}.{k}")] for k, v in x.items()]}
        if isinstance(x, tuple):
            return {"__tuple__": [pack(v, f"{where}[{i}]") for i, v in enumerate(x)]}
        if isinstance(x, list):
            return [pack(v, f"{where}[{i}]") for i, v in enumerate(x)]
        if isinstance(x, (np.integer, np.floating, np.bool_)):
            return x.item()
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        raise TypeError(f"cannot store {type(x).__name__} at {where or '<root>'} in a checkpoint")

    return pack(obj, ""), tensors


def unpack_tree(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `pack_tree`."""
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            return tensors[tree["__tensor__"]]
        if "__ndarray__" in tree:
            return tensors[tree["__ndarray__"]].numpy()
        if "__tuple__" in tree:
            return tuple(unpack_tree(v, tensors) for v in tree["__tuple__"])
        if "__dict__" in tree:
            return {unpack_tree(k, tensors): unpack_tree(v, tensors) for k, v in tree["__dict__"]}
        raise ValueError(f"malformed checkpoint tree node with keys {sorted(tree)}")
    if isinstance(tree, list):
        return [unpack_tree(v, tensors) for v in tree]
    return tree


# ------------------------------------------------------------------------------------------------
# RNG states
# ------------------------------------------------------------------------------------------------


def capture_rng_state() -> dict[str, Any]:
    """The python, numpy (global) and torch (CPU + CUDA) random states of this process."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002 - legacy global RNG
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore what `capture_rng_state` (after a pack/unpack round trip) returned."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (npst[0], np.asarray(npst[1], dtype=np.uint32), *npst[2:])
    )
    torch.set_rng_state(state["torch"].to(torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.to(torch.uint8) for s in state["cuda"]])


# ------------------------------------------------------------------------------------------------
# atomic folder writing
# ------------------------------------------------------------------------------------------------


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file (used for checkpoint manifests and evaluation reports)."""
    return _sha256(Path(path))


def step_dir_name(step: int) -> str:
    """`step_XXXXXXXX` folder name of a step."""
    return f"{STEP_PREFIX}{step:08d}"


def write_checkpoint(
    run_dir: str | Path,
    model: torch.nn.Module,
    cfg: Any,
    progress: TrainProgress,
    train_state: dict[str, Any],
    keep_last: int = 3,
) -> Path:
    """Write RUN/checkpoints/step_XXXXXXXX atomically, point RUN/latest at it, prune old ones.

    Args:
        run_dir: the run folder.
        model: the bare model (not the DDP wrapper).
        cfg: the resolved `HomaeConfig`.
        progress: epoch / position / step.
        train_state: optimizer, scheduler, scaler and RNG states (tensors and plain values).
        keep_last: number of newest checkpoints kept (>= 1).

    Returns:
        The final checkpoint folder.
    """
    from homae_model.checkpoint import save_checkpoint

    root = Path(run_dir) / CHECKPOINTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(progress.step)
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_checkpoint(tmp, model, cfg, {"step": progress.step, "epoch": progress.epoch})

    tree, tensors = pack_tree(train_state)
    save_file(tensors, str(tmp / STATE_TENSORS_FILE))
    payload = {"version": STATE_FORMAT_VERSION, "progress": asdict(progress), "state": tree}
    (tmp / STATE_JSON_FILE).write_text(json.dumps(payload))

    files = sorted(p.name for p in tmp.iterdir() if p.is_file() and p.name != MANIFEST_FILE)
    for name in files:
        _fsync_path(tmp / name)
    manifest = {
        name: {"size": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)} for name in files
    }
    (tmp / MANIFEST_FILE).write_text(json.dumps({"step": progress.step, "files": manifest}))
    _fsync_path(tmp / MANIFEST_FILE)
    _fsync_path(tmp)

    if final.exists():  # the same step written again (e.g. after a resume): replace it
        trash = root / f".old-{final.name}-{os.getpid()}"
        os.rename(final, trash)
        shutil.rmtree(trash)
    os.rename(tmp, final)
    _fsync_path(root)
    _point_latest(Path(run_dir), final)
    prune_checkpoints(run_dir, keep_last)
    return final


def _point_latest(run_dir: Path, target: Path) -> None:
    link = run_dir / LATEST_LINK
    tmp = run_dir / f".{LATEST_LINK}.tmp-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.relpath(target, run_dir), tmp)
    os.replace(tmp, link)
    _fsync_path(run_dir)


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoint folders of a run, oldest first (temporary folders excluded)."""
    root = Path(run_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        if p.is_dir() and p.name.startswith(STEP_PREFIX) and p.name[len(STEP_PREFIX) :].isdigit():
            found.append(p)
    return sorted(found, key=lambda p: int(p.name[len(STEP_PREFIX) :]))


def prune_checkpoints(run_dir: str | Path, keep_last: int) -> None:
    """Delete all but the `keep_last` newest checkpoints (never the one `latest` points at)."""
    keep_last = max(1, keep_last)
    ckpts = list_checkpoints(run_dir)
    link = Path(run_dir) / LATEST_LINK
    latest = link.resolve() if link.is_symlink() else None
    for old in ckpts[:-keep_last]:
        if latest is not None and old.resolve() == latest:
            continue
        shutil.rmtree(old, ignore_errors=True)


def verify_checkpoint(path: str | Path) -> None:
    """Check a checkpoint folder against its manifest.

    Raises:
        CorruptCheckpointError: naming the folder and the first bad file.
    """
    path = Path(path)
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        raise CorruptCheckpointError(f"{path}: no {MANIFEST_FILE} (incomplete checkpoint)")
    try:
        manifest = json.loads(manifest_path.read_text())["files"]
    except (ValueError, KeyError) as exc:
        raise CorruptCheckpointError(f"{manifest_path}: unreadable manifest ({exc})") from exc
    for name in (MODEL_FILE, CONFIG_FILE, STATE_TENSORS_FILE, STATE_JSON_FILE):
        if name not in manifest:
            raise CorruptCheckpointError(f"{path}: manifest does not list {name}")
    for name, info in manifest.items():
        file = path / name
        if not file.is_file():
            raise CorruptCheckpointError(f"{file}: missing")
        size = file.stat().st_size
        if size != info["size"]:
            raise CorruptCheckpointError(
                f"{file}: {size} bytes, manifest says {info['size']} (truncated?)"
            )
        if _sha256(file) != info["sha256"]:
            raise CorruptCheckpointError(f"{file}: sha256 differs from the manifest")


def resolve_checkpoint(path: str | Path, flag: str = "--checkpoint") -> Path:
    """The checkpoint (folder holding model.safetensors, or weights file) a path names.

    Args:
        path: a run folder (its newest good checkpoint), a checkpoint folder, or a
            .safetensors weights file with config.yaml beside it (e.g. weights/demo/'s).
        flag: the command-line option the path came from, for the error messages.

    Raises:
        FileNotFoundError: nothing there, or no checkpoint inside.
        NoCheckpointError: a run folder whose checkpoints are all unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{flag} {path}: no such file or folder")
    if path.is_file():
        if path.suffix != ".safetensors" or not (path.parent / CONFIG_FILE).is_file():
            raise FileNotFoundError(
                f"{flag} {path}: expected a .safetensors weights file with config.yaml "
                "beside it, or a checkpoint/run folder"
            )
        return path.parent if path.name == MODEL_FILE else path
    if (path / MODEL_FILE).is_file():
        return path
    return find_resume_checkpoint(path).path


def find_resume_checkpoint(run_dir: str | Path) -> ResumeInfo:
    """The newest good checkpoint of a run, walking back past corrupt ones.

    Args:
        run_dir: a run folder (with checkpoints/) or a checkpoint folder itself.

    Raises:
        FileNotFoundError: the folder does not exist.
        NoCheckpointError: no good checkpoint (the message lists why each one was rejected).
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise FileNotFoundError(f"run folder not found: {run_dir}")
    if (run_dir / MANIFEST_FILE).is_file() or (run_dir / MODEL_FILE).is_file():
        candidates = [run_dir]  # a checkpoint folder was given directly
    else:
        candidates = list_checkpoints(run_dir)
    skipped: list[tuple[Path, str]] = []
    for ckpt in reversed(candidates):
        try:
            verify_checkpoint(ckpt)
        except CorruptCheckpointError as exc:
            skipped.append((ckpt, str(exc)))
            continue
        return ResumeInfo(ckpt, skipped)
    reasons = "; ".join(f"{p.name}: {r}" for p, r in skipped) or "none written yet"
    raise NoCheckpointError(f"no good checkpoint in {run_dir} ({reasons})")


def load_train_state(path: str | Path) -> tuple[TrainProgress, dict[str, Any]]:
    """Read the progress and the training state of a (verified) checkpoint folder.

    Returns:
        `(progress, state)`, `state` as given to `write_checkpoint`.
    """
    path = Path(path)
    payload = json.loads((path / STATE_JSON_FILE).read_text())
    if payload.get("version") != STATE_FORMAT_VERSION:
        raise ValueError(
            f"{path / STATE_JSON_FILE}: train-state version {payload.get('version')}, "
            f"expected {STATE_FORMAT_VERSION}"
        )
    tensors = load_file(str(path / STATE_TENSORS_FILE))
    return TrainProgress(**payload["progress"]), unpack_tree(payload["state"], tensors)


def load_model_weights(path: str | Path, model: torch.nn.Module) -> None:
    """Load `model.safetensors` of a checkpoint folder into `model` (strict, clear errors).

    Raises:
        ValueError: the weights do not match the model (keys listed, file named).
    """
    from homae_model.checkpoint import load_state_into

    load_state_into(model, Path(path) / MODEL_FILE)
