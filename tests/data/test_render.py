"""GL renderer vs the numpy reference rasteriser; K convention; backgrounds; shading helpers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from homae_model.objects import procedural as pm
from homae_model.objects.library import ObjectLibrary
from homae_model.render.gl import GLRenderer, Light, RenderMesh, random_background
from homae_model.render.reference import rasterize

W, H = 96, 80


@pytest.fixture(scope="module")
def renderer() -> GLRenderer:
    try:
        r = GLRenderer(W, H)
    except RuntimeError as err:  # pragma: no cover - machines without EGL
        pytest.skip(f"no EGL context: {err}")
    yield r
    r.release()


def _scene() -> tuple[list[RenderMesh], np.ndarray]:
    lib = ObjectLibrary.procedural(["003_cracker_box", "006_mustard_bottle", "025_mug"])
    K = np.array([[110.0, 0.0, 47.3], [0.0, 104.0, 41.2], [0.0, 0.0, 1.0]])
    placements = (
        ("025_mug", (0.3, 0.6, 0.1), (0.0, 0.0, 0.42)),
        ("003_cracker_box", (0.5, 0.2, 0.9), (0.05, 0.03, 0.55)),
        ("006_mustard_bottle", (0.7, 0.5, 0.2), (-0.06, -0.01, 0.5)),
    )
    meshes = []
    for i, (name, rotvec, t) in enumerate(placements):
        mesh = lib.get(name)
        R = Rotation.from_rotvec(rotvec).as_matrix()
        v, f, n, c = pm.split_creases(mesh.vertices, mesh.faces, 40.0, mesh.vertex_colors)
        meshes.append(
            RenderMesh(v @ R.T + t, f, mesh.color, i + 1, normals=n @ R.T, vertex_colors=c)
        )
    return meshes, K


def test_gl_matches_reference_masks_and_depth(renderer: GLRenderer) -> None:
    meshes, K = _scene()
    out = renderer.render(meshes, K, background=(0.2, 0.3, 0.4))
    depth, ids = rasterize(meshes, K, W, H)
    assert set(np.unique(ids)) == {0, 1, 2, 3}  # every mesh visible and occluding another
    fg = (ids > 0) | (out.ids > 0)
    assert fg.sum() > 500
    assert (ids == out.ids)[fg].mean() >= 0.99
    same = (ids > 0) & (ids == out.ids)
    np.testing.assert_allclose(out.depth[same], depth[same], atol=1e-4)
    assert np.all(out.depth[out.ids == 0] == 0.0)
    # Background colour where nothing was drawn; shading differs from it on the objects.
    np.testing.assert_array_equal(
        out.rgb[out.ids == 0][0], np.round(np.array([0.2, 0.3, 0.4]) * 255)
    )


def test_pinhole_convention_pixel_centres(renderer: GLRenderer) -> None:
    # A small square at depth 1 m centred on the ray of pixel (30, 20): covers exactly the
    # 3x3 pixels around it when its half-width in pixels is 1.5.
    K = np.array([[100.0, 0.0, 40.0], [0.0, 100.0, 35.0], [0.0, 0.0, 1.0]])
    u, v, z, half = 30.0, 20.0, 1.0, 0.015
    x, y = (u - 40.0) / 100.0, (v - 35.0) / 100.0
    verts = np.array(
        [
            [x - half, y - half, z],
            [x + half, y - half, z],
            [x + half, y + half, z],
            [x - half, y + half, z],
        ]
    )
    square = RenderMesh(verts, np.array([[0, 1, 2], [0, 2, 3]]), (1.0, 1.0, 1.0), 7)
    out = renderer.render([square], K, read_color=False)
    assert out.rgb is None
    ys, xs = np.nonzero(out.ids == 7)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (29, 31, 19, 21)
    np.testing.assert_allclose(out.depth[out.ids == 7], 1.0, atol=1e-6)


def test_textured_background_orientation_and_resize(renderer: GLRenderer) -> None:
    bg = np.zeros((H, W, 3), np.uint8)
    bg[: H // 2] = (255, 0, 0)  # top half red
    bg[H // 2 :] = (0, 0, 255)
    out = renderer.render([], np.array([[50.0, 0, W / 2], [0, 50.0, H / 2], [0, 0, 1]]), bg)
    np.testing.assert_array_equal(out.rgb[2, W // 2], (255, 0, 0))
    np.testing.assert_array_equal(out.rgb[H - 3, W // 2], (0, 0, 255))
    renderer.resize(40, 30)
    try:
        assert renderer.render([], np.eye(3), (1.0, 1.0, 1.0)).rgb.shape == (30, 40, 3)
    finally:
        renderer.resize(W, H)
    with pytest.raises(ValueError, match="K must be"):
        renderer.render([], np.zeros((3, 3)))


def test_lighting_lambert() -> None:
    # A plane facing the camera is brighter when lit head-on than when lit at grazing angle.
    r = GLRenderer(16, 16)
    try:
        quad = RenderMesh(
            np.array([[-1.0, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]]),
            np.array([[0, 1, 2], [0, 2, 3]]), (0.8, 0.8, 0.8), 1, specular=0.0,
        )  # fmt: skip
        K = np.array([[8.0, 0, 7.5], [0, 8.0, 7.5], [0, 0, 1]])
        head_on = r.render([quad], K, light=Light(np.array([0.0, 0, -1]), 0.2, 0.8)).rgb
        grazing = r.render([quad], K, light=Light(np.array([1.0, 0, -0.1]), 0.2, 0.8)).rgb
        assert head_on[8, 8, 0] == pytest.approx(255 * 0.8 * 1.0, abs=2)
        assert grazing[8, 8, 0] < head_on[8, 8, 0] - 100
    finally:
        r.release()


def test_split_creases_keeps_box_corners_sharp() -> None:
    v, f = pm.box((1.0, 1.0, 1.0), 2)
    sv, sf, sn, _ = pm.split_creases(v, f, 40.0)
    # Each corner of the cube becomes 3 vertices (one per face), normals axis-aligned.
    assert len(sv) > len(v)
    np.testing.assert_allclose(np.abs(sn).max(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(sv[sf], v[f])  # same triangles, same positions
    smooth = pm.smooth_normals(*pm.icosphere(1.0, 2))
    verts, _ = pm.icosphere(1.0, 2)
    np.testing.assert_allclose(np.einsum("ij,ij->i", smooth, verts), 1.0, atol=0.01)


def test_random_background_deterministic() -> None:
    a = [random_background(np.random.default_rng(s), 48, 64) for s in range(8)]
    b = [random_background(np.random.default_rng(s), 48, 64) for s in range(8)]
    for x, y in zip(a, b, strict=True):
        assert x.shape == (48, 64, 3) and x.dtype == np.uint8
        np.testing.assert_array_equal(x, y)
    assert len({x.tobytes() for x in a}) == 8
