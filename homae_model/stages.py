"""The Predictor's network calls behind one interface, so that runtimes can be swapped.

The Predictor (`homae_model.inference`) does the crop, the voxel search
(`model.search_points`) and the post-processing (MANO, axis-angle, scores) itself; the
network is reached only through the three calls of `NetworkStages`:

1. `encode`: crops -> features and the anchor head's hand-root estimate;
2. `sdf_fn`: the SDF function of one branch that the voxel search evaluates;
3. `heads`: fusion and transformer heads at the selected points -> final hand and object
   estimates.

`TorchStages` runs the `HomaeModel` eagerly; `homae_model.export.runtime.OnnxStages` runs the
exported graphs (`homae-export`) with onnxruntime. Tensors crossing the interface are torch
tensors on the Predictor's device; the features are opaque to the Predictor (each runtime
keeps its own form: an `Encoding`, or arrays for onnxruntime).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

from homae_model.geometry.voxels import SdfFn, VoxelSelection
from homae_model.model import HomaeModel
from homae_model.nn.hand_head import HandLayerOutput

__all__ = ["HeadOutputs", "NetworkStages", "StageFeatures", "TorchStages"]


@dataclass
class StageFeatures:
    """Image features of a batch of crops, as one runtime keeps them.

    Attributes:
        features: runtime-specific (the torch `Encoding`; onnxruntime: the feature map array).
        anchor: (B,3) the anchor head's hand-root estimate, camera frame, metres.
    """

    features: Any
    anchor: torch.Tensor


@dataclass
class HeadOutputs:
    """Final-layer estimates of the heads (camera frame of the crops, metres).

    Attributes:
        hand: 6D rotations (B,16,6), betas (B,10) and root offset (B,3) of the last hand
            decoder layer.
        obj_rotmat: (B,3,3) object rotation, model -> camera.
        obj_trans: (B,3) object origin.
    """

    hand: HandLayerOutput
    obj_rotmat: torch.Tensor
    obj_trans: torch.Tensor


class NetworkStages(Protocol):
    """The network calls of the Predictor (see the module docstring)."""

    runtime: str
    """"torch" or "onnxruntime"."""

    def encode(
        self, image: torch.Tensor, K: torch.Tensor, hand_box: torch.Tensor, obj_box: torch.Tensor
    ) -> StageFeatures:
        """(B,3,S,S) [0,1] crops, (B,3,3) crop K, (B,4) boxes (crop pixels) -> features."""
        ...

    def sdf_fn(
        self, feats: StageFeatures, K: torch.Tensor, anchor: torch.Tensor, branch: str
    ) -> SdfFn:
        """The branch's SDF ((B,M,3) points -> (B,M) metres) around `anchor` (B,3)."""
        ...

    def heads(
        self,
        feats: StageFeatures,
        K: torch.Tensor,
        anchor: torch.Tensor,
        hand: VoxelSelection,
        obj: VoxelSelection,
    ) -> HeadOutputs:
        """Fusion + heads at the selected points, reusing the search's SDF values."""
        ...


class TorchStages:
    """`NetworkStages` of a `HomaeModel` run eagerly by PyTorch."""

    runtime = "torch"

    def __init__(self, model: HomaeModel) -> None:
        """Use `model` (in eval mode, on the Predictor's device)."""
        self.model = model

    def encode(
        self, image: torch.Tensor, K: torch.Tensor, hand_box: torch.Tensor, obj_box: torch.Tensor
    ) -> StageFeatures:
        """`HomaeModel.encode` (F~ over the boxes' window) + `predict_anchor`."""
        enc = self.model.encode(image, roi=torch.cat([hand_box, obj_box]))
        return StageFeatures(enc, self.model.predict_anchor(enc, K, hand_box, obj_box).anchor)

    def sdf_fn(
        self, feats: StageFeatures, K: torch.Tensor, anchor: torch.Tensor, branch: str
    ) -> SdfFn:
        """`HomaeModel.sdf_fn` (supports per-image rows)."""
        return self.model.sdf_fn(feats.features, K, anchor, branch)

    def heads(
        self,
        feats: StageFeatures,
        K: torch.Tensor,
        anchor: torch.Tensor,
        hand: VoxelSelection,
        obj: VoxelSelection,
    ) -> HeadOutputs:
        """`HomaeModel.sdf` (SDF values from the search) + `heads`, final layers."""
        m, enc = self.model, feats.features
        hand_b = m.sdf(enc, K, hand.points, anchor, "hand", sdf_m=hand.sdf)
        obj_b = m.sdf(enc, K, obj.points, anchor, "obj", sdf_m=obj.sdf)
        token = m.global_token(enc)
        hand_layers, obj_layers = m.heads(hand_b, obj_b, final_only=True, image_token=token)
        return HeadOutputs(hand_layers[-1], obj_layers[-1].rotmat, obj_layers[-1].trans)
