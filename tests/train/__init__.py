"""Helpers shared by the training / evaluation tests: tiny configs and tiny synthetic sets."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO / "config" / "model" / "tiny.yaml"
_CACHE: dict[tuple[int, int, int], Path] = {}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def tiny_config(folder: Path, name: str = "cfg.yaml", **sections: dict[str, Any]) -> Path:
    """Write tiny.yaml with section overrides (e.g. train={"lr": 1e-3}) into `folder`."""
    data = yaml.safe_load(TINY_CONFIG.read_text())
    data = _merge(data, sections)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def synthetic_set(folder: Path, num: int = 8, seed: int = 0, size: int = 96) -> Path:
    """A tiny synthetic set made with homae-synth (cached per process, copied to `folder`).

    The generator runs in a subprocess: its EGL/Mesa driver and the LLVM inside triton (which
    timm -> torchvision -> torch._dynamo import) crash when loaded into one process in that
    order.
    """
    key = (num, seed, size)
    if key not in _CACHE or not (_CACHE[key] / "meta.json").is_file():
        cache = Path(folder).parent / f"synth-cache-{num}-{seed}-{size}"
        if not (cache / "meta.json").is_file():
            argv = [sys.executable, "-m", "homae_model.cli.synth", "--out", str(cache)]
            argv += ["--num", str(num), "--seed", str(seed), "--size", f"{size}x{size}"]
            argv += ["--no-contact-sheet", "--quiet"]
            subprocess.run(argv, check=True, cwd=REPO, timeout=300)
        _CACHE[key] = cache
    if Path(folder).exists():
        shutil.rmtree(folder)
    shutil.copytree(_CACHE[key], folder)
    return Path(folder)
