"""Evaluation: metric accumulation over a data set and the report / submission writers."""

from homae_model.evaluation.accumulator import (
    METRIC_NAMES,
    PERCENT_METRICS,
    PROTOCOLS,
    EvaluationResult,
    MetricAccumulator,
)
from homae_model.evaluation.report import ReportFiles, write_report
from homae_model.evaluation.submission import (
    HO3D_TO_PROJECT,
    PROJECT_TO_HO3D,
    write_ho3d_submission,
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
