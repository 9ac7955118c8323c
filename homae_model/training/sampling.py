"""Voxel-sampled SDF training points (HOISDF's later-epoch point schedule), GT SDF on the fly.

After `gt_points_until_epoch`, some batches replace the GT near-surface points by the points
the current model would use at inference: a voxel grid around the GT anchor (hand root), kept
where it projects inside the GT hand (object) box, scored by the model's own SDF heads without
gradients, and the Nh (No) points with the smallest |SDF| kept (`homae_model.geometry.voxels`,
dense or coarse-to-fine as configured). Their ground-truth signed distances are computed on the
fly from the batch's GT meshes: the hand vertices with MANO's faces and the wrist capped, and the
library object mesh posed by the GT pose (mirrored for samples that were left hands), with
`homae_model.data.sdf.mesh_sdf`, clamped to +-`data.sdf_clamp`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from homae_model.data.pipeline import ObjectSDFCache
from homae_model.data.sdf import MeshSDF, mesh_sdf, prepare_mesh
from homae_model.geometry.voxels import coarse_to_fine_select, dense_select

if TYPE_CHECKING:
    from homae_model.config import HomaeConfig
    from homae_model.objects.library import ObjectLibrary

SdfFn = Callable[[torch.Tensor], torch.Tensor]
"""(B, M, 3) crop-frame points (metres) -> (B, M) signed distance (metres)."""


def _close_wrist() -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    try:
        from homae_model.hand.mano import close_wrist  # type: ignore[attr-defined]
    except ImportError:
        from homae_model.hand.wrist import close_wrist
    return close_wrist


def _rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(np.asarray(rotvec, dtype=np.float64)).as_matrix()


class VoxelPointSampler:
    """Replaces a batch's SDF training points by model-selected voxel points with GT SDFs.

    Args:
        cfg: the full config (model.points, model.inference, data.sdf_clamp).
        objects: the object library the batch's `obj_id` indexes.
        hand_faces: (1538, 3) MANO faces (open wrist; capped here).
    """

    def __init__(self, cfg: HomaeConfig, objects: ObjectLibrary, hand_faces: np.ndarray) -> None:
        self.cfg = cfg
        self.objects = objects
        self.hand_faces = np.asarray(hand_faces, dtype=np.int64)
        self.close_wrist = _close_wrist()
        self._object_meshes = ObjectSDFCache(objects)

    # ------------------------------------------------------------------ GT meshes

    def object_mesh(self, name: str, mirrored: bool) -> MeshSDF:
        """Object-frame mesh of a library object (mirrored x -> -x for left-hand samples)."""
        return self._object_meshes.get(name, mirrored)

    def _object_is_mirrored(
        self, name: str, R: np.ndarray, t: np.ndarray, corners: np.ndarray
    ) -> bool:
        """Tell a mirrored (left-hand sample) object from its posed corners in the batch."""
        plain = self.objects.get(name).corners @ R.T + t
        mirrored = (self.objects.get(name).corners * np.array([-1.0, 1.0, 1.0])) @ R.T + t
        return np.abs(mirrored - corners).max() < np.abs(plain - corners).max()

    def gt_sdf(
        self, batch: dict[str, torch.Tensor], hand_points: torch.Tensor, obj_points: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Ground-truth clamped signed distances of query points to the batch's GT meshes.

        Args:
            batch: training batch (hand_verts, obj_id, obj_rot, obj_trans, obj_corners).
            hand_points: (B, Nh, 3) crop-frame points, metres.
            obj_points: (B, No, 3) crop-frame points, metres.

        Returns:
            `(hand_sdf (B, Nh), obj_sdf (B, No))` float32 metres on the points' device.
        """
        clamp = float(self.cfg.data.sdf_clamp)
        verts = batch["hand_verts"].detach().double().cpu().numpy()
        obj_ids = batch["obj_id"].detach().cpu().numpy()
        rots = batch["obj_rot"].detach().double().cpu().numpy()
        trans = batch["obj_trans"].detach().double().cpu().numpy()
        corners = batch["obj_corners"].detach().double().cpu().numpy()
        hp = hand_points.detach().double().cpu().numpy()
        op = obj_points.detach().double().cpu().numpy()
        hand_sdf = np.empty(hp.shape[:2])
        obj_sdf = np.empty(op.shape[:2])
        for b in range(verts.shape[0]):
            v, f = self.close_wrist(verts[b], self.hand_faces)
            hand_sdf[b] = mesh_sdf(hp[b], prepare_mesh(v, f))
            name = self.objects.names[int(obj_ids[b])]
            R = _rotvec_to_matrix(rots[b])
            mirrored = self._object_is_mirrored(name, R, trans[b], corners[b])
            local = (op[b] - trans[b]) @ R  # crop frame -> object frame
            obj_sdf[b] = mesh_sdf(local, self.object_mesh(name, mirrored))
        to = {"dtype": torch.float32, "device": hand_points.device}
        return (
            torch.as_tensor(np.clip(hand_sdf, -clamp, clamp), **to),
            torch.as_tensor(np.clip(obj_sdf, -clamp, clamp), **to),
        )

    # ------------------------------------------------------------------ selection

    def select(
        self, sdf_fn: SdfFn, anchor: torch.Tensor, K: torch.Tensor, box: torch.Tensor, k: int
    ) -> torch.Tensor:
        """The k smallest-|SDF| voxel points per image, (B, k, 3), with the configured search."""
        inf = self.cfg.model.inference
        scale = float(self.cfg.model.points.sdf_scale)
        if inf.sampling == "coarse_to_fine":
            sel = coarse_to_fine_select(
                sdf_fn,
                anchor,
                K,
                box,
                k,
                res=inf.voxel_res,
                coarse_res=inf.coarse_res,
                sdf_scale=scale,
                margin=inf.refine_margin,
                chunk=inf.chunk_points,
            )
        else:
            sel = dense_select(
                sdf_fn,
                anchor,
                K,
                box,
                k,
                res=inf.voxel_res,
                sdf_scale=scale,
                chunk=inf.chunk_points,
            )
        return sel.points

    @torch.no_grad()
    def __call__(
        self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """A copy of `batch` whose hand/obj points and SDFs come from the voxel search.

        Args:
            model: the bare HomaeModel (not the DDP wrapper); evaluated without gradients.
            batch: the training batch on the model's device.

        Returns:
            New batch dict (other entries shared with `batch`).
        """
        hand_fn, obj_fn = model_sdf_functions(model, batch)
        anchor, K = batch.get("grid_anchor", batch["anchor"]), batch["K"]
        nh = batch["hand_points"].shape[1]
        no = batch["obj_points"].shape[1]
        hand_points = self.select(hand_fn, anchor, K, batch["hand_box"], nh).to(anchor.dtype)
        obj_points = self.select(obj_fn, anchor, K, batch["obj_box"], no).to(anchor.dtype)
        hand_sdf, obj_sdf = self.gt_sdf(batch, hand_points, obj_points)
        out = dict(batch)
        out.update(
            hand_points=hand_points, hand_sdf=hand_sdf, obj_points=obj_points, obj_sdf=obj_sdf
        )
        return out


def model_sdf_functions(
    model: torch.nn.Module, batch: dict[str, torch.Tensor]
) -> tuple[SdfFn, SdfFn]:
    """Hand and object SDF functions of the current model for the batch's (unmasked) images.

    The image features are computed once, in eval mode (no masking, no reconstruction); each
    function maps (B, M, 3) crop-frame points to (B, M) signed distances in metres, with the
    grid anchored at the batch's `grid_anchor` when present, else its GT anchor.
    """
    was_training = model.training
    model.eval()
    try:
        enc = model.encode(batch["image"])
    finally:
        model.train(was_training)
    anchor = batch.get("grid_anchor", batch["anchor"])
    K = batch["K"].to(batch["image"].dtype)
    return model.sdf_fn(enc, K, anchor, "hand"), model.sdf_fn(enc, K, anchor, "obj")
