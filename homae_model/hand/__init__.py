"""The hand: MANO through smplx, the project's own MANO-format hand, the MANO converter.

Submodules: `constants` (joint orders, skeleton, fingertip ids; data only), `mano`
(`ManoLayer`, mirroring, `close_wrist`), `synthetic_hand` (the procedural hand and its
builder), `convert` (official chumpy pickles -> numpy). Names below are imported lazily so that
``import homae_model.hand.constants`` stays light.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

BUNDLED_MODEL_PATH = Path(__file__).resolve().parents[1] / "assets" / "hand" / "MANO_RIGHT.pkl"
"""The project's synthetic right hand, in MANO's file format."""

_LAZY = {
    "ManoLayer": "mano",
    "ManoOutput": "mano",
    "close_wrist": "mano",
    "flexion_axes": "mano",
    "load_mano_dict": "mano",
    "mirror_points": "mano",
    "mirror_pose": "mano",
    "build_synthetic_hand": "synthetic_hand",
    "save_mano_pickle": "synthetic_hand",
    "convert_mano": "convert",
    "load_mano_pickle": "convert",
}

__all__ = ["BUNDLED_MODEL_PATH", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"homae_model.hand.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'homae_model.hand' has no attribute {name!r}")
