"""Why a frame gave no result: one error type with a reason code, one mapping to reasons.

Shared by homae_node, `homae-bag` and `homae-infer` (no ROS imports).

Code that knows why a frame cannot be processed raises `FrameSkipped(reason, message)` (or a
subclass with a fixed reason: `conversions.ConversionError`, `estimator.NonFiniteOutputError`);
`skip_reason` turns anything else a frame raised into a `FrameSkipped` by the exception's
type, never by its message text. The reason codes key the node's diagnostics counters
(`errors.<reason>`) and the tools' summaries.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

from homae_model.geometry.camera import (
    IntrinsicsError,
    NonFiniteIntrinsicsError,
    validate_intrinsics,
)

__all__ = [
    "BAD_INPUT",
    "MODEL_ERROR",
    "OUT_OF_MEMORY",
    "OUT_OF_MEMORY_ERRORS",
    "TF_LOOKUP_FAILED",
    "FrameSkipped",
    "parameter_error",
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


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------
class ConversionError(FrameSkipped):
    """A message could not be converted; each subclass has its own fixed `reason` code."""

    reason: ClassVar[str] = "conversion_error"

    def __init__(self, message: str) -> None:
        """Make the error with the class's reason code."""
        super().__init__(type(self).reason, message)

    def __str__(self) -> str:
        """The message prefixed with the reason code: "[reason] message"."""
        return f"[{self.reason}] {self.detail}"


class UnknownEncodingError(ConversionError):
    """The image encoding is not one `image_to_rgb` can read."""

    reason = "unknown_encoding"


class EmptyImageError(ConversionError):
    """Width or height is zero."""

    reason = "empty_image"


class BadStepError(ConversionError):
    """`step` is smaller than one row of pixels, or the width does not fit the encoding."""

    reason = "bad_step"


class TruncatedDataError(ConversionError):
    """`data` holds fewer bytes than `step * height`."""

    reason = "truncated_data"


class SizeMismatchError(ConversionError):
    """CameraInfo size (after binning / ROI) differs from the image size."""

    reason = "size_mismatch"


class NanValuesError(ConversionError):
    """Non-finite values in intrinsics, distortion, rotations or translations."""

    reason = "nan_values"


class BadIntrinsicsError(ConversionError):
    """K is all zero, has a non-positive focal length or a malformed last row."""

    reason = "bad_intrinsics"


class UnsupportedDistortionError(ConversionError):
    """Unknown distortion model with non-zero coefficients (the image cannot be trusted)."""

    reason = "unsupported_distortion"


class BadInputError(ConversionError):
    """An array given to a builder has the wrong shape, dtype or is not a rotation."""

    reason = "bad_input"


REASONS: tuple[str, ...] = tuple(
    cls.reason
    for cls in (
        UnknownEncodingError,
        EmptyImageError,
        BadStepError,
        TruncatedDataError,
        SizeMismatchError,
        NanValuesError,
        BadIntrinsicsError,
        UnsupportedDistortionError,
        BadInputError,
    )
)
"""Every reason code a conversion can fail with (diagnostics counters are keyed by these)."""


def check_intrinsics(K: Any, name: str = "K") -> np.ndarray:
    """Check a pinhole K for use by the model and return it as (3, 3) float64.

    The checks are `homae_model.geometry.camera.validate_intrinsics` (shape, finite, not all
    zero, fx, fy > 0, last row (0, 0, 1), plausible magnitudes); this adds the reason codes.

    Args:
        K: (3, 3) intrinsics, pixels.
        name: what K is called in error messages.

    Raises:
        NanValuesError: non-finite values. BadIntrinsicsError: any other failed check.
    """
    try:
        K = np.asarray(K, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise BadIntrinsicsError(f"{name} is not numbers: {err}") from err
    if K.shape != (3, 3):
        raise BadIntrinsicsError(f"{name} must be (3, 3), got shape {K.shape}")
    try:
        validate_intrinsics(K, name)
    except NonFiniteIntrinsicsError as err:
        raise NanValuesError(str(err)) from err
    except IntrinsicsError as err:
        raise BadIntrinsicsError(str(err)) from err
    return K


E = TypeVar("E", bound=Exception)


def parameter_error(kind: type[E], parameter: str, message: str) -> E:
    """An exception of type `kind` whose message names a setting, marked with `.parameter`.

    Code that wraps errors to add the setting's name (`estimator._named`) checks the mark, not
    the message text, to avoid naming it twice.

    Args:
        kind: exception type taking one message argument (FileNotFoundError, ValueError).
        parameter: the setting's name (e.g. "detector.weights").
        message: the full message (it should name `parameter`).
    """
    err = kind(message)
    err.parameter = parameter  # type: ignore[attr-defined]
    return err
