"""Accumulate per-sample metrics and write the evaluation report (JSON, Markdown, PCK plot).

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

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from homae_model.evaluation.paper_numbers import (
    HOISDF,
    OURS,
    PAPER_CONVENTIONS,
    PAPER_TABLES,
    TABLE_IV,
    TABLE_IV_COLUMNS,
    paper_numbers_dict,
)
from homae_model.hand.constants import NUM_JOINTS, NUM_VERTICES, ROOT_JOINT
from homae_model.metrics.alignment import check_pair, check_points, translate_by_root
from homae_model.metrics.hand import per_joint_errors
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
#: Additional values (mm): the unaligned joint error and the HOISDF-convention object metrics.
EXTRA_NAMES: tuple[str, ...] = ("abs-MJE", *HOISDF_CONVENTION.values())
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
    "fingertips": "the five tip joints are mesh vertices and the datasets differ: DexYCB's "
    "labels use manopth's (MANO 745, 317, 444, 556, 673), HO3D's its setup_mano.py's (744, 333, "
    "444, 555, 672), synthetic sets the hand model file's own; predicted joints are built with "
    "the evaluated data's convention (meta.fingertips)",
}

#: HO3D stores joints in MANO's order (wrist, index1-3, middle1-3, pinky1-3, ring1-3, thumb1-3,
#: tips thumb, index, middle, ring, pinky). ``ho3d = project[PROJECT_TO_HO3D]``.
# fmt: off
PROJECT_TO_HO3D: tuple[int, ...] = (
    0, 5, 6, 7, 9, 10, 11, 17, 18, 19, 13, 14, 15, 1, 2, 3, 4, 8, 12, 16, 20,
)
#: Inverse map: ``project = ho3d[HO3D_TO_PROJECT]`` (HO3D's ``jointsMapManoToSimple``).
HO3D_TO_PROJECT: tuple[int, ...] = (
    0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20,
)
# fmt: on
#: OpenCV camera frame -> HO3D's OpenGL frame (y and z flipped).
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0])

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
        extras: non-paper values, e.g. ``"abs-MJE"``, ``"ADD-S (HOISDF)"`` (mm).
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


def _as_result(
    protocol: str, value: EvaluationResult | Mapping[str, float | None]
) -> EvaluationResult:
    if isinstance(value, EvaluationResult):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"metrics_by_protocol[{protocol!r}] must be an EvaluationResult or a dict")
    unknown = sorted(set(value) - set(METRIC_NAMES))
    if unknown:
        raise ValueError(
            f"metrics_by_protocol[{protocol!r}] has unknown metric(s) {unknown}; "
            f"valid: {', '.join(METRIC_NAMES)}"
        )
    metrics = {n: (None if value.get(n) is None else float(value[n])) for n in METRIC_NAMES}
    empty = dict.fromkeys(METRIC_NAMES)
    return EvaluationResult(metrics, empty, {}, dict(empty), {})


def _json_default(obj: object) -> object:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"meta value of type {type(obj).__name__} is not JSON serialisable: {obj!r}")


@dataclass(frozen=True)
class ReportFiles:
    """Paths written by :func:`write_report`.

    Attributes:
        json_path: ``report.json``.
        markdown_path: ``report.md``.
        plot_path: ``pck_curves.png``.
    """

    json_path: Path
    markdown_path: Path
    plot_path: Path

    @classmethod
    def in_folder(cls, out_dir: str | Path) -> ReportFiles:
        """The paths :func:`write_report` writes in ``out_dir``."""
        out = Path(out_dir)
        return cls(out / "report.json", out / "report.md", out / "pck_curves.png")


def write_report(
    out_dir: str | Path,
    metrics_by_protocol: Mapping[str, EvaluationResult | Mapping[str, float | None]],
    meta: Mapping[str, object],
    per_sample: Mapping[str, list[dict[str, object]]] | None = None,
    *,
    baselines: Mapping[str, object] | None = None,
    files: Mapping[str, str | Path] | None = None,
) -> ReportFiles:
    """Write ``report.json``, ``report.md`` and ``pck_curves.png`` into ``out_dir``.

    ``report.json`` holds ``report["metrics"][PROTOCOL][NAME]`` (whole set; mm or %), plus
    ``"occluded"``, ``"per_object"``, ``"object_mean"``, ``"counts"``, ``"extras"`` (with
    ``"extras_occluded"`` and ``"extras_per_object"``), ``"conventions"``, ``"units"``,
    ``"meta"`` and ``"paper"`` (Tables I-IV). Missing values are ``null``.

    Args:
        out_dir: output folder (created if missing).
        metrics_by_protocol: ``{"gt-anchored" | "gt-free": EvaluationResult or {name: value}}``.
        meta: free JSON-serialisable information (dataset, checkpoint, split, ...).
        per_sample: optional ``{protocol: [{"index": i, "MJE": mm, ...}, ...]}``, stored as
            ``report["per_sample"]`` (lets a run on some of the frames, such as the ROS demo,
            compare itself with the report on exactly those frames).
        baselines: optional ``report["baselines"]`` (see
            :func:`homae_model.evaluation.baselines.measure_baselines`): shown as rows beside
            this run's in ``report.md``.
        files: optional ``report["files"]``: what the evaluation wrote, by kind (the report's own
            three files are added).

    Returns:
        The :class:`ReportFiles`.

    Raises:
        ValueError: empty input, unknown protocol or metric names (the valid ones are listed).
    """
    if not metrics_by_protocol:
        raise ValueError("metrics_by_protocol is empty; give at least one protocol")
    bad = [p for p in metrics_by_protocol if p not in PROTOCOLS]
    if bad:
        raise ValueError(f"unknown protocol(s) {bad}; valid: {', '.join(PROTOCOLS)}")
    results = {p: _as_result(p, v) for p, v in metrics_by_protocol.items()}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = ReportFiles.in_folder(out)
    report: dict[str, object] = {
        "meta": dict(meta),
        "units": {n: ("%" if n in PERCENT_METRICS else "mm") for n in METRIC_NAMES},
        "conventions": dict(CONVENTION_NOTES),
        "metrics": {p: r.metrics for p, r in results.items()},
        "occluded": {p: r.occluded for p, r in results.items()},
        "per_object": {p: r.per_object for p, r in results.items()},
        "object_mean": {p: r.object_mean for p, r in results.items()},
        "counts": {p: r.counts for p, r in results.items()},
        "extras": {p: r.extras for p, r in results.items()},
        "extras_occluded": {p: r.occluded_extras for p, r in results.items()},
        "extras_per_object": {p: r.per_object_extras for p, r in results.items()},
        "paper": paper_numbers_dict(),
    }
    if baselines is not None:
        report["baselines"] = dict(baselines)
    if per_sample is not None:
        report["per_sample"] = {p: list(rows) for p, rows in per_sample.items()}
    if files is not None:
        report["files"] = {
            **{k: str(v) for k, v in files.items()},
            "report_json": str(paths.json_path),
            "report_md": str(paths.markdown_path),
            "pck_plot": str(paths.plot_path),
        }
    paths.json_path.write_text(
        json.dumps(report, indent=2, default=_json_default, allow_nan=False) + "\n"
    )
    paths.markdown_path.write_text(render_markdown(results, dict(meta), baselines))
    render_pck_plot(paths.plot_path, {p: r.curves for p, r in results.items()})
    return paths


def write_ho3d_submission(
    path: str | Path,
    joints_list: Sequence[np.ndarray],
    verts_list: Sequence[np.ndarray],
) -> Path:
    """Write the HO3D CodaLab ``pred.json``: ``[xyz_list, verts_list]``.

    Each entry is converted from the project convention (OpenCV camera frame, metres, project
    joint order) to HO3D's: joints reordered with :data:`PROJECT_TO_HO3D` (MANO order), y and z
    negated (OpenGL frame, the hand at negative z), metres.

    Args:
        path: output file (parents created).
        joints_list: S arrays ``(21, 3)``.
        verts_list: S arrays ``(778, 3)``.

    Returns:
        The written path.

    Raises:
        ValueError: empty or unequal lists, bad shapes / NaN (with the sample index), or a
            sample whose joints all have ``z <= 0`` (already in OpenGL coordinates?).
    """
    if len(joints_list) == 0:
        raise ValueError("joints_list is empty")
    if len(joints_list) != len(verts_list):
        raise ValueError(
            f"joints_list has {len(joints_list)} entries but verts_list has {len(verts_list)}"
        )
    order = np.asarray(PROJECT_TO_HO3D)
    xyz_out, verts_out = [], []
    for i, (joints, verts) in enumerate(zip(joints_list, verts_list, strict=True)):
        j = check_points(f"joints_list[{i}]", joints, NUM_JOINTS)
        v = check_points(f"verts_list[{i}]", verts, NUM_VERTICES)
        if j.ndim != 2 or v.ndim != 2:
            raise ValueError(f"sample {i}: expected (21, 3) and (778, 3), got {j.shape}, {v.shape}")
        if np.all(j[:, 2] <= 0.0):
            raise ValueError(
                f"sample {i}: every joint has z <= 0; inputs must be in the OpenCV camera frame "
                "(z forward), the conversion to OpenGL is done here"
            )
        xyz_out.append((j[order] @ OPENCV_TO_OPENGL).tolist())
        verts_out.append((v @ OPENCV_TO_OPENGL).tolist())
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([xyz_out, verts_out]))
    return out


MAX_LISTED = 10
"""Longer lists in the meta (e.g. the frames a detector missed) are cut in report.md."""


def _short(value: object) -> object:
    """``value`` with every list longer than MAX_LISTED cut (report.json keeps them whole)."""
    if isinstance(value, Mapping):
        return {k: _short(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [_short(v) for v in value[:MAX_LISTED]]
        if len(value) > MAX_LISTED:
            items.append(f"... {len(value)} in all, see report.json")
        return items
    return value


def _fmt(value: float | None, paper: bool = False) -> str:
    if value is None:
        return "-"
    return str(value) if paper else f"{value:.2f}"


def _table_row(label: str, values: Sequence[float | None], paper: bool = False) -> str:
    return "| " + " | ".join([label, *(_fmt(v, paper) for v in values)]) + " |"


def _hoisdf_values(
    metrics: Mapping[str, float | None], extras: Mapping[str, float | None]
) -> Values:
    """``metrics`` with the HOISDF-convention object metrics in place of the project's."""
    out = dict(metrics)
    for name, extra in HOISDF_CONVENTION.items():
        out[name] = extras.get(extra)
    return out


def _mean_of(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def render_markdown(
    results: Mapping[str, EvaluationResult],
    meta: Mapping[str, object],
    baselines: Mapping[str, object] | None = None,
) -> str:
    """Markdown tables laid out like the paper's Tables I-IV, paper rows above this run's.

    Tables whose columns include ADD-S or MCE get a second "This run" row computed with
    HOISDF's conventions (:data:`HOISDF_CONVENTION`), next to the paper rows computed that way.

    Args:
        results: ``{protocol: EvaluationResult}``.
        meta: shown as a bullet list at the top.
        baselines: optional ``report["baselines"]`` (``"metrics"``, ``"extras"``, ``"counts"``
            by protocol): a baseline row (and its HOISDF-convention row) in every table.

    Returns:
        The Markdown text.
    """
    lines = ["# HOMAE evaluation report", ""]
    lines += [f"- {key}: {_short(value)}" for key, value in meta.items()]
    reflection = meta.get("procrustes_allows_reflection")
    pa_note = {True: "with reflections (toolkits)", False: "without reflections (HOISDF)"}
    lines += [
        "",
        "Errors in mm, AUC (0-50 mm) and F-scores in %. Rows above 'This run' are the paper's "
        "numbers on the real benchmarks (DexYCB S0 test, HO3Dv2 evaluation); MJE here is "
        "root-relative; PA-* use a similarity Procrustes alignment"
        + (f" {pa_note[reflection]}" if reflection in pa_note else "")
        + ".",
        "",
        "### Metric conventions",
        "",
        "Rows named '..., HOISDF conventions' use HOISDF's ADD-S and MCE, the others this "
        "project's (every other column is the same in both):",
        "",
    ]
    lines += [f"- {name}: {text}" for name, text in CONVENTION_NOTES.items()]
    lines += ["", "The paper rows:", ""]
    lines += [f"- {method}: {text}" for method, text in PAPER_CONVENTIONS.items()]
    if baselines:
        lines += ["", f"Baselines: {baselines.get('description', '')}"]
    lines.append("")
    base_metrics = dict(baselines.get("metrics", {})) if baselines else {}
    base_extras = dict(baselines.get("extras", {})) if baselines else {}
    base_counts = dict(baselines.get("counts", {})) if baselines else {}
    for protocol, res in results.items():
        n_all = res.counts.get("all", "?")
        n_occ = res.counts.get("occluded", "?")
        lines += [f"## Protocol: {protocol} ({n_all} samples, {n_occ} occluded)", ""]
        base = base_metrics.get(protocol)
        for table in PAPER_TABLES:
            lines += [f"### {table.title}", ""]
            lines.append("| Method | " + " | ".join(table.columns) + " |")
            lines.append("|---" * (len(table.columns) + 1) + "|")
            lines += [_table_row(name, values, paper=True) for name, values in table.rows]
            two = any(c in HOISDF_CONVENTION for c in table.columns)
            if two:
                hoisdf = _hoisdf_values(res.metrics, res.extras)
                lines.append(
                    _table_row(
                        f"This run: all ({n_all}), HOISDF conventions",
                        [hoisdf.get(c) for c in table.columns],
                    )
                )
            lines.append(
                _table_row(
                    f"**This run: all ({n_all})**",
                    [res.metrics.get(c) for c in table.columns],
                )
            )
            lines.append(
                _table_row(
                    f"This run: occluded ({n_occ})",
                    [res.occluded.get(c) for c in table.columns],
                )
            )
            if base is not None:
                n_base = base_counts.get(protocol, "?")
                label = f"Baseline: constant hand, mean object pose ({n_base})"
                if two:
                    hoisdf = _hoisdf_values(base, base_extras.get(protocol, {}))
                    lines.append(
                        _table_row(
                            f"{label}, HOISDF conventions", [hoisdf.get(c) for c in table.columns]
                        )
                    )
                lines.append(_table_row(label, [base.get(c) for c in table.columns]))
                artic = base_extras.get(protocol, {}).get("PA-MJE (mean articulation)")
                if artic is not None and "PA-MJE" in table.columns:
                    lines.append(
                        _table_row(
                            f"Baseline: mean articulation, PA-MJE only ({n_base})",
                            [artic if c == "PA-MJE" else None for c in table.columns],
                        )
                    )
            lines.append("")
        add_s_hoisdf = HOISDF_CONVENTION["ADD-S"]
        lines += [
            "### Table IV: per object (OME, ADD-S in mm; ADD-S project and HOISDF conventions)",
            "",
        ]
        head = ["Object", "n"]
        head += [f"This run {c}" for c in TABLE_IV_COLUMNS]
        head.append(f"This run {add_s_hoisdf}")
        for who in (OURS, HOISDF):
            head += [f"{who} {c}" for c in TABLE_IV_COLUMNS]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|---" * len(head) + "|")
        per_obj_counts = res.counts.get("per_object", {})
        objects = sorted((set(res.per_object) | set(TABLE_IV)) - {"Mean"})
        for obj in [*objects, "Mean"]:
            ours = res.object_mean if obj == "Mean" else res.per_object.get(obj, {})
            if obj == "Mean":
                ours_hoisdf = _mean_of(
                    [e.get(add_s_hoisdf) for e in res.per_object_extras.values()]
                )
            else:
                ours_hoisdf = res.per_object_extras.get(obj, {}).get(add_s_hoisdf)
            paper = TABLE_IV.get(obj, {})
            count = sum(per_obj_counts.values()) if obj == "Mean" else per_obj_counts.get(obj, 0)
            cells = [_fmt(ours.get(c)) for c in TABLE_IV_COLUMNS]
            cells.append(_fmt(ours_hoisdf))
            for method in (OURS, HOISDF):
                paper_values = paper.get(method, (None,) * len(TABLE_IV_COLUMNS))
                cells += [_fmt(v, paper=True) for v in paper_values]
            lines.append("| " + " | ".join([obj, str(count), *cells]) + " |")
        lines.append("")
    return "\n".join(lines)


def render_pck_plot(
    path: str | Path, curves_by_protocol: Mapping[str, Mapping[str, PCKCurve]]
) -> Path:
    """Save the PCK curves (one panel per protocol) as a PNG with matplotlib's Agg canvas.

    Args:
        path: output PNG path.
        curves_by_protocol: ``{protocol: {"J" | "PA-J" | "V" | "PA-V": PCKCurve}}``.

    Returns:
        The written path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    protocols = list(curves_by_protocol) or ["(none)"]
    fig = Figure(figsize=(5.0 * len(protocols), 4.0), dpi=100)
    FigureCanvasAgg(fig)
    for i, protocol in enumerate(protocols):
        ax = fig.add_subplot(1, len(protocols), i + 1)
        curves = curves_by_protocol.get(protocol, {})
        for name, curve in curves.items():
            ax.plot(
                curve.thresholds_mm, 100.0 * curve.pck, label=f"{name} (AUC {100 * curve.auc:.1f})"
            )
        if not curves:
            ax.text(0.5, 0.5, "no PCK data", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(protocol)
        ax.set_xlabel("threshold (mm)")
        ax.set_ylabel("correct points (%)")
        ax.set_xlim(0.0, 50.0)
        ax.set_ylim(0.0, 100.0)
        ax.grid(True, alpha=0.3)
        if curves:
            ax.legend(loc="lower right")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    return out
