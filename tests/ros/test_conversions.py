"""homae_ros.messages.conversions: every encoding, every failure reason, rotations, poses."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sensor_msgs.msg")

from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from homae_ros.messages import conversions as cv

H, W = 4, 6
RNG = np.random.default_rng(0)
# A known image whose horizontal pixel pairs share a colour (exact under 4:2:2 chroma).
RGB = np.repeat(RNG.integers(40, 216, size=(H, W // 2, 3), dtype=np.uint8), 2, axis=1)


def make_image(payload: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False) -> Image:
    """Image message from (H, row_bytes) uint8 rows, each padded with `pad` junk bytes."""
    rows = payload.reshape(payload.shape[0], -1)
    padded = np.concatenate([rows, np.full((rows.shape[0], pad), 0xAB, np.uint8)], axis=1)
    msg = Image(height=rows.shape[0], width=W, encoding=encoding, step=padded.shape[1])
    msg.is_bigendian = int(bigendian)
    msg.data = padded.tobytes()
    return msg


def to16(a: np.ndarray, big: bool) -> np.ndarray:
    return (a.astype(np.uint16) * 257).astype(">u2" if big else "<u2").view(np.uint8)


def yuv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.601 limited range, as camera drivers and OpenCV use for 4:2:2."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return (np.clip(np.round(c), 0, 255).astype(np.uint8) for c in (y, u, v))


def packed_422(order: str) -> np.ndarray:
    y, u, v = yuv(RGB)
    out = np.empty((H, W // 2, 4), np.uint8)
    y0, y1, u0, v0 = y[:, 0::2], y[:, 1::2], u[:, 0::2], v[:, 0::2]
    parts = {"uyvy": (u0, y0, v0, y1), "yuyv": (y0, u0, y1, v0)}[order]
    for i, p in enumerate(parts):
        out[..., i] = p
    return out


ALPHA = np.full((H, W, 1), 7, np.uint8)
EXACT = {
    "rgb8": lambda big: RGB,
    "bgr8": lambda big: RGB[..., ::-1],
    "8UC3": lambda big: RGB[..., ::-1],
    "rgba8": lambda big: np.concatenate([RGB, ALPHA], 2),
    "bgra8": lambda big: np.concatenate([RGB[..., ::-1], ALPHA], 2),
    "8UC4": lambda big: np.concatenate([RGB[..., ::-1], ALPHA], 2),
    "rgb16": lambda big: to16(RGB, big),
    "bgr16": lambda big: to16(RGB[..., ::-1], big),
    "rgba16": lambda big: to16(np.concatenate([RGB, ALPHA], 2), big),
    "bgra16": lambda big: to16(np.concatenate([RGB[..., ::-1], ALPHA], 2), big),
    "16UC3": lambda big: to16(RGB[..., ::-1], big),
}
GREY = RGB[..., 1]
MONO = {
    "mono8": lambda big: GREY,
    "8UC1": lambda big: GREY,
    "mono16": lambda big: to16(GREY, big),
    "16UC1": lambda big: to16(GREY, big),
}


@pytest.mark.parametrize("pad", [0, 5])
@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("encoding", sorted(EXACT))
def test_colour_encodings_decode_exactly(encoding: str, pad: int, bigendian: bool) -> None:
    msg = make_image(EXACT[encoding](bigendian), encoding, pad, bigendian)
    out = cv.image_to_rgb(msg)
    assert out.dtype == np.uint8 and out.shape == (H, W, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, RGB)


@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("encoding", sorted(MONO))
def test_mono_encodings_replicate_grey(encoding: str, bigendian: bool) -> None:
    out = cv.image_to_rgb(make_image(MONO[encoding](bigendian), encoding, 3, bigendian))
    np.testing.assert_array_equal(out, np.repeat(GREY[..., None], 3, axis=2))


def test_mono16_scales_full_range_to_8_bit() -> None:
    vals = np.array([[0, 257, 32768, 65535, 1000, 65534]], np.uint16)
    msg = make_image(vals.astype("<u2").view(np.uint8), "mono16")
    msg.height = 1
    out = cv.image_to_rgb(msg)[0, :, 0]
    np.testing.assert_array_equal(out, [0, 1, 128, 255, 4, 255])


@pytest.mark.parametrize(
    ("encoding", "order"),
    [("yuv422", "uyvy"), ("uyvy", "uyvy"), ("yuv422_yuy2", "yuyv"), ("yuyv", "yuyv")],
)
@pytest.mark.parametrize("pad", [0, 4])
def test_yuv422_encodings(encoding: str, order: str, pad: int) -> None:
    out = cv.image_to_rgb(make_image(packed_422(order), encoding, pad))
    assert np.abs(out.astype(int) - RGB.astype(int)).max() <= 3


def test_yuv422_byte_order_matters() -> None:
    """Reading UYVY bytes as YUYV must give a different image (strings map to the right order)."""
    data = packed_422("uyvy")
    wrong = cv.image_to_rgb(make_image(data, "yuv422_yuy2"))
    assert np.abs(wrong.astype(int) - RGB.astype(int)).max() > 20


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_uniform_colour(pattern: str) -> None:
    colour = {"r": 200, "g": 120, "b": 30}
    tile = np.array(
        [[colour[pattern[0]], colour[pattern[1]]], [colour[pattern[2]], colour[pattern[3]]]]
    )
    mosaic = np.tile(tile, (4, 4)).astype(np.uint8)
    msg = make_image(mosaic, f"bayer_{pattern}8")
    msg.width = 8
    out = cv.image_to_rgb(msg)
    assert out.shape == (8, 8, 3)
    np.testing.assert_allclose(out[2:-2, 2:-2].reshape(-1, 3), [[200, 120, 30]] * 16, atol=1)


def test_accepts_array_array_bytes_and_lists() -> None:
    msg = make_image(RGB, "rgb8")
    assert msg.data.typecode == "B"  # rclpy stores uint8[] as array.array
    np.testing.assert_array_equal(cv.image_to_rgb(msg), RGB)
    out = cv.image_to_rgb(msg)
    out[:] = 0  # must be a copy, never a view of the message buffer
    np.testing.assert_array_equal(cv.image_to_rgb(msg), RGB)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_rgb_to_image_round_trip(encoding: str) -> None:
    header = Header(stamp=Time(sec=3, nanosec=5), frame_id="cam_optical")
    msg = cv.rgb_to_image(RGB, header, encoding)
    assert (msg.height, msg.width, msg.encoding, msg.header.frame_id) == (
        H,
        W,
        encoding,
        "cam_optical",
    )
    assert msg.step * msg.height == len(msg.data)
    np.testing.assert_array_equal(cv.image_to_rgb(msg), RGB)


def test_rgb_to_image_rejects_bad_input() -> None:
    with pytest.raises(cv.BadInputError):
        cv.rgb_to_image(RGB.astype(np.float32))
    with pytest.raises(cv.UnknownEncodingError):
        cv.rgb_to_image(RGB, encoding="yuv422")


def _reason(exc_info: pytest.ExceptionInfo) -> str:
    assert isinstance(exc_info.value, cv.ConversionError)
    assert isinstance(exc_info.value, ValueError)
    assert exc_info.value.reason in cv.REASONS
    return exc_info.value.reason


def test_failure_reasons_images() -> None:
    good = make_image(RGB, "rgb8", pad=2)
    truncated = make_image(RGB, "rgb8", pad=2)
    truncated.data = bytes(good.data)[: good.step * (H - 1)]
    with pytest.raises(cv.ConversionError) as e:
        cv.image_to_rgb(truncated)
    assert _reason(e) == "truncated_data"
    unknown = make_image(RGB, "rgb8")
    unknown.encoding = "jpeg"
    with pytest.raises(cv.ConversionError) as e:
        cv.image_to_rgb(unknown)
    assert _reason(e) == "unknown_encoding" and "rgb8" in str(e.value)
    empty = Image(height=0, width=0, encoding="rgb8", step=0)
    with pytest.raises(cv.ConversionError) as e:
        cv.image_to_rgb(empty)
    assert _reason(e) == "empty_image"
    short_step = make_image(RGB, "rgb8")
    short_step.step = W * 3 - 1
    with pytest.raises(cv.ConversionError) as e:
        cv.image_to_rgb(short_step)
    assert _reason(e) == "bad_step"


def camera_info(w: int = 640, h: int = 480, k: tuple[float, ...] | None = None) -> CameraInfo:
    info = CameraInfo(width=w, height=h, distortion_model="plumb_bob")
    info.k = k if k is not None else (500.0, 0.0, 320.0, 0.0, 505.0, 240.0, 0.0, 0.0, 1.0)
    info.d = [0.1, -0.05, 0.0, 0.0, 0.0]
    return info


def test_camera_info_ok_and_k() -> None:
    K = cv.check_camera_info(camera_info(), (480, 640, 3))
    np.testing.assert_array_equal(K, [[500, 0, 320], [0, 505, 240], [0, 0, 1]])
    assert K.dtype == np.float64


def test_camera_info_binning_and_roi() -> None:
    info = camera_info()
    info.binning_x = info.binning_y = 2
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 100, 40, 400, 300
    K = cv.check_camera_info(info, (150, 200))
    np.testing.assert_allclose(K, [[250, 0, 110], [0, 252.5, 100], [0, 0, 1]])
    with pytest.raises(cv.SizeMismatchError):
        cv.check_camera_info(info, (480, 640))


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda i: setattr(i, "k", [0.0] * 9), "bad_intrinsics"),
        (lambda i: setattr(i, "k", [-500.0, 0, 320, 0, 505, 240, 0, 0, 1]), "bad_intrinsics"),
        (lambda i: setattr(i, "k", [500.0, 0, 320, 0, 505, 240, 0, 0, 0]), "bad_intrinsics"),
        (lambda i: setattr(i, "k", [float("nan"), 0, 320, 0, 505, 240, 0, 0, 1]), "nan_values"),
        (lambda i: setattr(i, "d", [float("inf")] * 5), "nan_values"),
        (lambda i: setattr(i, "width", 1280), "size_mismatch"),
        (lambda i: setattr(i, "distortion_model", "fisheye_custom"), "unsupported_distortion"),
    ],
)
def test_camera_info_failures(mutate, reason: str) -> None:
    info = camera_info()
    mutate(info)
    with pytest.raises(cv.ConversionError) as e:
        cv.check_camera_info(info, (480, 640, 3))
    assert _reason(e) == reason


def test_camera_info_unknown_model_with_zero_coefficients_is_fine() -> None:
    info = camera_info()
    info.distortion_model = "none"
    info.d = [0.0] * 5
    cv.check_camera_info(info, (480, 640))
    info.distortion_model = ""
    info.d = []
    cv.check_camera_info(info, (480, 640))


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    return q * np.linalg.det(q)


def test_quaternion_round_trip_including_180_degrees() -> None:
    rng = np.random.default_rng(1)
    rotations = [random_rotation(rng) for _ in range(200)]
    rotations += [np.diag([1.0, -1, -1]), np.diag([-1.0, 1, -1]), np.diag([-1.0, -1, 1]), np.eye(3)]
    for R in rotations:
        q = cv.rotation_matrix_to_quaternion(R)
        assert q[3] >= 0 and abs(np.linalg.norm(q) - 1) < 1e-12
        np.testing.assert_allclose(cv.quaternion_to_rotation_matrix(q), R, atol=1e-9)


def test_quaternion_known_value_and_float32_input() -> None:
    c, s = 0.0, 1.0  # 90 degrees about z
    Rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], np.float32)
    np.testing.assert_allclose(
        cv.rotation_matrix_to_quaternion(Rz), [0, 0, np.sqrt(0.5), np.sqrt(0.5)], atol=1e-7
    )
    with pytest.raises(cv.BadInputError):
        cv.rotation_matrix_to_quaternion(np.diag([1.0, 1, -1]))  # reflection
    with pytest.raises(cv.NanValuesError):
        cv.rotation_matrix_to_quaternion(np.full((3, 3), np.nan))


def test_pose_and_transform_messages() -> None:
    R = random_rotation(np.random.default_rng(2))
    t = np.array([0.1, -0.2, 0.7])
    pose = cv.pose_to_msg(R, t)
    q = [pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w]
    np.testing.assert_allclose(cv.quaternion_to_rotation_matrix(q), R, atol=1e-9)
    assert (pose.position.x, pose.position.y, pose.position.z) == (0.1, -0.2, 0.7)
    tf = cv.transform_stamped("cam_optical", "/homae/mug", Time(sec=7, nanosec=9), R, t)
    assert tf.header.frame_id == "cam_optical" and tf.child_frame_id == "homae/mug"
    assert (tf.header.stamp.sec, tf.header.stamp.nanosec) == (7, 9)
    assert tf.transform.translation.z == 0.7
    with pytest.raises(cv.NanValuesError):
        cv.pose_to_msg(R, [0.0, np.nan, 1.0])


# ------------------------------------------------------------------ project messages
def test_project_message_builders_round_trip() -> None:
    from homae_ros.messages import build as messages

    if not messages.messages_available():
        pytest.skip("homae_ros.msg not built (make setup; source install/setup.bash)")
    rng = np.random.default_rng(3)
    joints = rng.normal(size=(21, 3))
    pose, shape = rng.normal(size=48), rng.normal(size=10)
    transl = np.array([0.01, -0.02, 0.4])
    hand = messages.hand_pose_msg(
        "left", 0.9, joints, pose, shape, [1, 2, 30, 40], 2, track_id=5, mano_transl=transl
    )
    back = messages.hand_from_msg(hand)
    np.testing.assert_allclose(back.joints, joints)
    np.testing.assert_allclose(back.mano_pose, pose, rtol=1e-6)
    assert back.side == "left" and back.pair_id == 2 and back.box.tolist() == [1, 2, 30, 40]
    assert back.track_id == 5
    np.testing.assert_allclose(back.mano_transl, transl, rtol=1e-6)
    # The wrist pose: at joint 0, oriented as MANO's global orientation (float32 in the msg).
    from scipy.spatial.transform import Rotation

    np.testing.assert_allclose(back.wrist_t, joints[0])
    expected = Rotation.from_rotvec(pose[:3].astype(np.float32)).as_matrix()
    np.testing.assert_allclose(back.wrist_R, expected, atol=1e-6)
    R = random_rotation(rng)
    obj = messages.object_pose_msg(
        "006_mustard_bottle", 0.7, R, [0.1, 0.2, 0.6], [5, 6, 7, 8], 2, track_id=3
    )
    ob = messages.object_from_msg(obj)
    np.testing.assert_allclose(ob.R, R, atol=1e-9)
    assert ob.track_id == 3
    header = Header(stamp=Time(sec=1, nanosec=2), frame_id="cam")
    res = messages.result_msg(header, [hand], [obj])
    assert res.header.frame_id == "cam" and len(res.hands) == 1 and len(res.objects) == 1
    with pytest.raises(cv.BadInputError):
        messages.hand_pose_msg("both", 0.9, joints, pose, shape, [1, 2, 3, 4], 0)
    with pytest.raises(cv.BadInputError):
        messages.hand_pose_msg("left", 0.9, joints, pose[:45], shape, [1, 2, 3, 4], 0)
