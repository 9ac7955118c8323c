"""The network's stages as `nn.Module`s with tensor-only inputs and outputs (ONNX graphs).

The Predictor runs the network in three stages with the voxel search between them (see
`homae_model.stages`); each stage here computes exactly what the Predictor's torch path
calls, with the same weights, so that an exported graph can replace the call:

- `EncoderGraph`: crop (B,3,S,S) [0,1] + crop K + boxes -> feature map F~ and the anchor head's
  hand-root estimate (`HomaeModel.encode` + `predict_anchor`).
- `SdfGraph`: one branch's SDF of query points (`HomaeModel.sdf_fn`), the voxel search's
  function, metres.
- `HeadsGraph`: pixel-aligned features, PointNet, SDF-gated fusion and both transformer heads
  at the selected points, given the search's SDF values (`HomaeModel.sdf(..., sdf_m=...)` +
  `heads`); the final layer's outputs only.

MANO, the rotation conversions to axis-angle and the scores stay in torch (post-processing the
Predictor shares between runtimes).
"""

from __future__ import annotations

import torch
from torch import nn

from homae_model.model import Encoding, HomaeModel

__all__ = ["EncoderGraph", "HeadsGraph", "SdfGraph"]


def _encoding(model: HomaeModel, fmap: torch.Tensor) -> Encoding:
    """An `Encoding` holding only the feature map (all the point stages read)."""
    s = int(model.cfg.model.encoder.img_size)
    return Encoding(grid=fmap, pooled=fmap, fmap=fmap, image_size=(s, s))


class EncoderGraph(nn.Module):
    """(B,3,S,S) crops, (B,3,3) K, (B,4) boxes -> fmap (B,C,h,w), anchor (B,3) metres."""

    def __init__(self, model: HomaeModel) -> None:
        """Wrap `model` (its weights are shared, not copied)."""
        super().__init__()
        self.model = model

    def forward(
        self, image: torch.Tensor, K: torch.Tensor, hand_box: torch.Tensor, obj_box: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode the crops and predict the anchor (camera frame of the crop, metres).

        Args:
            image: (B,3,S,S) RGB in [0,1].
            K: (B,3,3) crop intrinsics.
            hand_box: (B,4) xyxy crop pixels.
            obj_box: (B,4) xyxy crop pixels.

        Returns:
            fmap (B,C,h,w) contiguous, anchor (B,3).
        """
        enc = self.model.encode(image)
        anchor = self.model.predict_anchor(enc, K, hand_box, obj_box).anchor
        return enc.fmap.contiguous(), anchor


class SdfGraph(nn.Module):
    """One branch's SDF: fmap, K, anchor, (B,N,3) points -> (B,N) SDF in metres."""

    def __init__(self, model: HomaeModel, branch: str) -> None:
        """Wrap `model`'s `branch` ("hand" or "obj") SDF head."""
        super().__init__()
        self.model = model
        self.branch = branch

    def forward(
        self, fmap: torch.Tensor, K: torch.Tensor, anchor: torch.Tensor, points: torch.Tensor
    ) -> torch.Tensor:
        """SDF of camera-frame points.

        Args:
            fmap: (B,C,h,w) feature map of the crops.
            K: (B,3,3) crop intrinsics.
            anchor: (B,3) grid centre, camera frame, metres.
            points: (B,N,3) camera frame, metres.

        Returns:
            (B,N) signed distance, metres.
        """
        m = self.model
        sdf = m._sdf_scaled(_encoding(m, fmap), K, points, anchor, self.branch)[0]
        return sdf / m.sdf_scale


class HeadsGraph(nn.Module):
    """Selected points + their SDF -> hand 6D rotations, betas, root offset; object R, t."""

    def __init__(self, model: HomaeModel) -> None:
        """Wrap `model`'s PointNets, fusions and transformer heads."""
        super().__init__()
        self.model = model

    def forward(
        self,
        fmap: torch.Tensor,
        K: torch.Tensor,
        anchor: torch.Tensor,
        hand_points: torch.Tensor,
        hand_sdf: torch.Tensor,
        obj_points: torch.Tensor,
        obj_sdf: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run fusion and both heads (final layer only).

        Args:
            fmap: (B,C,h,w) feature map.
            K: (B,3,3) crop intrinsics.
            anchor: (B,3) grid centre, metres.
            hand_points: (B,Nh,3) camera frame, metres.
            hand_sdf: (B,Nh) hand SDF at those points, metres.
            obj_points: (B,No,3) camera frame, metres.
            obj_sdf: (B,No) object SDF at those points, metres.

        Returns:
            hand_rot6d (B,16,6), hand_shape (B,10), hand_root_offset (B,3) metres,
            obj_rotmat (B,3,3), obj_trans (B,3) metres (camera frame of the crop).
        """
        m = self.model
        enc = _encoding(m, fmap)
        hand = m.sdf(enc, K, hand_points, anchor, "hand", sdf_m=hand_sdf)
        obj = m.sdf(enc, K, obj_points, anchor, "obj", sdf_m=obj_sdf)
        hand_layers, obj_layers = m.heads(hand, obj, final_only=True)
        h, o = hand_layers[-1], obj_layers[-1]
        return h.rot6d, h.shape, h.root_offset, o.rotmat, o.trans
