"""The network's stages as `nn.Module`s with tensor-only inputs and outputs (ONNX graphs).

The Predictor runs the network in three stages with the voxel search between them (see
`homae_model.stages`); each stage here computes exactly what the Predictor's torch path
calls, with the same weights, so that an exported graph can replace the call:

- `EncoderGraph`: crop (B,3,S,S) [0,1] + crop K + boxes -> feature map F~ and the anchor head's
  hand-root estimate (`HomaeModel.encode` + `predict_anchor`), and with
  `model.hand_head.image_token` the hand head's image token (`HomaeModel.global_token`).
- `SdfGraph`: one branch's SDF of query points (`HomaeModel.sdf_fn`), the voxel search's
  function, metres.
- `HeadsGraph`: pixel-aligned features, PointNet, SDF-gated fusion and both transformer heads
  at the selected points, given the search's SDF values (`HomaeModel.sdf(..., sdf_m=...)` +
  `heads`; with `model.hand_head.image_token` it also takes the encoder graph's image token);
  the final layer's outputs only.

MANO, the rotation conversions to axis-angle and the scores stay in torch (post-processing the
Predictor shares between runtimes).

Layout "window" (models whose F~ the torch Predictor computes over the boxes' window: no image
skip, no heatmap anchor; `windowed_layout`): the encoder graph stops above the finest decoder
level (`EncoderLevelsGraph`); `WindowGraph` makes the window of F~ from edge-padded slices of
those levels that the runtime cuts (`homae_model.nn.feature_window.window_parts`);
`PixelsGraph` makes F~ at single pixels for points that project outside the window
(`homae_model.nn.fmap_pixels`). The SDF and heads graphs then read the window (its bounds are
an input) and take the features of uncovered points as an input. Layout "whole": the graphs
above with the whole F~.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from homae_model.geometry.camera import project_points
from homae_model.model import Encoding, HomaeModel
from homae_model.nn.decoder import conv1x1
from homae_model.nn.fmap_pixels import fmap_at_pixels
from homae_model.nn.multiscale import stage_weights

__all__ = [
    "IMAGE_TOKEN",
    "EncoderGraph",
    "EncoderLevelsGraph",
    "HeadsGraph",
    "PixelsGraph",
    "SdfGraph",
    "WindowGraph",
    "level_factors",
    "window_features",
    "window_level_ids",
    "windowed_layout",
]


IMAGE_TOKEN = "image_token"
"""Name of the (B,d_model) image token: an output of the encoder graph and an input of the
heads graph, for a model with `model.hand_head.image_token` only."""


def windowed_layout(model: HomaeModel) -> bool:
    """Whether the model's F~ can be computed over a window (as `HomaeModel.encode(roi=...)`)."""
    return model.skip is None and model.anchor_head.heatmap is None


def level_factors(model: HomaeModel) -> list[int]:
    """Upsampling factor from each level above the finest (grid, stages 1..L-1) to the finest."""
    n = len(model.decoder.stages)
    return [2 ** (n - i) for i in range(n)]


def window_level_ids(model: HomaeModel) -> list[int]:
    """The levels whose slices `WindowGraph` reads: stages 1..L-1 (the grid when L = 1)."""
    n = len(model.decoder.stages)
    return [0] if n == 1 else list(range(1, n))


def window_features(
    fmap: torch.Tensor,
    window: torch.Tensor,
    K: torch.Tensor,
    points: torch.Tensor,
    inside: torch.Tensor,
    outside: torch.Tensor,
    image_size: int,
    full: tuple[int, int],
) -> torch.Tensor:
    """F_img (B,N,C) of points from a window of F~ (`model.features` with a window).

    Args:
        fmap: (B,C,hw,ww) window of F~.
        window: (B,4) its bounds (x0, y0, x1, y1) in pixels of the whole (h, w) map.
        K: (B,3,3) crop intrinsics.
        points: (B,N,3) camera frame, metres.
        inside: (B,N) 1 where the window covers the point's bilinear taps, else 0.
        outside: (B,N,C) the features of the other points (zeros where `inside`).
        image_size: crop side S, pixels.
        full: (h, w) of the whole map.

    Returns:
        (B,N,C) features.
    """
    h, w = full
    uv = project_points(points, K)
    px = (uv + 0.5) * uv.new_tensor([w / image_size, h / image_size]) - 0.5
    lo, hi = window[:, None, :2], window[:, None, 2:]
    grid = (px - (lo - 0.5)) * (2.0 / (hi - lo)) - 1.0
    out = F.grid_sample(fmap, grid[:, :, None, :].to(fmap.dtype), align_corners=False)
    sampled = out.squeeze(-1).transpose(1, 2)  # (a Squeeze: no Gather copying the samples)
    return torch.where(inside[..., None] > 0.5, sampled, outside)


def _encoding(model: HomaeModel, fmap: torch.Tensor) -> Encoding:
    """An `Encoding` holding only the feature map (all the point stages read)."""
    s = int(model.cfg.model.encoder.img_size)
    return Encoding(grid=fmap, pooled=fmap, fmap=fmap, image_size=(s, s))


def _token(model: HomaeModel, enc: Encoding) -> tuple[torch.Tensor, ...]:
    """(the (B,d_model) image token,) of a model with `model.hand_head.image_token`, else ()."""
    token = model.global_token(enc)
    return () if token is None else (token,)


class EncoderGraph(nn.Module):
    """(B,3,S,S) crops, (B,3,3) K, (B,4) boxes -> fmap (B,C,h,w), anchor (B,3) metres[, token]."""

    def __init__(self, model: HomaeModel) -> None:
        """Wrap `model` (its weights are shared, not copied)."""
        super().__init__()
        self.model = model

    def forward(
        self, image: torch.Tensor, K: torch.Tensor, hand_box: torch.Tensor, obj_box: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """Encode the crops and predict the anchor (camera frame of the crop, metres).

        Args:
            image: (B,3,S,S) RGB in [0,1].
            K: (B,3,3) crop intrinsics.
            hand_box: (B,4) xyxy crop pixels.
            obj_box: (B,4) xyxy crop pixels.

        Returns:
            fmap (B,C,h,w) contiguous, anchor (B,3), then with `model.hand_head.image_token`
            the image token (B,d_model).
        """
        enc = self.model.encode(image)
        anchor = self.model.predict_anchor(enc, K, hand_box, obj_box).anchor
        return (enc.fmap.contiguous(), anchor, *_token(self.model, enc))


class EncoderLevelsGraph(nn.Module):
    """Layout "window": crops, K, boxes -> levels above the finest (B,h_i,w_i,c_i), anchor."""

    def __init__(self, model: HomaeModel) -> None:
        """Wrap `model` (pooled anchor head, no image skip: `windowed_layout`)."""
        super().__init__()
        self.model = model

    def forward(
        self, image: torch.Tensor, K: torch.Tensor, hand_box: torch.Tensor, obj_box: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """The ViT grid and the decoder's outputs above the finest level, then the anchor.

        Args:
            image: (B,3,S,S) RGB in [0,1].
            K: (B,3,3) crop intrinsics.
            hand_box: (B,4) xyxy crop pixels.
            obj_box: (B,4) xyxy crop pixels.

        Returns:
            level0 (the grid), ..., level{L-1}, each channels-last (B,h_i,w_i,c_i) (the
            decoder's own layout: `PixelsGraph` gathers pixels from it with no transpose),
            the anchor (B,3) metres, then with `model.hand_head.image_token` the image token
            (B,d_model) (of the whole crop, as the torch Predictor's windowed encoding).
        """
        m = self.model
        grid, pooled = m.encoder.forward_normalized(m.encoder.normalize(image))
        levels = [grid]
        for stage in m.decoder.stages[:-1]:
            levels.append(stage(levels[-1]))
        s = int(image.shape[-1])
        enc = Encoding(grid=grid, pooled=pooled, fmap=grid, image_size=(s, s))
        anchor = m.predict_anchor(enc, K, hand_box, obj_box).anchor
        levels = [x.permute(0, 2, 3, 1).contiguous() for x in levels]
        return (*levels, anchor, *_token(m, enc))


def _upsample_part(part: torch.Tensor, factor: int) -> torch.Tensor:
    """Bilinear x`factor` upsampling of an edge-padded slice, less the padding's pixels."""
    up = F.interpolate(part, scale_factor=float(factor), mode="bilinear", align_corners=False)
    return up[..., factor:-factor, factor:-factor]


class WindowGraph(nn.Module):
    """Layout "window": edge-padded slices of the levels -> the window of F~ (B,C,hw,ww)."""

    def __init__(self, model: HomaeModel) -> None:
        """Wrap `model`'s finest decoder stage and multi-scale MLP."""
        super().__init__()
        self.model = model

    def forward(self, *parts: torch.Tensor) -> torch.Tensor:
        """F~ over the window whose level slices are `parts`.

        Args:
            parts: per level of `window_level_ids`, (B,c_i,a_i+2,b_i+2): the rows and columns
                of the window on that level's grid with one pixel of margin, edge-replicated
                at the map's border (`feature_window.window_part`).

        Returns:
            (B,C,hw,ww) the window of F~ (same values as the whole map's, up to rounding).
        """
        m = self.model
        factors = [level_factors(m)[i] for i in window_level_ids(m)]
        conv1, act1, conv2, act2 = m.decoder.stages[-1].mlp
        x = _upsample_part(conv1x1(parts[-1], conv1), 2)
        last = act2(conv1x1(act1(x), conv2))  # the finest level over the window
        fusion = m.multiscale
        if not fusion.multiscale:
            return fusion.mlp(last)
        coarse = list(parts) if len(m.decoder.stages) > 1 else []  # decoder outputs above
        first, act, out = fusion.mlp
        chans = [int(p.shape[1]) for p in coarse] + [int(last.shape[1])]
        weights = stage_weights(first, chans)
        hidden = F.linear(last.permute(0, 2, 3, 1), weights[-1], first.bias)
        for i, part in enumerate(coarse):
            w = weights[i]
            y = F.linear(part.permute(0, 2, 3, 1), w).permute(0, 3, 1, 2)
            hidden = hidden + _upsample_part(y, factors[i]).permute(0, 2, 3, 1)
        y = F.linear(act(hidden), out.weight[:, :, 0, 0], out.bias)
        return y.permute(0, 3, 1, 2).contiguous()


class PixelsGraph(nn.Module):
    """Layout "window": levels + (B,M,2) finest-grid pixels per image -> (B,M,C) F~ there."""

    def __init__(self, model: HomaeModel) -> None:
        """Wrap `model`'s finest decoder stage and multi-scale MLP."""
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """F~ at pixels of the finest grid (`homae_model.nn.fmap_pixels.fmap_at_pixels`).

        Args:
            inputs: level0, ..., level{L-1} (B,h_i,w_i,c_i) (as `EncoderLevelsGraph`), then
                `pixels` (B,M,2): per image M (row, column) integer pixel indices of the
                finest grid, as floats.

        Returns:
            (B,M,C) features.
        """
        *levels, pixels = inputs
        b, n = pixels.shape[0], pixels.shape[1]
        rows = torch.arange(b, device=pixels.device)[:, None].expand(b, n).reshape(-1)
        flat = pixels.reshape(-1, 2).long()
        m = self.model
        nchw = [x.permute(0, 3, 1, 2) for x in levels]  # views; gathered channels-last
        out = fmap_at_pixels(m.decoder, m.multiscale, nchw, rows, flat[:, 0], flat[:, 1])
        return out.reshape(b, n, out.shape[-1])


class SdfGraph(nn.Module):
    """One branch's SDF: fmap, K, anchor, (B,N,3) points -> (B,N) SDF in metres.

    With `full` (layout "window"), `fmap` is a window of F~ and the graph also takes its
    bounds and the features of uncovered points (`window_features`).
    """

    def __init__(self, model: HomaeModel, branch: str, full: tuple[int, int] | None = None):
        """Wrap `model`'s `branch` ("hand" or "obj") SDF head; `full`: (h, w) of the whole F~."""
        super().__init__()
        self.model = model
        self.branch = branch
        self.full = full

    def forward(
        self,
        fmap: torch.Tensor,
        K: torch.Tensor,
        anchor: torch.Tensor,
        points: torch.Tensor,
        window: torch.Tensor | None = None,
        inside: torch.Tensor | None = None,
        outside: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """SDF of camera-frame points.

        Args:
            fmap: (B,C,h,w) feature map of the crops (its window with `full`).
            K: (B,3,3) crop intrinsics.
            anchor: (B,3) grid centre, camera frame, metres.
            points: (B,N,3) camera frame, metres.
            window: (B,4) window bounds (layout "window", see `window_features`).
            inside: (B,N) 1 where the window covers the point.
            outside: (B,N,C) features of the uncovered points.

        Returns:
            (B,N) signed distance, metres.
        """
        m = self.model
        f_img = None
        if self.full is not None:
            s = int(m.cfg.model.encoder.img_size)
            f_img = window_features(fmap, window, K, points, inside, outside, s, self.full)
        enc = _encoding(m, fmap)
        sdf = m._sdf_scaled(enc, K, points, anchor, self.branch, f_img=f_img)[0]
        return sdf / m.sdf_scale


class HeadsGraph(nn.Module):
    """Selected points + their SDF -> hand 6D rotations, betas, root offset; object R, t.

    With `full` (layout "window"), as `SdfGraph`: a window of F~, its bounds and per branch
    the features of uncovered points. With `model.hand_head.image_token`, the image token of
    the encoder graph as well. `input_names` lists the inputs `forward` takes, in order.
    """

    POINT_INPUTS = ("fmap", "K", "anchor", "hand_points", "hand_sdf", "obj_points", "obj_sdf")
    WINDOW_INPUTS = ("window", "hand_inside", "hand_outside", "obj_inside", "obj_outside")

    def __init__(self, model: HomaeModel, full: tuple[int, int] | None = None) -> None:
        """Wrap `model`'s PointNets, fusions and transformer heads."""
        super().__init__()
        self.model = model
        self.full = full
        names = list(self.POINT_INPUTS)
        if full is not None:
            names += self.WINDOW_INPUTS
        if model.image_token is not None:
            names.append(IMAGE_TOKEN)
        self.input_names: tuple[str, ...] = tuple(names)

    def forward(
        self, *inputs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run fusion and both heads (final layer only).

        Args:
            inputs: one tensor per name of `input_names`:
                fmap: (B,C,h,w) feature map (its window with `full`).
                K: (B,3,3) crop intrinsics.
                anchor: (B,3) grid centre, metres.
                hand_points: (B,Nh,3) camera frame, metres.
                hand_sdf: (B,Nh) hand SDF at those points, metres.
                obj_points: (B,No,3) camera frame, metres.
                obj_sdf: (B,No) object SDF at those points, metres.
                window: (B,4) window bounds (layout "window").
                hand_inside: (B,Nh) 1 where the window covers the point (layout "window").
                hand_outside: (B,Nh,C) features of the uncovered hand points (layout "window").
                obj_inside: (B,No) as `hand_inside`.
                obj_outside: (B,No,C) as `hand_outside`.
                image_token: (B,d_model) the encoder graph's image token
                    (`model.hand_head.image_token`).

        Returns:
            hand_rot6d (B,16,6), hand_shape (B,10), hand_root_offset (B,3) metres,
            obj_rotmat (B,3,3), obj_trans (B,3) metres (camera frame of the crop).
        """
        x = dict(zip(self.input_names, inputs, strict=True))
        m = self.model
        fmap, K, anchor = x["fmap"], x["K"], x["anchor"]
        enc = _encoding(m, fmap)
        f_hand = f_obj = None
        if self.full is not None:
            s = int(m.cfg.model.encoder.img_size)
            f_hand, f_obj = (
                window_features(
                    fmap,
                    x["window"],
                    K,
                    x[f"{name}_points"],
                    x[f"{name}_inside"],
                    x[f"{name}_outside"],
                    s,
                    self.full,
                )
                for name in ("hand", "obj")
            )
        hand = m.sdf(enc, K, x["hand_points"], anchor, "hand", sdf_m=x["hand_sdf"], f_img=f_hand)
        obj = m.sdf(enc, K, x["obj_points"], anchor, "obj", sdf_m=x["obj_sdf"], f_img=f_obj)
        hand_layers, obj_layers = m.heads(
            hand, obj, final_only=True, image_token=x.get(IMAGE_TOKEN)
        )
        h, o = hand_layers[-1], obj_layers[-1]
        return h.rot6d, h.shape, h.root_offset, o.rotmat, o.trans
