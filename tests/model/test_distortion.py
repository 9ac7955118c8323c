"""homae_model.geometry.distortion and homae_ros.messages.rectify: maps, checks, caching."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from homae_model.geometry.distortion import (
    Undistorter,
    check_coefficients,
    distortion_maps,
    undistortion_maps,
)

K = np.array([[300.0, 0.0, 79.5], [0.0, 300.0, 59.5], [0.0, 0.0, 1.0]])
CASES = {
    "plumb_bob": [-0.2, 0.05, 0.001, -0.002, 0.01],
    "rational_polynomial": [-0.2, 0.05, 0.001, -0.002, 0.01, 0.02, -0.01, 0.005],
    "equidistant": [0.1, -0.05, 0.01, -0.002],
}


@pytest.mark.parametrize("model", sorted(CASES))
def test_distortion_and_undistortion_maps_are_inverse(model) -> None:
    size = (160, 120)
    ux, uy = undistortion_maps(K, CASES[model], model, K, size)  # pinhole px -> distorted px
    dx, dy = distortion_maps(K, CASES[model], model, K, size)  # distorted px -> pinhole px
    v, u = 110, 150  # a pinhole pixel near the corner
    pu, pv = ux[v, u], uy[v, u]
    assert np.hypot(pu - u, pv - v) > 0.5, "the model moves this pixel"
    iu, iv = int(np.floor(pu)), int(np.floor(pv))
    a, b = pu - iu, pv - iv  # bilinear lookup of the inverse map at the distorted location
    back_u = (
        (1 - a) * (1 - b) * dx[iv, iu]
        + a * (1 - b) * dx[iv, iu + 1]
        + (1 - a) * b * dx[iv + 1, iu]
        + a * b * dx[iv + 1, iu + 1]
    )
    back_v = (
        (1 - a) * (1 - b) * dy[iv, iu]
        + a * (1 - b) * dy[iv, iu + 1]
        + (1 - a) * b * dy[iv + 1, iu]
        + a * b * dy[iv + 1, iu + 1]
    )
    assert abs(back_u - u) < 0.05 and abs(back_v - v) < 0.05


def test_coefficient_checks_name_the_model() -> None:
    assert check_coefficients("equidistant", [0.1, 0, 0, 0, 0.0]).shape == (4,)
    assert check_coefficients("plumb_bob", [0.1, 0, 0, 0, 0, 0, 0, 0]).shape == (5,)
    with pytest.raises(ValueError, match="'equidistant' needs 4 coefficients"):
        check_coefficients("equidistant", [0.1, 0.2])
    with pytest.raises(ValueError, match="'kannala' is not corrected"):
        check_coefficients("kannala", [0.1])


def test_undistorter_caches_maps_per_camera() -> None:
    und = Undistorter(max_cameras=2)
    img = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    for _ in range(3):
        out = und.undistort(img, K, CASES["plumb_bob"], "plumb_bob", K)
    assert und.computed == 1 and out.shape == img.shape and out.dtype == np.uint8
    und.undistort(img, K, CASES["equidistant"], "equidistant", K)
    assert und.computed == 2


def _info(model: str, d: list[float], p: list[float] | None = None):
    roi = SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0)
    P = p if p is not None else [0.0] * 12
    return SimpleNamespace(distortion_model=model, d=d, p=P, roi=roi, binning_x=0, binning_y=0)


def test_rectifier_uses_p_and_passes_pinhole_images_through() -> None:
    from homae_ros.messages.rectify import ImageRectifier

    rect = ImageRectifier()
    img = np.zeros((120, 160, 3), np.uint8)
    same, K_same = rect.rectify(img, _info("plumb_bob", [0.0] * 5), K)
    assert same is img and K_same is K and rect.maps_computed == 0
    P = [250.0, 0, 80.0, 0, 0, 250.0, 60.0, 0, 0, 0, 1.0, 0]
    out, K_new = rect.rectify(img, _info("plumb_bob", CASES["plumb_bob"], P), K)
    assert out.shape == img.shape and rect.maps_computed == 1
    np.testing.assert_allclose(K_new, np.array(P).reshape(3, 4)[:, :3])
    _, K_zero_p = rect.rectify(img, _info("equidistant", CASES["equidistant"]), K)
    np.testing.assert_allclose(K_zero_p, K)
