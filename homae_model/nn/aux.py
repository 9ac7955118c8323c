"""Training-only dense heads on the multi-scale feature map F~ (`model.aux`).

A linear per-pixel layer (1x1 convolution) reads F~ (B,C,h,w) and predicts, per cell:

- 21 hand-joint and 9 object-keypoint logits (the object's 8 box corners in the library's
  corner order, then its centre): a spatial softmax per keypoint is its heatmap over the crop;
- 21 joint depths relative to the hand root (metres), read out where the joint's own heatmap
  puts its weight (an integral read-out, as in fast-training hand pose networks).

With `depth_maps`, a second 1x1 layer predicts per cell the hand's and the object's coverage
(logits) and their nearest surface depth relative to the hand root (metres).

Because the layers are linear, the loss asks F~ itself to say at every pixel which joint or
object part is there and how deep: exactly what the SDF and the transformer heads read when
they sample F~ at projected 3D points. The heads are not used at inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

NUM_HAND_KEYPOINTS = 21
"""Hand joints, project order (`homae_model.hand.constants`)."""
NUM_OBJ_KEYPOINTS = 9
"""Object box corners (8) and centre."""


@dataclass
class AuxPrediction:
    """Dense-head outputs.

    Attributes:
        logits: (B,30,h,w) keypoint logits (21 hand joints, 8 object corners, object centre)
            on F~ pooled to at most AUX_GRID cells a side; cell (i, j) covers crop pixels
            [j*S/w, (j+1)*S/w) x [i*S/h, (i+1)*S/h).
        rel_depth: (B,21) joint depth minus root depth (m), heatmap-weighted read-out.
        mask_logits: (B,2,h,w) hand / object coverage logits per cell, or None.
        depth_maps: (B,2,h,w) hand / object nearest surface depth minus the hand root's (m)
            per cell, or None.
    """

    logits: torch.Tensor
    rel_depth: torch.Tensor
    mask_logits: torch.Tensor | None = None
    depth_maps: torch.Tensor | None = None


AUX_GRID = 16
"""The dense heads read F~ average-pooled to at most this many cells per side: the decoder's
finer maps are bilinear interpolations of the 8x8 (small config) token grid, and a coarse
softmax gives each cell a usable gradient from the first steps."""
LOGIT_SCALE = 30.0
"""Fixed gain on the keypoint logits: with Adam's per-parameter steps a plain linear layer needs
thousands of steps before its logits can form a peak; the gain lets them form in hundreds."""


class DenseAuxHead(nn.Module):
    """F~ (B,C,h,w) -> keypoint logits and relative joint depths (one 1x1 layer)."""

    def __init__(self, channels: int, depth_maps: bool = False) -> None:
        """A 1x1 convolution from `channels` to 30 logits + 21 depth maps.

        Args:
            channels: C of F~.
            depth_maps: also predict the hand / object coverage and surface-depth maps.
        """
        super().__init__()
        self.num_kp = NUM_HAND_KEYPOINTS + NUM_OBJ_KEYPOINTS
        self.conv = nn.Conv2d(channels, self.num_kp + NUM_HAND_KEYPOINTS, 1)
        nn.init.normal_(self.conv.weight, std=0.003)
        nn.init.zeros_(self.conv.bias)
        self.maps: nn.Conv2d | None = None
        if depth_maps:
            self.maps = nn.Conv2d(channels, 4, 1)
            nn.init.normal_(self.maps.weight, std=0.003)
            nn.init.zeros_(self.maps.bias)

    def forward(self, fmap: torch.Tensor) -> AuxPrediction:
        """Predict from the feature map (B,C,h,w); logits cover the crop on a coarser grid."""
        h, w = fmap.shape[-2:]
        if max(h, w) > AUX_GRID:
            fmap = nn.functional.adaptive_avg_pool2d(fmap, (min(h, AUX_GRID), min(w, AUX_GRID)))
        out = self.conv(fmap)
        logits = out[:, : self.num_kp] * LOGIT_SCALE
        depth = out[:, self.num_kp :] * 0.1  # metres; the scale keeps the initial output small
        weights = torch.softmax(logits[:, :NUM_HAND_KEYPOINTS].flatten(2), dim=-1)
        rel_depth = (weights.detach() * depth.flatten(2)).sum(dim=-1)
        if self.maps is None:
            return AuxPrediction(logits=logits, rel_depth=rel_depth)
        maps = self.maps(fmap)
        depth_maps = maps[:, 2:] * 0.1  # metres, as `depth`
        return AuxPrediction(logits, rel_depth, mask_logits=maps[:, :2], depth_maps=depth_maps)
