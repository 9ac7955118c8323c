"""Why a frame gave no result: one error type with a reason code, one mapping to reasons.

Shared by homae_node, `homae-bag` and `homae-infer` (no ROS imports).

Code that knows why a frame cannot be processed raises `FrameSkipped(reason, message)` (or a
subclass with a fixed reason: `conversions.ConversionError`, `estimator.NonFiniteOutputError`);
`skip_reason` turns anything else a frame raised into a `FrameSkipped` by the exception's
type, never by its message text. The reason codes key the node's diagnostics counters
(`errors.<reason>`) and the tools' summaries.
"""

from __future__ import annotations

import torch

__all__ = [
    "BAD_INPUT",
    "MODEL_ERROR",
    "OUT_OF_MEMORY",
    "OUT_OF_MEMORY_ERRORS",
    "TF_LOOKUP_FAILED",
    "FrameSkipped",
    "skip_reason",
]

BAD_INPUT = "bad_input"
"""A ValueError / FileNotFoundError from the model's own input checks."""
MODEL_ERROR = "model_error"
"""Anything else the model raised."""
OUT_OF_MEMORY = "out_of_memory"
"""The accelerator ran out of memory (after the estimator's split retry)."""
TF_LOOKUP_FAILED = "tf_lookup_failed"
"""No transform from the image frame to `target_frame` at the image stamp."""

OUT_OF_MEMORY_ERRORS: tuple[type[BaseException], ...] = tuple(
    {torch.cuda.OutOfMemoryError, getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)}
)
"""The exception types torch raises when device memory runs out."""


class FrameSkipped(ValueError):
    """A frame gives no result.

    Attributes:
        reason: short stable code (diagnostics counter `errors.<reason>`, summaries).
        detail: what went wrong, for the log line.
    """

    def __init__(self, reason: str, message: str) -> None:
        """Make the error: `reason` code, `message` text."""
        super().__init__(message)
        self.reason = reason
        self.detail = message

    def __str__(self) -> str:
        """The message."""
        return self.detail


def skip_reason(err: BaseException) -> FrameSkipped:
    """The `FrameSkipped` a frame that raised `err` is counted as (decided by type).

    Args:
        err: what processing the frame raised.

    Returns:
        `err` itself when it is a FrameSkipped; else out_of_memory for torch's out-of-memory
        errors, bad_input for ValueError / FileNotFoundError, model_error for the rest.
    """
    if isinstance(err, FrameSkipped):
        return err
    if isinstance(err, OUT_OF_MEMORY_ERRORS):
        skipped = FrameSkipped(OUT_OF_MEMORY, str(err))
    elif isinstance(err, (ValueError, FileNotFoundError)):
        skipped = FrameSkipped(BAD_INPUT, str(err))
    elif isinstance(err, RuntimeError):
        skipped = FrameSkipped(MODEL_ERROR, str(err))
    else:
        skipped = FrameSkipped(MODEL_ERROR, repr(err))
    skipped.__cause__ = err
    return skipped
