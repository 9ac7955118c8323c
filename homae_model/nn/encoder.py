"""DINOv2 ViT encoder (timm), paper eq. 8: F = E(I_m) in R^{H/14 x W/14 x 256}.

`model.encoder.arch: cnn` replaces the ViT by a timm convolutional network (e.g. resnet18) with
the same outputs: its stride-16 stage, read on the crop resampled to 16 px per 14 px cell, gives
the (H/14, W/14) grid, and one more residual block at stride 32, averaged, the pooled feature.
That is for training from scratch on a CPU (the small ViT does not learn the hand from the
image there); it is not the paper's encoder.

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
from timm.models.resnet import BasicBlock
from torch import nn
from torch.nn import functional as F

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
    if cfg.arch == "cnn":
        return f"from scratch: timm {cfg.name} (model.encoder.arch=cnn, not the paper's ViT)"
    return (
        f"from scratch (model.encoder.pretrained_path is empty; the paper starts {cfg.name} "
        f"from DINOv2 weights); LayerScale init {layer_scale_init(cfg):g}"
    )


CNN_CELL = 16
"""Pixels per grid cell the CNN reads (its stride-16 stage; the crop is resampled to fit)."""


class CnnBackbone(nn.Module):
    """timm CNN up to its stride-16 stage -> (that map, a pooled global feature), 14 px cells.

    The network's own stages after stride 16 are not built: the grid is read there, and a
    resnet18's last stage alone would hold 8.4 M of its 11.2 M parameters. The pooled feature
    comes from one residual block of the stride-16 width at stride 32 (`pool_stage`), averaged
    over the image: a global readout needs features that see the whole crop (a plain average of
    the stride-16 map did not learn the hand's pose in 25,600 crops where a ResNet-18 pooled
    after its last stage did; weights/demo/README.md).
    """

    def __init__(self, name: str) -> None:
        """Build timm `name` with `features_only`, ending at its stride-16 stage.

        Raises:
            ValueError: `name` is not a timm CNN with a stride-16 stage.
        """
        super().__init__()
        try:
            probe = timm.create_model(name, pretrained=False, features_only=True)
        except RuntimeError as exc:
            raise ValueError(
                f"model.encoder.name={name!r} (arch=cnn): not a timm model ({exc}); "
                "e.g. resnet18, resnet34"
            ) from exc
        reductions = list(probe.feature_info.reduction())
        if CNN_CELL not in reductions:
            raise ValueError(
                f"model.encoder.name={name!r} (arch=cnn): needs a stride-{CNN_CELL} stage, "
                f"has strides {reductions}"
            )
        index = reductions.index(CNN_CELL)
        self.width = int(probe.feature_info.channels()[index])
        del probe
        self.net = timm.create_model(
            name, pretrained=False, features_only=True, out_indices=(index,)
        )
        w = self.width
        self.pool_stage = BasicBlock(
            w,
            w,
            stride=2,
            downsample=nn.Sequential(nn.Conv2d(w, w, 1, stride=2, bias=False), nn.BatchNorm2d(w)),
        )

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,3,H,W) normalised image -> (B,c,gh,gw) stride-16 map and (B,c) pooled feature."""
        size = (grid[0] * CNN_CELL, grid[1] * CNN_CELL)
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        fmap = self.net(x)[0]
        return fmap, self.pool_stage(fmap).mean(dim=(2, 3))


class ImageEncoder(nn.Module):
    """timm ViT (or CNN) -> token grid projected to `feat_dim`, plus a pooled global feature."""

    def __init__(self, cfg: EncoderConfig) -> None:
        """Build the ViT (or CNN) from `EncoderConfig`; load `cfg.pretrained_path` when given.

        Raises:
            ValueError: unknown timm model name (the message lists the DINOv2 names), or the
                pretrained file does not fit the model.
        """
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.arch = cfg.arch
        self.patch = 14  # grid cell side (px), as the DINOv2 patch
        if cfg.arch == "cnn":
            self.cnn = CnnBackbone(cfg.name)
            if cfg.pretrained_path:
                self.load_pretrained(cfg.pretrained_path)
            self.proj = nn.Linear(self.cnn.width, cfg.feat_dim)
            self.pool_proj = nn.Linear(self.cnn.width, cfg.feat_dim)
            return
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

    def load_pretrained(self, path: str | Path) -> None:
        """Load local ViT weights (timm or original DINOv2 key names; pos-embed resampled).

        With `arch: cnn`, a timm state dict of the CNN (its classifier is ignored).

        Raises:
            FileNotFoundError: missing file.
            ValueError: tensors missing from the file (the message names the file and keys).
        """
        if self.arch == "cnn":
            state = load_state_dict_file(path)
            missing, _unexpected = self.cnn.net.load_state_dict(state, strict=False)
            if missing:
                raise ValueError(
                    f"{path}: pretrained encoder file lacks {len(missing)} tensors: {missing[:10]}"
                )
            return
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
            from the class token (`arch: cnn`: the stride-16 map and `CnnBackbone`'s pooled
            feature).
        """
        b, _, h, w = x.shape
        gh, gw = h // self.patch, w // self.patch
        if self.arch == "cnn":
            fmap, pooled = self.cnn(x, (gh, gw))
            grid = self.proj(fmap.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            return grid, self.pool_proj(pooled)
        tokens = self.vit.forward_features(x)
        patches = self.proj(tokens[:, self.num_prefix :])
        grid = patches.transpose(1, 2).reshape(b, -1, gh, gw)
        pooled = self.pool_proj(tokens[:, 0])
        return grid, pooled

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a (B,3,H,W) [0,1] RGB image (see `forward_normalized`)."""
        return self.forward_normalized(self.normalize(image))
