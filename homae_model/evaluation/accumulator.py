"""Accumulate per-sample metrics over a data set and aggregate them (`MetricAccumulator`).

Inputs per sample are camera-frame metres in the project joint order (docs/design.md). Reported
values are mm, except AUCs and F-scores which are percentages (x100). Metric names are exactly
:data:`METRIC_NAMES`; protocols are :data:`PROTOCOLS`.

Protocol choices (see :mod:`homae_model.metrics`): MJE is root-relative; V-PE, V-AUC and F@ use
the predicted mesh shifted by the joint-root offset (root-aligned); PA-* use a similarity
Procrustes with reflections allowed (toolkits) unless ``allow_reflection=False`` (HOISDF);
OCE uses the model-frame origin (HOISDF), MCE the posed object-frame box (configurable), ADD-S
averages over the GT-posed points (BOP ``adi``). HOISDF's ADD-S (over the predicted points) and
MCE (camera-axis boxes) are kept too, as the extras ``"ADD-S (HOISDF)"`` and ``"MCE (HOISDF)"``
(:data:`HOISDF_CONVENTION`), so that the report can put each paper number beside ours computed
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from homae_model.hand.constants import NUM_JOINTS, NUM_VERTICES, ROOT_JOINT
from homae_model.metrics.alignment import check_pair, translate_by_root
from homae_model.metrics.hand import per_joint_errors, wrist_rotation_alignment
from homae_model.metrics.mesh import F_THRESHOLDS_MM, f_scores, vertex_errors
from homae_model.metrics.objects import (
    CENTRE_MODES,
    CORNER_MODES,
    CentreMode,
    CornerMode,
    ObjectPose,
    add_s,
    mean_corner_error,
    object_errors,
)
from homae_model.metrics.pck import PCKCurve, auc_from_fractions, pck_fractions, pck_thresholds

# fmt: off
METRIC_NAMES: tuple[str, ...] = (
    "MJE", "PA-MJE", "ST-MJE", "OCE", "MCE", "ADD-S", "OME", "V-PE", "PA-V-PE",
    "J-AUC", "PA-J-AUC", "V-AUC", "PA-V-AUC", "F@5", "F@15", "PA-F@5", "PA-F@15",
)
# fmt: on
#: Metrics reported in percent; all others in millimetres.
PERCENT_METRICS: frozenset[str] = frozenset(
    {"J-AUC", "PA-J-AUC", "V-AUC", "PA-V-AUC", "F@5", "F@15", "PA-F@5", "PA-F@15"}
)
PROTOCOLS: tuple[str, ...] = ("gt-anchored", "gt-free")
#: PCK curves kept per sample: name -> AUC metric it defines.
CURVE_TO_METRIC: dict[str, str] = {
    "J": "J-AUC",
    "PA-J": "PA-J-AUC",
    "V": "V-AUC",
    "PA-V": "PA-V-AUC",
}
#: HOISDF's variant of a metric: metric name -> extra name.
HOISDF_CONVENTION: dict[str, str] = {"ADD-S": "ADD-S (HOISDF)", "MCE": "MCE (HOISDF)"}
#: Hand orientation diagnostics (`metrics.hand.wrist_rotation_alignment`): the global rotation
#: error in degrees and the root-relative joint error after the best rotation about the wrist.
ROTATION_NAMES: tuple[str, str] = ("hand rotation (deg)", "R-MJE")
#: Additional values (mm unless named): the unaligned joint error, the HOISDF-convention object
#: metrics and the hand orientation diagnostics.
EXTRA_NAMES: tuple[str, ...] = ("abs-MJE", *HOISDF_CONVENTION.values(), *ROTATION_NAMES)
#: What each convention means, for reports.
CONVENTION_NOTES: dict[str, str] = {
    "ADD-S": "mean over the GT-posed model points of the distance to the closest "
    "predicted-posed point (BOP adi)",
    "ADD-S (HOISDF)": "mean over the predicted-posed model points of the distance to the "
    "closest GT-posed point (HOISDF common/metrics.py)",
    "MCE": "mean distance of the 8 object-frame bounding-box corners, posed with each pose",
    "MCE (HOISDF)": "mean distance of the 8 corners of the camera-axis-aligned box of each "
    "posed point set (HOISDF)",
    "OCE": "|t_pred - t_gt|: the model-frame origin (as HOISDF)",
    "hand rotation (deg)": "angle of the rotation about the wrist that best maps the predicted "
    "root-relative joints onto the GT ones (Kabsch): the global orientation error",
    "R-MJE": "root-relative joint error after that rotation: MJE with the orientation right",
    "fingertips": "the five tip joints are mesh vertices and the datasets differ: DexYCB's "
    "labels use manopth's (MANO 745, 317, 444, 556, 673), HO3D's its setup_mano.py's (744, 333, "
    "444, 555, 672), synthetic sets the hand model file's own; predicted joints are built with "
    "the evaluated data's convention (meta.fingertips)",
}

Values = dict[str, float | None]


@dataclass
class EvaluationResult:
    """Aggregated metrics of one protocol (report units: mm, AUC / F in %).

    Attributes:
        metrics: whole set, ``{name: value}`` for every name in :data:`METRIC_NAMES`
            (``None`` when no sample had the inputs, e.g. no meshes).
        occluded: same names on the occluded subset.
        per_object: ``{object name: {metric: value}}``.
        object_mean: mean over objects of the per-object values (Table IV "Mean").
        counts: ``{"all": n, "occluded": n, "per_object": {name: n}}``.
        extras: non-paper values, e.g. ``"abs-MJE"``, ``"ADD-S (HOISDF)"`` (mm),
            ``"hand rotation (deg)"``, ``"R-MJE"`` (``ROTATION_NAMES``).
        curves: whole-set PCK curves ``{"J", "PA-J", "V", "PA-V"}``.
        occluded_extras: ``extras`` on the occluded subset.
        per_object_extras: ``{object name: extras}``.
    """

    metrics: Values
    occluded: Values
    per_object: dict[str, Values]
    object_mean: Values
    counts: dict[str, object]
    extras: Values = field(default_factory=dict)
    curves: dict[str, PCKCurve] = field(default_factory=dict)
    occluded_extras: Values = field(default_factory=dict)
    per_object_extras: dict[str, Values] = field(default_factory=dict)


class MetricAccumulator:
    """Collects per-sample errors and aggregates them over the set and its subsets.

    Args:
        allow_reflection: Procrustes variant for PA-* (``True``: toolkits; ``False``: HOISDF).
        oce_centre: OCE centre (``"origin"``, ``"bbox"`` or ``"centroid"``).
        mce_mode: MCE corners (``"object_box"`` or ``"camera_aabb"`` = HOISDF).
    """

    def __init__(
        self,
        allow_reflection: bool = True,
        oce_centre: CentreMode = "origin",
        mce_mode: CornerMode = "object_box",
    ) -> None:
        if oce_centre not in CENTRE_MODES:
            raise ValueError(f"unknown oce_centre {oce_centre!r}; valid: {', '.join(CENTRE_MODES)}")
        if mce_mode not in CORNER_MODES:
            raise ValueError(f"unknown mce_mode {mce_mode!r}; valid: {', '.join(CORNER_MODES)}")
        self.allow_reflection = allow_reflection
        self.oce_centre = oce_centre
        self.mce_mode = mce_mode
        self._thresholds = pck_thresholds()
        self._values: dict[str, list[float]] = {n: [] for n in (*METRIC_NAMES, *EXTRA_NAMES)}
        self._curves: dict[str, list[np.ndarray]] = {n: [] for n in CURVE_TO_METRIC}
        self._objects: list[str | None] = []
        self._occluded: list[bool] = []

    def __len__(self) -> int:
        """Number of samples added."""
        return len(self._objects)

    def add(
        self,
        pred_joints: np.ndarray,
        gt_joints: np.ndarray,
        pred_verts: np.ndarray | None = None,
        gt_verts: np.ndarray | None = None,
        pred_obj_rot: np.ndarray | None = None,
        pred_obj_trans: np.ndarray | None = None,
        gt_obj_rot: np.ndarray | None = None,
        gt_obj_trans: np.ndarray | None = None,
        obj_points: np.ndarray | None = None,
        obj_corners: np.ndarray | None = None,
        obj_name: str | None = None,
        occluded: bool = False,
    ) -> Values:
        """Add one sample.

        Args:
            pred_joints: ``(21, 3)`` predicted joints, camera frame, metres.
            gt_joints: ``(21, 3)`` ground truth.
            pred_verts: ``(778, 3)`` predicted MANO vertices (``None``: no mesh metrics).
            gt_verts: ``(778, 3)`` ground-truth vertices.
            pred_obj_rot: ``(3, 3)`` rotation or ``(3,)`` axis-angle (``None``: no object).
            pred_obj_trans: ``(3,)`` metres.
            gt_obj_rot: ``(3, 3)`` or ``(3,)``.
            gt_obj_trans: ``(3,)`` metres.
            obj_points: ``(N, 3)`` object model points / vertices, object frame, metres.
            obj_corners: ``(8, 3)`` object-frame box corners (default: box of ``obj_points``).
            obj_name: object library name (groups the per-object table).
            occluded: whether the sample belongs to the occluded subset.

        Returns:
            This sample's values in report units (NaN where not computed).

        Raises:
            ValueError: mismatched shapes (naming the arguments), NaN, or half-given groups.
        """
        pj, gj = check_pair("pred_joints", pred_joints, "gt_joints", gt_joints, NUM_JOINTS)
        if pj.ndim != 2:
            raise ValueError(f"add() takes one sample: pred_joints has shape {pj.shape}")
        row = {n: float("nan") for n in self._values}
        curves: dict[str, np.ndarray] = {}
        root_err = per_joint_errors(pj, gj, "root")
        pa_err = per_joint_errors(pj, gj, "procrustes", self.allow_reflection)
        row["MJE"], row["PA-MJE"] = float(root_err.mean()), float(pa_err.mean())
        row["ST-MJE"] = float(per_joint_errors(pj, gj, "scale_translation").mean())
        row["abs-MJE"] = float(per_joint_errors(pj, gj, "none").mean())
        angle, rot_err = wrist_rotation_alignment(pj, gj)
        row[ROTATION_NAMES[0]], row[ROTATION_NAMES[1]] = float(angle), float(rot_err.mean())
        curves["J"] = pck_fractions(root_err, self._thresholds)
        curves["PA-J"] = pck_fractions(pa_err, self._thresholds)

        if (pred_verts is None) != (gt_verts is None):
            raise ValueError("pred_verts and gt_verts must be given together")
        if pred_verts is not None:
            pv, gv = check_pair("pred_verts", pred_verts, "gt_verts", gt_verts, NUM_VERTICES)
            pv_root = translate_by_root(pv, pj[ROOT_JOINT], gj[ROOT_JOINT])
            v_err = vertex_errors(pv_root, gv)
            pv_pa = vertex_errors(pv, gv, True, self.allow_reflection)
            row["V-PE"], row["PA-V-PE"] = float(v_err.mean()), float(pv_pa.mean())
            curves["V"] = pck_fractions(v_err, self._thresholds)
            curves["PA-V"] = pck_fractions(pv_pa, self._thresholds)
            for prefix, fs in (
                ("", f_scores(pv_root, gv, F_THRESHOLDS_MM)),
                ("PA-", f_scores(pv, gv, F_THRESHOLDS_MM, True, self.allow_reflection)),
            ):
                for t, score in fs.items():
                    row[f"{prefix}F@{t:g}"] = 100.0 * score.fscore

        obj_inputs = (pred_obj_rot, pred_obj_trans, gt_obj_rot, gt_obj_trans, obj_points)
        if any(x is not None for x in obj_inputs):
            if any(x is None for x in obj_inputs):
                raise ValueError(
                    "object metrics need pred_obj_rot, pred_obj_trans, gt_obj_rot, "
                    "gt_obj_trans and obj_points together"
                )
            pred_pose = ObjectPose.create(pred_obj_rot, pred_obj_trans, "pred_obj")
            gt_pose = ObjectPose.create(gt_obj_rot, gt_obj_trans, "gt_obj")
            errs = object_errors(
                pred_pose,
                gt_pose,
                obj_points,
                obj_corners,
                centre=self.oce_centre,
                corner_mode=self.mce_mode,
            )
            row["OCE"], row["MCE"], row["ADD-S"], row["OME"] = (
                errs.oce,
                errs.mce,
                errs.add_s,
                errs.ome,
            )
            row[HOISDF_CONVENTION["ADD-S"]] = add_s(pred_pose, gt_pose, obj_points, over="pred")
            row[HOISDF_CONVENTION["MCE"]] = (
                errs.mce
                if self.mce_mode == "camera_aabb"
                else mean_corner_error(pred_pose, gt_pose, None, obj_points, "camera_aabb")
            )

        for name, value in row.items():
            self._values[name].append(value)
        for name in self._curves:
            nan_curve = np.full(self._thresholds.shape, np.nan)
            self._curves[name].append(curves.get(name, nan_curve))
        self._objects.append(obj_name)
        self._occluded.append(bool(occluded))
        for name, metric in CURVE_TO_METRIC.items():
            if name in curves:
                row[metric] = 100.0 * auc_from_fractions(curves[name], self._thresholds)
        return row

    def _aggregate(self, mask: np.ndarray) -> tuple[Values, Values, dict[str, PCKCurve]]:
        metrics: Values = {}
        extras: Values = {}
        for name, values in self._values.items():
            arr = np.asarray(values, dtype=np.float64)[mask]
            arr = arr[np.isfinite(arr)]
            value = float(arr.mean()) if arr.size else None
            (extras if name in EXTRA_NAMES else metrics)[name] = value
        curves: dict[str, PCKCurve] = {}
        for name, metric in CURVE_TO_METRIC.items():
            stack = np.asarray(self._curves[name], dtype=np.float64)[mask]
            stack = stack[np.all(np.isfinite(stack), axis=1)] if stack.size else stack
            if stack.shape[0] == 0:
                metrics[metric] = None
                continue
            mean = stack.mean(axis=0)
            auc = auc_from_fractions(mean, self._thresholds)
            curves[name] = PCKCurve(self._thresholds, mean, auc)
            metrics[metric] = 100.0 * auc
        return {n: metrics[n] for n in METRIC_NAMES}, extras, curves

    def compute(self) -> EvaluationResult:
        """Aggregate everything added so far.

        Returns:
            The :class:`EvaluationResult`.

        Raises:
            ValueError: if no sample was added.
        """
        if not self._objects:
            raise ValueError("MetricAccumulator.compute(): no samples were added")
        everything = np.ones(len(self._objects), dtype=bool)
        metrics, extras, curves = self._aggregate(everything)
        occ_mask = np.asarray(self._occluded, dtype=bool)
        occluded: Values = dict.fromkeys(METRIC_NAMES)
        occluded_extras: Values = dict.fromkeys(EXTRA_NAMES)
        if occ_mask.any():
            occluded, occluded_extras, _ = self._aggregate(occ_mask)
        names = sorted({n for n in self._objects if n is not None})
        objects = np.asarray([n if n is not None else "" for n in self._objects])
        aggregated = {n: self._aggregate(objects == n) for n in names}
        per_object = {n: agg[0] for n, agg in aggregated.items()}
        per_object_extras = {n: agg[1] for n, agg in aggregated.items()}
        object_mean: Values = {}
        for metric in METRIC_NAMES:
            vals = [per_object[n][metric] for n in names if per_object[n][metric] is not None]
            object_mean[metric] = float(np.mean(vals)) if vals else None
        counts: dict[str, object] = {
            "all": len(self._objects),
            "occluded": int(occ_mask.sum()),
            "per_object": {n: int(np.sum(objects == n)) for n in names},
        }
        return EvaluationResult(
            metrics,
            occluded,
            per_object,
            object_mean,
            counts,
            extras,
            curves,
            occluded_extras,
            per_object_extras,
        )
