"""MAE decoder D (paper eq. 9-10): L MLP stages that progressively upsample F.

Each stage doubles the resolution (bilinear) and applies a per-pixel MLP (1x1 convolutions, so
the same MLP acts on every pixel). The reconstruction head maps the last stage to RGB and
resamples it to the input resolution; it runs only when asked (training with L_rec), never at
inference.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional as F

from homae_model.config import DecoderConfig
from homae_model.nn.feature_window import FeatureWindow, upsample_window


def conv1x1(x: torch.Tensor, conv: nn.Conv2d, bias: bool = True) -> torch.Tensor:
    """A 1x1 `conv` as a matrix product over channels-last pixels (the fast CPU/GPU path).

    Args:
        x: (B,c_in,H,W), any memory format.
        conv: the 1x1 convolution whose weights are used.
        bias: add the convolution's bias.

    Returns:
        (B,c_out,H,W) in channels-last memory (a permuted view), same values as `conv(x)`.
    """
    w = conv.weight[:, :, 0, 0]
    y = F.linear(x.permute(0, 2, 3, 1), w, conv.bias if bias else None)
    return y.permute(0, 3, 1, 2)


def he_conv1x1(c_in: int, c_out: int, before_activation: bool = True) -> nn.Conv2d:
    """A 1x1 convolution with He (Kaiming-normal, fan-in) weights and zero bias.

    PyTorch's default init shrinks the variance about threefold per layer; through the decoder's
    six layers and the multi-scale MLP that left F~ about 1/20 of the ViT tokens' scale, with a
    spatial variation of 0.3% of it, so the features sampled at the query points were nearly
    the same everywhere and the heads learnt to ignore them. He init keeps the scale through
    GELU layers (gain sqrt(2)); an output layer with no activation after it gets gain 1.
    """
    conv = nn.Conv2d(c_in, c_out, 1)
    gain = "relu" if before_activation else "linear"
    nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity=gain)
    nn.init.zeros_(conv.bias)
    return conv


def pixel_mlp(c_in: int, c_hidden: int, c_out: int) -> nn.Sequential:
    """Two-layer per-pixel MLP as 1x1 convolutions: (B,c_in,H,W) -> (B,c_out,H,W)."""
    return nn.Sequential(
        he_conv1x1(c_in, c_hidden), nn.GELU(), he_conv1x1(c_hidden, c_out), nn.GELU()
    )


class DecoderStage(nn.Module):
    """Upsample x2 then a per-pixel MLP."""

    def __init__(self, c_in: int, c_out: int) -> None:
        """Map `c_in` to `c_out` channels at twice the resolution."""
        super().__init__()
        self.mlp = pixel_mlp(c_in, c_out, c_out)

    def forward(self, x: torch.Tensor, window: FeatureWindow | None = None) -> torch.Tensor:
        """(B,c_in,h,w) -> (B,c_out,2h,2w), or only `window` of the (2h,2w) output.

        Computed as MLP(upsample(x)) with the first 1x1 convolution moved before the
        upsampling: bilinear upsampling is a convex combination of neighbouring pixels, so it
        commutes with a per-pixel affine map; the first layer then runs at a quarter of the
        pixels and the upsampling moves `c_out` instead of `c_in` channels (same result up to
        float rounding).
        """
        conv1, act1, conv2, act2 = self.mlp
        if window is None:
            x = conv1x1(x, conv1)
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        else:
            x = upsample_window(x, 2, window, lambda part: conv1x1(part, conv1))
        if torch.is_grad_enabled() or torch.jit.is_tracing():
            return act2(conv1x1(act1(x), conv2))
        # no graph to record: the activations overwrite their (fresh) inputs
        gelu_ = torch.ops.aten.gelu_
        return gelu_(conv1x1(gelu_(x.contiguous(memory_format=torch.channels_last)), conv2))


class MaeDecoder(nn.Module):
    """L upsampling stages; returns every stage's output (the multi-scale features)."""

    def __init__(self, cfg: DecoderConfig, in_channels: int) -> None:
        """Stages with `cfg.stage_channels`; the RGB head reads the last stage."""
        super().__init__()
        chans = [in_channels, *cfg.stage_channels]
        self.stages = nn.ModuleList(DecoderStage(a, b) for a, b in itertools.pairwise(chans))
        last = chans[-1]
        self.recon_head = nn.Sequential(
            he_conv1x1(last, last), nn.GELU(), he_conv1x1(last, 3, before_activation=False)
        )
        self.out_channels = list(cfg.stage_channels)

    def forward(
        self, feat: torch.Tensor, window: FeatureWindow | None = None
    ) -> list[torch.Tensor]:
        """(B,C_enc,h,w) encoder grid -> list of L maps (B,c_l,h*2^l,w*2^l).

        `window`: the last (finest) map is computed over this window of its grid only
        (`homae_model.nn.feature_window`); the others are whole.
        """
        outs = []
        x = feat
        last = len(self.stages) - 1
        for i, stage in enumerate(self.stages):
            x = stage(x, window if i == last else None)
            outs.append(x)
        return outs

    def reconstruct(self, stages: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """RGB reconstruction (B,3,H,W) in [0,1] units (not clamped) at the input `size`."""
        rgb = self.recon_head(stages[-1])
        return F.interpolate(rgb, size=size, mode="bilinear", align_corners=False)
