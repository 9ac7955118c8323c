"""`homae-summary CONFIG`: parameter counts and output shapes of a HOMAE config, as JSON.

Builds the model from the config (no pretrained weights are read), counts the parameters of each
component, runs one training-mode forward pass on a random batch and prints one JSON object to
stdout: {"config", "feat_channels", "params": {component: count, ..., "total"}, "shapes":
{name: [dims]}}.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import torch

from homae_model.cli.overrides import add_overrides_argument
from homae_model.config import HomaeConfig, load_config
from homae_model.model import HomaeModel

COMPONENTS = {
    "encoder": ("encoder.vit.", "encoder.cnn."),
    "encoder_proj": ("encoder.proj.", "encoder.pool_proj."),
    "decoder": ("decoder.",),
    "multiscale": ("multiscale.",),
    "sdf_heads": ("sdf_hand.", "sdf_obj."),
    "pointnet": ("pointnet_hand.", "pointnet_obj."),
    "fusion": ("fusion_hand.", "fusion_obj."),
    "hand_head": ("hand_head.",),
    "object_head": ("object_head.",),
    "anchor_head": ("anchor_head.",),
    "mano": ("mano.",),
}
"""Summary components -> parameter-name prefixes in `HomaeModel`."""


def parameter_counts(model: HomaeModel) -> dict[str, int]:
    """Parameters per component, `total` and `trainable`.

    `encoder` is the ViT (or CNN) backbone alone, `encoder_proj` its projections to `feat_dim`.
    The frozen MANO layer's buffers are not parameters; its few frozen smplx parameters count as
    `mano`.
    """
    counts = dict.fromkeys(COMPONENTS, 0)
    total = trainable = 0
    for name, p in model.named_parameters():
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
        for comp, prefixes in COMPONENTS.items():
            if name.startswith(prefixes):
                counts[comp] += p.numel()
    counts["total"] = total
    counts["trainable"] = trainable
    return counts


def random_batch(cfg: HomaeConfig, batch_size: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random batch with every key of the training dict (docs/design.md) at the config's sizes.

    The crop K is centred (f = 1.5 S), the hand root 0.5 m in front of the camera; labels are
    random but shaped and scaled like real ones (metres, axis-angle). For summaries and tests.
    """
    s = cfg.model.encoder.img_size
    nh, no = cfg.data.num_hand_points, cfg.data.num_obj_points
    g = torch.Generator().manual_seed(seed)
    b = batch_size

    def rnd(*shape: int, std: float = 1.0) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * std

    f = 1.5 * s
    K = torch.tensor([[f, 0.0, (s - 1) / 2], [0.0, f, (s - 1) / 2], [0.0, 0.0, 1.0]])
    anchor = torch.tensor([0.0, 0.0, 0.5]) + rnd(b, 3, std=0.01)
    obj_trans = anchor + rnd(b, 3, std=0.03)
    clamp = cfg.data.sdf_clamp
    return {
        "image": torch.rand(b, 3, s, s, generator=g),
        "K": K.expand(b, 3, 3).clone(),
        "hand_joints": anchor[:, None] + rnd(b, 21, 3, std=0.04),
        "hand_verts": anchor[:, None] + rnd(b, 778, 3, std=0.04),
        "mano_pose": rnd(b, 48, std=0.3),
        "mano_shape": rnd(b, 10, std=0.5),
        "obj_rot": rnd(b, 3, std=1.0),
        "obj_trans": obj_trans,
        "obj_id": torch.zeros(b, dtype=torch.int64),
        "obj_corners": obj_trans[:, None] + rnd(b, 8, 3, std=0.05),
        "hand_box": torch.tensor([s * 0.2, s * 0.2, s * 0.6, s * 0.6]).expand(b, 4).clone(),
        "obj_box": torch.tensor([s * 0.3, s * 0.3, s * 0.7, s * 0.7]).expand(b, 4).clone(),
        "hand_points": anchor[:, None] + rnd(b, nh, 3, std=0.05),
        "hand_sdf": rnd(b, nh, std=0.02).clamp(-clamp, clamp),
        "obj_points": obj_trans[:, None] + rnd(b, no, 3, std=0.05),
        "obj_sdf": rnd(b, no, std=0.02).clamp(-clamp, clamp),
        "anchor": anchor,
        "hand_visible": torch.ones(b),
        "obj_visible": torch.ones(b),
    }


def summarize(cfg: HomaeConfig, config_name: str = "") -> dict[str, Any]:
    """Parameter counts and training-mode output shapes of `cfg`'s model."""
    cfg.model.encoder.pretrained_path = None
    torch.manual_seed(0)
    model = HomaeModel(cfg).train()
    batch = random_batch(cfg)
    with torch.no_grad():
        out = model(batch)
    shapes = {
        "joints": out.joints,
        "vertices": out.vertices,
        "mano_pose": out.mano_pose,
        "mano_shape": out.mano_shape,
        "obj_rot": out.obj_rot,
        "obj_trans": out.obj_trans,
        "hand_sdf": out.hand_sdf,
        "obj_sdf": out.obj_sdf,
        "recon": out.recon,
    }
    result_shapes = {k: list(v.shape) for k, v in shapes.items() if v is not None}
    return {
        "config": config_name,
        "feat_channels": cfg.model.decoder.feat_channels,
        "params": parameter_counts(model),
        "shapes": result_shapes,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `homae-summary`; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="homae-summary", description="Parameter counts and output shapes of a HOMAE config."
    )
    parser.add_argument("config", help="model config YAML, e.g. config/model/paper.yaml")
    add_overrides_argument(
        parser,
        "CONFIG",
        "homae-summary config/model/small.yaml model.encoder.depth=2 model.aux.enabled=false",
    )
    args = parser.parse_intermixed_args(argv)
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    try:
        cfg = load_config(args.config, args.overrides)
        summary = summarize(cfg, args.config)
    except (FileNotFoundError, ValueError) as exc:
        print(f"homae-summary: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
