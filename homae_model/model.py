"""HomaeModel: the HOMAE network assembled from its parts (paper Fig. 2).

Data flow (one crop, camera frame of the crop = camera frame of the image at rotation 0):

    image (B,3,S,S) [0,1] --normalise--> masking (training) --> DINOv2 ViT --> F (B,256,S/14,S/14)
      --> decoder stages (x2 each) --> multi-scale MLP --> F~ (B,C,h,w)    [+ RGB reconstruction]
      [model.decoder.image_skip: + strided convolutions over the masked crop, added to F~]
    pooled feature + K --> anchor head --> predicted hand root (GT-free anchor)
    points p (training: GT near-surface samples; inference: voxel search around the anchor)
      q = (p - anchor) * sdf_scale;  F_img = F~(pi(K p));  SDF = MLP(gamma(q) ++ F_img ++ q)
      tokens = (F_img ++ PointNet(q)) * sigmoid(-SDF/beta) / beta
    hand tokens --> hand transformer --> 16 x 6D rotations, 10 betas, root offset --> MANO
    object tokens --> object transformer --> per-point rotation / centre votes --> r, t

The stages are separate methods (`encode`, `predict_anchor`, `sdf`, `sample_points`, `heads`,
`hand_mesh`) so that the Predictor can run them one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from homae_model.config import HomaeConfig
from homae_model.geometry.camera import project_points
from homae_model.geometry.rotations import matrix_to_axis_angle, rot6d_to_matrix
from homae_model.geometry.voxels import VoxelSelection, coarse_to_fine_select, dense_select
from homae_model.hand.mano import ManoLayer
from homae_model.nn.anchor import AnchorHead, AnchorPrediction
from homae_model.nn.aux import AuxPrediction, DenseAuxHead
from homae_model.nn.decoder import MaeDecoder
from homae_model.nn.encoder import ImageEncoder
from homae_model.nn.feature_sampling import map_pixels, sample_at_pixels, sample_window
from homae_model.nn.feature_window import FeatureWindow, window_for_boxes
from homae_model.nn.fmap_pixels import fmap_at_pixels, sample_outside
from homae_model.nn.fusion import SdfGatedFusion
from homae_model.nn.hand_head import HandHead, HandLayerOutput
from homae_model.nn.image_token import ImageToken
from homae_model.nn.masking import TargetFocusedMasking
from homae_model.nn.multiscale import MultiScaleFusion
from homae_model.nn.object_head import ObjectHead, ObjectLayerOutput
from homae_model.nn.pointnet import PointNet
from homae_model.nn.posenc import FourierEncoding
from homae_model.nn.sdf_head import SdfHead
from homae_model.nn.skip import ImageSkip

BRANCHES = ("hand", "obj")


@dataclass
class Encoding:
    """Image-level features of a batch of crops.

    Attributes:
        grid: (B,D,S/14,S/14) projected ViT patch tokens F.
        pooled: (B,D) global feature (class token).
        fmap: (B,C,h,w) multi-scale feature map F~ covering the crop.
        image_size: (H,W) of the crop in pixels.
        recon: (B,3,H,W) reconstruction in [0,1] units, or None when not asked.
        mask: (B,H/P,W/P) bool masking grid, or None (eval / masking off).
        window: where `fmap` is only a window of F~ (`encode(..., roi=...)`), that window.
        above: with a window, the decoder's input grid and outputs above the finest level,
            from which `features` makes F~ at pixels outside the window.
    """

    grid: torch.Tensor
    pooled: torch.Tensor
    fmap: torch.Tensor
    image_size: tuple[int, int]
    recon: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    window: FeatureWindow | None = None
    above: list[torch.Tensor] | None = None


@dataclass
class PointBranch:
    """Query points of one branch (hand or object) with their SDF and fused tokens.

    Attributes:
        points: (B,N,3) camera frame, metres.
        pos: (B,N,3+6F) q ++ gamma(q), q = (p - anchor) * sdf_scale.
        sdf: (B,N) predicted SDF, scaled units (metres x sdf_scale).
        tokens: (B,N,C or 2C) gated features F_agg (eq. 14).
    """

    points: torch.Tensor
    pos: torch.Tensor
    sdf: torch.Tensor
    tokens: torch.Tensor


@dataclass
class HandMesh:
    """MANO result of one hand estimate (camera frame, metres).

    Attributes:
        pose: (B,48) axis-angle, global orientation first (flat hand mean).
        pose_rotmat: (B,16,3,3) the same as rotation matrices.
        shape: (B,10) betas.
        transl: (B,3) MANO translation: `ManoLayer(pose, shape, transl)` reproduces the mesh.
        joints: (B,21,3) project joint order.
        vertices: (B,778,3).
    """

    pose: torch.Tensor
    pose_rotmat: torch.Tensor
    shape: torch.Tensor
    transl: torch.Tensor
    joints: torch.Tensor
    vertices: torch.Tensor


@dataclass
class HomaeOutput:
    """Everything one forward pass predicts. Camera frame of the crop, metres.

    Attributes:
        mano_pose: (B,48) axis-angle (global orientation first, flat hand mean).
        mano_shape: (B,10) betas.
        hand_transl: (B,3) MANO translation (`ManoLayer(pose, shape, hand_transl)` = vertices).
        joints: (B,21,3) hand joints, project order.
        vertices: (B,778,3) hand mesh.
        pose_rotmat: (B,16,3,3) `mano_pose` as rotation matrices.
        obj_rot: (B,3) object axis-angle (`X_cam = R(obj_rot) X_obj + obj_trans`).
        obj_trans: (B,3) object translation.
        obj_rotmat: (B,3,3) `obj_rot` as a matrix.
        hand_sdf: (B,Nh) predicted SDF at `hand_points`, metres.
        obj_sdf: (B,No) predicted SDF at `obj_points`, metres.
        hand_points: (B,Nh,3) query points used.
        obj_points: (B,No,3) query points used.
        anchor_pred: (B,3) anchor head's hand-root estimate.
        anchor_uvd: (B,3) the same as (u/S, v/S, log z) (anchor loss space).
        anchor_logits: (B,h,w) heatmap anchor's root logits, or None (pooled anchor head).
        anchor_used: (B,3) grid centre actually used (GT, given, or predicted; with training
            jitter).
        recon: (B,3,H,W) reconstruction in [0,1] units, or None (eval).
        mask: (B,H/P,W/P) bool masking grid, or None.
        hand_aux: HandMesh of every intermediate decoder layer (training only, deep
            supervision), final layer excluded.
        obj_aux: ObjectLayerOutput of every intermediate object layer (training only).
        sdf_scale: scaled SDF units per metre.
        image_size: crop side S in pixels.
        sdf_extra: {"hand": (B,M), "obj": (B,M')} predicted SDF (m) at the batch's separate SDF
            samples (`hand_sdf_points`/`obj_sdf_points`, `data.grid_points`; training only).
        aux: dense-head prediction (`model.aux`, training only), or None.
        global_joints: (B,21,3) the image token's readout, joints minus root, crop frame
            (`model.hand_head.image_token`, training only), or None.
    """

    mano_pose: torch.Tensor
    mano_shape: torch.Tensor
    hand_transl: torch.Tensor
    joints: torch.Tensor
    vertices: torch.Tensor
    pose_rotmat: torch.Tensor
    obj_rot: torch.Tensor
    obj_trans: torch.Tensor
    obj_rotmat: torch.Tensor
    hand_sdf: torch.Tensor
    obj_sdf: torch.Tensor
    hand_points: torch.Tensor
    obj_points: torch.Tensor
    anchor_pred: torch.Tensor
    anchor_uvd: torch.Tensor
    anchor_used: torch.Tensor
    recon: torch.Tensor | None
    mask: torch.Tensor | None
    hand_aux: list[HandMesh] = field(default_factory=list)
    obj_aux: list[ObjectLayerOutput] = field(default_factory=list)
    sdf_scale: float = 3.1
    image_size: int = 224
    anchor_logits: torch.Tensor | None = None
    sdf_extra: dict[str, torch.Tensor] = field(default_factory=dict)
    aux: AuxPrediction | None = None
    global_joints: torch.Tensor | None = None


class HomaeModel(nn.Module):
    """The HOMAE network; every part is built from `HomaeConfig.model`."""

    def __init__(self, cfg: HomaeConfig) -> None:
        """Build all parts. The MANO layer reads `cfg.mano.resolved_path()` (frozen)."""
        super().__init__()
        self.cfg = cfg
        m = cfg.model
        self.sdf_scale = m.points.sdf_scale
        self.encoder = ImageEncoder(m.encoder)
        self.masking = TargetFocusedMasking(m.masking)
        self.decoder = MaeDecoder(m.decoder, m.encoder.feat_dim)
        self.multiscale = MultiScaleFusion(m.decoder)
        self.skip = (
            ImageSkip(m.decoder.image_skip, m.decoder.feat_channels)
            if m.decoder.image_skip
            else None
        )
        self.posenc = FourierEncoding(m.points.fourier_freqs)
        c = m.decoder.feat_channels
        sdf_in = self.posenc.out_dim + c + 3
        pos_dim = 3 + self.posenc.out_dim
        token_dim = 2 * c if m.pointnet.enabled else c
        self.sdf_hand = SdfHead(m.sdf_head, sdf_in)
        self.sdf_obj = SdfHead(m.sdf_head, sdf_in)
        self.pointnet_hand = PointNet(m.pointnet.dims, c) if m.pointnet.enabled else None
        self.pointnet_obj = PointNet(m.pointnet.dims, c) if m.pointnet.enabled else None
        self.fusion_hand = SdfGatedFusion(m.fusion)
        self.fusion_obj = SdfGatedFusion(m.fusion)
        self.hand_head = HandHead(m.hand_head, token_dim, pos_dim, self.sdf_scale)
        self.image_token = (
            ImageToken(m.encoder.feat_dim, m.hand_head.d_model) if m.hand_head.image_token else None
        )
        self.object_head = ObjectHead(m.object_head, token_dim, pos_dim, self.sdf_scale)
        self.anchor_head = AnchorHead(m.anchor, m.encoder.feat_dim, c)
        self.aux_head = DenseAuxHead(c, m.aux.depth_maps) if m.aux.enabled else None
        self.mano = ManoLayer(str(cfg.mano.resolved_path()))
        self.mano.requires_grad_(False)

    # ---------------------------------------------------------------- stages
    def encode(
        self,
        image: torch.Tensor,
        obj_box: torch.Tensor | None = None,
        *,
        reconstruct: bool = False,
        roi: torch.Tensor | None = None,
    ) -> Encoding:
        """Image -> features (masking applied only in training mode).

        Args:
            image: (B,3,S,S) RGB in [0,1].
            obj_box: (B,4) object boxes in crop pixels (target-focused masking), or None.
            reconstruct: also run the reconstruction head.
            roi: (N,4) xyxy crop pixels where the features will be read (inference: the
                boxes the voxel search keeps points in). In eval mode, without gradients and
                with a pooled anchor head and no image skip, the finest decoder level and
                F~ are computed over a window holding them only (`Encoding.window`).

        Returns:
            `Encoding`.
        """
        x = self.encoder.normalize(image)
        x, mask = self.masking(x, obj_box)
        grid, pooled = self.encoder.forward_normalized(x)
        size = (int(image.shape[-2]), int(image.shape[-1]))
        window = None
        windowed = not (self.training or reconstruct or torch.is_grad_enabled())
        if roi is not None and windowed and self.skip is None and self.anchor_head.heatmap is None:
            n = len(self.decoder.stages)
            fine = (int(grid.shape[-2]) * 2**n, int(grid.shape[-1]) * 2**n)
            window = window_for_boxes(roi, size, fine, 2 ** (n - 1))
            window = None if window.is_full else window
        stages = self.decoder(grid, window)
        fmap = self.multiscale(stages, window)
        if self.skip is not None:
            fmap = fmap + self.skip(x, (int(fmap.shape[-2]), int(fmap.shape[-1])))
        recon = self.decoder.reconstruct(stages, size) if reconstruct else None
        above = [grid, *stages[:-1]] if window is not None else None
        return Encoding(grid, pooled, fmap, size, recon, mask, window, above)

    def features(
        self, enc: Encoding, points: torch.Tensor, K: torch.Tensor, row: int | None = None
    ) -> torch.Tensor:
        """F_img: (B,N,C) features of F~ at the projections of (B,N,3) points (eq. 12).

        With a windowed encoding, points whose pixels lie outside the window get F~ made
        at their pixels from the coarser levels (`fmap_pixels`; the same values up to
        rounding). `row`: image `row` of `enc` alone.
        """
        k = K if row is None else K[row : row + 1]
        uv = project_points(points, k)
        fmap = enc.fmap if row is None else enc.fmap[row : row + 1]
        if enc.window is None or enc.above is None:
            return sample_at_pixels(fmap, uv, enc.image_size, enc.window)
        px = map_pixels(uv, enc.image_size, enc.window.full)
        out = sample_window(fmap, px, enc.window)
        bi, ni = torch.nonzero(~enc.window.covered(px), as_tuple=True)
        if bi.numel():
            above = enc.above

            def pixels(b: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
                return fmap_at_pixels(self.decoder, self.multiscale, above, b, y, x)

            rows = bi if row is None else torch.full_like(bi, row)
            out[bi, ni] = sample_outside(pixels, px[bi, ni], rows, enc.window.full).to(out.dtype)
        return out

    def predict_anchor(
        self,
        enc: Encoding,
        K: torch.Tensor,
        hand_box: torch.Tensor | None = None,
        obj_box: torch.Tensor | None = None,
    ) -> AnchorPrediction:
        """GT-free hand-root estimate from the image features and the crop K (B,3,3).

        `hand_box`/`obj_box` (B,4) xyxy crop pixels are read when `model.anchor.use_boxes`.
        """
        boxes = None
        if self.anchor_head.box is not None:
            if hand_box is None or obj_box is None:
                raise ValueError(
                    "model.anchor.use_boxes: predict_anchor needs hand_box and obj_box"
                )
            boxes = torch.stack([hand_box, obj_box], dim=1).to(enc.pooled.dtype)
        return self.anchor_head(enc.pooled, K, enc.image_size[1], enc.fmap, boxes=boxes)

    def _branch(self, branch: str) -> tuple[SdfHead, PointNet | None, SdfGatedFusion]:
        if branch == "hand":
            return self.sdf_hand, self.pointnet_hand, self.fusion_hand
        if branch == "obj":
            return self.sdf_obj, self.pointnet_obj, self.fusion_obj
        raise ValueError(f"branch={branch!r}; valid: {list(BRANCHES)}")

    def _sdf_scaled(
        self,
        enc: Encoding,
        K: torch.Tensor,
        points: torch.Tensor,
        anchor: torch.Tensor,
        branch: str,
        row: int | None = None,
        cached: bool = False,
        f_img: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        head, _, _ = self._branch(branch)
        f_img = self.features(enc, points, K, row) if f_img is None else f_img
        if row is not None:  # image `row` alone: (1,M,3) points
            anchor = anchor[row : row + 1]
        q = (points - anchor[:, None, :]) * self.sdf_scale
        gamma = self.posenc(q)
        inp = torch.cat([gamma, f_img, q], dim=-1)
        sdf = head.forward_cached(inp) if cached else head(inp)
        return sdf, f_img, torch.cat([q, gamma], dim=-1)

    def sdf(
        self,
        enc: Encoding,
        K: torch.Tensor,
        points: torch.Tensor,
        anchor: torch.Tensor,
        branch: str,
        *,
        sdf_m: torch.Tensor | None = None,
        f_img: torch.Tensor | None = None,
    ) -> PointBranch:
        """SDF and fused tokens of query points (eq. 12-14).

        Args:
            enc: `Encoding` of the crops.
            K: (B,3,3) crop intrinsics.
            points: (B,N,3) camera frame, metres.
            anchor: (B,3) grid centre (hand root), camera frame.
            branch: "hand" or "obj".
            sdf_m: (B,N) this branch's SDF at `points` in metres when already known (the voxel
                search returns it): the SDF head is then not run again (inference only).
            f_img: (B,N,C) F~ at the points' projections when already sampled (the exported
                graphs sample a window of F~ themselves); None: `features`.

        Returns:
            `PointBranch`.
        """
        _, pointnet, fusion = self._branch(branch)
        if sdf_m is None:
            sdf, f_img, pos = self._sdf_scaled(enc, K, points, anchor, branch, f_img=f_img)
        else:
            q = (points - anchor[:, None, :]) * self.sdf_scale
            f_img = self.features(enc, points, K) if f_img is None else f_img
            pos = torch.cat([q, self.posenc(q)], dim=-1)
            sdf = sdf_m.to(f_img.dtype) * self.sdf_scale
        f_3d = pointnet(pos[..., :3]) if pointnet is not None else None
        tokens = fusion(f_img, f_3d, sdf)
        return PointBranch(points=points, pos=pos, sdf=sdf, tokens=tokens)

    def sdf_fn(
        self, enc: Encoding, K: torch.Tensor, anchor: torch.Tensor, branch: str
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """A function (B,M,3) points -> (B,M) SDF in metres, for the voxel search."""
        return _BranchSdf(self, enc, K, anchor, branch)

    @torch.no_grad()
    def sample_points(
        self, enc: Encoding, K: torch.Tensor, anchor: torch.Tensor, box: torch.Tensor, branch: str
    ) -> VoxelSelection:
        """Inference query points: the Nh (No) voxels with the smallest |SDF| (config sampling).

        Args:
            enc: `Encoding`.
            K: (B,3,3) crop intrinsics.
            anchor: (B,3) grid centre.
            box: (B,4) hand (object) box in crop pixels.
            branch: "hand" or "obj".

        Returns:
            `VoxelSelection` (points, SDF in metres, evaluation count).
        """
        return search_points(self.cfg, self.sdf_fn(enc, K, anchor, branch), anchor, K, box, branch)

    def global_token(self, enc: Encoding) -> torch.Tensor | None:
        """(B,d_model) the hand head's image token (`model.hand_head.image_token`), or None."""
        if self.image_token is None:
            return None
        return self.image_token(enc.pooled, enc.grid)

    def heads(
        self,
        hand: PointBranch,
        obj: PointBranch,
        *,
        final_only: bool = False,
        image_token: torch.Tensor | None = None,
    ) -> tuple[list[HandLayerOutput], list[ObjectLayerOutput]]:
        """Transformer heads: per-layer hand and object estimates (the last = final).

        `final_only`: only the final estimates (one-element lists; inference).
        `image_token`: `global_token(enc)` for a model with `model.hand_head.image_token`.
        """
        if (image_token is None) != (self.image_token is None):
            raise ValueError(
                "model.hand_head.image_token is "
                f"{self.image_token is not None} but the heads were "
                f"{'not ' if image_token is None else ''}given an image token"
            )
        return (
            self.hand_head(hand.tokens, hand.pos, final_only=final_only, image_token=image_token),
            self.object_head(obj.tokens, obj.pos, obj.points, final_only=final_only),
        )

    def hand_mesh(self, layer: HandLayerOutput, anchor: torch.Tensor) -> HandMesh:
        """MANO mesh of a hand estimate whose root sits at `anchor + root_offset`."""
        b = layer.rot6d.shape[0]
        rotmat = rot6d_to_matrix(layer.rot6d)  # (B,16,3,3)
        pose = matrix_to_axis_angle(rotmat).reshape(b, 48)
        out = self.mano(pose, layer.shape, None)
        root = anchor + layer.root_offset
        transl = root - out.joints[:, 0]
        return HandMesh(
            pose=pose,
            pose_rotmat=rotmat,
            shape=layer.shape,
            transl=transl,
            joints=out.joints + transl[:, None],
            vertices=out.vertices + transl[:, None],
        )

    # ---------------------------------------------------------------- forward
    def forward(
        self,
        batch: dict[str, torch.Tensor],
        *,
        anchor: torch.Tensor | None = None,
        reconstruct: bool | None = None,
    ) -> HomaeOutput:
        """Run the whole network on a batch of training dicts (docs/design.md).

        Args:
            batch: needs `image` (B,3,S,S) and `K` (B,3,3); `obj_box` (masking, training);
                `hand_points`/`obj_points` (B,N,3) when present are used as query points,
                otherwise points come from the voxel search inside `hand_box`/`obj_box`;
                `anchor` (B,3) is the grid centre in training mode (`grid_anchor` (B,3) instead
                when present: the predicted anchor of `anchor.train_on_predicted`).
            anchor: (B,3) grid centre overriding everything (gt-anchored evaluation). Default:
                the batch's `anchor` in training mode, the anchor head's estimate in eval mode.
            reconstruct: compute the reconstruction (default: in training mode only).

        Returns:
            `HomaeOutput`.
        """
        image, K = batch["image"], batch["K"].to(batch["image"].dtype)
        if reconstruct is None:
            reconstruct = self.training
        enc = self.encode(image, batch.get("obj_box"), reconstruct=reconstruct)
        pred = self.predict_anchor(enc, K, batch.get("hand_box"), batch.get("obj_box"))
        if anchor is None and self.training:
            anchor = batch.get("grid_anchor", batch.get("anchor"))
        used = (anchor if anchor is not None else pred.anchor.detach()).to(image.dtype)
        jitter = self.cfg.model.anchor.train_jitter_m
        if self.training and jitter > 0:
            used = used + torch.randn_like(used) * jitter
        branches = {}
        sdf_extra = {}
        for name in BRANCHES:
            pts = batch.get(f"{name}_points")
            if pts is None:
                pts = self.sample_points(enc, K, used, batch[f"{name}_box"], name).points
            branches[name] = self.sdf(enc, K, pts.to(image.dtype), used, name)
            extra = batch.get(f"{name}_sdf_points")
            if self.training and extra is not None:
                sdf = self._sdf_scaled(enc, K, extra.to(image.dtype), used, name)[0]
                sdf_extra[name] = sdf / self.sdf_scale
        aux = self.aux_head(enc.fmap) if self.training and self.aux_head is not None else None
        token = self.global_token(enc)
        hand_layers, obj_layers = self.heads(branches["hand"], branches["obj"], image_token=token)
        final = self.hand_mesh(hand_layers[-1], used)
        hand_aux, obj_aux = [], []
        if self.training:
            hand_aux = [self.hand_mesh(layer, used) for layer in hand_layers[:-1]]
            obj_aux = obj_layers[:-1]
        obj = obj_layers[-1]
        return HomaeOutput(
            mano_pose=final.pose,
            mano_shape=final.shape,
            hand_transl=final.transl,
            joints=final.joints,
            vertices=final.vertices,
            pose_rotmat=final.pose_rotmat,
            obj_rot=matrix_to_axis_angle(obj.rotmat),
            obj_trans=obj.trans,
            obj_rotmat=obj.rotmat,
            hand_sdf=branches["hand"].sdf / self.sdf_scale,
            obj_sdf=branches["obj"].sdf / self.sdf_scale,
            hand_points=branches["hand"].points,
            obj_points=branches["obj"].points,
            anchor_pred=pred.anchor,
            anchor_uvd=pred.uvd,
            anchor_used=used,
            anchor_logits=pred.logits,
            recon=enc.recon,
            mask=enc.mask,
            hand_aux=hand_aux,
            obj_aux=obj_aux,
            sdf_scale=self.sdf_scale,
            image_size=enc.image_size[1],
            sdf_extra=sdf_extra,
            aux=aux,
            global_joints=(
                self.image_token.joints(token) if self.training and token is not None else None
            ),
        )


def search_points(
    cfg: HomaeConfig,
    sdf_fn: Callable[[torch.Tensor], torch.Tensor],
    anchor: torch.Tensor,
    K: torch.Tensor,
    box: torch.Tensor,
    branch: str,
) -> VoxelSelection:
    """The inference voxel search of one branch with the config's settings, any SDF function.

    Dense or coarse-to-fine per `cfg.model.inference.sampling`; keeps `cfg.model.points`'
    num_hand (num_obj) points. Every runtime of the Predictor calls this with its own SDF
    function (`HomaeModel.sdf_fn`, or an exported graph's), so the search is the same.

    Args:
        cfg: the model's config.
        sdf_fn: (B,M,3) camera-frame points -> (B,M) SDF in metres (`voxels.SdfFn`).
        anchor: (B,3) grid centre, camera frame, metres.
        K: (B,3,3) crop intrinsics.
        box: (B,4) the branch's box, xyxy crop pixels.
        branch: "hand" or "obj".

    Returns:
        `VoxelSelection` (points, SDF in metres, evaluation count).
    """
    if branch not in BRANCHES:
        raise ValueError(f"branch={branch!r}; valid: {list(BRANCHES)}")
    inf = cfg.model.inference
    pts = cfg.model.points
    k = pts.num_hand if branch == "hand" else pts.num_obj
    common = {"res": inf.voxel_res, "sdf_scale": pts.sdf_scale, "chunk": inf.chunk_points}
    if inf.sampling == "dense":
        return dense_select(sdf_fn, anchor, K, box, k, **common)
    return coarse_to_fine_select(
        sdf_fn, anchor, K, box, k, coarse_res=inf.coarse_res, margin=inf.refine_margin, **common
    )


class _BranchSdf:
    """One branch's SDF for the voxel search: (B,M,3) points (metres) -> (B,M) metres.

    Supports `row=b` (image b alone, no padding; see `homae_model.geometry.voxels.SdfFn`).
    """

    supports_row = True

    def __init__(
        self, model: HomaeModel, enc: Encoding, K: torch.Tensor, anchor: torch.Tensor, branch: str
    ) -> None:
        self.model, self.enc, self.K, self.anchor, self.branch = model, enc, K, anchor, branch

    def __call__(self, points: torch.Tensor, row: int | None = None) -> torch.Tensor:
        """SDF of `points` in metres ((B,M,3), or (1,M,3) of image `row`)."""
        m = self.model
        # without a graph to record, the head's normalised weights are computed once while
        # its parameters do not change (`SdfHead.forward_cached`); with autograd, as usual
        cached = not torch.is_grad_enabled()
        out = m._sdf_scaled(self.enc, self.K, points, self.anchor, self.branch, row, cached)
        sdf = out[0]
        return sdf / m.sdf_scale
