"""Lens distortion: undistortion maps of the ROS distortion models, cached per camera.

The models are those of sensor_msgs/CameraInfo (`distortion_model`):

- ``plumb_bob``: Brown-Conrady, D = (k1, k2, p1, p2, k3) (OpenCV's default model);
- ``rational_polynomial``: D = (k1, k2, p1, p2, k3, k4, k5, k6) (OpenCV's rational model);
- ``equidistant``: the fisheye model, D = (k1, k2, k3, k4) (OpenCV's `cv2.fisheye`).

`Undistorter` resamples a distorted image into a pinhole image with the new camera matrix
`K_new` (CameraInfo P's left 3x3, or K when P is not filled in), as image_proc's rectify does,
without the stereo rectification rotation R: the result stays in the camera's optical frame.
Maps are computed once per (model, D, K, K_new, size) and reused. `distortion_maps` is the
inverse (pinhole -> distorted), used to make distorted test images.

Pixels follow OpenCV (pixel centres at integer coordinates); K, K_new are (3, 3) float64.
"""

from __future__ import annotations

from collections import OrderedDict

import cv2
import numpy as np

__all__ = [
    "DISTORTION_MODELS",
    "INTERPOLATION",
    "Undistorter",
    "check_coefficients",
    "distortion_maps",
    "has_distortion",
    "undistortion_maps",
]

DISTORTION_MODELS: tuple[str, ...] = ("plumb_bob", "rational_polynomial", "equidistant")
"""Models whose coefficients are corrected."""

_PINHOLE_LENGTHS = (4, 5, 8, 12, 14)  # coefficient counts cv2's pinhole model accepts

INTERPOLATION = cv2.INTER_LANCZOS4
"""Resampling of `Undistorter`: Lanczos (8x8) keeps edges sharp. The hand model reacts to blur:
on a synthetic 1280x960 frame, distorting and undistorting it bilinearly moved the joints by up
to 3.5 mm, with Lanczos by under 1 mm (tests/ros/test_camera_input.py)."""


def has_distortion(D: np.ndarray) -> bool:
    """True when any coefficient is non-zero (all zero = a pinhole image already)."""
    return bool(np.any(np.asarray(D, dtype=np.float64) != 0.0))


def check_coefficients(model: str, D: np.ndarray) -> np.ndarray:
    """The coefficients as OpenCV takes them for `model`.

    Args:
        model: one of `DISTORTION_MODELS`.
        D: the CameraInfo's coefficients (any length the model allows; trailing zeros beyond
            the model's own count are accepted and dropped).

    Returns:
        (N,) float64: 4 values for equidistant; 5 for plumb_bob; 8 for rational_polynomial
        (other lengths OpenCV's pinhole model accepts are passed on).

    Raises:
        ValueError: unknown model, or a length the model cannot use (names both).
    """
    d = np.asarray(D, dtype=np.float64).reshape(-1)
    wanted = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}.get(model)
    if wanted is None:
        raise ValueError(
            f"distortion model '{model}' is not corrected; known: {', '.join(DISTORTION_MODELS)}"
        )
    if d.size > wanted and not np.any(d[wanted:]):
        d = d[:wanted]
    if model == "equidistant":
        ok = d.size == 4
    else:
        ok = d.size in _PINHOLE_LENGTHS
    if not ok:
        raise ValueError(
            f"distortion model '{model}' needs {wanted} coefficients in D, got {d.size}: "
            f"{d.tolist()}"
        )
    return d


def undistortion_maps(
    K: np.ndarray, D: np.ndarray, model: str, K_new: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps from the distorted image to the pinhole image of `K_new`.

    Args:
        K: (3, 3) intrinsics of the distorted image (pixels).
        D: coefficients of `model` (see `check_coefficients`).
        model: one of `DISTORTION_MODELS`.
        K_new: (3, 3) intrinsics of the undistorted image (pixels).
        size: (width, height) of the undistorted image in pixels.

    Returns:
        (map_x, map_y), each (height, width) float32: for every undistorted pixel, where to
        sample the distorted image.
    """
    d = check_coefficients(model, D)
    eye = np.eye(3)
    K = np.asarray(K, dtype=np.float64)
    K_new = np.asarray(K_new, dtype=np.float64)
    if model == "equidistant":
        return cv2.fisheye.initUndistortRectifyMap(K, d, eye, K_new, size, cv2.CV_32FC1)
    return cv2.initUndistortRectifyMap(K, d, eye, K_new, size, cv2.CV_32FC1)


def distortion_maps(
    K: np.ndarray, D: np.ndarray, model: str, K_new: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of `undistortion_maps`: cv2.remap maps from a pinhole image to a distorted one.

    Args:
        K: (3, 3) intrinsics of the distorted image to make (pixels).
        D: coefficients of `model`.
        model: one of `DISTORTION_MODELS`.
        K_new: (3, 3) intrinsics of the pinhole image that is sampled (pixels).
        size: (width, height) of the distorted image in pixels.

    Returns:
        (map_x, map_y), each (height, width) float32: for every distorted pixel, where to
        sample the pinhole image (iteratively undistorted, to 1e-9 in normalised coordinates).
    """
    d = check_coefficients(model, D)
    w, h = size
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    points = np.stack([u, v], axis=-1).reshape(-1, 1, 2)
    K = np.asarray(K, dtype=np.float64)
    K_new = np.asarray(K_new, dtype=np.float64)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-9)
    if model == "equidistant":
        out = cv2.fisheye.undistortPoints(points, K, d, R=np.eye(3), P=K_new, criteria=criteria)
    elif hasattr(cv2, "undistortPointsIter"):  # OpenCV 4
        out = cv2.undistortPointsIter(points, K, d, np.eye(3), K_new, criteria)
    else:  # OpenCV 5: the iterative variant is undistortPoints with criteria
        out = cv2.undistortPoints(points, K, d, R=np.eye(3), P=K_new, criteria=criteria)
    out = out.reshape(h, w, 2).astype(np.float32)
    return out[..., 0], out[..., 1]


class Undistorter:
    """Undistorts images, with the maps of the last few cameras cached.

    Args:
        max_cameras: how many (model, D, K, K_new, size) map sets are kept (least recently
            used ones are dropped first).
    """

    def __init__(self, max_cameras: int = 4) -> None:
        self._maps: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._max = max(1, int(max_cameras))
        self.computed = 0
        """How many map sets were computed (a cache miss each)."""

    def maps(
        self, K: np.ndarray, D: np.ndarray, model: str, K_new: np.ndarray, size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """`undistortion_maps`, from the cache when this camera was seen before."""
        key = (
            model,
            tuple(np.asarray(D, dtype=np.float64).ravel()),
            tuple(np.asarray(K, dtype=np.float64).ravel()),
            tuple(np.asarray(K_new, dtype=np.float64).ravel()),
            (int(size[0]), int(size[1])),
        )
        found = self._maps.get(key)
        if found is not None:
            self._maps.move_to_end(key)
            return found
        found = undistortion_maps(K, D, model, K_new, size)
        self.computed += 1
        self._maps[key] = found
        while len(self._maps) > self._max:
            self._maps.popitem(last=False)
        return found

    def undistort(
        self, image: np.ndarray, K: np.ndarray, D: np.ndarray, model: str, K_new: np.ndarray
    ) -> np.ndarray:
        """The pinhole image (same size) of K_new seen through the distorted `image`.

        Args:
            image: (H, W) or (H, W, C) distorted image.
            K: (3, 3) intrinsics of `image`.
            D: coefficients of `model`.
            model: one of `DISTORTION_MODELS`.
            K_new: (3, 3) intrinsics of the result.

        Returns:
            The undistorted image, same shape and dtype (Lanczos; outside the view: black).
        """
        h, w = image.shape[:2]
        map_x, map_y = self.maps(K, D, model, K_new, (w, h))
        return cv2.remap(
            image, map_x, map_y, INTERPOLATION, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
