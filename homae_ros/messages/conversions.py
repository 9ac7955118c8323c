"""ROS message <-> numpy conversions: images, camera intrinsics, poses and transforms.

numpy, OpenCV and SciPy's `Rotation` (no cv_bridge); the intrinsics checks are
`homae_model.geometry.camera`'s. Every failure raises a `ConversionError` subclass whose
`reason` is a short, stable code (see `REASONS`) the node uses for throttled logs and
diagnostics counters.

Frames follow REP-103: the camera optical frame (x right, y down, z forward), metres.
"""

from __future__ import annotations

import array
from typing import Any

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from homae_model.estimation.errors import (
    REASONS,
    BadInputError,
    BadIntrinsicsError,
    BadStepError,
    ConversionError,
    EmptyImageError,
    NanValuesError,
    SizeMismatchError,
    TruncatedDataError,
    UnknownEncodingError,
    UnsupportedDistortionError,
    check_intrinsics,
)
from homae_model.geometry.camera import MAX_INTRINSIC_PX, MIN_FOCAL_PX

__all__ = [
    "ENCODINGS",
    "KNOWN_DISTORTION_MODELS",
    "MAX_INTRINSIC_PX",
    "MIN_FOCAL_PX",
    "REASONS",
    "BadInputError",
    "BadIntrinsicsError",
    "BadStepError",
    "ConversionError",
    "EmptyImageError",
    "NanValuesError",
    "SizeMismatchError",
    "TruncatedDataError",
    "UnknownEncodingError",
    "UnsupportedDistortionError",
    "camera_info_to_K",
    "check_camera_info",
    "check_intrinsics",
    "compressed_to_rgb",
    "image_to_rgb",
    "pose_to_msg",
    "quaternion_to_rotation_matrix",
    "rgb_to_image",
    "rotation_matrix_to_quaternion",
    "transform_stamped",
]


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------
# encoding -> (channels, bytes per channel, layout) where layout names how to reach RGB.
_PIXEL: dict[str, tuple[int, int, str]] = {
    "rgb8": (3, 1, "rgb"),
    "bgr8": (3, 1, "bgr"),
    "rgba8": (4, 1, "rgba"),
    "bgra8": (4, 1, "bgra"),
    "mono8": (1, 1, "mono"),
    "8UC1": (1, 1, "mono"),
    "8UC3": (3, 1, "bgr"),  # OpenCV's default channel order
    "8UC4": (4, 1, "bgra"),
    "rgb16": (3, 2, "rgb"),
    "bgr16": (3, 2, "bgr"),
    "rgba16": (4, 2, "rgba"),
    "bgra16": (4, 2, "bgra"),
    "mono16": (1, 2, "mono"),
    "16UC1": (1, 2, "mono"),
    "16UC3": (3, 2, "bgr"),
    # 4:2:2 packed, 2 bytes per pixel. ROS "yuv422" is UYVY, "yuv422_yuy2" is YUYV.
    "yuv422": (2, 1, "uyvy"),
    "uyvy": (2, 1, "uyvy"),
    "yuv422_yuy2": (2, 1, "yuyv"),
    "yuyv": (2, 1, "yuyv"),
    # Raw Bayer mosaics, demosaiced by OpenCV (bilinear).
    "bayer_rggb8": (1, 1, "bayer_rggb"),
    "bayer_bggr8": (1, 1, "bayer_bggr"),
    "bayer_gbrg8": (1, 1, "bayer_gbrg"),
    "bayer_grbg8": (1, 1, "bayer_grbg"),
}
ENCODINGS: tuple[str, ...] = tuple(_PIXEL)
"""Encodings `image_to_rgb` accepts (sensor_msgs/image_encodings spellings)."""

# OpenCV names Bayer patterns after the 2x2 block starting at pixel (1, 1), hence the shift.
_CV_CODE: dict[str, int] = {
    "uyvy": cv2.COLOR_YUV2RGB_UYVY,
    "yuyv": cv2.COLOR_YUV2RGB_YUY2,
    "bayer_rggb": cv2.COLOR_BayerBG2RGB,
    "bayer_bggr": cv2.COLOR_BayerRG2RGB,
    "bayer_gbrg": cv2.COLOR_BayerGR2RGB,
    "bayer_grbg": cv2.COLOR_BayerGB2RGB,
}

_OUT_ENCODINGS: dict[str, int] = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}


def _as_bytes_view(data: Any) -> memoryview:
    """Return a byte view of a message `data` field (array.array, bytes, list of ints)."""
    if isinstance(data, (bytes, bytearray, memoryview, array.array, np.ndarray)):
        return memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)
    return memoryview(bytes(data))


def _to_8bit(values: np.ndarray) -> np.ndarray:
    """Scale 16-bit values to 8 bit: the full range 0..65535 maps linearly to 0..255."""
    return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def image_to_rgb(msg: Any) -> np.ndarray:
    """Convert a sensor_msgs/Image to an RGB uint8 array.

    Row padding (`step` larger than one row) and `is_bigendian` (16-bit encodings) are
    honoured. 16-bit encodings (mono16, 16UC1, rgb16, ...) are scaled linearly from the full
    16-bit range to 8 bit (value * 255 / 65535, rounded): a fixed mapping, so brightness does
    not flicker from frame to frame; 12-bit cameras packed in 16 bits therefore look dark.
    8UC3 / 8UC4 / 16UC3 are read in OpenCV's BGR(A) order. Mono images are replicated to 3
    channels, alpha is dropped, YUV 4:2:2 and Bayer are converted with OpenCV.

    Args:
        msg: sensor_msgs/Image (or anything with its fields: height, width, encoding,
            is_bigendian, step, data).

    Returns:
        (H, W, 3) uint8 RGB, C-contiguous, a new array (never a view of `msg.data`).

    Raises:
        UnknownEncodingError, EmptyImageError, BadStepError, TruncatedDataError.
    """
    encoding = str(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if encoding not in _PIXEL:
        raise UnknownEncodingError(
            f"image encoding '{encoding}' is not supported; supported: {', '.join(ENCODINGS)}"
        )
    channels, depth, layout = _PIXEL[encoding]
    if height <= 0 or width <= 0:
        raise EmptyImageError(f"image is {width}x{height} pixels ({encoding})")
    row_bytes = width * channels * depth
    if layout in ("uyvy", "yuyv") and width % 2:
        raise BadStepError(f"{encoding} needs an even width, got {width}")
    if step < row_bytes:
        raise BadStepError(
            f"step {step} B is smaller than one row of {width} px {encoding} ({row_bytes} B)"
        )
    buf = _as_bytes_view(msg.data)
    needed = step * (height - 1) + row_bytes  # the last row may come without padding
    if buf.nbytes < needed:
        raise TruncatedDataError(
            f"{width}x{height} {encoding} with step {step} needs {step * height} B, "
            f"got {buf.nbytes} B"
        )
    raw = np.frombuffer(buf, dtype=np.uint8, count=needed)
    # (H, step) rows via strides, then keep the pixel bytes of each row.
    rows = np.lib.stride_tricks.as_strided(raw, shape=(height, row_bytes), strides=(step, 1))
    if depth == 2:
        dtype = np.dtype(">u2" if msg.is_bigendian else "<u2")
        pix = _to_8bit(np.ascontiguousarray(rows).view(dtype).reshape(height, width, channels))
    else:
        pix = rows.reshape(height, width, channels)
    if layout == "rgb":
        return pix.copy()  # never a view of the message buffer
    if layout == "bgr":
        return np.ascontiguousarray(pix[:, :, ::-1])
    if layout == "rgba":
        return np.ascontiguousarray(pix[:, :, :3])
    if layout == "bgra":
        return np.ascontiguousarray(pix[:, :, 2::-1])
    if layout == "mono":
        return np.repeat(pix, 3, axis=2)
    return cv2.cvtColor(np.ascontiguousarray(pix), _CV_CODE[layout])


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (JPEG, PNG, ... as OpenCV reads them) to RGB.

    Args:
        msg: sensor_msgs/CompressedImage (rclpy or rosbags message); `format` is informative
            only (e.g. "rgb8; jpeg compressed bgr8"), the bytes say what they are.

    Returns:
        (H, W, 3) uint8 RGB.

    Raises:
        EmptyImageError: no data.
        BadInputError: OpenCV cannot decode the data (names the message's format).
    """
    data = np.frombuffer(bytes(_as_bytes_view(msg.data)), dtype=np.uint8)
    if data.size == 0:
        raise EmptyImageError(f"compressed image ({msg.format!r}) has no data")
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise BadInputError(f"cannot decode compressed image ({msg.format!r})")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def rgb_to_image(rgb: np.ndarray, header: Any = None, encoding: str = "rgb8") -> Any:
    """Build a sensor_msgs/Image from an RGB uint8 array.

    Args:
        rgb: (H, W, 3) uint8 RGB (or (H, W) uint8 grey for "mono8").
        header: std_msgs/Header to copy (stamp + frame_id); None leaves it empty.
        encoding: one of rgb8, bgr8, rgba8, bgra8 (alpha 255), mono8 (luma, BT.601).

    Returns:
        sensor_msgs/Image with step = width * channels, no padding, little-endian.

    Raises:
        UnknownEncodingError: encoding not in the list above.
        BadInputError: `rgb` is not (H, W, 3) uint8.
    """
    from sensor_msgs.msg import Image

    if encoding not in _OUT_ENCODINGS:
        raise UnknownEncodingError(
            f"cannot write encoding '{encoding}'; supported: {', '.join(_OUT_ENCODINGS)}"
        )
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or not (
        (rgb.ndim == 3 and rgb.shape[2] == 3) or (rgb.ndim == 2 and encoding == "mono8")
    ):
        raise BadInputError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise EmptyImageError(f"image is {rgb.shape[1]}x{rgb.shape[0]} pixels")
    if encoding == "rgb8":
        out = rgb
    elif encoding == "bgr8":
        out = rgb[:, :, ::-1]
    elif encoding == "rgba8":
        out = np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 255, np.uint8)], axis=2)
    elif encoding == "bgra8":
        out = np.concatenate([rgb[:, :, ::-1], np.full((*rgb.shape[:2], 1), 255, np.uint8)], 2)
    else:
        out = rgb if rgb.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    out = np.ascontiguousarray(out)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(out.shape[0]), int(out.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(out.shape[1] * _OUT_ENCODINGS[encoding])
    msg.data = array.array("B", out.tobytes())
    return msg


# --------------------------------------------------------------------------------------------
# Camera intrinsics
# --------------------------------------------------------------------------------------------
KNOWN_DISTORTION_MODELS: tuple[str, ...] = ("plumb_bob", "rational_polynomial", "equidistant")
"""Distortion models whose coefficients the pipeline understands (it assumes rectified or
near-pinhole input; coefficients of these models are tolerated, not corrected)."""


def camera_info_to_K(msg: Any) -> np.ndarray:
    """Return the intrinsic matrix of a sensor_msgs/CameraInfo as used by the image.

    Binning and ROI (CameraInfo conventions: K is for the full-resolution sensor; the image is
    the ROI, then binned) are applied, so the result maps camera-frame points to pixels of the
    image that arrives with this CameraInfo.

    Args:
        msg: sensor_msgs/CameraInfo.

    Returns:
        (3, 3) float64 K; not validated (see `check_camera_info`).

    Raises:
        BadIntrinsicsError: `k` does not have 9 values.
    """
    k = np.asarray(msg.k, dtype=np.float64)
    if k.size != 9:
        raise BadIntrinsicsError(f"CameraInfo.k has {k.size} values, expected 9")
    K = k.reshape(3, 3).copy()
    bx = max(int(msg.binning_x), 1)
    by = max(int(msg.binning_y), 1)
    roi = msg.roi
    if int(roi.width) > 0 and int(roi.height) > 0:
        K[0, 2] -= float(roi.x_offset)
        K[1, 2] -= float(roi.y_offset)
    if bx > 1 or by > 1:
        K[0, :] /= bx
        K[1, :] /= by
    return K


def _expected_image_size(info: Any) -> tuple[int, int] | None:
    """(height, width) the image should have per CameraInfo, or None when not filled in."""
    bx = max(int(info.binning_x), 1)
    by = max(int(info.binning_y), 1)
    roi = info.roi
    if int(roi.width) > 0 and int(roi.height) > 0:
        w, h = int(roi.width), int(roi.height)
    else:
        w, h = int(info.width), int(info.height)
    if w <= 0 or h <= 0:
        return None
    return h // by, w // bx


def check_camera_info(info: Any, image_shape: tuple[int, ...]) -> np.ndarray:
    """Validate a CameraInfo against the image it came with and return its K.

    Checks, in order: finite D, K as `check_intrinsics` (finite, not all zero, fx, fy > 0,
    last row (0, 0, 1), plausible magnitudes), the size (after ROI and binning) equals the image
    size (skipped when the driver left width/height at 0), and the distortion model is
    plumb_bob / rational_polynomial / equidistant or all its coefficients are zero (an empty
    model with no coefficients is fine).

    Args:
        info: sensor_msgs/CameraInfo.
        image_shape: (H, W) or (H, W, C) of the image in pixels.

    Returns:
        (3, 3) float64 K for the image (see `camera_info_to_K`).

    Raises:
        NanValuesError, BadIntrinsicsError, SizeMismatchError, UnsupportedDistortionError.
    """
    K = camera_info_to_K(info)
    d = np.asarray(info.d, dtype=np.float64).ravel()
    if not np.all(np.isfinite(d)):
        raise NanValuesError("CameraInfo D contains NaN or infinite values")
    K = check_intrinsics(K, "CameraInfo K")
    expected = _expected_image_size(info)
    h, w = int(image_shape[0]), int(image_shape[1])
    if expected is not None and expected != (h, w):
        raise SizeMismatchError(
            f"CameraInfo is for {expected[1]}x{expected[0]} px but the image is {w}x{h} px "
            "(image resized or cropped without updating CameraInfo?)"
        )
    model = str(info.distortion_model)
    if model not in KNOWN_DISTORTION_MODELS and np.any(d != 0.0):
        raise UnsupportedDistortionError(
            f"distortion model '{model}' with non-zero coefficients is not supported; "
            f"known: {', '.join(KNOWN_DISTORTION_MODELS)} (or rectify the image first)"
        )
    return K


# --------------------------------------------------------------------------------------------
# Rotations, poses, transforms
# --------------------------------------------------------------------------------------------
def _checked_rotation(R: np.ndarray) -> np.ndarray:
    """Return the nearest rotation matrix to `R`; reject non-finite or reflected input."""
    R = np.asarray(R, dtype=np.float64)
    if R.shape != (3, 3):
        raise BadInputError(f"rotation must be (3, 3), got {R.shape}")
    if not np.all(np.isfinite(R)):
        raise NanValuesError("rotation matrix contains NaN or infinite values")
    u, s, vt = np.linalg.svd(R)
    if np.linalg.det(u @ vt) < 0 or s.min() < 1e-6:
        raise BadInputError("matrix is not a rotation (reflection or singular)")
    return u @ vt


def rotation_matrix_to_quaternion(R: np.ndarray) -> np.ndarray:
    """Convert a rotation matrix to a unit quaternion (x, y, z, w), w >= 0.

    The input is first projected onto SO(3) (SVD), so slightly non-orthogonal float32
    matrices are fine; SciPy's `Rotation` does the conversion (accurate near 180 degrees).

    Args:
        R: (3, 3) rotation matrix.

    Returns:
        (4,) float64 quaternion x, y, z, w.

    Raises:
        BadInputError: wrong shape or not a rotation; NanValuesError: non-finite values.
    """
    q = Rotation.from_matrix(_checked_rotation(R)).as_quat()
    return -q if q[3] < 0 else q


def quaternion_to_rotation_matrix(q: np.ndarray) -> np.ndarray:
    """Convert a quaternion (x, y, z, w) (any non-zero norm) to a (3, 3) rotation matrix."""
    q = np.asarray(q, dtype=np.float64).ravel()
    if q.shape != (4,) or not np.all(np.isfinite(q)) or np.linalg.norm(q) < 1e-12:
        raise BadInputError(f"quaternion must be 4 finite values, not all zero; got {q}")
    return Rotation.from_quat(q).as_matrix()


def _checked_translation(t: np.ndarray) -> tuple[float, float, float]:
    t = np.asarray(t, dtype=np.float64).ravel()
    if t.shape != (3,):
        raise BadInputError(f"translation must have 3 values, got {t.shape}")
    if not np.all(np.isfinite(t)):
        raise NanValuesError(f"translation contains NaN or infinite values: {t}")
    return float(t[0]), float(t[1]), float(t[2])


def pose_to_msg(R: np.ndarray, t: np.ndarray) -> Any:
    """Build a geometry_msgs/Pose from a rotation and translation.

    Args:
        R: (3, 3) rotation, model frame -> parent (camera) frame.
        t: (3,) translation in metres, parent frame.

    Returns:
        geometry_msgs/Pose (position = t, orientation = quaternion of R).
    """
    from geometry_msgs.msg import Point, Pose, Quaternion

    x, y, z = _checked_translation(t)
    qx, qy, qz, qw = (float(v) for v in rotation_matrix_to_quaternion(R))
    return Pose(position=Point(x=x, y=y, z=z), orientation=Quaternion(x=qx, y=qy, z=qz, w=qw))


def transform_stamped(parent: str, child: str, stamp: Any, R: np.ndarray, t: np.ndarray) -> Any:
    """Build a geometry_msgs/TransformStamped: the pose of `child` in `parent`.

    Args:
        parent: header.frame_id (e.g. the image's optical frame).
        child: child_frame_id (e.g. "homae/006_mustard_bottle"; no leading slash).
        stamp: builtin_interfaces/Time (the image stamp).
        R: (3, 3) rotation child -> parent.
        t: (3,) translation, metres, parent frame.

    Returns:
        geometry_msgs/TransformStamped.
    """
    from geometry_msgs.msg import Quaternion, TransformStamped, Vector3

    x, y, z = _checked_translation(t)
    qx, qy, qz, qw = (float(v) for v in rotation_matrix_to_quaternion(R))
    msg = TransformStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = parent
    msg.child_frame_id = child.lstrip("/")
    msg.transform.translation = Vector3(x=x, y=y, z=z)
    msg.transform.rotation = Quaternion(x=qx, y=qy, z=qz, w=qw)
    return msg
