import numpy as np
import pytest

from homae_model.geometry.crop import (
    crop_box,
    crop_image,
    invert_affine,
    transform_box,
    transform_points_2d,
    union_crop_box,
)


def project(K: np.ndarray, X: np.ndarray) -> np.ndarray:
    uv = X @ K.T
    return uv[:, :2] / uv[:, 2:]


K_FULL = np.array([[600.0, 0.0, 322.0], [0.0, 590.0, 236.0], [0.0, 0.0, 1.0]])


def test_union_crop_box_is_square_about_union_centre():
    box = union_crop_box(np.array([100, 100, 150, 140.0]), np.array([140, 120, 220, 160.0]), 1.5)
    np.testing.assert_allclose(box, [160 - 90, 130 - 90, 160 + 90, 130 + 90])
    np.testing.assert_allclose(crop_box(np.array([0, 0, 10, 4.0]), 2.0), [-5, -8, 15, 12])
    with pytest.raises(ValueError, match="hand_box"):
        union_crop_box(np.array([1, 1, 0, 0.0]), np.array([0, 0, 1, 1.0]), 1.5)


@pytest.mark.parametrize("rotation", [0.0, 25.0, -60.0])
def test_crop_k_and_affine_are_consistent_with_3d_rotation(rotation):
    rng = np.random.default_rng(0)
    X = rng.uniform([-0.1, -0.1, 0.4], [0.1, 0.1, 0.6], size=(50, 3))
    uv = project(K_FULL, X)
    box = crop_box(np.concatenate([uv.min(0), uv.max(0)]), 1.3)
    res = crop_image(np.zeros((480, 640, 3), np.uint8), K_FULL, box, 128, rotation_deg=rotation)
    # 2D through the affine == 3D rotated by rot then projected with the crop K
    np.testing.assert_allclose(
        transform_points_2d(res.affine, uv), project(res.K, X @ res.rot.T), atol=1e-9
    )
    # crop intrinsics have square pixels and the box centre maps to the crop centre
    assert res.K[0, 0] == pytest.approx(res.K[1, 1]) and res.K[0, 1] == 0.0
    centre = 0.5 * (box[:2] + box[2:])
    np.testing.assert_allclose(transform_points_2d(res.affine, centre), [63.5, 63.5], atol=1e-9)
    np.testing.assert_allclose(res.rot @ res.rot.T, np.eye(3), atol=1e-12)
    assert res.rot[2, 2] == 1.0
    # round trip
    back = transform_points_2d(invert_affine(res.affine), transform_points_2d(res.affine, uv))
    np.testing.assert_allclose(back, uv, atol=1e-9)


def test_crop_pixels_sample_the_right_place_and_fill_outside_with_zeros():
    image = np.zeros((480, 640, 3), np.uint8)
    image[200:210, 300:310] = (255, 128, 7)  # a 10 px square, pixels 300..309
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    box = np.array([280.0, 180, 330, 230])  # 50 px -> 100 px: scale 2
    res = crop_image(image, K, box, 100)
    assert res.K[0, 0] == pytest.approx(1000.0)
    # centre of the square (304.5, 204.5) -> crop ((304.5-305)*2 + 49.5, (204.5-205)*2 + 49.5)
    c = transform_points_2d(res.affine, np.array([304.5, 204.5]))
    np.testing.assert_allclose(c, [48.5, 48.5])
    assert tuple(res.image[48, 48]) == (255, 128, 7)
    assert tuple(res.image[0, 0]) == (0, 0, 0)
    # a box hanging outside the image: the outside is black
    out = crop_image(
        np.full((480, 640, 3), 200, np.uint8), K, np.array([-100.0, -100, 100, 100]), 64
    )
    assert out.image[:10, :10].max() == 0 and out.image[-5:, -5:].min() == 200


def test_rotated_crop_moves_content_and_transform_box_encloses():
    image = np.zeros((240, 320, 3), np.uint8)
    image[100:104, 200:204] = 255
    K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
    box = np.array([140.0, 60, 240, 160])
    res = crop_image(image, K, box, 100, rotation_deg=90.0)
    spot = transform_points_2d(res.affine, np.array([201.5, 101.5]))
    r, c = round(spot[1]), round(spot[0])
    assert res.image[r, c].min() > 200
    tb = transform_box(res.affine, np.array([200.0, 100, 203, 103]))
    assert tb[0] <= spot[0] <= tb[2] and tb[1] <= spot[1] <= tb[3]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="uint8"):
        crop_image(np.zeros((10, 10, 3), np.float32), K_FULL, np.array([0, 0, 5, 5.0]), 8)
    with pytest.raises(ValueError, match="fx, fy"):
        crop_image(np.zeros((10, 10, 3), np.uint8), np.eye(3) * 0, np.array([0, 0, 5, 5.0]), 8)


def test_strong_downscaling_is_area_filtered_without_moving_content():
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    stripes = np.zeros((480, 640, 3), np.uint8)
    stripes[:, ::2] = 255  # 1-pixel stripes alias badly under plain bilinear sampling
    res = crop_image(stripes, K, np.array([120.0, 40, 520, 440]), 50)  # 8x reduction
    inner = res.image[5:-5, 5:-5].astype(float)
    assert abs(inner.mean() - 127.5) < 3 and inner.std() < 3
    # a bright square keeps its place: its centre maps through the affine
    image = np.zeros((480, 640, 3), np.uint8)
    image[296:312, 396:412] = 255  # centre (403.5, 303.5)
    res = crop_image(image, K, np.array([120.0, 40, 520, 440]), 50)
    c = transform_points_2d(res.affine, np.array([403.5, 303.5]))
    w = res.image[..., 0].astype(float)
    ys, xs = np.mgrid[0:50, 0:50]
    centroid = np.array([(w * xs).sum(), (w * ys).sum()]) / w.sum()
    np.testing.assert_allclose(centroid, c, atol=0.15)
