"""Find the HOMAE weights to evaluate: run, checkpoint or weights folder, or a weights file."""

from __future__ import annotations

from pathlib import Path

from homae_model.training.state import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    MODEL_FILE,
    resolve_checkpoint,
)

DETECTOR_METADATA_KEYS = ("homae_detector", "homae_side_net")
"""safetensors metadata keys of the box detector's and the hand-side network's weights (not
HOMAE checkpoints)."""


def _is_detector_file(path: Path) -> bool:
    try:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            return any(key in meta for key in DETECTOR_METADATA_KEYS)
    except Exception:  # unreadable: not ours to judge here; loading reports it
        return False


def resolve_weights(path: str | Path, flag: str = "--checkpoint") -> Path:
    """`training.state.resolve_checkpoint`, plus weights folders such as ``weights/demo``.

    A weights folder holds one HOMAE ``*.safetensors`` file (any name; the box detector's and
    the hand-side network's weights beside it are recognised by their metadata and skipped)
    and ``config.yaml``; the weights file is returned. Run folders (``checkpoints/``) and
    checkpoint folders (``model.safetensors``) resolve as before.

    Args:
        path: run folder, checkpoint folder, weights folder or weights file.
        flag: the command-line option the path came from, for the error messages.

    Returns:
        A checkpoint folder or a weights file with config.yaml beside it.

    Raises:
        FileNotFoundError: nothing usable there (the message says what each kind needs).
    """
    path = Path(path)
    if not path.is_dir() or (path / MODEL_FILE).is_file() or (path / CHECKPOINTS_DIR).is_dir():
        return resolve_checkpoint(path, flag)
    weights = [p for p in sorted(path.glob("*.safetensors")) if not _is_detector_file(p)]
    if not weights:
        raise FileNotFoundError(
            f"{flag} {path}: not a run folder (no {CHECKPOINTS_DIR}/), a checkpoint folder (no "
            f"{MODEL_FILE}) or a weights folder (no *.safetensors with {CONFIG_FILE}); pass the "
            "run folder, the checkpoint folder or the .safetensors weights file"
        )
    if len(weights) > 1:
        names = ", ".join(p.name for p in weights)
        raise FileNotFoundError(
            f"{flag} {path}: several weights files ({names}); pass the one to evaluate"
        )
    if not (path / CONFIG_FILE).is_file():
        raise FileNotFoundError(
            f"{flag} {path}: weights {weights[0].name} without {CONFIG_FILE} beside them"
        )
    return weights[0]
