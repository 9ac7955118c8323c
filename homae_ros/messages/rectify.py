"""Undistort a camera image with its sensor_msgs/CameraInfo (D, distortion_model, K, P).

`ImageRectifier.rectify(rgb, info, K)` returns the image the estimator sees and its intrinsics:

- no distortion (D empty or all zero): the image and K unchanged;
- plumb_bob, rational_polynomial, equidistant: the image resampled into the pinhole camera of
  P's left 3x3 (or of K when P is all zero), with the same ROI / binning adjustment as K
  (`conversions.camera_info_to_K`); R (stereo rectification) is not applied, so results stay
  in the image's own optical frame (header.frame_id). Maps are cached per camera.

The checks of `conversions.check_camera_info` come first (finite D, a known model when D is not
zero); a coefficient count the model cannot use raises `BadIntrinsicsError` naming it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from homae_model.estimation.errors import BadIntrinsicsError, check_intrinsics
from homae_model.geometry.distortion import DISTORTION_MODELS, Undistorter, has_distortion

__all__ = ["ImageRectifier", "new_camera_matrix"]


def _adjust_roi_binning(M: np.ndarray, info: Any) -> np.ndarray:
    """A full-sensor 3x3 camera matrix adjusted to the image's ROI and binning."""
    M = M.copy()
    roi = info.roi
    if int(roi.width) > 0 and int(roi.height) > 0:
        M[0, 2] -= float(roi.x_offset)
        M[1, 2] -= float(roi.y_offset)
    bx, by = max(int(info.binning_x), 1), max(int(info.binning_y), 1)
    if bx > 1 or by > 1:
        M[0, :] /= bx
        M[1, :] /= by
    return M


def new_camera_matrix(info: Any, K: np.ndarray) -> np.ndarray:
    """Intrinsics of the undistorted image: P's left 3x3 (ROI/binning applied), else K.

    Args:
        info: sensor_msgs/CameraInfo.
        K: (3, 3) intrinsics of the image (already adjusted to ROI/binning).

    Returns:
        (3, 3) float64.

    Raises:
        BadIntrinsicsError: P is filled in but not a valid camera matrix.
    """
    p = np.asarray(info.p, dtype=np.float64).ravel()
    if p.size != 12 or not np.any(p):
        return np.asarray(K, dtype=np.float64)
    P3 = _adjust_roi_binning(p.reshape(3, 4)[:, :3], info)
    return check_intrinsics(P3, "CameraInfo P")


class ImageRectifier:
    """Undistorts camera images with their CameraInfo (maps cached per camera)."""

    def __init__(self) -> None:
        self._undistorter = Undistorter()

    @property
    def maps_computed(self) -> int:
        """How many map sets were computed so far (one per camera seen)."""
        return self._undistorter.computed

    def rectify(self, rgb: np.ndarray, info: Any, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The undistorted image and its intrinsics.

        Args:
            rgb: (H, W, 3) uint8 image as received.
            info: its sensor_msgs/CameraInfo (checked by `check_camera_info` before).
            K: (3, 3) intrinsics of `rgb` (from `check_camera_info`).

        Returns:
            (image, K_new): `rgb` and `K` themselves when there is no distortion.

        Raises:
            BadIntrinsicsError: a bad P, or D with a length the model cannot use.
        """
        d = np.asarray(info.d, dtype=np.float64).ravel()
        model = str(info.distortion_model)
        if not has_distortion(d) or model not in DISTORTION_MODELS:
            return rgb, K  # check_camera_info refused unknown models with coefficients
        K_new = new_camera_matrix(info, K)
        try:
            out = self._undistorter.undistort(rgb, K, d, model, K_new)
        except ValueError as err:
            raise BadIntrinsicsError(f"CameraInfo D: {err}") from err
        return out, K_new
