"""Held-out accuracy during training, beside the constant baselines measured on the same crops.

`HeldOutMonitor` keeps the first `num` samples of a held-out folder as evaluation crops (no
augmentation) and, when called, runs the model in eval mode as inference does (no GT points: the
voxel search picks the points) with the grid centred on the GT hand root (GT-anchored) and on
the model's own anchor estimate (GT-free, GT boxes). It returns, in mm:

- `MJE`, `PA-MJE` (root-relative / Procrustes-aligned hand joints), `ADD-S` (object), GT-anchored;
- `GT-free MJE`, `GT-free ADD-S` and `anchor` (distance of the anchor estimate to the root);
- `hand scale`: predicted over GT mean bone length (GT-anchored), a ratio; far from 1 means the
  network shrinks or inflates the hand (PA-MJE hides the scale, not the distortion);
- `hand rotation (deg)` and `R-MJE` (GT-anchored): the mean angle of the rotation about the
  wrist that best maps the predicted hand onto the GT one (the global orientation error), and
  the MJE after that rotation (`metrics.hand.wrist_rotation_alignment`). MJE far above R-MJE
  says the orientation, not the articulation or the size, makes the error;
- with `data.grid_points` (the heads trained on grid voxels): `MJE (GT-SDF points)` and
  `ADD-S (GT-SDF points)`, GT-anchored with the voxels nearest the GT surface as query points
  instead of the ones the model's SDF selects, and `points off surface`, the mean distance of
  the model's selected hand points to the nearest of those voxels. They say which half limits
  the accuracy: a large gap between `MJE` and `MJE (GT-SDF points)` with points far off the
  surface is the SDF's (the voxel search feeds the heads the wrong points); a small gap is the
  heads' and the image features';
- `baseline MJE`, `baseline PA-MJE`: the mean root-relative hand of these crops placed at the
  true root; `baseline PA-MJE (articulation)`: their Procrustes-mean hand (the constant hand
  shape, `metrics.baselines.procrustes_mean_hand`), the honest bar for PA-MJE;
  `baseline ADD-S`: the mean object pose relative to the root (chordal-mean rotation, mean
  offset) placed at the true root. A run that learns from the image moves below
  these within its first thousand steps; one that does not stays at them. (`homae-eval` reports
  the same baselines, `homae_model.evaluation.baselines`, over a whole split.)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from homae_model.hand.constants import SKELETON_EDGES
from homae_model.metrics.baselines import BaselineMeans, GroundTruthFrame, baseline_means
from homae_model.metrics.hand import mje, pa_mje, wrist_rotation_alignment
from homae_model.metrics.objects import ObjectPose, add_s

if TYPE_CHECKING:
    from homae_model.config import HomaeConfig

MONITOR_POINTS = 500
"""Object model points used for ADD-S (a fixed subsample of the mesh vertices)."""


class HeldOutMonitor:
    """Held-out hand and object errors of a model during training (see the module doc).

    Args:
        cfg: the run's config (data pipeline, MANO file).
        data: held-out data folder (any layout `open_source` reads).
        num: how many of its samples to use (the first ones).
        device: where the model runs.
        batch_size: crops per forward pass.
    """

    def __init__(
        self,
        cfg: HomaeConfig,
        data: Path,
        num: int,
        device: torch.device,
        batch_size: int = 16,
    ) -> None:
        from homae_model.data.pipeline import SamplePipeline
        from homae_model.data.sources import open_source
        from homae_model.geometry.rotations import axis_angle_to_matrix

        if not Path(data).exists():
            raise FileNotFoundError(f"held-out data folder not found: {data}")
        mano_path = cfg.mano.resolved_path()
        opened = open_source(data, mano_dir=mano_path.parent, load_masks=False)
        pipe = SamplePipeline(cfg.data, mano_path, opened.objects, train=False)
        n = min(int(num), len(opened.source))
        if n <= 0:
            raise ValueError(f"held-out data folder {data} has no samples")
        rng = np.random.default_rng(0)
        self.samples: list[dict[str, torch.Tensor]] = []
        self.oracle: list[dict[str, torch.Tensor]] = []  # GT-SDF grid points (data.grid_points)
        self.model_points: list[np.ndarray] = []
        for i in range(n):
            raw = opened.source[i]
            item = pipe(raw, rng)
            mesh = pipe.object_mesh(raw.obj_name, raw.side == "left")
            verts = np.asarray(mesh.vertices, dtype=np.float64)
            step = max(1, len(verts) // MONITOR_POINTS)
            self.model_points.append(verts[::step])
            self.samples.append({k: v for k, v in item.items() if not k.endswith(_POINT_KEYS)})
            if cfg.data.grid_points and all(f"{b}_points" in item for b in ("hand", "obj")):
                self.oracle.append({f"{b}_points": item[f"{b}_points"] for b in ("hand", "obj")})
        self.device = device
        self.batch_size = int(batch_size)
        joints = np.stack([s["hand_joints"].double().numpy() for s in self.samples])
        self.gt_joints = joints
        rots = axis_angle_to_matrix(torch.stack([s["obj_rot"] for s in self.samples]).double())
        self.gt_rot = rots.numpy()
        self.gt_trans = np.stack([s["obj_trans"].double().numpy() for s in self.samples])
        frames = [
            GroundTruthFrame(joints[i], self.gt_rot[i], self.gt_trans[i], "")
            for i in range(len(joints))
        ]
        self.baselines = self._baselines(baseline_means(frames))

    def __len__(self) -> int:
        return len(self.samples)

    def _add_s(self, rot: np.ndarray, trans: np.ndarray) -> list[float]:
        out = []
        for i, pts in enumerate(self.model_points):
            gt = ObjectPose(self.gt_rot[i], self.gt_trans[i])
            out.append(add_s(ObjectPose(rot[i], trans[i]), gt, pts))
        return out

    def _baselines(self, means: BaselineMeans) -> dict[str, float]:
        """The evaluation's constant predictions (`metrics.baselines`) on these crops."""
        root = self.gt_joints[:, :1]
        n = len(self.samples)
        trans = root[:, 0] + means.obj_offset
        assert means.articulation is not None
        return {
            "baseline MJE": mje(means.root_relative_joints[None] + root, self.gt_joints),
            "baseline PA-MJE": pa_mje(means.root_relative_joints[None] + root, self.gt_joints),
            "baseline PA-MJE (articulation)": pa_mje(
                means.articulation[None] + root, self.gt_joints
            ),
            "baseline ADD-S": float(
                np.mean(self._add_s(np.repeat(means.obj_rot[None], n, 0), trans))
            ),
        }

    @torch.no_grad()
    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        """Evaluate `model` (a bare HomaeModel) on the held-out crops; see the module doc."""
        from torch.utils.data import default_collate

        was_training = model.training
        model.eval()
        preds: dict[str, list[np.ndarray]] = {k: [] for k in _PRED_KEYS}
        preds.update({f"oracle_{k}": [] for k in ("joints", "rot", "trans")}, off_surface=[])
        try:
            for start in range(0, len(self.samples), self.batch_size):
                chunk = self.samples[start : start + self.batch_size]
                batch = {k: v.to(self.device) for k, v in default_collate(chunk).items()}
                runs = [("gt", batch["anchor"], batch), ("free", None, batch)]
                if self.oracle:
                    oracle = default_collate(self.oracle[start : start + self.batch_size])
                    with_oracle = {**batch, **{k: v.to(self.device) for k, v in oracle.items()}}
                    runs.append(("oracle", batch["anchor"], with_oracle))
                for tag, anchor, inputs in runs:
                    out = model(inputs, anchor=anchor)
                    if tag == "gt" and self.oracle:
                        preds["off_surface"].append(
                            _off_surface_mm(out.hand_points, with_oracle["hand_points"])
                        )
                    preds[f"{tag}_joints"].append(out.joints.double().cpu().numpy())
                    preds[f"{tag}_rot"].append(out.obj_rotmat.double().cpu().numpy())
                    preds[f"{tag}_trans"].append(out.obj_trans.double().cpu().numpy())
                    if tag == "free":
                        preds["anchor"].append(out.anchor_pred.double().cpu().numpy())
        finally:
            model.train(was_training)
        p = {k: np.concatenate(v) for k, v in preds.items() if v}
        root = self.gt_joints[:, 0]
        result = {
            "MJE": mje(p["gt_joints"], self.gt_joints),
            "PA-MJE": pa_mje(p["gt_joints"], self.gt_joints),
            "ADD-S": float(np.mean(self._add_s(p["gt_rot"], p["gt_trans"]))),
            "GT-free MJE": mje(p["free_joints"], self.gt_joints),
            "GT-free ADD-S": float(np.mean(self._add_s(p["free_rot"], p["free_trans"]))),
            "anchor": float(np.linalg.norm(p["anchor"] - root, axis=-1).mean() * 1000.0),
            "hand scale": float(bone_length(p["gt_joints"]) / bone_length(self.gt_joints)),
        }
        angle, rot_err = wrist_rotation_alignment(p["gt_joints"], self.gt_joints)
        result["hand rotation (deg)"] = float(angle.mean())
        result["R-MJE"] = float(rot_err.mean())
        if self.oracle:
            result["MJE (GT-SDF points)"] = mje(p["oracle_joints"], self.gt_joints)
            result["ADD-S (GT-SDF points)"] = float(
                np.mean(self._add_s(p["oracle_rot"], p["oracle_trans"]))
            )
            result["points off surface"] = float(p["off_surface"].mean())
        result.update(self.baselines)
        return result


def _off_surface_mm(points: torch.Tensor, surface: torch.Tensor) -> np.ndarray:
    """(B,) mean distance (mm) of each crop's (N,3) points to the nearest of its (M,3) voxels."""
    dist = torch.cdist(points.double(), surface.to(points.device).double()).amin(dim=2)
    return dist.mean(dim=1).cpu().numpy() * 1000.0


_POINT_KEYS = ("_points", "_sdf", "_sdf_values")
"""Training-dict keys the monitor drops: the voxel search picks the points, as at inference."""
_PRED_KEYS = ("gt_joints", "gt_rot", "gt_trans", "free_joints", "free_rot", "free_trans", "anchor")


def bone_length(joints: np.ndarray) -> float:
    """Mean bone length (m) of (N,21,3) hands: a predicted/GT ratio far from 1 is a shrunk hand."""
    parents, children = zip(*SKELETON_EDGES, strict=True)
    return float(np.linalg.norm(joints[:, children] - joints[:, parents], axis=-1).mean())


def format_metrics(metrics: dict[str, Any]) -> str:
    """One line: model figures, then the baselines in brackets.

    Units: mm, except where the name gives one (`hand rotation (deg)`) and `hand scale` (a
    ratio).
    """
    model = [
        f"{k} {v:.2f}" if k == "hand scale" else f"{k} {v:.1f}"
        for k, v in metrics.items()
        if not k.startswith("baseline")
    ]
    base = [f"{k[9:]} {v:.1f}" for k, v in metrics.items() if k.startswith("baseline")]
    return ", ".join(model) + " mm (constant baselines: " + ", ".join(base) + " mm)"
