"""Each hand's global orientation refit to 2D keypoints after the heads (`keypoint_net`).

`model.inference.keypoint_net` names the keypoint network; unset, this stage is off.
`model.inference.keypoint_ensemble` names more of them, whose keypoints and palm logits are
averaged with its own.

The heads give the hand's articulation well before they give its global orientation (see
`homae_model.hand.orientation_fit`). A keypoint network on the hand box (the hand-side network of
`homae-train-sides`: 21 keypoint heatmaps and a palm-facing logit) gives the joints' pixels; the
hand is then rotated about its root so that its joints project onto them, the palm cue choosing
between the two mirror-view fits of a near-planar hand. The root, the articulation, the shape
and the object are unchanged.

The Predictor runs this on the image it was given (for a left hand, `predict_sided` gives it the
mirrored image, so the hand is a right hand here, as the heads see it). The keypoint network
runs in PyTorch whatever the Predictor's runtime (it is small: about 5 ms a hand on one CPU
thread); `homae-export` does not export it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from homae_model.geometry.rotations import axis_angle_to_matrix_np, matrix_to_axis_angle_np
from homae_model.hand.orientation_fit import (
    FitSolution,
    choose_solution,
    fit_wrist_rotation,
    rotate_about_root,
)

if TYPE_CHECKING:
    from homae_model.detector.side_net import SideNet
    from homae_model.inference import PairPrediction

MAX_ALTERNATIVES = 3
"""Near fits kept beside the chosen one (`PairPrediction.alternatives`)."""
DISTINCT_DEG = 30.0
"""Fits whose orientations differ by less than this are the same answer."""

KEYPOINT_NET_PARAMETER = "model.inference.keypoint_net"
"""The config key naming the keypoint network file (errors name it)."""
KEYPOINT_ENSEMBLE_PARAMETER = "model.inference.keypoint_ensemble"
"""The config key naming more keypoint networks, averaged with the first one."""


def resolve_keypoint_net(
    name: str, checkpoint_dir: Path, parameter: str = KEYPOINT_NET_PARAMETER
) -> Path:
    """The keypoint network file a config names.

    Args:
        name: `model.inference.keypoint_net` (or an entry of `keypoint_ensemble`): an absolute
            path, or a path relative to the checkpoint folder, else to the bundled weights
            folder (`weights/demo`).
        checkpoint_dir: the folder of the checkpoint whose config names it.
        parameter: the config key the error message names.

    Raises:
        FileNotFoundError: none of those places has it (the message names the parameter).
    """
    from homae_model.bundled import bundled_weights_dir

    path = Path(name).expanduser()
    tried = [path] if path.is_absolute() else [checkpoint_dir / path, bundled_weights_dir() / path]
    for p in tried:
        if p.is_file():
            return p
    off = (
        "or to null to keep the heads' own hand orientation"
        if parameter == KEYPOINT_NET_PARAMETER
        else "or leave it out of the list"
    )
    raise FileNotFoundError(
        f"{parameter}: keypoint network '{name}' not found (looked in "
        f"{', '.join(str(p) for p in tried)}); set it to a file written by homae-train-sides, "
        f"{off}"
    )


class KeypointOrientation:
    """Refits predicted hands' global orientation to a keypoint network's 2D joints."""

    def __init__(
        self,
        net: SideNet,
        palm_ratio: float = 2.0,
        root_sigma_m: float = 0.1,
        ensemble: Sequence[SideNet] = (),
    ) -> None:
        """Use `net` (put in eval mode).

        Args:
            net: a hand-side network (`homae_model.detector.side_net.SideNet`).
            palm_ratio: `choose_solution`'s ratio: the palm cue may pick a fit up to this many
                times costlier (squared pixels) than the best one.
            root_sigma_m: for a hand whose root the anchor head estimated, the root is fitted
                too, with a Gaussian prior of this standard deviation (metres) at that root; a
                given root (the gt-anchored protocol) stays put.
            ensemble: more such networks; `observe` averages their keypoints and palm logits
                with `net`'s.
        """
        self.net = net.eval()
        self.ensemble = [n.eval() for n in ensemble]
        self.palm_ratio = float(palm_ratio)
        self.root_sigma_m = float(root_sigma_m)
        self.source: Path | None = None  # the file `load` read
        self.ensemble_sources: list[Path] = []  # and the ensemble's files

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        palm_ratio: float = 2.0,
        root_sigma_m: float = 0.1,
        ensemble: Sequence[str | Path] = (),
    ) -> KeypointOrientation:
        """Load a `homae-train-sides` file (and the `ensemble`'s) onto `device`."""
        from homae_model.detector.side_net import load_side_net

        nets = [load_side_net(p, device).float() for p in ensemble]
        out = cls(load_side_net(path, device).float(), palm_ratio, root_sigma_m, nets)
        out.source = Path(path)
        out.ensemble_sources = [Path(p) for p in ensemble]
        return out

    def describe(self) -> dict[str, object]:
        """What a report records of this stage: the file (and its sha256) and the settings."""
        from homae_model.training.state import file_sha256

        return {
            "method": "global orientation refit to the keypoint network's 2D joints "
            "(homae_model.hand.orientation_fit); the root too when the anchor head estimated it",
            "keypoint_net": None if self.source is None else str(self.source),
            "keypoint_net_sha256": None if self.source is None else file_sha256(self.source),
            "keypoint_ensemble": [
                {"file": str(p), "sha256": file_sha256(p)} for p in self.ensemble_sources
            ],
            "palm_ratio": self.palm_ratio,
            "root_sigma_m": self.root_sigma_m,
        }

    @torch.no_grad()
    def observe(self, image: np.ndarray, hand_boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The network's keypoints and palm logits on the hand boxes of one image.

        With an ensemble, the mean over its networks (each on its own crop of the box).

        Args:
            image: (H,W,3) uint8 RGB.
            hand_boxes: (P,4) xyxy full-image pixels.

        Returns:
            (P,21,2) keypoint pixels of `image` and (P,) palm logits (> 0: palm towards the
            camera).
        """
        from homae_model.detector.side_net import crop_frames, crop_hands

        dev = next(self.net.parameters()).device
        img = torch.from_numpy(np.ascontiguousarray(image)).to(dev).permute(2, 0, 1).float()
        img /= 255.0  # once for every network of the ensemble
        boxes = torch.as_tensor(np.asarray(hand_boxes, np.float32), device=dev).reshape(-1, 4)
        uvs, palms = [], []
        for net in [self.net, *self.ensemble]:
            kp, palm = net(crop_hands(img, boxes, net.spec))
            centre, m = crop_frames(boxes, net.spec)
            uvs.append(centre[:, None, :] + kp @ m.transpose(1, 2))
            palms.append(palm)
        uv, palm = torch.stack(uvs).mean(0), torch.stack(palms).mean(0)
        return uv.double().cpu().numpy(), palm.double().cpu().numpy()

    def refine(
        self, pred: PairPrediction, uv: np.ndarray, palm_logit: float, K: np.ndarray
    ) -> PairPrediction:
        """`pred` with its hand rotated about the root (and moved, if the root was estimated).

        Args:
            pred: a right hand's estimate (camera frame of the image `uv` belongs to).
            uv: (21,2) keypoint pixels.
            palm_logit: the palm cue (> 0: palm towards the camera).
            K: (3,3) intrinsics of that image.

        Returns:
            A new `PairPrediction`: joints, vertices and the global orientation (mano_pose[:3])
            rotated, the root (joints[0], hand_transl) moved when `pred.anchor_source` is
            "predicted"; scores gain `keypoint_rms_px` (reprojection error of the kept fit),
            `keypoint_turn_deg` (the rotation applied) and `keypoint_root_shift_m`;
            `alternatives` holds up to `MAX_ALTERNATIVES` other fits costing at most
            `palm_ratio` times the best, each at least `DISTINCT_DEG` from the kept ones.
        """
        root = np.asarray(pred.joints[0], np.float64)
        free = pred.anchor_source == "predicted"
        solutions = fit_wrist_rotation(
            pred.joints - root,
            root,
            uv,
            K,
            fit_root=free,
            root_sigma_m=self.root_sigma_m if free else None,
        )
        sol = choose_solution(solutions, "right", palm_logit, self.palm_ratio)
        near = [s for s in solutions if s.cost <= self.palm_ratio * solutions[0].cost]
        others: list[FitSolution] = []
        for cand in near:
            if len(others) == MAX_ALTERNATIVES:
                break
            if all(_angle_deg(cand.rotation, k.rotation) >= DISTINCT_DEG for k in [sol, *others]):
                others.append(cand)
        alternatives = [_apply(pred, root, o) for o in others]
        return replace(_apply(pred, root, sol), alternatives=alternatives)


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle of the rotation between two rotation matrices, degrees."""
    return float(np.degrees(np.arccos(np.clip((np.trace(a.T @ b) - 1.0) / 2.0, -1.0, 1.0))))


def _apply(pred: PairPrediction, root: np.ndarray, sol: FitSolution) -> PairPrediction:
    """`pred` with its hand rotated about `root` by `sol.rotation` and moved to `sol.root`."""
    rot, shift = sol.rotation, sol.root - root
    pose = np.array(pred.mano_pose, np.float64, copy=True)
    pose[:3] = matrix_to_axis_angle_np(rot @ axis_angle_to_matrix_np(pose[:3]))
    scores = dict(
        pred.scores,
        keypoint_rms_px=sol.rms_px,
        keypoint_turn_deg=_angle_deg(rot, np.eye(3)),
        keypoint_root_shift_m=float(np.linalg.norm(shift)),
    )
    return replace(
        pred,
        joints=sol.joints,
        vertices=rotate_about_root(pred.vertices, root, rot) + shift,
        mano_pose=pose,
        hand_transl=np.asarray(pred.hand_transl, np.float64) + shift,
        scores=scores,
        alternatives=[],
    )
