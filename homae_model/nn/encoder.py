"""DINOv2 ViT encoder (timm), paper eq. 8: F = E(I_m) in R^{H/14 x W/14 x 256}.

The ViT is built with ``timm.create_model(name, pretrained=False, ...)``; pretrained weights
come only from a local file the user names (``.safetensors`` or a torch state dict loaded with
``weights_only=True``), never from a hub. The encoder normalises its [0,1] RGB input with the
ImageNet mean/std itself (`normalize`), so masking can act in the normalised space between
`normalize` and `forward_normalized`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from homae_model.config import EncoderConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from a `.safetensors` file or a torch file (no code unpickled).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file holds no tensor mapping.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"pretrained encoder weights not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a pickle with code in it, or not a torch file at all
        raise ValueError(
            f"model.encoder.pretrained_path = {path}: not loadable as plain tensors "
            f"(weights_only; code in pickles is refused): {err}"
        ) from err
    for key in ("model", "state_dict", "teacher"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a mapping of parameter names to tensors")
    return obj


SCRATCH_LAYER_SCALE = 1.0
"""LayerScale start value of a ViT trained from scratch (`layer_scale_init: 0`, no weights)."""
PRETRAINED_LAYER_SCALE = 1e-5
"""timm's DINOv2 LayerScale start value, used with pretrained weights (they overwrite it)."""


def layer_scale_init(cfg: EncoderConfig) -> float:
    """The LayerScale start value the encoder is built with (see `EncoderConfig`)."""
    if cfg.layer_scale_init > 0:
        return float(cfg.layer_scale_init)
    return PRETRAINED_LAYER_SCALE if cfg.pretrained_path else SCRATCH_LAYER_SCALE


def encoder_init_note(cfg: EncoderConfig) -> str:
    """How the encoder starts, for logs and reports: "pretrained: PATH" or "from scratch ..."."""
    if cfg.pretrained_path:
        return f"pretrained: {cfg.pretrained_path}"
    return (
        f"from scratch (model.encoder.pretrained_path is empty; the paper starts {cfg.name} "
        f"from DINOv2 weights); LayerScale init {layer_scale_init(cfg):g}"
    )


class ImageEncoder(nn.Module):
    """timm ViT -> patch-token grid projected to `feat_dim`, plus a pooled global feature."""

    def __init__(self, cfg: EncoderConfig) -> None:
        """Build the ViT from `EncoderConfig`; load `cfg.pretrained_path` when given.

        Raises:
            ValueError: unknown timm model name (the message lists the DINOv2 names), or the
                pretrained file does not fit the model.
        """
        super().__init__()
        overrides = {
            k: v
            for k, v in (
                ("embed_dim", cfg.embed_dim),
                ("depth", cfg.depth),
                ("num_heads", cfg.num_heads),
            )
            if v is not None
        }
        overrides["init_values"] = layer_scale_init(cfg)
        if cfg.stem == "conv":
            from homae_model.nn.conv_stem import ConvStemEmbed

            overrides["embed_layer"] = ConvStemEmbed
        try:
            self.vit = timm.create_model(
                cfg.name, pretrained=False, img_size=cfg.img_size, num_classes=0, **overrides
            )
        except RuntimeError as exc:
            valid = timm.list_models("*dinov2*")
            raise ValueError(
                f"model.encoder.name={cfg.name!r}: not a timm model ({exc}); e.g. {valid}"
            ) from exc
        if cfg.pretrained_path:
            self.load_pretrained(cfg.pretrained_path)
        width = self.vit.embed_dim
        self.num_prefix = int(getattr(self.vit, "num_prefix_tokens", 1))
        self.patch = int(self.vit.patch_embed.patch_size[0])
        self.proj = nn.Linear(width, cfg.feat_dim)
        self.pool_proj = nn.Linear(width, cfg.feat_dim)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def load_pretrained(self, path: str | Path) -> None:
        """Load local ViT weights (timm or original DINOv2 key names; pos-embed resampled).

        Raises:
            FileNotFoundError: missing file.
            ValueError: tensors missing from the file (the message names the file and keys).
        """
        from timm.models.vision_transformer import checkpoint_filter_fn

        state = checkpoint_filter_fn(load_state_dict_file(path), self.vit)
        missing, _unexpected = self.vit.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("head")]
        if missing:
            raise ValueError(
                f"{path}: pretrained encoder file lacks {len(missing)} tensors: {missing[:10]}"
            )

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) RGB in [0,1] -> ImageNet-normalised image."""
        return (image - self.mean) / self.std

    def forward_normalized(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode an already normalised (and possibly masked) image.

        Args:
            x: (B,3,H,W) normalised image; H, W multiples of the ViT patch (14).

        Returns:
            grid (B, feat_dim, H/14, W/14) projected patch tokens, and pooled (B, feat_dim)
            from the class token.
        """
        b, _, h, w = x.shape
        tokens = self.vit.forward_features(x)
        gh, gw = h // self.patch, w // self.patch
        patches = self.proj(tokens[:, self.num_prefix :])
        grid = patches.transpose(1, 2).reshape(b, -1, gh, gw)
        pooled = self.pool_proj(tokens[:, 0])
        return grid, pooled

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a (B,3,H,W) [0,1] RGB image (see `forward_normalized`)."""
        return self.forward_normalized(self.normalize(image))
