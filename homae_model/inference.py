"""Predictor: full image + K + hand/object boxes -> camera-frame hand and object poses, no GT.

For each (hand_box, obj_box) pair the image is cropped with THE crop of training
(`geometry.crop.union_crop_box` + `crop_image`, no rotation, so the crop frame is the camera
frame of the full image and only K changes). All pairs of one image run as one batch:
encode -> anchor (the anchor head, or the caller's anchors for the gt-anchored protocol) ->
voxel search for the hand / object query points inside the boxes (dense or coarse-to-fine, per
`config.model.inference.sampling`; both branches in one search, `branch_search`) -> SDF +
fusion -> heads -> MANO -> (optional, not in the paper) each hand's global orientation refit
to a keypoint network's 2D joints (`keypoint_orientation`, `model.inference.keypoint_net`).
Outputs are in the camera frame of the FULL image, metres.

The network calls (encode + anchor, the SDF the search evaluates, fusion + heads) go through
`homae_model.stages.NetworkStages`: PyTorch (`runtime="torch"`, the default) or the graphs of
`homae-export` run by onnxruntime (`runtime="onnxruntime"`). The crop, the voxel search and the
post-processing (MANO, axis-angle, scores) are this module's, the same for both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from homae_model.branch_search import search_branches
from homae_model.checkpoint import load_model
from homae_model.config import HomaeConfig, load_config
from homae_model.device import resolve_device
from homae_model.geometry.camera import validate_intrinsics
from homae_model.geometry.crop import crop_image, transform_box, union_crop_box
from homae_model.geometry.rotations import matrix_to_axis_angle
from homae_model.keypoint_orientation import (
    KEYPOINT_ENSEMBLE_PARAMETER,
    KEYPOINT_NET_PARAMETER,
    KeypointOrientation,
    resolve_keypoint_net,
)
from homae_model.model import HomaeModel
from homae_model.runtimes import RUNTIMES
from homae_model.stages import NetworkStages, TorchStages

Box = Sequence[float] | np.ndarray


@dataclass
class PairPrediction:
    """One hand-object pair's estimate, camera frame of the full image, metres.

    Attributes:
        joints: (21,3) hand joints, project order.
        vertices: (778,3) hand mesh.
        mano_pose: (48,) axis-angle, global orientation first (flat hand mean).
        mano_shape: (10,) betas.
        hand_transl: (3,) MANO translation (`ManoLayer(pose, shape, transl)` = vertices).
        obj_rot: (3,) object axis-angle, `X_cam = R(obj_rot) X_obj + obj_trans`.
        obj_trans: (3,) object translation.
        obj_rot_matrix: (3,3) `obj_rot` as a matrix.
        crop_box: (4,) the square crop box, full-image pixels.
        anchor: (3,) voxel-grid centre used (predicted or given hand root).
        anchor_source: "predicted" or "given".
        scores: `hand_sdf_abs_m` / `obj_sdf_abs_m` (mean |SDF| of the selected query points,
            metres: small = the surface was found), `hand` / `obj` (exp(-mean|SDF| / clamp),
            in (0,1]), `sdf_evals` (SDF evaluations spent on this pair's image batch); with
            the keypoint orientation fit also `keypoint_rms_px`, `keypoint_turn_deg` and
            `keypoint_root_shift_m` (`KeypointOrientation.refine`).
        alternatives: with the keypoint orientation fit, the other near fits of the hand (the
            same pair with another orientation / root, each without alternatives of its own),
            for a tracker that prefers the one nearest the hand's previous orientation.
    """

    joints: np.ndarray
    vertices: np.ndarray
    mano_pose: np.ndarray
    mano_shape: np.ndarray
    hand_transl: np.ndarray
    obj_rot: np.ndarray
    obj_trans: np.ndarray
    obj_rot_matrix: np.ndarray
    crop_box: np.ndarray
    anchor: np.ndarray
    anchor_source: str
    scores: dict[str, float] = field(default_factory=dict)
    alternatives: list[PairPrediction] = field(default_factory=list)


def validate_image(image: np.ndarray, name: str = "image") -> None:
    """Check an RGB uint8 (H,W,3) image.

    Raises:
        ValueError: not a numpy array, wrong dtype, wrong shape or empty.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name}: expected dtype uint8 (RGB 0-255), got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name}: expected shape (H,W,3), got {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name}: empty image, shape {image.shape}")


def _validate_box(box: Box, name: str) -> np.ndarray:
    arr = np.asarray(box, dtype=np.float64).reshape(-1)
    if arr.shape != (4,) or not np.all(np.isfinite(arr)) or arr[2] < arr[0] or arr[3] < arr[1]:
        raise ValueError(f"{name}: expected finite (x_min, y_min, x_max, y_max), got {box}")
    return arr


class Predictor:
    """Runs a trained `HomaeModel` on full images."""

    def __init__(
        self,
        model: HomaeModel,
        cfg: HomaeConfig,
        device: str | torch.device = "cpu",
        stages: NetworkStages | None = None,
        orientation: KeypointOrientation | None = None,
    ):
        """Wrap a model (put in eval mode on `device`: a torch device or "auto").

        `stages` runs the network (default: `TorchStages(model)`); `model` still provides the
        hand layer (MANO) of the post-processing, whatever the runtime. `orientation`: refit
        each hand's global orientation to 2D keypoints after the heads (`from_checkpoint` makes
        it from `model.inference.keypoint_net`); None keeps the heads' orientation.
        """
        self.device = torch.device(resolve_device(device, "device"))
        self.model = model.to(self.device).eval()
        self.cfg = cfg
        self.image_size = cfg.model.encoder.img_size
        self.stages: NetworkStages = stages if stages is not None else TorchStages(self.model)
        self.orientation = orientation

    @property
    def runtime(self) -> str:
        """What runs the network: "torch" or "onnxruntime"."""
        return self.stages.runtime

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        mano_path: str | Path | None = None,
        fingertips: str | Sequence[int] | None = None,
        overrides: Sequence[str] = (),
        *,
        runtime: str = "torch",
        provider: str = "cpu",
        onnx_dir: str | Path | None = None,
        onnx_precision: str = "fp32",
    ) -> Predictor:
        """Load a checkpoint folder (or its weights file).

        Args:
            path: checkpoint folder or `model.safetensors`.
            device: torch device or "auto" (the crop, voxel search and MANO run there).
            mano_path: hand model file overriding the checkpoint config's `mano.model_path`.
            fingertips: fingertip convention of the predicted joints (see `set_fingertips`);
                None keeps the hand layer's default ("manopth", or the model file's own ids).
            overrides: dotted ``KEY=VALUE`` overrides of the checkpoint's config (e.g.
                ``model.inference.voxel_res=32``); the weights must still match it.
            runtime: one of `RUNTIMES`.
            provider: onnxruntime execution provider ("cpu", "cuda", "tensorrt"), read with
                `runtime="onnxruntime"` only.
            onnx_dir: graphs written by `homae-export` for this checkpoint; None: exported
                on first use into the cache (`homae_model.export.runtime.cache_dir`).
            onnx_precision: "fp32" (default: equivalent to torch) or "int8" (faster, not
                equivalent; `homae_model.export.quantize`), with `runtime="onnxruntime"`.

        Raises:
            FileNotFoundError: missing checkpoint, ONNX or keypoint network files.
            ValueError: bad checkpoint, runtime or provider; graphs of another checkpoint.
            homae_model.export.runtime.ProviderUnavailableError: the provider is not installed.
        """
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime '{runtime}'; valid: {', '.join(RUNTIMES)}")
        cfg = None
        if mano_path is not None or overrides:
            p = Path(path)
            cfg = load_config((p if p.is_dir() else p.parent) / "config.yaml", overrides)
        if mano_path is not None:
            cfg.mano.model_path = str(Path(mano_path).expanduser().resolve())
        dev = torch.device(resolve_device(device, "device"))
        model, cfg = load_model(path, dev, cfg)
        stages = None
        if runtime == "onnxruntime":
            from homae_model.export.runtime import onnx_stages_for_checkpoint

            stages = onnx_stages_for_checkpoint(
                path, model, cfg, provider, onnx_dir, onnx_precision
            )
        orientation = None
        inf = cfg.model.inference
        if inf.keypoint_ensemble and not inf.keypoint_net:
            raise ValueError(
                f"{KEYPOINT_ENSEMBLE_PARAMETER} names {list(inf.keypoint_ensemble)} but "
                f"{KEYPOINT_NET_PARAMETER} is null: the ensemble adds to keypoint_net's network "
                "(set it, or empty the list)"
            )
        if inf.keypoint_net:
            p = Path(path)
            folder = p if p.is_dir() else p.parent
            kp_path = resolve_keypoint_net(inf.keypoint_net, folder)
            more = [
                resolve_keypoint_net(name, folder, KEYPOINT_ENSEMBLE_PARAMETER)
                for name in inf.keypoint_ensemble
            ]
            orientation = KeypointOrientation.load(
                kp_path, dev, inf.keypoint_palm_ratio, inf.keypoint_root_sigma_m, more
            )
        predictor = cls(model, cfg, dev, stages, orientation)
        if fingertips is not None:
            predictor.set_fingertips(fingertips)
        return predictor

    def set_fingertips(self, fingertips: str | Sequence[int] | None) -> str:
        """Build the predicted tip joints with a label convention's fingertip vertices.

        Args:
            fingertips: "manopth" (DexYCB), "ho3d" (HO3D), None (the default) or 5 vertex ids
                (`hand.constants.FINGERTIP_CONVENTIONS`). A hand model file that stores its own
                tip ids (the project's synthetic hand) keeps them for a convention name.

        Returns:
            What the hand layer now uses: "model file", a convention name or "explicit".
        """
        return self.model.mano.set_fingertips(fingertips)

    @property
    def fingertip_source(self) -> str:
        """What the predicted tip joints are built with (see `set_fingertips`)."""
        return str(self.model.mano.fingertip_source)

    @torch.inference_mode()
    def predict(
        self,
        image: np.ndarray,
        K: np.ndarray,
        pairs: Sequence[tuple[Box, Box]],
        anchors: np.ndarray | Sequence[Sequence[float]] | None = None,
    ) -> list[PairPrediction]:
        """Estimate every hand-object pair of one image.

        Args:
            image: (H,W,3) uint8 RGB.
            K: (3,3) full-image intrinsics.
            pairs: (hand_box, obj_box) per pair, xyxy full-image pixels.
            anchors: optional (P,3) voxel-grid centres (camera frame, metres), one per pair:
                the gt-anchored protocol. Default: the anchor head's estimate (GT-free).

        Returns:
            One `PairPrediction` per pair, in order.

        Raises:
            ValueError: bad image, K, boxes or anchors.
        """
        validate_image(image)
        validate_intrinsics(K, "K")
        if len(pairs) == 0:
            return []
        K = np.asarray(K, dtype=np.float64)
        s = self.image_size
        given = None
        if anchors is not None:
            given = np.asarray(anchors, dtype=np.float64)
            if given.shape != (len(pairs), 3) or not np.all(np.isfinite(given)):
                raise ValueError(
                    f"anchors: expected finite ({len(pairs)}, 3), got shape {given.shape}"
                )
        crops, ks, hand_boxes, obj_boxes, boxes = [], [], [], [], []
        for i, (hand_box, obj_box) in enumerate(pairs):
            hb = _validate_box(hand_box, f"pairs[{i}].hand_box")
            ob = _validate_box(obj_box, f"pairs[{i}].obj_box")
            box = union_crop_box(hb, ob, self.cfg.data.crop_scale)
            crop = crop_image(image, K, box, s)
            if not np.allclose(crop.rot, np.eye(3)):
                raise RuntimeError("the Predictor's crop must not rotate the camera")
            crops.append(crop.image)
            ks.append(crop.K)
            hand_boxes.append(transform_box(crop.affine, hb))
            obj_boxes.append(transform_box(crop.affine, ob))
            boxes.append(np.asarray(box, dtype=np.float64))
        dev = self.device
        img = torch.from_numpy(np.stack(crops)).to(dev).permute(0, 3, 1, 2).float() / 255.0
        kc = torch.as_tensor(np.stack(ks), dtype=torch.float32, device=dev)
        hb_t = torch.as_tensor(np.stack(hand_boxes), dtype=torch.float32, device=dev)
        ob_t = torch.as_tensor(np.stack(obj_boxes), dtype=torch.float32, device=dev)

        model, stages = self.model, self.stages
        feats = stages.encode(img, kc, hb_t, ob_t)
        if given is not None:
            anchor = torch.as_tensor(given, dtype=torch.float32, device=dev)
        else:
            anchor = feats.anchor
        cfg = self.cfg
        hand_fn = stages.sdf_fn(feats, kc, anchor, "hand")
        obj_fn = stages.sdf_fn(feats, kc, anchor, "obj")
        hand_sel, obj_sel = search_branches(cfg, hand_fn, obj_fn, anchor, kc, hb_t, ob_t)
        # the voxel search already evaluated the SDF at the selected points: the heads reuse it
        heads = stages.heads(feats, kc, anchor, hand_sel, obj_sel)
        mesh = model.hand_mesh(heads.hand, anchor)
        obj_rotmat, obj_trans = heads.obj_rotmat, heads.obj_trans
        obj_rot = matrix_to_axis_angle(obj_rotmat)
        clamp = self.cfg.loss.sdf_clamp_m
        hand_abs = hand_sel.sdf.abs().mean(dim=1)
        obj_abs = obj_sel.sdf.abs().mean(dim=1)
        evals = float(hand_sel.num_evals + obj_sel.num_evals)

        def np_(t: torch.Tensor) -> np.ndarray:
            return t.detach().double().cpu().numpy()

        out = []
        for i in range(len(pairs)):
            out.append(
                PairPrediction(
                    joints=np_(mesh.joints[i]),
                    vertices=np_(mesh.vertices[i]),
                    mano_pose=np_(mesh.pose[i]),
                    mano_shape=np_(mesh.shape[i]),
                    hand_transl=np_(mesh.transl[i]),
                    obj_rot=np_(obj_rot[i]),
                    obj_trans=np_(obj_trans[i]),
                    obj_rot_matrix=np_(obj_rotmat[i]),
                    crop_box=boxes[i],
                    anchor=np_(anchor[i]),
                    anchor_source="given" if given is not None else "predicted",
                    scores={
                        "hand_sdf_abs_m": float(hand_abs[i]),
                        "obj_sdf_abs_m": float(obj_abs[i]),
                        "hand": float(torch.exp(-hand_abs[i] / clamp)),
                        "obj": float(torch.exp(-obj_abs[i] / clamp)),
                        "sdf_evals": evals,
                    },
                )
            )
        if self.orientation is not None:
            uv, palm = self.orientation.observe(image, np.stack([hb for hb, _ in pairs]))
            out = [self.orientation.refine(p, uv[i], float(palm[i]), K) for i, p in enumerate(out)]
        return out
