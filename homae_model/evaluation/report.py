"""Write the evaluation report: `report.json`, `report.md` and `pck_curves.png` (`write_report`).

Per-sample metrics are accumulated by `accumulator.MetricAccumulator`; `report.md` and the PCK
plot are drawn by `markdown`; the HO3D submission file is written by `submission`.

Inputs per sample are camera-frame metres in the project joint order (docs/design.md). Reported
values are mm, except AUCs and F-scores which are percentages (x100). Metric names are exactly
:data:`METRIC_NAMES`; protocols are :data:`PROTOCOLS`; conventions are in `accumulator`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from homae_model.evaluation.accumulator import (
    CONVENTION_NOTES,
    METRIC_NAMES,
    PERCENT_METRICS,
    PROTOCOLS,
    EvaluationResult,
)
from homae_model.evaluation.markdown import render_markdown, render_pck_plot
from homae_model.evaluation.paper_numbers import (
    paper_numbers_dict,
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
