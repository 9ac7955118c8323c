"""The HOMAE paper's Tables I-IV as data (Section IV; mm, AUC and F-scores in %).

``None`` stands for a "-" in the paper. Metric names use the report's spellings
(:data:`homae_model.evaluation.accumulator.METRIC_NAMES`). These are results on the real benchmarks
(DexYCB S0 test split, HO3Dv2 evaluation server); a run on other data is not comparable number
for number.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperTable:
    """One comparison table of the paper.

    Attributes:
        key: short identifier ("table1", ...).
        title: caption, shortened.
        dataset: benchmark the numbers were measured on.
        columns: metric names in the paper's column order.
        rows: ``(method, values)`` with one value (or ``None``) per column.
    """

    key: str
    title: str
    dataset: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, tuple[float | None, ...]], ...]

    def row(self, method: str) -> dict[str, float | None]:
        """Values of one method by column name.

        Raises:
            KeyError: unknown method (lists the table's methods).
        """
        for name, values in self.rows:
            if name == method:
                return dict(zip(self.columns, values, strict=True))
        valid = ", ".join(name for name, _ in self.rows)
        raise KeyError(f"{method!r} is not in {self.key}; methods: {valid}")


OURS = "HOMAE (paper)"
HOISDF = "HOISDF [3]"

TABLE_I = PaperTable(
    key="table1",
    title="Table I: hand-object pose on DexYCB (mm)",
    dataset="DexYCB",
    columns=("MJE", "PA-MJE", "OCE", "MCE", "ADD-S"),
    rows=(
        ("Hasson et al. [1]", (17.6, None, None, None, None)),
        ("Hasson et al. [47]", (18.8, None, None, 52.5, None)),
        ("Tze et al. [2]", (15.3, None, None, None, None)),
        ("Li et al. [29]", (12.8, None, None, None, None)),
        ("Chen et al. [18]", (19.0, None, 27.0, None, None)),
        ("Chen et al. [19]", (14.4, None, 19.1, None, None)),
        ("Wang et al. [11]", (12.7, 6.86, 27.3, 32.6, 15.9)),
        ("Lin et al. [30]", (11.9, 5.81, 39.8, 45.7, 31.9)),
        (HOISDF, (10.1, 5.31, 18.4, 27.4, 13.3)),
        (OURS, (10.6, 5.08, 17.1, 25.2, 11.8)),
    ),
)

TABLE_II = PaperTable(
    key="table2",
    title="Table II: hand mesh on DexYCB (mm; AUC and F in %)",
    dataset="DexYCB",
    columns=(
        "PA-J-AUC",
        "PA-V-PE",
        "PA-V-AUC",
        "PA-F@5",
        "PA-F@15",
        "J-AUC",
        "V-PE",
        "V-AUC",
        "F@5",
        "F@15",
    ),
    rows=(
        ("HandOccNet [52]", (88.4, 5.5, 89.0, 78.0, 99.0, 74.8, 13.1, 76.6, 51.5, 92.4)),
        ("MobRecon [53]", (87.3, 5.6, 88.9, 78.5, 98.8, 73.7, 13.1, 76.1, 50.8, 92.1)),
        ("H2ONet [54]", (88.9, 5.5, 89.1, 80.1, 99.0, 74.6, 13.0, 76.2, 51.3, 92.1)),
        ("UniHOPE [55]", (None, 5.4, None, None, None, None, 12.2, None, None, None)),
        (OURS, (89.8, 4.9, 90.0, 81.7, 98.9, 79.7, 10.5, 79.9, 59.7, 94.4)),
    ),
)

TABLE_III = PaperTable(
    key="table3",
    title="Table III: hand-object pose on HO3Dv2 (mm)",
    dataset="HO3Dv2",
    columns=("MJE", "ST-MJE", "PA-MJE", "OME", "ADD-S"),
    rows=(
        ("Hasson et al. [1]", (None, 31.8, 11.0, None, None)),
        ("Hasson et al. [56]", (None, 36.9, 11.4, 67.0, 22.0)),
        ("Hasson et al. [47]", (None, 26.8, 12.0, 80.0, 40.0)),
        ("Liu et al. [16]", (None, 31.7, 10.1, None, None)),
        ("Hampali et al. [17]", (25.5, 25.7, 10.8, 68.0, 21.4)),
        ("Lin et al. [30]", (28.9, 28.4, 8.9, 64.3, 32.4)),
        (HOISDF, (23.6, 22.8, 9.6, 48.5, 17.8)),
        (OURS, (21.8, 20.5, 9.8, 39.3, 14.2)),
    ),
)

#: Table IV columns (per object, HO3Dv2).
TABLE_IV_COLUMNS: tuple[str, ...] = ("OME", "ADD-S")
#: Table IV: ``{object: {method: (OME, ADD-S)}}``; "Mean" is the mean over the three objects.
TABLE_IV: dict[str, dict[str, tuple[float, float]]] = {
    "006_mustard_bottle": {OURS: (42.3, 11.2), HOISDF: (52.1, 13.1)},
    "010_potted_meat_can": {OURS: (41.8, 13.9), HOISDF: (51.8, 18.2)},
    "021_bleach_cleanser": {OURS: (33.8, 17.6), HOISDF: (41.6, 22.2)},
    "Mean": {OURS: (39.3, 14.2), HOISDF: (48.5, 17.8)},
}

PAPER_TABLES: tuple[PaperTable, ...] = (TABLE_I, TABLE_II, TABLE_III)

#: How the paper rows' object metrics were computed, as far as known (shown in report.md).
PAPER_CONVENTIONS: dict[str, str] = {
    HOISDF: "HOISDF's released evaluation code (common/metrics.py): ADD-S over the predicted "
    "points, MCE on camera-axis-aligned boxes, OCE |t_pred - t_gt|, OME (its MME) corresponding "
    "vertices; compare with the 'HOISDF conventions' rows",
    OURS: "not stated in the paper; it reports its numbers in HOISDF's columns against HOISDF's, "
    "so HOISDF's conventions are the likely ones (an assumption)",
    "other rows": "conventions not stated in the tables",
}


def paper_numbers_dict() -> dict[str, object]:
    """All tables as a JSON-ready dict (``{table: {method: {metric: value}}}``).

    Returns:
        Tables I-III keyed by method then metric, and Table IV keyed by object, method, metric.
    """
    out: dict[str, object] = {}
    for table in PAPER_TABLES:
        out[table.key] = {name: table.row(name) for name, _ in table.rows}
    out["table4"] = {
        obj: {m: dict(zip(TABLE_IV_COLUMNS, v, strict=True)) for m, v in methods.items()}
        for obj, methods in TABLE_IV.items()
    }
    return out
