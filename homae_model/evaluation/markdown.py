"""The human-readable evaluation report: `report.md` (tables beside the paper's) and the PCK plot.

Values come from `accumulator.EvaluationResult` (mm; AUC and F-scores in %); the paper numbers
from `paper_numbers`, shown beside ours where the conventions match.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from homae_model.evaluation.accumulator import (
    CONVENTION_NOTES,
    HOISDF_CONVENTION,
    ROTATION_NAMES,
    EvaluationResult,
    Values,
)
from homae_model.evaluation.paper_numbers import (
    HOISDF,
    OURS,
    PAPER_CONVENTIONS,
    PAPER_TABLES,
    TABLE_IV,
    TABLE_IV_COLUMNS,
)
from homae_model.metrics.pck import PCKCurve

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
        lines += _orientation_lines(
            res.metrics, res.extras, base_metrics.get(protocol, {}), base_extras.get(protocol, {})
        )
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
    lines += _per_side_lines(meta)
    return "\n".join(lines)


def _per_side_lines(meta: Mapping[str, object]) -> list[str]:
    """The per hand side table (``meta["per_side"]``) and the detector's left/right accuracy."""
    per_side = meta.get("per_side")
    if not isinstance(per_side, Mapping):
        return []
    cols = ("MJE", "PA-MJE", "OCE", "ADD-S")
    lines = ["## Per hand side (labelled side; left hands estimated through the mirror)", ""]
    lines.append("| Protocol | Side | n | " + " | ".join(cols) + " |")
    lines.append("|---" * (len(cols) + 3) + "|")
    for protocol, sides in per_side.items():
        for side, row in dict(sides).items():
            cells = [_fmt(row.get(c)) for c in cols]
            lines.append(
                f"| {protocol} | {side} | {row.get('samples', 0)} | " + " | ".join(cells) + " |"
            )
    gt_free = meta.get("gt_free")
    acc = gt_free.get("side_accuracy") if isinstance(gt_free, Mapping) else None
    if isinstance(acc, Mapping):

        def pct(v: object) -> str:
            return "n/a" if v is None else f"{100 * float(v):.1f}%"

        lines += [
            "",
            f"Detector left/right accuracy (GT-free, hands found): {pct(acc.get('accuracy'))} of "
            f"{acc.get('checked', 0)} (left {pct(acc.get('left_accuracy'))} of "
            f"{acc.get('left_checked', 0)}, right {pct(acc.get('right_accuracy'))} of "
            f"{acc.get('right_checked', 0)}); hand side: {gt_free.get('hand_side')}",
        ]
    lines.append("")
    return lines


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


def _orientation_lines(
    metrics: Mapping[str, float | None],
    extras: Mapping[str, float | None],
    base_metrics: Mapping[str, float | None],
    base_extras: Mapping[str, float | None],
) -> list[str]:
    """A table of the hand orientation diagnostics (`ROTATION_NAMES`) beside MJE, or nothing."""
    angle_name, rmje_name = ROTATION_NAMES
    if extras.get(angle_name) is None:
        return []
    lines = [
        "### Hand orientation (diagnostic, not in the paper)",
        "",
        f"| Method | MJE | {rmje_name} | {angle_name} |",
        "|---|---|---|---|",
        _table_row("This run", [metrics.get("MJE"), extras.get(rmje_name), extras.get(angle_name)]),
    ]
    if base_extras.get(angle_name) is not None:
        lines.append(
            _table_row(
                "Baseline: constant hand",
                [base_metrics.get("MJE"), base_extras.get(rmje_name), base_extras.get(angle_name)],
            )
        )
    return [*lines, ""]
