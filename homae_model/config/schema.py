"""The schema of HOMAE's configuration: typed dataclasses, their defaults, ranges and checks.

`HomaeConfig` has the sections `model`, `loss`, `train`, `data` and `mano`. Every field's default
is the paper's (or HOISDF's, where the paper follows it). The dataclasses are the schema that
`homae_model.config.loading` hands to OmegaConf (types), and the checks OmegaConf cannot express
(ranges, choices, cross-key rules, `DERIVED` pairs) are `HomaeConfig.validate`'s.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parents[1]
"""Folder of the `homae_model` package; relative MANO paths are resolved against it."""

DEFAULT_MANO_PATH = "assets/hand/MANO_RIGHT.pkl"
"""The bundled synthetic MANO-format hand, relative to `PACKAGE_DIR`."""


def _f(
    default: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A dataclass field with validation metadata (range bounds or allowed choices)."""
    meta = {"ge": ge, "gt": gt, "le": le, "choices": choices}
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------------------------


@dataclass
class EncoderConfig:
    """DINOv2 ViT encoder (timm). Overrides shrink it for the small/tiny configs."""

    # vit: the paper's DINOv2 ViT; cnn: a timm convolutional network (`name`, e.g. resnet18)
    # up to its stride-16 stage, which gives the same token grid (img_size / 14 a side; the crop
    # is resampled to 16 px per cell); for training from scratch on a CPU, where a small ViT
    # does not learn the hand from the image (weights/demo/README.md). Not the paper's encoder.
    # With cnn, embed_dim / depth / num_heads are not used, and stem / layer_scale_init must
    # stay at their defaults.
    arch: str = _f("vit", choices=("vit", "cnn"))
    name: str = "vit_small_patch14_dinov2"  # timm model name
    img_size: int = _f(224, gt=0)  # input crop side (px), a multiple of the ViT patch (14)
    embed_dim: int | None = _f(None, gt=0)  # ViT width override (None = the timm default)
    depth: int | None = _f(None, gt=0)  # number of ViT blocks override
    num_heads: int | None = _f(None, gt=0)  # attention heads override
    pretrained_path: str | None = None  # local .safetensors/.pth file; never a hub download
    feat_dim: int = _f(256, gt=0)  # projected token width (paper: 256)
    # LayerScale start value of every ViT block. 0 = automatic: timm's DINOv2 value (1e-5, meant
    # for fine-tuning pretrained weights) when pretrained_path is set, 1.0 when training from
    # scratch (at 1e-5 the blocks of a from-scratch ViT barely move the tokens for thousands of
    # steps).
    layer_scale_init: float = _f(0.0, ge=0.0)
    # patch: the ViT's patchify (one 14x14 stride-14 convolution, what DINOv2 weights fit);
    # conv: an early-convolution stem (3x3 stride-2 convolutions, then a 7x7 stride-7 one to
    # the same token grid) for training from scratch; no pretrained weights with it
    stem: str = _f("patch", choices=("patch", "conv"))


@dataclass
class MaskingConfig:
    """Target-focused masking (paper eq. 1-7), training only."""

    enabled: bool = True
    patch_size: int = _f(28, gt=0)  # P (px); img_size / P must be an integer grid (8x8)
    num_patches: int = _f(12, ge=0)  # rho, masked patches per image
    mu: float = _f(0.5, ge=0.0, le=1.0)  # fraction of rho drawn inside the object box cells
    fill: str = _f("noise", choices=("noise", "zero", "mean"))  # in the normalised image space


@dataclass
class DecoderConfig:
    """MAE decoder: L MLP stages, each upsampling x2, plus the multi-scale feature MLP."""

    num_stages: int = _f(3, gt=0)  # L
    stage_channels: list[int] = field(default_factory=lambda: [256, 128, 64])  # per stage
    multiscale: bool = True  # False: last stage only, projected to C (Table V ablation)
    feat_channels: int = _f(223, gt=0)  # C of the multi-scale feature map F~
    fusion_hidden: int = _f(256, gt=0)  # hidden width of the multi-scale MLP
    # widths of a strided-convolution branch over the crop added to F~ (levels at S/2, S/4, ...;
    # `homae_model.nn.skip`); empty = off (the paper)
    image_skip: list[int] = field(default_factory=list)


@dataclass
class PointsConfig:
    """Query points of the SDF branches."""

    num_hand: int = _f(600, gt=0)  # Nh at inference (training uses the batch's points)
    num_obj: int = _f(200, gt=0)  # No
    sdf_scale: float = _f(3.1, gt=0.0)  # q = (p - anchor) * sdf_scale (HOISDF)
    fourier_freqs: int = _f(5, ge=0)  # F: 2^0..2^(F-1), sin & cos -> 6F dims


@dataclass
class SdfHeadConfig:
    """SDF MLP (eq. 13), as HOISDF: 4 x 512, weight norm, latent re-injected at layer 2."""

    hidden: int = _f(512, gt=0)
    layers: int = _f(4, ge=2)
    inject_layer: int = _f(2, ge=0)  # the input is concatenated again before this layer
    weight_norm: bool = True


@dataclass
class PointNetConfig:
    """Explicit branch: per-point MLP + max-pooled global feature (Table V ablation)."""

    enabled: bool = True  # False: implicit only (F_img alone enters the fusion)
    dims: list[int] = field(default_factory=lambda: [64, 128, 256])


@dataclass
class FusionConfig:
    """Eq. 14 gating with a learnable beta per branch (HOISDF values)."""

    beta_init: float = _f(0.1, gt=0.0)
    beta_min: float = _f(2e-3, gt=0.0)


@dataclass
class HandHeadConfig:
    """Hand transformer: encoder over hand tokens, decoder with 16 + 1 + 1 queries."""

    d_model: int = _f(256, gt=0)
    enc_layers: int = _f(6, ge=0)
    dec_layers: int = _f(4, gt=0)
    heads: int = _f(4, gt=0)
    ffn: int = _f(1024, gt=0)
    dropout: float = _f(0.0, ge=0.0, le=1.0)
    # one token from the whole crop (class token ++ mean patch token, MLP) prepended to the
    # encoder's input, its joints readout trained by loss.global_joints (nn/image_token.py;
    # not in the paper: its head reads the image only at the query points)
    image_token: bool = False


@dataclass
class ObjectHeadConfig:
    """Object transformer encoder; per-point 6D rotation and centre votes, averaged."""

    d_model: int = _f(256, gt=0)
    layers: int = _f(3, gt=0)
    heads: int = _f(4, gt=0)
    ffn: int = _f(1024, gt=0)
    dropout: float = _f(0.0, ge=0.0, le=1.0)


@dataclass
class AnchorConfig:
    """GT-free anchor head (the voxel-grid centre = predicted hand root)."""

    ref_size_m: float = _f(0.3, gt=0.0)  # metric size that spans the whole crop at exp(d)=1
    hidden: int = _f(256, gt=0)
    # pooled: MLP on the class token; heatmap: + soft-argmax over the feature map (see nn/anchor)
    kind: str = _f("pooled", choices=("pooled", "heatmap"))
    heatmap_pool: int = _f(2, ge=1)  # average-pool the feature map by this before the heatmap
    # also read the hand and object boxes inside the crop (a linear residual, zero at start)
    use_boxes: bool = False
    train_jitter_m: float = _f(0.02, ge=0.0)  # std of the noise added to the GT anchor in training
    # fraction of training batches whose voxel grid is centred on the anchor head's own estimate
    # (as at inference, GT-free) instead of the GT root; the heads learn to correct its offset
    train_on_predicted: float = _f(0.0, ge=0.0, le=1.0)


@dataclass
class AuxConfig:
    """Training-only dense heads on the feature map F~ (a 1x1 layer, unused at inference).

    21 hand-joint and 9 object-keypoint (8 box corners + centre) heatmaps and per-joint relative
    depths give the image features a dense signal about where the hand's joints and the object
    are, which the SDF and pose losses reach only through a few sampled points (see
    `homae_model.nn.aux` and `losses.keypoint_heatmap_loss`).

    `depth_maps` adds, per cell, the hand's and the object's coverage (logits) and their nearest
    surface depth relative to the hand root: the dense signal of where along each camera ray the
    surfaces lie, which the voxel search reads through the SDF (targets: `data.depth_map_cells`).
    """

    enabled: bool = False
    depth_maps: bool = False


@dataclass
class InferenceConfig:
    """Inference-time point sampling (HOISDF `sdf_infer`)."""

    voxel_res: int = _f(64, ge=2)  # dense grid side over [-1,1]^3
    coarse_res: int = _f(16, ge=1)  # coarse grid side; must divide voxel_res
    # coarse_to_fine: 16^3 -> 32^3 -> 64^3, splitting only cells that can hold the surface
    # (same 600/200 points as dense on a distance field, ~10-25% of its SDF evaluations)
    sampling: str = _f("coarse_to_fine", choices=("dense", "coarse_to_fine"))
    refine_margin: float = _f(1.5, ge=1.0)  # keep cells with |SDF| <= (margin-1) fine half diags
    chunk_points: int = _f(65536, gt=0)  # SDF evaluations per forward chunk (memory bound)
    # not in the paper: refit each hand's global orientation to a keypoint network's 2D joints
    # (homae-train-sides file; relative: the checkpoint folder, then weights/demo); null = off
    keypoint_net: str | None = None
    # with keypoint_net: more keypoint networks (found as it is), whose keypoints and palm
    # logits are averaged with its own (an ensemble); empty = keypoint_net alone
    keypoint_ensemble: list[str] = field(default_factory=list)
    keypoint_palm_ratio: float = _f(2.0, ge=1.0)  # palm cue may pick a fit this much costlier
    # predicted anchor only: the root is refit too, with this prior sigma (m) at the anchor's root
    keypoint_root_sigma_m: float = _f(0.1, gt=0.0)


@dataclass
class ModelConfig:
    """The network."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    points: PointsConfig = field(default_factory=PointsConfig)
    sdf_head: SdfHeadConfig = field(default_factory=SdfHeadConfig)
    pointnet: PointNetConfig = field(default_factory=PointNetConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    hand_head: HandHeadConfig = field(default_factory=HandHeadConfig)
    object_head: ObjectHeadConfig = field(default_factory=ObjectHeadConfig)
    anchor: AnchorConfig = field(default_factory=AnchorConfig)
    aux: AuxConfig = field(default_factory=AuxConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)


# --------------------------------------------------------------------------------------------
# loss, train, data, mano
# --------------------------------------------------------------------------------------------


@dataclass
class LossConfig:
    """Loss weights (paper: lambda1..4 = 1; the others as HOISDF, spec section 4)."""

    lambda_rec: float = _f(1.0, ge=0.0)  # lambda1, L_rec (eq. 10)
    lambda_mano: float = _f(1.0, ge=0.0)  # lambda2
    lambda_obj: float = _f(1.0, ge=0.0)  # lambda3
    lambda_sdf: float = _f(1.0, ge=0.0)  # lambda4
    lambda_others: float = _f(1.0, ge=0.0)  # lambda5 (here: the anchor loss)
    rec: float = _f(1.0, ge=0.0)  # pixel MSE in [0,1] units
    mano_pose: float = _f(10.0, ge=0.0)  # rotation matrices MSE
    # rotation-matrix MSE of the global orientation alone (0 = off; in `mano_pose` it is 1/16)
    mano_global: float = _f(0.0, ge=0.0)
    mano_shape: float = _f(0.1, ge=0.0)
    mano_joints: float = _f(1e4, ge=0.0)  # MSE in metres
    mano_verts: float = _f(1e4, ge=0.0)
    # root-relative joints after the best rotation onto the GT (articulation only; 0 = off)
    mano_aligned: float = _f(0.0, ge=0.0)
    obj_rot: float = _f(0.7, ge=0.0)  # SmoothL1 on rotation-matrix entries
    # symmetric rotation loss: mean distance (m) from each GT-rotated model point to the nearest
    # predicted-rotated one (ADD-S without translation; batch `obj_model_points`); 0 = off
    obj_rot_points: float = _f(0.0, ge=0.0)
    obj_trans: float = _f(100.0, ge=0.0)  # SmoothL1 in metres
    sdf_hand: float = _f(50.0, ge=0.0)  # L1 in scaled units (x sdf_scale), as HOISDF
    sdf_obj: float = _f(25.0, ge=0.0)
    sdf_clamp_m: float = _f(0.05, gt=0.0)  # targets clamped to +-this (m)
    anchor: float = _f(1.0, ge=0.0)  # L1 on (u/S, v/S, log z) of the hand root
    # cross-entropy of the heatmap anchor's logits vs a Gaussian at the root (kind: heatmap)
    anchor_heatmap: float = _f(0.05, ge=0.0)
    anchor_heatmap_sigma: float = _f(1.0, gt=0.0)  # the Gaussian's std, in heatmap cells
    aux_heatmap: float = _f(1.0, ge=0.0)  # keypoint heatmap cross-entropy (model.aux)
    aux_depth: float = _f(10.0, ge=0.0)  # L1 of the joints' depth relative to the root (m)
    aux_sigma_px: float = _f(4.0, gt=0.0)  # std of the keypoint target Gaussians, crop pixels
    aux_mask: float = _f(1.0, ge=0.0)  # BCE of the hand / object coverage maps (aux.depth_maps)
    aux_depth_map: float = _f(50.0, ge=0.0)  # L1 of the cells' surface depth rel. to the root (m)
    # L1 (m) of the image token's readout vs the root-relative joints (hand_head.image_token)
    global_joints: float = _f(100.0, ge=0.0)
    smooth_l1_beta: float = _f(1.0, gt=0.0)  # PyTorch's default
    deep_supervision: bool = True  # losses at every intermediate transformer layer


@dataclass
class TrainConfig:
    """Optimisation (paper IV-B)."""

    optimizer: str = _f("adam", choices=("adam", "adamw"))
    lr: float = _f(1e-4, gt=0.0)
    weight_decay: float = _f(0.0, ge=0.0)
    lr_decay: float = _f(0.7, gt=0.0, le=1.0)  # multiplied every lr_decay_every epochs
    lr_decay_every: int = _f(5, gt=0)
    epochs: int = _f(60, gt=0)
    batch_size: int = _f(24, gt=0)
    gt_points_until_epoch: int = _f(40, ge=0)  # before: always GT near-surface points
    gt_points_prob_after: float = _f(0.4, ge=0.0, le=1.0)  # after: GT points with this prob.
    grad_clip_norm: float = _f(0.0, ge=0.0)  # 0 = off
    # parameter-name prefixes to train (e.g. ["anchor_head."]); empty: the whole network
    trainable: list[str] = field(default_factory=list)
    # parameter-name prefixes trained with lr * fast_lr_mult (e.g. ["anchor_head.", "aux_head."])
    fast_prefixes: list[str] = field(default_factory=list)
    fast_lr_mult: float = _f(10.0, gt=0.0)
    amp: bool = True
    ckpt_every: int = _f(1, gt=0)  # epochs
    seed: int = 0
    num_workers: int = _f(4, ge=0)


@dataclass
class DataConfig:
    """Sample pipeline settings (exactly docs/design.md)."""

    image_size: int = 224  # crop side S (px)
    crop_scale: float = 1.5  # crop side = crop_scale * max side of the hand+object union box
    num_hand_points: int = 600  # Nh training points near the hand surface
    num_obj_points: int = 200  # No
    surface_std: float = 0.005  # m, std of the Gaussian offset of near-surface samples
    uniform_fraction: float = 0.1  # fraction of points drawn uniformly in the anchor cube
    # fraction of SDF samples drawn inside the hand (object) box frustum over the depth range of
    # the inference voxel grid: where the voxel search looks, away from the surface
    frustum_fraction: float = 0.0
    # True: the heads' points (`hand_points`) are the voxels of the inference grid nearest the
    # GT surface (what a perfect SDF selects at inference) and the SDF samples above travel
    # separately (`hand_sdf_points`); False: the heads see the SDF samples (HOISDF)
    grid_points: bool = False
    # m, training only, with grid_points: each of the heads' grid points moves along its camera
    # ray by U(-j, j) and snaps to the grid again (its SDF target recomputed), so the points
    # carry the silhouette but not the depth profile, as the model's own points at inference
    # do; 0: the voxels nearest the surface as they are
    grid_ray_jitter: float = 0.0
    # >0: G x G maps of the hand's and the object's nearest surface depth relative to the hand
    # root (`hand_depth_map`, `obj_depth_map`), targets of the dense aux heads
    # (`model.aux.depth_maps`); 0: not computed
    depth_map_cells: int = 0
    sdf_clamp: float = 0.05  # m, targets clamped to +-sdf_clamp
    center_jitter: float = 0.1  # x crop side
    scale_std: float = 0.2  # crop scale ~ N(1, std), clipped to [1-2std, 1+2std]
    rot_prob: float = 0.6
    rot_std_deg: float = 30.0
    rot_max_deg: float = 60.0
    blur_prob: float = 0.2
    color_jitter: tuple[float, float, float, float] = (0.5, 0.5, 0.5, 0.15)  # b, c, s, hue
    augment: bool = True  # False for evaluation

    def __post_init__(self) -> None:
        # OmegaConf hands tuples over as lists
        self.color_jitter = tuple(self.color_jitter)  # type: ignore[assignment]


_DATA_BOUNDS: dict[str, dict[str, float]] = {
    "image_size": {"gt": 0},
    "crop_scale": {"gt": 0},
    "num_hand_points": {"gt": 0},
    "num_obj_points": {"gt": 0},
    "surface_std": {"ge": 0},
    "uniform_fraction": {"ge": 0, "le": 1},
    "frustum_fraction": {"ge": 0, "le": 1},
    "grid_ray_jitter": {"ge": 0},
    "depth_map_cells": {"ge": 0},
    "sdf_clamp": {"gt": 0},
    "center_jitter": {"ge": 0},
    "scale_std": {"ge": 0, "le": 0.5},
    "rot_prob": {"ge": 0, "le": 1},
    "rot_std_deg": {"ge": 0},
    "rot_max_deg": {"ge": 0},
    "blur_prob": {"ge": 0, "le": 1},
}
"""Ranges of DataConfig fields (kept out of the dataclass so it stays exactly as designed)."""


@dataclass
class MANOConfig:
    """Hand model file; relative paths are resolved against the homae_model package."""

    model_path: str = DEFAULT_MANO_PATH

    def resolved_path(self) -> Path:
        """Absolute path of the MANO-format pickle."""
        path = Path(self.model_path).expanduser()
        return path if path.is_absolute() else PACKAGE_DIR / path


@dataclass
class HomaeConfig:
    """The whole configuration: network, losses, training, data pipeline and hand model."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    mano: MANOConfig = field(default_factory=MANOConfig)

    def validate(self) -> None:
        """Check every range, choice, derived pair (`DERIVED`) and cross-section constraint.

        Raises:
            ValueError: naming the key path and the bad value.
        """
        _validate_tree(self, "")
        for pair in DERIVED:
            pair.check(self)
        m, d = self.model, self.data
        enc = m.encoder
        if enc.img_size % 14 != 0:
            raise ValueError(f"model.encoder.img_size={enc.img_size}: must be a multiple of 14")
        if enc.embed_dim is not None and enc.num_heads is not None:
            if enc.embed_dim % enc.num_heads != 0:
                raise ValueError(
                    f"model.encoder.embed_dim={enc.embed_dim} must be divisible by "
                    f"model.encoder.num_heads={enc.num_heads}"
                )
        mk = m.masking
        if enc.img_size % mk.patch_size != 0:
            raise ValueError(
                f"model.masking.patch_size={mk.patch_size} must divide "
                f"model.encoder.img_size={enc.img_size}"
            )
        cells = (enc.img_size // mk.patch_size) ** 2
        if mk.num_patches > cells:
            raise ValueError(
                f"model.masking.num_patches={mk.num_patches} exceeds the {cells} grid cells"
            )
        for key, dims in (
            ("model.decoder.stage_channels", m.decoder.stage_channels),
            ("model.pointnet.dims", m.pointnet.dims),
        ):
            if not dims or any(v <= 0 for v in dims):
                raise ValueError(f"{key}={dims}: needs at least one entry, all > 0")
        if m.sdf_head.inject_layer >= m.sdf_head.layers:
            raise ValueError(
                f"model.sdf_head.inject_layer={m.sdf_head.inject_layer} must be < "
                f"model.sdf_head.layers={m.sdf_head.layers}"
            )
        for name, head in (("hand_head", m.hand_head), ("object_head", m.object_head)):
            if head.d_model % head.heads != 0:
                raise ValueError(
                    f"model.{name}.d_model={head.d_model} must be divisible by "
                    f"model.{name}.heads={head.heads}"
                )
        inf = m.inference
        if inf.voxel_res % inf.coarse_res != 0:
            raise ValueError(
                f"model.inference.coarse_res={inf.coarse_res} must divide "
                f"model.inference.voxel_res={inf.voxel_res}"
            )
        if d.uniform_fraction + d.frustum_fraction > 1.0:
            raise ValueError(
                f"data.uniform_fraction + data.frustum_fraction = "
                f"{d.uniform_fraction + d.frustum_fraction} exceeds 1"
            )
        if enc.arch == "cnn" and (enc.stem != "patch" or enc.layer_scale_init > 0):
            raise ValueError(
                "model.encoder.arch=cnn: model.encoder.stem and model.encoder.layer_scale_init "
                f"are ViT settings (got stem={enc.stem!r}, "
                f"layer_scale_init={enc.layer_scale_init}); leave them at patch and 0"
            )
        if enc.stem != "patch" and enc.pretrained_path:
            raise ValueError(
                f"model.encoder.stem={enc.stem!r} has no pretrained weights: "
                f"model.encoder.pretrained_path={enc.pretrained_path!r} fits the patch stem only"
            )
        if m.aux.depth_maps and not (m.aux.enabled and d.depth_map_cells > 0):
            raise ValueError(
                "model.aux.depth_maps=true needs model.aux.enabled=true (it is "
                f"{m.aux.enabled}) and data.depth_map_cells > 0 (it is {d.depth_map_cells}): "
                "the maps are a dense aux head and the data pipeline makes their targets"
            )


@dataclass(frozen=True)
class Derived:
    """A key whose value follows from another one: stated once (`source`), derived (`key`).

    The loader makes `key` an OmegaConf interpolation of `source`, so a config file states only
    `source`; a config that gives `key` a different value is refused, naming both keys.

    Attributes:
        key: dotted path of the derived key (e.g. ``data.image_size``).
        source: dotted path of the key it follows (e.g. ``model.encoder.img_size``).
        length: the derived value is the number of entries of `source` (a list), not a copy.
    """

    key: str
    source: str
    length: bool = False

    def interpolation(self) -> str:
        """The OmegaConf interpolation that derives `key` from `source`."""
        if self.length:
            return f"${{{LENGTH_RESOLVER}:${{{self.source}}}}}"
        return f"${{{self.source}}}"

    def expected(self, source_value: Any) -> Any:
        """The value `key` must have given `source_value`."""
        return len(source_value) if self.length else source_value

    def agrees(self, value: Any, source_value: Any) -> bool:
        """Whether `value` is what `key` derives to from `source_value`."""
        want = self.expected(source_value)
        if isinstance(want, float) or isinstance(value, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            return ok and math.isclose(float(value), float(want))
        return bool(value == want)

    def conflict(self, value: Any, source_value: Any) -> str:
        """The error message for a `key` value that disagrees with `source_value`."""
        what = f"the number of entries of {self.source}" if self.length else self.source
        shown = (
            f"{source_value!r} ({len(source_value)} entries)" if self.length else repr(source_value)
        )
        return (
            f"{self.key}={value!r} disagrees with {self.source}={shown}: {self.key} is derived "
            f"from {what}; set only {self.source} (or both to the same value)"
        )

    def check(self, cfg: Any) -> None:
        """Raise ValueError (naming both keys) when `cfg` breaks the pair."""
        value, source_value = get_path(cfg, self.key), get_path(cfg, self.source)
        if not self.agrees(value, source_value):
            raise ValueError(self.conflict(value, source_value))


LENGTH_RESOLVER = "homae.len"
"""Name of the OmegaConf resolver that derives a count from a list (registered by the loader)."""

DERIVED: tuple[Derived, ...] = (
    Derived("data.image_size", "model.encoder.img_size"),
    Derived("data.num_hand_points", "model.points.num_hand"),
    Derived("data.num_obj_points", "model.points.num_obj"),
    Derived("loss.sdf_clamp_m", "data.sdf_clamp"),
    Derived("model.decoder.num_stages", "model.decoder.stage_channels", length=True),
)
"""Keys that were kept equal by hand: each is stated once (`source`) and derived (`key`)."""


def get_path(obj: Any, path: str) -> Any:
    """The value at a dotted path of nested dataclasses (``"model.encoder.img_size"``)."""
    for name in path.split("."):
        obj = getattr(obj, name)
    return obj


def _check_value(value: Any, meta: dict[str, Any], bounds: dict[str, Any], path: str) -> None:
    if value is None:
        return
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ValueError(f"{path}={value!r} is not valid; choices: {list(choices)}")
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        ge, gt, le = bounds.get("ge"), bounds.get("gt"), bounds.get("le")
        if ge is not None and v < ge:
            raise ValueError(f"{path}={value!r} out of range: must be >= {ge}")
        if gt is not None and v <= gt:
            raise ValueError(f"{path}={value!r} out of range: must be > {gt}")
        if le is not None and v > le:
            raise ValueError(f"{path}={value!r} out of range: must be <= {le}")


def _leaves(obj: Any, path: str) -> list[tuple[str, Any, dict[str, Any], dict[str, Any]]]:
    """(key path, value, metadata, bounds) of every leaf."""
    out = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        sub = f"{path}.{f.name}" if path else f.name
        if dataclasses.is_dataclass(value):
            out += _leaves(value, sub)
            continue
        meta = dict(f.metadata)
        bounds = _DATA_BOUNDS.get(f.name, {}) if isinstance(obj, DataConfig) else meta
        out.append((sub, value, meta, bounds))
    return out


def _validate_tree(obj: Any, path: str) -> None:
    """Range and choice checks of every leaf (the metadata OmegaConf does not read).

    Derived keys come last, so that a bad source is named as such, not as its derived copy.
    """
    derived = {pair.key for pair in DERIVED}
    leaves = _leaves(obj, path)
    for sub, value, meta, bounds in sorted(leaves, key=lambda leaf: leaf[0] in derived):
        _check_value(value, meta, bounds, sub)
