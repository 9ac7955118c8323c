"""Training losses of HOMAE: pure functions, one per term, and `total_loss`.

L_total = lambda1 L_rec + lambda2 L_mano + lambda3 L_obj + lambda4 L_SDF + lambda5 L_others
(paper Section III-D; lambda1..4 = 1). Term weights follow HOISDF (spec section 4): pose as
rotation matrices MSE x10, shape MSE x0.1, joints and mesh MSE x1e4 (metres); object rotation
SmoothL1 x0.7 (on rotation-matrix entries: continuous, no axis-angle wrap-around), translation
SmoothL1 x100 (metres); SDF L1 hand x50, object x25 in scaled units (metres x sdf_scale, as
HOISDF) against targets clamped to +-sdf_clamp_m. L_others here is the anchor loss (the
GT-free anchor head); HOISDF's heatmap/segmentation/vote terms belong to heads this network
does not have. With deep supervision the MANO and object terms are added for every
intermediate transformer layer too.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from homae_model.config import LossConfig
from homae_model.geometry.rotations import axis_angle_to_matrix
from homae_model.model import HandMesh, HomaeOutput
from homae_model.nn.anchor import anchor_to_uvd


def reconstruction_loss(recon: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Eq. 10: mean squared pixel error of the reconstruction against the UNMASKED image.

    Args:
        recon: (B,3,H,W) prediction in [0,1] units.
        image: (B,3,H,W) input crop in [0,1].
    """
    return F.mse_loss(recon, image)


def mano_loss(
    pred: HandMesh, batch: dict[str, torch.Tensor], cfg: LossConfig
) -> dict[str, torch.Tensor]:
    """Weighted MANO terms of one hand estimate.

    Args:
        pred: predicted `HandMesh` (camera frame, metres).
        batch: needs `mano_pose` (B,48), `mano_shape` (B,10), `hand_joints` (B,21,3),
            `hand_verts` (B,778,3).
        cfg: weights.

    Returns:
        dict with `mano_pose`, `mano_shape`, `mano_joints`, `mano_verts` (already weighted),
        and `mano_aligned` / `mano_global` when their weights are set.
    """
    b = pred.pose.shape[0]
    gt_rot = axis_angle_to_matrix(batch["mano_pose"].reshape(b, 16, 3).to(pred.pose.dtype))
    terms = {}
    if cfg.mano_global > 0:  # the global orientation alone (1/16 of `mano_pose`'s MSE)
        terms["mano_global"] = cfg.mano_global * F.mse_loss(pred.pose_rotmat[:, 0], gt_rot[:, 0])
    if cfg.mano_aligned > 0:
        terms["mano_aligned"] = cfg.mano_aligned * aligned_joints_loss(
            pred.joints, batch["hand_joints"]
        )
    return terms | {
        "mano_pose": cfg.mano_pose * F.mse_loss(pred.pose_rotmat, gt_rot),
        "mano_shape": cfg.mano_shape * F.mse_loss(pred.shape, batch["mano_shape"]),
        "mano_joints": cfg.mano_joints * F.mse_loss(pred.joints, batch["hand_joints"]),
        "mano_verts": cfg.mano_verts * F.mse_loss(pred.vertices, batch["hand_verts"]),
    }


def aligned_joints_loss(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """MSE of root-relative joints after rotating the prediction onto the GT (Kabsch, no scale).

    The rotation is found without gradient, so the loss teaches the articulation alone: in the
    camera frame, while the global orientation is still uncertain, the joint MSE is lowered by
    curling and shrinking the hand towards its root, which this term does not reward.

    Args:
        pred: (B,21,3) predicted joints, metres.
        gt: (B,21,3) GT joints, metres.

    Returns:
        Scalar MSE in m^2 (unweighted).
    """
    p = pred - pred[:, :1]
    g = gt.to(pred.dtype) - gt[:, :1].to(pred.dtype)
    with torch.no_grad():
        h = (p.transpose(1, 2) @ g).double()
        u, _, vt = torch.linalg.svd(h)
        d = torch.sign(torch.det(vt.transpose(1, 2) @ u.transpose(1, 2)))
        eye = torch.eye(3, dtype=h.dtype, device=h.device).repeat(p.shape[0], 1, 1)
        eye[:, 2, 2] = d
        rot = (vt.transpose(1, 2) @ eye @ u.transpose(1, 2)).to(p.dtype)
    return F.mse_loss(p @ rot.transpose(1, 2), g)


def object_loss(
    rotmat: torch.Tensor, trans: torch.Tensor, batch: dict[str, torch.Tensor], cfg: LossConfig
) -> dict[str, torch.Tensor]:
    """Weighted object-pose terms.

    Args:
        rotmat: (B,3,3) predicted rotation (object -> camera).
        trans: (B,3) predicted translation, metres.
        batch: needs `obj_rot` (B,3) axis-angle and `obj_trans` (B,3).
        cfg: weights and the SmoothL1 beta.

    Returns:
        dict with `obj_rot`, `obj_trans`.
    """
    gt_rot = axis_angle_to_matrix(batch["obj_rot"].to(rotmat.dtype))
    beta = cfg.smooth_l1_beta
    terms = {
        "obj_rot": cfg.obj_rot * F.smooth_l1_loss(rotmat, gt_rot, beta=beta),
        "obj_trans": cfg.obj_trans * F.smooth_l1_loss(trans, batch["obj_trans"], beta=beta),
    }
    if cfg.obj_rot_points > 0:
        points = batch["obj_model_points"].to(rotmat.dtype)
        terms["obj_rot_points"] = cfg.obj_rot_points * symmetric_rotation_loss(
            rotmat, gt_rot, points
        )
    return terms


def symmetric_rotation_loss(
    rotmat: torch.Tensor, gt_rot: torch.Tensor, points: torch.Tensor
) -> torch.Tensor:
    """Mean distance from each GT-rotated model point to the nearest predicted-rotated one.

    BOP's ADD-S without the translation: a rotation that maps the model onto itself (a can
    about its axis, a box by half a turn) costs nothing, so a symmetric object has no single
    target to average over (the matrix-entry loss's answer for such objects is their mean
    rotation, near the identity).

    Args:
        rotmat: (B,3,3) predicted rotation, object -> camera.
        gt_rot: (B,3,3) GT rotation.
        points: (B,P,3) model points, object frame, metres.

    Returns:
        () mean over the batch, metres.
    """
    pred = points @ rotmat.transpose(1, 2)
    gt = points @ gt_rot.transpose(1, 2)
    return torch.cdist(gt, pred).min(dim=2).values.mean()


def sdf_loss(
    pred_m: torch.Tensor, gt_m: torch.Tensor, clamp_m: float, scale: float
) -> torch.Tensor:
    """L1 between predicted SDF and the clamped target, in scaled units (unweighted).

    Args:
        pred_m: (B,N) predicted SDF, metres.
        gt_m: (B,N) target SDF, metres (negative inside).
        clamp_m: targets are clamped to +-clamp_m.
        scale: scaled units per metre (sdf_scale).
    """
    target = gt_m.clamp(-clamp_m, clamp_m)
    return F.l1_loss(pred_m * scale, target * scale)


def anchor_loss(
    uvd_pred: torch.Tensor, gt_anchor: torch.Tensor, K: torch.Tensor, image_size: int
) -> torch.Tensor:
    """L1 in (u/S, v/S, log z) space between the anchor head and the GT hand root.

    Args:
        uvd_pred: (B,3) anchor head output (`HomaeOutput.anchor_uvd`).
        gt_anchor: (B,3) GT hand root, camera frame, metres.
        K: (B,3,3) crop intrinsics.
        image_size: crop side S.
    """
    target = anchor_to_uvd(gt_anchor.to(uvd_pred.dtype), K.to(uvd_pred.dtype), image_size)
    return F.l1_loss(uvd_pred, target)


def anchor_heatmap_loss(
    logits: torch.Tensor,
    gt_anchor: torch.Tensor,
    K: torch.Tensor,
    image_size: int,
    sigma_cells: float = 1.0,
) -> torch.Tensor:
    """Cross-entropy between the heatmap anchor's logits and a Gaussian at the GT root pixel.

    Args:
        logits: (B,h,w) `AnchorPrediction.logits`; cell (i, j) covers crop pixels
            [j*S/w, (j+1)*S/w) x [i*S/h, (i+1)*S/h).
        gt_anchor: (B,3) GT hand root, camera frame, metres.
        K: (B,3,3) crop intrinsics.
        image_size: crop side S in pixels.
        sigma_cells: the target Gaussian's standard deviation, in cells.

    Returns:
        Scalar, mean over the batch (nats; a perfect match leaves the target's entropy).
    """
    b, h, w = logits.shape
    s = float(image_size)
    uv = anchor_to_uvd(gt_anchor.to(logits.dtype), K.to(logits.dtype), image_size)[:, :2] * s
    # pixel -> continuous cell coordinate whose integer + 0.5 is a cell centre
    cx = (uv[:, 0] + 0.5) * (w / s) - 0.5
    cy = (uv[:, 1] + 0.5) * (h / s) - 0.5
    ys = torch.arange(h, device=logits.device, dtype=logits.dtype)
    xs = torch.arange(w, device=logits.device, dtype=logits.dtype)
    d2 = (ys[None, :, None] - cy[:, None, None]) ** 2 + (xs[None, None, :] - cx[:, None, None]) ** 2
    target = torch.softmax((-0.5 * d2 / sigma_cells**2).reshape(b, -1), dim=1)
    return -(target * torch.log_softmax(logits.reshape(b, -1), dim=1)).sum(dim=1).mean()


def keypoint_heatmap_loss(
    logits: torch.Tensor,
    uv: torch.Tensor,
    valid: torch.Tensor,
    image_size: int,
    sigma_px: float,
) -> torch.Tensor:
    """Cross-entropy of per-keypoint spatial softmaxes against Gaussians at the GT pixels.

    Args:
        logits: (B,J,h,w) keypoint logits; cell (i, j) covers crop pixels
            [j*S/w, (j+1)*S/w) x [i*S/h, (i+1)*S/h).
        uv: (B,J,2) GT keypoint pixels in the crop.
        valid: (B,J) bool, keypoints that count (inside the crop, in front of the camera).
        image_size: crop side S in pixels.
        sigma_px: the target Gaussian's standard deviation in crop pixels.

    Returns:
        Scalar, mean over the valid keypoints (nats); 0 when none is valid.
    """
    b, j, h, w = logits.shape
    s = float(image_size)
    cx = (uv[..., 0] + 0.5) * (w / s) - 0.5  # (B,J) continuous cell coordinates
    cy = (uv[..., 1] + 0.5) * (h / s) - 0.5
    sig = max(sigma_px * w / s, 0.5)
    ys = torch.arange(h, device=logits.device, dtype=logits.dtype)
    xs = torch.arange(w, device=logits.device, dtype=logits.dtype)
    gy = -0.5 * ((ys[None, None, :] - cy[..., None]) / sig) ** 2  # (B,J,h)
    gx = -0.5 * ((xs[None, None, :] - cx[..., None]) / sig) ** 2  # (B,J,w)
    target = torch.softmax((gy[..., :, None] + gx[..., None, :]).reshape(b, j, -1), dim=-1)
    ce = -(target * torch.log_softmax(logits.reshape(b, j, -1), dim=-1)).sum(dim=-1)
    mask = valid.to(ce.dtype)
    return (ce * mask).sum() / mask.sum().clamp(min=1.0)


def aux_targets(
    batch: dict[str, torch.Tensor], image_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keypoint pixels, validity and relative joint depths of the dense heads (`model.aux`).

    Args:
        batch: needs `K` (B,3,3), `hand_joints` (B,21,3), `obj_corners` (B,8,3), crop frame.
        image_size: crop side S in pixels.

    Returns:
        uv (B,30,2) crop pixels (21 joints, 8 corners, the corners' mean), valid (B,30) bool,
        rel_depth (B,21) joint z minus root z (m).
    """
    joints = batch["hand_joints"]
    corners = batch["obj_corners"].to(joints.dtype)
    pts = torch.cat([joints, corners, corners.mean(dim=1, keepdim=True)], dim=1)
    K = batch["K"].to(joints.dtype)
    z = pts[..., 2]
    proj = pts @ K.transpose(-1, -2)
    uv = proj[..., :2] / z.clamp(min=1e-6)[..., None]
    s = float(image_size)
    valid = (z > 1e-3) & (uv >= 0).all(dim=-1) & (uv <= s - 1).all(dim=-1)
    rel = joints[..., 2] - joints[:, :1, 2]
    return uv, valid, rel


def depth_map_losses(
    mask_logits: torch.Tensor, depth_maps: torch.Tensor, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Coverage BCE and surface-depth L1 of the dense maps (`model.aux.depth_maps`).

    Predictions are average-pooled to the targets' grid when finer.

    Args:
        mask_logits: (B,2,h,w) hand / object coverage logits.
        depth_maps: (B,2,h,w) predicted nearest surface depth minus the hand root's (m).
        batch: needs `hand_depth_map`, `obj_depth_map` (B,G,G), NaN where not covered.

    Returns:
        (coverage BCE over all cells, depth L1 in metres over the covered cells).
    """
    target = torch.stack([batch["hand_depth_map"], batch["obj_depth_map"]], dim=1)
    g = target.shape[-2:]
    if mask_logits.shape[-2:] != g:
        mask_logits = F.adaptive_avg_pool2d(mask_logits, g)
        depth_maps = F.adaptive_avg_pool2d(depth_maps, g)
    covered = torch.isfinite(target)
    target = target.to(depth_maps.dtype)
    bce = F.binary_cross_entropy_with_logits(mask_logits, covered.to(mask_logits.dtype))
    if not bool(covered.any()):
        return bce, depth_maps.sum() * 0.0
    return bce, F.l1_loss(depth_maps[covered], target[covered])


def total_loss(
    out: HomaeOutput, batch: dict[str, torch.Tensor], cfg: LossConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum of every term.

    Args:
        out: `HomaeOutput` of a training forward pass (recon present when lambda_rec > 0).
        batch: the training dict batch (docs/design.md).
        cfg: `LossConfig`.

    Returns:
        (scalar total, dict of the named weighted terms, detached, plus the per-group sums
        `L_rec`, `L_mano`, `L_obj`, `L_sdf`, `L_others`).
    """
    terms: dict[str, torch.Tensor] = {}
    zero = out.joints.new_zeros(())
    l_rec = zero
    if out.recon is not None and cfg.lambda_rec > 0:
        l_rec = cfg.rec * reconstruction_loss(out.recon, batch["image"])
        terms["rec"] = l_rec
    final = HandMesh(
        out.mano_pose, out.pose_rotmat, out.mano_shape, out.hand_transl, out.joints, out.vertices
    )
    hand_terms = mano_loss(final, batch, cfg)
    obj_terms = object_loss(out.obj_rotmat, out.obj_trans, batch, cfg)
    terms.update(hand_terms)
    terms.update(obj_terms)
    l_mano = sum(hand_terms.values(), zero)
    l_obj = sum(obj_terms.values(), zero)
    if cfg.deep_supervision:
        for i, aux in enumerate(out.hand_aux):
            t = mano_loss(aux, batch, cfg)
            terms.update({f"{k}_aux{i}": v for k, v in t.items()})
            l_mano = l_mano + sum(t.values(), zero)
        for i, aux in enumerate(out.obj_aux):
            t = object_loss(aux.rotmat, aux.trans, batch, cfg)
            terms.update({f"{k}_aux{i}": v for k, v in t.items()})
            l_obj = l_obj + sum(t.values(), zero)
    terms["sdf_hand"] = cfg.sdf_hand * sdf_loss(
        out.hand_sdf, batch["hand_sdf"], cfg.sdf_clamp_m, out.sdf_scale
    )
    terms["sdf_obj"] = cfg.sdf_obj * sdf_loss(
        out.obj_sdf, batch["obj_sdf"], cfg.sdf_clamp_m, out.sdf_scale
    )
    l_sdf = terms["sdf_hand"] + terms["sdf_obj"]
    for name, weight in (("hand", cfg.sdf_hand), ("obj", cfg.sdf_obj)):
        if name in out.sdf_extra:
            term = weight * sdf_loss(
                out.sdf_extra[name], batch[f"{name}_sdf_values"], cfg.sdf_clamp_m, out.sdf_scale
            )
            terms[f"sdf_{name}_samples"] = term
            l_sdf = l_sdf + term
    l_others = zero
    if "anchor" in batch and cfg.anchor > 0:
        terms["anchor"] = cfg.anchor * anchor_loss(
            out.anchor_uvd, batch["anchor"], batch["K"], out.image_size
        )
        l_others = terms["anchor"]
        if out.anchor_logits is not None and cfg.anchor_heatmap > 0:
            terms["anchor_heatmap"] = cfg.anchor_heatmap * anchor_heatmap_loss(
                out.anchor_logits, batch["anchor"], batch["K"], out.image_size,
                cfg.anchor_heatmap_sigma,
            )  # fmt: skip
            l_others = l_others + terms["anchor_heatmap"]
    if out.aux is not None:
        uv, valid, rel = aux_targets(batch, out.image_size)
        logits = out.aux.logits
        terms["aux_heatmap"] = cfg.aux_heatmap * keypoint_heatmap_loss(
            logits, uv.to(logits.dtype), valid, out.image_size, cfg.aux_sigma_px
        )
        terms["aux_depth"] = cfg.aux_depth * F.l1_loss(out.aux.rel_depth, rel.to(logits.dtype))
        l_others = l_others + terms["aux_heatmap"] + terms["aux_depth"]
        if out.aux.mask_logits is not None and out.aux.depth_maps is not None:
            bce, l1 = depth_map_losses(out.aux.mask_logits, out.aux.depth_maps, batch)
            terms["aux_mask"] = cfg.aux_mask * bce
            terms["aux_depth_map"] = cfg.aux_depth_map * l1
            l_others = l_others + terms["aux_mask"] + terms["aux_depth_map"]
    if out.global_joints is not None:
        joints = batch["hand_joints"].to(out.global_joints.dtype)
        terms["global_joints"] = cfg.global_joints * F.l1_loss(
            out.global_joints, joints - joints[:, :1]
        )
        l_others = l_others + terms["global_joints"]
    total = (
        cfg.lambda_rec * l_rec
        + cfg.lambda_mano * l_mano
        + cfg.lambda_obj * l_obj
        + cfg.lambda_sdf * l_sdf
        + cfg.lambda_others * l_others
    )
    named = {k: v.detach() for k, v in terms.items()}
    named.update(
        {
            "L_rec": l_rec.detach(),
            "L_mano": l_mano.detach(),
            "L_obj": l_obj.detach(),
            "L_sdf": l_sdf.detach(),
            "L_others": l_others.detach(),
        }
    )
    return total, named
