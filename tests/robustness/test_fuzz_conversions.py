"""Fuzzing the camera input boundary: every malformed Image / CameraInfo is rejected by name.

`homae_ros.messages.conversions.image_to_rgb` and `check_camera_info` must either return a valid
array or raise a `ConversionError` whose `reason` is the specific, stable code the node counts
in diagnostics (never another exception type, never a crash). An independent oracle here says
which reason each generated message deserves. Plain attribute holders stand in for the ROS
messages so sizes the real message types would refuse (negative, huge) are fuzzed too; one test
repeats the image property with real sensor_msgs messages.
"""

from __future__ import annotations

import array
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homae_ros.messages import conversions as cv

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Independent oracle: bytes per pixel of each sensor_msgs/image_encodings name we accept.
BYTES_PER_PIXEL = {
    "rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8UC1": 1, "8UC3": 3, "8UC4": 4,
    "rgb16": 6, "bgr16": 6, "rgba16": 8, "bgra16": 8, "mono16": 2, "16UC1": 2, "16UC3": 6,
    "yuv422": 2, "uyvy": 2, "yuv422_yuy2": 2, "yuyv": 2,
    "bayer_rggb8": 1, "bayer_bggr8": 1, "bayer_gbrg8": 1, "bayer_grbg8": 1,
}  # fmt: skip
PACKED_422 = {"yuv422", "uyvy", "yuv422_yuy2", "yuyv"}
UNSUPPORTED = ["jpeg", "", "RGB8", "rgb8 ", "32FC1", "16SC1", "bayer_rggb16", "64FC3", "nv21"]


@dataclass
class FakeImage:
    """The fields of sensor_msgs/Image that `image_to_rgb` reads."""

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: Any


@dataclass
class FakeRoi:
    x_offset: int = 0
    y_offset: int = 0
    height: int = 0
    width: int = 0


@dataclass
class FakeInfo:
    """The fields of sensor_msgs/CameraInfo that `check_camera_info` reads."""

    width: int = 64
    height: int = 48
    distortion_model: str = "plumb_bob"
    k: list[float] = field(default_factory=lambda: [60.0, 0, 31.5, 0, 60.0, 23.5, 0, 0, 1])
    d: list[float] = field(default_factory=lambda: [0.0] * 5)
    binning_x: int = 0
    binning_y: int = 0
    roi: FakeRoi = field(default_factory=FakeRoi)


def expected_image_reason(enc: str, h: int, w: int, step: int, nbytes: int) -> str | None:
    """What `image_to_rgb` must say about such a message (None = it converts)."""
    if enc not in BYTES_PER_PIXEL:
        return "unknown_encoding"
    if h <= 0 or w <= 0:
        return "empty_image"
    row = w * BYTES_PER_PIXEL[enc]
    if (enc in PACKED_422 and w % 2) or step < row:
        return "bad_step"
    if nbytes < step * (h - 1) + row:
        return "truncated_data"
    return None


def _wrap(raw: bytes, kind: str) -> Any:
    return {
        "bytes": lambda: raw,
        "bytearray": lambda: bytearray(raw),
        "array": lambda: array.array("B", raw),
        "list": lambda: list(raw),
        "numpy": lambda: np.frombuffer(raw, np.uint8).copy(),
    }[kind]()


@st.composite
def image_messages(draw, max_side: int = 9) -> tuple[FakeImage, str | None]:
    enc = draw(st.sampled_from(sorted(BYTES_PER_PIXEL) + UNSUPPORTED))
    h = draw(st.integers(-2, max_side))
    w = draw(st.integers(-2, max_side))
    row = max(w, 0) * BYTES_PER_PIXEL.get(enc, 3)
    step = max(0, row + draw(st.integers(-4, 6)))
    full = max(h, 0) * step
    nbytes = max(0, full + draw(st.sampled_from([0, 0, -1, -step, -full, 3, -3])))
    raw = draw(st.binary(min_size=nbytes, max_size=nbytes)) if nbytes < 4096 else bytes(nbytes)
    kind = draw(st.sampled_from(["bytes", "bytearray", "array", "list", "numpy"]))
    msg = FakeImage(h, w, enc, draw(st.integers(0, 1)), step, _wrap(raw, kind))
    return msg, expected_image_reason(enc, h, w, step, nbytes)


def _check_image_result(msg: Any, expected: str | None) -> None:
    if expected is None:
        rgb = cv.image_to_rgb(msg)
        assert rgb.shape == (int(msg.height), int(msg.width), 3) and rgb.dtype == np.uint8
        assert rgb.flags.c_contiguous
        if isinstance(msg.data, (np.ndarray, bytearray, array.array)):
            assert not np.shares_memory(rgb, np.asarray(memoryview(msg.data)))  # a copy
        return
    with pytest.raises(cv.ConversionError) as info:
        cv.image_to_rgb(msg)
    err = info.value
    assert err.reason == expected, (err.reason, expected, msg.encoding, msg.width, msg.height)
    assert err.reason in cv.REASONS and isinstance(err, ValueError)
    assert str(err).startswith(f"[{expected}] ") and len(err.detail) > 10


@FUZZ
@given(image_messages())
def test_random_images_convert_or_name_the_exact_reason(case) -> None:
    msg, expected = case
    _check_image_result(msg, expected)


@FUZZ
@given(
    enc=st.sampled_from(sorted(BYTES_PER_PIXEL)),
    h=st.integers(1, 10**6),
    w=st.integers(1, 10**6),
    nbytes=st.integers(0, 256),
)
def test_huge_claimed_sizes_with_little_data_are_truncated_not_allocated(enc, h, w, nbytes) -> None:
    if enc in PACKED_422:
        w += w % 2
    row = w * BYTES_PER_PIXEL[enc]
    msg = FakeImage(h, w, enc, 0, row, bytes(nbytes))
    expected = expected_image_reason(enc, h, w, row, nbytes)
    _check_image_result(msg, expected)


def test_real_messages_follow_the_same_oracle() -> None:
    pytest.importorskip("sensor_msgs.msg")
    from sensor_msgs.msg import Image

    rng = np.random.default_rng(0)
    for i in range(200):
        enc = (sorted(BYTES_PER_PIXEL) + UNSUPPORTED)[i % (len(BYTES_PER_PIXEL) + len(UNSUPPORTED))]
        h, w = int(rng.integers(0, 7)), int(rng.integers(0, 7))
        step = max(0, w * BYTES_PER_PIXEL.get(enc, 3) + int(rng.integers(-2, 4)))
        nbytes = max(0, h * step - int(rng.integers(0, 3)) * int(rng.integers(0, 4)))
        msg = Image(height=h, width=w, encoding=enc, step=step, is_bigendian=int(rng.integers(2)))
        msg.data = rng.integers(0, 256, nbytes, dtype=np.uint8).tobytes()
        _check_image_result(msg, expected_image_reason(enc, h, w, step, nbytes))


# ------------------------------------------------------------------------------ CameraInfo
FAULTS = (
    "none", "nan_k", "inf_k", "nan_d", "inf_d", "zero_fx", "neg_fy", "all_zero_k", "last_row",
    "k_length", "size", "unknown_model", "absurd_focal", "absurd_centre",
)  # fmt: skip
FAULT_REASON = {
    "none": None,
    "nan_k": "nan_values",
    "inf_k": "nan_values",
    "nan_d": "nan_values",
    "inf_d": "nan_values",
    "zero_fx": "bad_intrinsics",
    "neg_fy": "bad_intrinsics",
    "all_zero_k": "bad_intrinsics",
    "last_row": "bad_intrinsics",
    "k_length": "bad_intrinsics",
    "size": "size_mismatch",
    "unknown_model": "unsupported_distortion",
    "absurd_focal": "bad_intrinsics",
    "absurd_centre": "bad_intrinsics",
}


@st.composite
def camera_infos(draw) -> tuple[FakeInfo, tuple[int, int], str, str | None]:
    """A consistent CameraInfo for an image (random size, binning, ROI), then one fault."""
    w, h = draw(st.integers(2, 400)), draw(st.integers(2, 300))
    fx, fy = draw(st.floats(1.0, 5000.0)), draw(st.floats(1.0, 5000.0))
    cx, cy = draw(st.floats(-50.0, w + 50.0)), draw(st.floats(-50.0, h + 50.0))
    bx, by = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    model = draw(st.sampled_from([*cv.KNOWN_DISTORTION_MODELS, "none", "", "custom"]))
    n_d = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}.get(model, 5)
    known = model in cv.KNOWN_DISTORTION_MODELS
    d = draw(st.lists(st.floats(-1, 1), min_size=n_d, max_size=n_d)) if known else [0.0] * n_d
    info = FakeInfo(
        width=w * max(bx, 1), height=h * max(by, 1), distortion_model=model,
        k=[fx * max(bx, 1), 0.0, cx * max(bx, 1), 0.0, fy * max(by, 1), cy * max(by, 1), 0, 0, 1],
        d=d, binning_x=bx, binning_y=by,
    )  # fmt: skip
    if draw(st.booleans()):  # the image is a region of interest of a larger sensor
        ox, oy = draw(st.integers(0, 100)), draw(st.integers(0, 100))
        info.roi = FakeRoi(ox, oy, info.height, info.width)
        info.width, info.height = info.width + ox + 7, info.height + oy + 5
        info.k[2] += ox
        info.k[5] += oy
    fault = draw(st.sampled_from(FAULTS))
    bad = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    if fault in ("nan_k", "inf_k"):
        info.k[draw(st.integers(0, 8))] = math.nan if fault == "nan_k" else bad
    elif fault in ("nan_d", "inf_d"):
        info.d[draw(st.integers(0, len(info.d) - 1))] = math.nan if fault == "nan_d" else bad
    elif fault == "zero_fx":
        info.k[0] = 0.0
    elif fault == "neg_fy":
        info.k[4] = -draw(st.floats(1e-9, 1e4))
    elif fault == "all_zero_k":
        info.k = [0.0] * 9
    elif fault == "last_row":
        info.k[draw(st.sampled_from([6, 7, 8]))] += draw(st.sampled_from([-2.0, 0.5, 3.0]))
    elif fault == "k_length":
        extra = [1.0] * 3 if draw(st.booleans()) else []
        info.k = info.k[: draw(st.sampled_from([0, 4, 8]))] + extra
    elif fault == "size":
        if info.roi.width:  # a whole binned pixel more or less
            info.roi.width += max(bx, 1) * draw(st.sampled_from([-1, 1, 10]))
        else:
            info.width += max(bx, 1) * draw(st.sampled_from([-1, 1, 13]))
    elif fault == "unknown_model":
        info.distortion_model = draw(st.sampled_from(["fisheye", "kannala_brandt", "PLUMB_BOB"]))
        info.d = [0.0] * 4 + [draw(st.floats(1e-6, 1.0))]
    elif fault == "absurd_focal":
        info.k[draw(st.sampled_from([0, 4]))] = draw(st.sampled_from([1e300, 1e12, 1e-300, 1e-9]))
    elif fault == "absurd_centre":
        info.k[draw(st.sampled_from([2, 5]))] = draw(st.sampled_from([1e300, -1e12]))
    return info, (h, w), fault, FAULT_REASON[fault]


@FUZZ
@given(camera_infos())
def test_random_camera_infos_give_k_or_name_the_exact_reason(case) -> None:
    info, shape, fault, expected = case
    if expected is None:
        K = cv.check_camera_info(info, (*shape, 3))
        assert K.shape == (3, 3) and K.dtype == np.float64 and np.all(np.isfinite(K))
        assert K[0, 0] > 0 and K[1, 1] > 0
        np.testing.assert_allclose(K[2], [0, 0, 1])
        np.testing.assert_allclose(np.linalg.inv(K) @ K, np.eye(3), atol=1e-9)
        return
    with pytest.raises(cv.ConversionError) as err:
        cv.check_camera_info(info, (*shape, 3))
    assert err.value.reason == expected, (fault, str(err.value))


def test_distortion_models_other_than_the_known_ones_are_rejected_by_name() -> None:
    info = FakeInfo(distortion_model="fisheye", d=[0.1, 0.0, 0.0, 0.0])
    with pytest.raises(cv.UnsupportedDistortionError, match=r"'fisheye'.*plumb_bob"):
        cv.check_camera_info(info, (48, 64))
    for model in cv.KNOWN_DISTORTION_MODELS:  # tolerated (the pipeline assumes near-pinhole)
        cv.check_camera_info(FakeInfo(distortion_model=model, d=[0.1] * 5), (48, 64))
