"""Evaluation: metric accumulation over a data set and the report / submission writers."""

from homae_model.evaluation.report import (
    HO3D_TO_PROJECT,
    METRIC_NAMES,
    PERCENT_METRICS,
    PROJECT_TO_HO3D,
    PROTOCOLS,
    EvaluationResult,
    MetricAccumulator,
    ReportFiles,
    write_ho3d_submission,
    write_report,
)

__all__ = [
    "HO3D_TO_PROJECT",
    "METRIC_NAMES",
    "PERCENT_METRICS",
    "PROJECT_TO_HO3D",
    "PROTOCOLS",
    "EvaluationResult",
    "MetricAccumulator",
    "ReportFiles",
    "write_ho3d_submission",
    "write_report",
]
