"""Object library: procedural meshes, OBJ reader/writer, YCB folder loading, errors."""

from __future__ import annotations

import numpy as np
import pytest

from homae_model.objects import procedural as pm
from homae_model.objects.library import (
    PROCEDURAL_NAMES,
    ObjectLibrary,
    UnknownObjectError,
    build_procedural,
)
from homae_model.objects.obj_io import read_obj, write_obj

REQUIRED = (
    "002_master_chef_can", "003_cracker_box", "004_sugar_box", "005_tomato_soup_can",
    "006_mustard_bottle", "010_potted_meat_can", "021_bleach_cleanser", "024_bowl", "025_mug",
)  # fmt: skip

# YCB sizes (m): bounding-box extents sorted descending.
SIZES = {
    "002_master_chef_can": (0.139, 0.102, 0.102),
    "003_cracker_box": (0.210, 0.158, 0.060),
    "004_sugar_box": (0.175, 0.089, 0.038),
    "005_tomato_soup_can": (0.101, 0.066, 0.066),
    "006_mustard_bottle": (0.190, 0.095, 0.058),
    "010_potted_meat_can": (0.097, 0.082, 0.050),
    "021_bleach_cleanser": (0.250, 0.098, 0.065),
    "024_bowl": (0.159, 0.159, 0.053),
}


@pytest.fixture(scope="module")
def library() -> ObjectLibrary:
    return ObjectLibrary.procedural()


def test_required_objects_present_and_sorted(library: ObjectLibrary) -> None:
    assert set(REQUIRED) <= set(library.names)
    assert library.names == sorted(library.names)
    assert library.index(library.names[3]) == 3


@pytest.mark.parametrize("name", PROCEDURAL_NAMES)
def test_procedural_mesh_is_watertight_outward_and_sized(name: str) -> None:
    mesh = build_procedural(name)
    assert 500 <= len(mesh.faces) <= 3000
    assert pm.edge_manifold_errors(mesh.faces) == 0
    assert pm.signed_volume(mesh.vertices, mesh.faces) > 0
    # Frame at the bounding-box centre, corners consistent with the vertices.
    np.testing.assert_allclose(mesh.vertices.min(0) + mesh.vertices.max(0), 0.0, atol=1e-9)
    np.testing.assert_allclose(mesh.corners[0], mesh.vertices.min(0))
    np.testing.assert_allclose(mesh.corners[7], mesh.vertices.max(0))
    extent = np.ptp(mesh.vertices, 0)
    assert extent.max() - 1e-9 <= mesh.diameter <= np.linalg.norm(extent) + 1e-9
    assert mesh.color.shape == (3,) and np.all((mesh.color >= 0) & (mesh.color <= 1))
    if name in SIZES:
        extent = np.sort(np.ptp(mesh.vertices, axis=0))[::-1]
        np.testing.assert_allclose(extent, SIZES[name], rtol=0.02)


def test_volumes_match_solids() -> None:
    can = build_procedural("005_tomato_soup_can")
    cylinder = np.pi * 0.033**2 * 0.101
    assert pm.signed_volume(can.vertices, can.faces) == pytest.approx(cylinder, rel=0.03)
    box = build_procedural("003_cracker_box")
    assert pm.signed_volume(box.vertices, box.faces) == pytest.approx(0.06 * 0.158 * 0.21, 1e-9)
    # The mug and the bowl are hollow: far less than their bounding cylinder.
    for name, r, h in (("025_mug", 0.04, 0.082), ("024_bowl", 0.0795, 0.053)):
        mesh = build_procedural(name)
        assert 0.0 < pm.signed_volume(mesh.vertices, mesh.faces) < 0.5 * np.pi * r * r * h


def test_primitives_watertight() -> None:
    for v, f in (pm.box((0.1, 0.2, 0.3), 4), pm.icosphere(0.05, 2)):
        assert pm.edge_manifold_errors(f) == 0
        assert pm.signed_volume(v, f) > 0
    v, f = pm.icosphere(0.05, 3)
    assert pm.signed_volume(v, f) == pytest.approx(4 / 3 * np.pi * 0.05**3, rel=0.02)
    flipped = f[:, ::-1]
    assert pm.signed_volume(v, flipped) < 0
    np.testing.assert_array_equal(pm.orient_outward(v, flipped), f)


def test_sample_surface_points_lie_on_surface() -> None:
    mesh = build_procedural("036_wood_block")  # 0.085 x 0.085 x 0.2 box
    pts = mesh.sample_surface(500, np.random.default_rng(0))
    half = np.array([0.0425, 0.0425, 0.1])
    dist_to_face = np.min(half - np.abs(pts), axis=1)
    np.testing.assert_allclose(dist_to_face, 0.0, atol=1e-9)
    assert np.all(np.abs(pts) <= half + 1e-9)
    again = mesh.sample_surface(500, np.random.default_rng(0))
    np.testing.assert_array_equal(pts, again)


def test_obj_round_trip(tmp_path) -> None:
    mesh = build_procedural("025_mug")
    path = tmp_path / "mug.obj"
    write_obj(path, mesh.vertices, mesh.faces)
    v, f = read_obj(path)
    np.testing.assert_allclose(v, mesh.vertices, atol=1e-9)
    np.testing.assert_array_equal(f, mesh.faces)


def test_obj_reader_polygons_negative_indices_and_ignored_lines(tmp_path) -> None:
    path = tmp_path / "quad.obj"
    path.write_text(
        "# comment\nmtllib x.mtl\no quad\n"
        "v 0 0 0\nv 1 0 0\nv 1 1 0 0.5 0.5 0.5\nv 0 1 0\n"
        "vt 0 0\nvn 0 0 1\ns off\nusemtl m\n"
        "f 1/1/1 2/1/1 3/1/1 4/1/1\n"
        "v 0 0 1\nf -1 -5//1 -4\n"
    )
    v, f = read_obj(path)
    assert v.shape == (5, 3)
    np.testing.assert_array_equal(f, [[0, 1, 2], [0, 2, 3], [4, 0, 1]])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n", r"bad\.obj:4: face index 9 is out of range"),
        ("v 0 0 0\nv 1 0 x\n", r"bad\.obj:2: bad vertex"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n", r"bad\.obj:4: face index 0"),
        ("v 0 0 0\n", r"bad\.obj has no faces"),
    ],
)
def test_obj_reader_errors_name_the_file(tmp_path, text: str, match: str) -> None:
    path = tmp_path / "bad.obj"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_obj(path)


def test_from_ycb_reads_models_and_names_missing_files(tmp_path) -> None:
    can = build_procedural("005_tomato_soup_can")
    write_obj(tmp_path / "005_tomato_soup_can" / "textured_simple.obj", can.vertices, can.faces)
    box = build_procedural("003_cracker_box")
    write_obj(tmp_path / "003_cracker_box" / "textured_simple.obj", box.vertices + 0.01, box.faces)
    lib = ObjectLibrary.from_ycb(tmp_path)
    assert lib.names == ["003_cracker_box", "005_tomato_soup_can"]
    # The file's frame is kept (no recentring) and the known colour is used.
    np.testing.assert_allclose(lib.get("003_cracker_box").vertices, box.vertices + 0.01, atol=1e-9)
    np.testing.assert_allclose(lib.get("003_cracker_box").color, box.color)
    with pytest.raises(FileNotFoundError, match=r"025_mug[/\\]textured_simple\.obj"):
        ObjectLibrary.from_ycb(tmp_path, names=["025_mug"])
    with pytest.raises(FileNotFoundError, match="no YCB models"):
        ObjectLibrary.from_ycb(tmp_path / "005_tomato_soup_can")
    with pytest.raises(FileNotFoundError, match="not found"):
        ObjectLibrary.from_ycb(tmp_path / "nope")


def test_unknown_name_lists_valid_names(library: ObjectLibrary) -> None:
    with pytest.raises(KeyError) as info:
        library.get("999_unicorn")
    assert isinstance(info.value, UnknownObjectError)
    message = str(info.value)
    assert "999_unicorn" in message and "006_mustard_bottle" in message
    with pytest.raises(UnknownObjectError, match="valid names"):
        library.index("999_unicorn")
    with pytest.raises(UnknownObjectError):
        ObjectLibrary.procedural(["999_unicorn"])
