"""GT-free anchor head: where to centre the voxel grid without ground truth.

HOISDF centres its inference voxel grid on the ground-truth hand root. A deployed system has no
ground truth, so this head predicts the hand root from the crop alone. From the pooled encoder
feature (plus the crop's normalised intrinsics) an MLP predicts (du, dv, d):

- the root pixel is the crop centre plus (du, dv) * S (S = crop side in pixels);
- the root depth is z = fx_crop * ref_size_m / S * exp(d): the depth at which an object of
  metric size `ref_size_m` spans the whole crop (crops are sized to the hand-object region, so
  this is the right depth up to a learned log-correction d);
- the anchor is the back-projection of that pixel at depth z with the crop K.

With `kind: heatmap` a convolutional branch over the multi-scale feature map (average-pooled
by `heatmap_pool` first) adds spatial evidence, which a pooled feature lacks: a soft-argmax
over the map gives the root pixel (the MLP's (du, dv) become a residual) and the same
attention averages a per-cell log-depth correction into d. Its last layer starts at zero, so
the heatmap head starts exactly as the pooled one (a uniform map's soft-argmax is the crop
centre) and a pooled checkpoint can be extended.

With `use_boxes` the hand and object boxes inside the crop (the detector's, at inference) add a
linear residual to (du, dv, d), zero at start: where the hand box sits in the crop and how large
it is says where the root is and how far, which a pooled feature of a small network may not.

It is trained against the GT hand root in (u/S, v/S, log z) space (`losses.anchor_loss`); the
heatmap's logits also get a cross-entropy towards a Gaussian at the root pixel
(`losses.anchor_heatmap_loss`), which a soft-argmax alone learns slowly from.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from homae_model.config import AnchorConfig
from homae_model.geometry.camera import backproject


@dataclass
class AnchorPrediction:
    """Predicted hand root.

    Attributes:
        anchor: (B,3) camera frame, metres.
        uvd: (B,3) (u/S, v/S, log z) of the prediction, the space the loss compares in.
        logits: (B,h,w) root logits of the heatmap branch over the pooled feature map (cell
            (i, j) covers crop pixels [j*S/w, (j+1)*S/w) x [i*S/h, (i+1)*S/h)), or None.
    """

    anchor: torch.Tensor
    uvd: torch.Tensor
    logits: torch.Tensor | None = None


class AnchorHead(nn.Module):
    """Pooled image feature (+ feature map for `kind: heatmap`) + crop K -> hand-root estimate."""

    def __init__(self, cfg: AnchorConfig, feat_dim: int, fmap_channels: int = 0) -> None:
        """MLP on `feat_dim` + 4 intrinsics features; heatmap: conv over `fmap_channels`."""
        super().__init__()
        self.ref_size_m = cfg.ref_size_m
        self.heatmap_pool = int(cfg.heatmap_pool)
        self.mlp = nn.Sequential(
            nn.Linear(feat_dim + 4, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, 3)
        )
        nn.init.normal_(self.mlp[-1].weight, std=0.01)
        nn.init.zeros_(self.mlp[-1].bias)
        self.box: nn.Linear | None = None
        if cfg.use_boxes:
            self.box = nn.Linear(BOX_FEATURES, 3)
            nn.init.zeros_(self.box.weight)
            nn.init.zeros_(self.box.bias)
        self.heatmap: nn.Sequential | None = None
        if cfg.kind == "heatmap":
            if fmap_channels <= 0:
                raise ValueError("a heatmap anchor head needs the feature map's channel count")
            self.heatmap = nn.Sequential(
                nn.Conv2d(fmap_channels, cfg.hidden, 3, padding=1),
                nn.GELU(),
                nn.Conv2d(cfg.hidden, 2, 1),  # root logit, log-depth correction
            )
            nn.init.zeros_(self.heatmap[-1].weight)
            nn.init.zeros_(self.heatmap[-1].bias)

    def pool_map(self, fmap: torch.Tensor) -> torch.Tensor:
        """(B,C,h,w) feature map -> (B,C,h/p,w/p) the heatmap branch's input (p = heatmap_pool)."""
        if self.heatmap_pool <= 1:
            return fmap
        return nn.functional.avg_pool2d(fmap, self.heatmap_pool, ceil_mode=True)

    def forward(
        self,
        pooled: torch.Tensor,
        K: torch.Tensor,
        image_size: int,
        fmap: torch.Tensor | None = None,
        *,
        map_is_pooled: bool = False,
        boxes: torch.Tensor | None = None,
    ) -> AnchorPrediction:
        """Predict the anchor.

        Args:
            pooled: (B,D) global image feature.
            K: (B,3,3) crop intrinsics.
            image_size: S, crop side in pixels.
            fmap: (B,C,h,w) feature map covering the crop (required by the heatmap head).
            map_is_pooled: `fmap` already went through `pool_map` (cached features).
            boxes: (B,2,4) hand and object boxes, xyxy crop pixels (required with use_boxes).

        Returns:
            `AnchorPrediction`.
        """
        s = float(image_size)
        fx, fy = K[:, 0, 0], K[:, 1, 1]
        kfeat = torch.stack(
            [K[:, 0, 2] / s - 0.5, K[:, 1, 2] / s - 0.5, torch.log(fx / s), torch.log(fy / s)],
            dim=-1,
        )
        out = self.mlp(torch.cat([pooled, kfeat.to(pooled.dtype)], dim=-1))
        if self.box is not None:
            if boxes is None:
                raise ValueError("this anchor head reads the hand and object boxes (use_boxes)")
            out = out + self.box(box_features(boxes, image_size).to(out.dtype))
        centre = (s - 1.0) / 2.0
        uv = centre + out[:, :2] * s
        log_z = torch.log(fx * self.ref_size_m / s) + out[:, 2]
        logits = None
        if self.heatmap is not None:
            if fmap is None:
                raise ValueError("the heatmap anchor head needs the feature map")
            maps = self.heatmap(fmap if map_is_pooled else self.pool_map(fmap))  # (B,2,h,w)
            logits = maps[:, 0]
            h, w = maps.shape[-2:]
            weights = torch.softmax(maps[:, 0].flatten(1), dim=1)  # (B,h*w)
            ys = (torch.arange(h, device=fmap.device, dtype=maps.dtype) + 0.5) * (s / h) - 0.5
            xs = (torch.arange(w, device=fmap.device, dtype=maps.dtype) + 0.5) * (s / w) - 0.5
            gy, gx = torch.meshgrid(ys, xs, indexing="ij")
            soft = torch.stack([weights @ gx.reshape(-1), weights @ gy.reshape(-1)], dim=-1)
            uv = uv + (soft - centre)
            log_z = log_z + (weights * maps[:, 1].flatten(1)).sum(dim=1)
        anchor = backproject(uv[:, None], torch.exp(log_z)[:, None], K)[:, 0]
        uvd = torch.cat([uv / s, log_z[:, None]], dim=-1)
        return AnchorPrediction(anchor=anchor, uvd=uvd, logits=logits)


BOX_FEATURES = 8


def box_features(boxes: torch.Tensor, image_size: int) -> torch.Tensor:
    """(B,2,4) hand and object boxes (xyxy crop pixels) -> (B,8) centre offsets and log sizes.

    Per box: ((x0+x1)/2S - 0.5, (y0+y1)/2S - 0.5, log(w/S), log(h/S)), sizes clamped to 1 px.
    """
    s = float(image_size)
    centre = (boxes[..., :2] + boxes[..., 2:]) / (2.0 * s) - 0.5
    size = torch.log((boxes[..., 2:] - boxes[..., :2]).clamp(min=1.0) / s)
    return torch.cat([centre, size], dim=-1).flatten(1)


def anchor_to_uvd(anchor: torch.Tensor, K: torch.Tensor, image_size: int) -> torch.Tensor:
    """(B,3) camera-frame point -> (B,3) (u/S, v/S, log z), the anchor head's output space."""
    z = anchor[:, 2].clamp(min=1e-6)
    uv = (anchor[:, None, :] @ K.transpose(-1, -2))[:, 0]
    uv = uv[:, :2] / z[:, None]
    return torch.cat([uv / float(image_size), torch.log(z)[:, None]], dim=-1)
