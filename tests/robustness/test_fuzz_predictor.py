"""Fuzzing the model's input checks: the Predictor (and the node's FrameEstimator around it).

Random images (dtype, shape, size), intrinsics (NaN, inf, zero, negative, huge), boxes
(NaN, inverted, empty, far outside the image) and anchors go in. Each call must either raise
a `ValueError` that names the bad input, or return poses that are all finite. No other
exception type may escape (no IndexError, ZeroDivisionError, RuntimeError from deep inside).
Runs the real tiny-config network from a seeded random checkpoint.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homae_ros.messages.conversions import MAX_INTRINSIC_PX, MIN_FOCAL_PX

FUZZ = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FIELDS = ("joints", "vertices", "mano_pose", "mano_shape", "obj_rot", "obj_trans", "anchor")
GOOD_K = np.array([[60.0, 0.0, 31.5], [0.0, 60.0, 23.5], [0.0, 0.0, 1.0]])
IMG = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    from homae_model.inference import Predictor
    from tests.ros.nodeutil import tiny_checkpoint

    return Predictor.from_checkpoint(tiny_checkpoint(tmp_path_factory.mktemp("ckpt")), "cpu")


def _assert_finite(predictions, n: int) -> None:
    assert len(predictions) == n
    for p in predictions:
        for name in FIELDS:
            value = np.asarray(getattr(p, name))
            assert np.all(np.isfinite(value)), f"{name} is not finite"
        assert p.joints.shape == (21, 3) and p.vertices.shape == (778, 3)


def _outcome(call, n: int, needle: str) -> str:
    """'ok' (finite poses) or 'rejected' (a ValueError mentioning `needle`)."""
    try:
        out = call()
    except ValueError as err:
        assert needle in str(err), str(err)
        return "rejected"
    _assert_finite(out, n)
    return "ok"


coord = st.one_of(
    st.floats(-200.0, 300.0),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e12, -1e12, 0.0, 63.0, 47.0]),
)
box = st.tuples(coord, coord, coord, coord)


@FUZZ
@given(st.lists(st.tuples(box, box), min_size=0, max_size=4))
def test_random_boxes_are_rejected_by_name_or_give_finite_poses(predictor, pairs) -> None:
    def valid(b) -> bool:
        return all(math.isfinite(v) for v in b) and b[2] >= b[0] and b[3] >= b[1]

    outcome = _outcome(lambda: predictor.predict(IMG, GOOD_K, pairs), len(pairs), "pairs[")
    all_valid = all(valid(h) and valid(o) for h, o in pairs)
    # Finite, ordered boxes are accepted wherever they are (the crop pads with black) ...
    if all_valid and all(max(map(abs, h + o)) < 1e6 for h, o in pairs):
        assert outcome == "ok"
    # ... NaN, inf or inverted ones are refused, naming the pair.
    if not all_valid:
        assert outcome == "rejected"


@FUZZ
@given(
    dtype=st.sampled_from([np.uint8, np.float32, np.int16, np.bool_, np.uint16]),
    shape=st.one_of(
        st.tuples(st.integers(0, 40), st.integers(0, 40), st.sampled_from([1, 3, 4])),
        st.tuples(st.integers(0, 40), st.integers(0, 40)),
        st.tuples(st.integers(0, 5)),
    ),
)
def test_random_images_are_rejected_by_name_or_give_finite_poses(predictor, dtype, shape) -> None:
    image = np.zeros(shape, dtype=dtype)
    box_ = (0.0, 0.0, 9.0, 9.0)
    outcome = _outcome(lambda: predictor.predict(image, GOOD_K, [(box_, box_)]), 1, "image")
    ok = dtype is np.uint8 and len(shape) == 3 and shape[2] == 3 and min(shape[:2]) > 0
    assert outcome == ("ok" if ok else "rejected"), (dtype, shape)


entry = st.one_of(
    st.floats(-1e3, 1e3), st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1e-300, 1e300])
)


@FUZZ
@given(
    fx=entry, fy=entry, cx=entry, cy=entry, skew=entry,
    last=st.sampled_from([(0.0, 0.0, 1.0), (0.0, 0.0, 1.0), (0.0, 0.0, 0.0), (1.0, 0.0, 1.0)]),
)  # fmt: skip
def test_random_intrinsics_checked_like_the_node_give_finite_poses(
    predictor, fx, fy, cx, cy, skew, last
) -> None:
    """K that passes the node's CameraInfo checks must give finite poses; others are refused."""
    from types import SimpleNamespace

    from homae_ros.messages.conversions import ConversionError, check_camera_info

    K = np.array([[fx, skew, cx], [0.0, fy, cy], list(last)])
    info = SimpleNamespace(
        k=K.ravel().tolist(), d=[0.0] * 5, distortion_model="plumb_bob", width=64, height=48,
        binning_x=0, binning_y=0, roi=SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0),
    )  # fmt: skip
    try:
        K_checked = check_camera_info(info, IMG.shape)
    except ConversionError:
        plausible = (
            np.all(np.isfinite(K))
            and min(fx, fy) >= MIN_FOCAL_PX
            and np.abs(K[:2]).max() <= MAX_INTRINSIC_PX
            and last == (0.0, 0.0, 1.0)
        )
        assert not plausible, K
        return
    box_ = (5.0, 5.0, 40.0, 30.0)
    out = predictor.predict(IMG, K_checked, [(box_, box_)])
    _assert_finite(out, 1)


@FUZZ
@given(
    anchors=st.one_of(
        st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=7),
        st.lists(st.lists(st.floats(-2.0, 2.0), min_size=3, max_size=3), min_size=0, max_size=3),
    )
)
def test_random_anchors_are_rejected_by_name_or_used(predictor, anchors) -> None:
    box_ = (5.0, 5.0, 40.0, 30.0)
    arr = np.asarray(anchors, dtype=np.float64)
    ok = arr.shape == (2, 3) and np.all(np.isfinite(arr))
    outcome = _outcome(
        lambda: predictor.predict(IMG, GOOD_K, [(box_, box_)] * 2, anchors=anchors), 2, "anchors"
    )
    if ok:
        assert outcome == "ok"
    else:
        assert outcome == "rejected", arr.shape


@FUZZ
@given(
    f=st.sampled_from([1e-300, 1e-9, 1e-3, 1.0, 60.0, 1e6, 1e12, 1e300]),
    c=st.sampled_from([-1e300, -1e9, 0.0, 31.5, 1e9, 1e300]),
)
def test_frame_estimator_refuses_implausible_k_and_never_returns_non_finite(
    predictor, f, c
) -> None:
    """The node's per-frame path (also used by the bag tool) checks K before the model."""
    from homae_model.estimation.detection import RoiBackend
    from homae_model.estimation.estimator import FrameEstimator
    from homae_model.objects.library import ObjectLibrary
    from homae_ros.messages.conversions import BadIntrinsicsError

    if not _LIB:
        _LIB.append(ObjectLibrary.procedural())
    est = FrameEstimator(predictor, RoiBackend((0, 0, 0, 0), "006_mustard_bottle"), _LIB[0])
    K = np.array([[f, 0.0, c], [0.0, f, 23.5], [0.0, 0.0, 1.0]])
    plausible = MIN_FOCAL_PX <= f <= MAX_INTRINSIC_PX and abs(c) <= MAX_INTRINSIC_PX
    if not plausible:
        with pytest.raises(BadIntrinsicsError, match="implausible"):
            est.process(IMG, K, 1.0)
        return
    out = est.process(IMG, K, 1.0)  # NonFiniteOutputError would fail the test
    _assert_finite([e.prediction for e in out], 1)


_LIB: list = []
