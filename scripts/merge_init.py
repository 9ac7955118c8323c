#!/usr/bin/env python3
"""Write a fine-tuning start from two checkpoints: one's image path, the other's 3D heads.

    python scripts/merge_init.py IMAGE_CKPT HEADS_WEIGHTS OUT_DIR
    homae-train --config CONFIG --init OUT_DIR ...

IMAGE_CKPT is a checkpoint folder (model.safetensors + config.yaml, e.g. a `homae-pretrain`
step); HEADS_WEIGHTS a weights file (e.g. weights/demo/homae_small_synthetic.safetensors).
OUT_DIR gets IMAGE_CKPT's tensors with the 3D heads (SDF MLPs, PointNets, fusion gates, hand
and object transformers) replaced by HEADS_WEIGHTS' ones, and IMAGE_CKPT's config.yaml. The
bundled demo weights of session 12 started this way (weights/demo/README.md).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

from homae_model.cli.summary import COMPONENTS

HEADS = tuple(
    prefix
    for component in ("sdf_heads", "pointnet", "fusion", "hand_head", "object_head")
    for prefix in COMPONENTS[component]
)
"""Parameter-name prefixes of the 3D heads in `HomaeModel` (as `homae-summary` groups them)."""


def main(argv: list[str]) -> int:
    """Merge; exit 2 with a message on bad arguments or tensors that do not fit."""
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    image_dir, heads_file, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    for path in (image_dir / "model.safetensors", image_dir / "config.yaml", heads_file):
        if not path.is_file():
            print(f"merge_init: {path} not found", file=sys.stderr)
            return 2
    state = load_file(str(image_dir / "model.safetensors"))
    heads = {k: v for k, v in load_file(str(heads_file)).items() if k.startswith(HEADS)}
    bad = [k for k, v in heads.items() if k not in state or state[k].shape != v.shape]
    if bad or not heads:
        print(f"merge_init: {heads_file} heads do not fit {image_dir}: {bad[:10]}", file=sys.stderr)
        return 2
    state.update(heads)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(out / "model.safetensors"))
    shutil.copy(image_dir / "config.yaml", out / "config.yaml")
    print(
        f"{len(heads)} head tensors from {heads_file}, {len(state) - len(heads)} from {image_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
