#!/usr/bin/env python3
"""Average the weights of several checkpoints of one run (Polyak / SWA-style averaging).

    python scripts/average_checkpoints.py OUT_DIR CKPT [CKPT ...]
    homae-eval --checkpoint OUT_DIR --data HELD_OUT ...

Each CKPT is a checkpoint folder (model.safetensors + config.yaml), e.g.
runs/RUN/checkpoints/step_00001000. OUT_DIR gets the element-wise mean of their floating-point
tensors (computed in float64, stored in each tensor's own dtype), the integer tensors (e.g.
BatchNorm's num_batches_tracked) and config.yaml of the last CKPT. The checkpoints must hold
the same tensors with the same shapes (one network); the averaged BatchNorm running statistics
are the mean of the checkpoints' statistics, not re-estimated. Late checkpoints of one run
average out the step-to-step noise of the last steps (weights/demo/README.md).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def average_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of floating-point tensors; the last state's other tensors.

    Args:
        states: one state dict per checkpoint, the same names and shapes in each.

    Returns:
        The averaged state dict.

    Raises:
        ValueError: no states, or names / shapes / dtypes that differ (named).
    """
    if not states:
        raise ValueError("no checkpoints to average")
    ref = states[-1]
    for i, st in enumerate(states):
        if set(st) != set(ref):
            diff = sorted(set(st) ^ set(ref))[:5]
            raise ValueError(f"checkpoint {i + 1} holds other tensors than the last: {diff}")
        bad = [k for k, v in st.items() if v.shape != ref[k].shape or v.dtype != ref[k].dtype]
        if bad:
            raise ValueError(f"checkpoint {i + 1}: shape or dtype differs for {bad[:5]}")
    out = {}
    for name, last in ref.items():
        if last.is_floating_point():
            acc = torch.stack([st[name].to(torch.float64) for st in states]).mean(dim=0)
            out[name] = acc.to(last.dtype).contiguous()
        else:
            out[name] = last.contiguous()
    return out


def main(argv: list[str]) -> int:
    """Average; exit 2 with a message naming the file on bad arguments or mismatches."""
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    out, ckpts = Path(argv[0]), [Path(p) for p in argv[1:]]
    for ckpt in ckpts:
        for path in (ckpt / "model.safetensors", ckpt / "config.yaml"):
            if not path.is_file():
                print(f"average_checkpoints: {path} not found", file=sys.stderr)
                return 2
    try:
        state = average_states([load_file(str(c / "model.safetensors")) for c in ckpts])
    except ValueError as exc:
        print(f"average_checkpoints: {exc} ({', '.join(map(str, ckpts))})", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / "model.safetensors"))
    shutil.copy(ckpts[-1] / "config.yaml", out / "config.yaml")
    print(f"{out}: mean of {len(ckpts)} checkpoints, {len(state)} tensors")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
