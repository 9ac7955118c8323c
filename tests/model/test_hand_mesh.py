"""Mesh topology of the synthetic hand, wrist capping (watertight, outward), mirrored hands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from homae_model.hand.constants import MANO_FINGER_JOINTS, NUM_FACES, NUM_VERTICES
from homae_model.hand.mano import (
    ManoLayer,
    close_wrist,
    flexion_axes,
    mirror_mano_dict,
    mirror_points,
    mirror_pose,
)
from homae_model.hand.synthetic_hand import save_mano_pickle
from homae_model.hand.wrist import wrist_boundary_loop

F64 = torch.float64


def _edge_stats(faces: np.ndarray) -> tuple[int, np.ndarray, int]:
    """(number of undirected edges, histogram of faces per edge, repeated directed edges)."""
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    _, counts = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
    _, dcounts = np.unique(directed, axis=0, return_counts=True)
    return len(counts), np.bincount(counts), int((dcounts > 1).sum())


def _signed_volume(v: np.ndarray, f: np.ndarray) -> float:
    t = v[f]
    return float(np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6.0)


def test_open_mesh_has_mano_topology(model: dict) -> None:
    v, f = model["v_template"], model["f"]
    assert v.shape == (NUM_VERTICES, 3) and f.shape == (NUM_FACES, 3)
    assert f.min() == 0 and f.max() == NUM_VERTICES - 1
    assert len(np.unique(f)) == NUM_VERTICES  # no unused vertex
    n_edges, hist, repeated = _edge_stats(f)
    assert n_edges == 2315 and NUM_VERTICES - n_edges + NUM_FACES == 1  # a disc
    assert hist.tolist() == [0, 16, 2299]  # 16 boundary edges, every other edge in 2 faces
    assert repeated == 0  # consistent winding
    tri = v[f]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    assert area.min() > 1e-7  # > 0.1 mm^2: no degenerate triangle


def test_single_wrist_loop_at_the_wrist(model: dict) -> None:
    loop = wrist_boundary_loop(model["f"])
    assert len(loop) == 16 and len(set(loop.tolist())) == 16
    centre = model["v_template"][loop].mean(0)
    assert np.linalg.norm(centre - model["J"][0]) < 0.02
    # The loop encircles the forearm axis: consecutive vertices are close, the ring is ~5 cm wide.
    ring = model["v_template"][loop]
    steps = np.linalg.norm(ring - np.roll(ring, -1, axis=0), axis=1)
    assert steps.max() < 0.02 and 0.04 < np.ptp(ring[:, 2]) < 0.07


def test_capped_mesh_is_watertight_and_outward(model: dict) -> None:
    v, f = close_wrist(model["v_template"], model["f"])
    assert v.shape == (NUM_VERTICES + 1, 3) and f.shape == (NUM_FACES + 16, 3)
    n_edges, hist, repeated = _edge_stats(f)
    assert hist.tolist() == [0, 0, n_edges]  # every edge in exactly two faces
    assert repeated == 0
    assert len(v) - n_edges + len(f) == 2  # sphere
    volume = _signed_volume(v, f)
    assert 1.5e-4 < volume < 6e-4  # outward, 150-600 cm^3
    np.testing.assert_allclose(v[-1], model["v_template"][wrist_boundary_loop(model["f"])].mean(0))


def test_posed_and_mirrored_capped_meshes_stay_outward(model: dict, hand_file: Path) -> None:
    right = ManoLayer(hand_file, dtype=F64)
    left = ManoLayer(hand_file, side="left", dtype=F64)
    axes = flexion_axes(model["J"])
    pose = torch.zeros(1, 48, dtype=F64)
    for chain in MANO_FINGER_JOINTS.values():
        for k in chain:
            pose[0, 3 * k : 3 * k + 3] = torch.as_tensor(axes[k - 1] * 0.8)
    rest_volume = _signed_volume(*close_wrist(model["v_template"], model["f"]))
    for layer, p in ((right, pose), (left, mirror_pose(pose))):
        out = layer(p)
        v, f = close_wrist(out.vertices[0].numpy(), layer.faces.numpy())
        assert _edge_stats(f)[1].tolist() == [0, 0, len(f) * 3 // 2]
        assert _signed_volume(v, f) == pytest.approx(rest_volume, rel=0.15)


def test_close_wrist_torch_and_batches(model: dict) -> None:
    verts = torch.as_tensor(np.stack([model["v_template"], model["v_template"] + 1.0]))
    faces = torch.as_tensor(model["f"])
    v, f = close_wrist(verts, faces)
    assert isinstance(v, torch.Tensor) and isinstance(f, torch.Tensor)
    assert v.shape == (2, NUM_VERTICES + 1, 3) and f.shape == (NUM_FACES + 16, 3)
    torch.testing.assert_close(v[1, -1], v[0, -1] + 1.0)
    v_np, f_np = close_wrist(model["v_template"], model["f"])
    np.testing.assert_array_equal(f.numpy(), f_np)
    np.testing.assert_allclose(v[0].numpy(), v_np)


def test_boundary_loop_errors() -> None:
    tetra = np.array([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]])
    with pytest.raises(ValueError, match="closed"):
        wrist_boundary_loop(tetra)
    two_triangles = np.array([[0, 1, 2], [3, 4, 5]])
    with pytest.raises(ValueError, match="more than one loop"):
        wrist_boundary_loop(two_triangles)
    with pytest.raises(ValueError, match=r"\(F, 3\)"):
        wrist_boundary_loop(np.zeros((4, 4), dtype=int))


def test_left_hand_is_the_mirrored_right(model: dict, hand_file: Path) -> None:
    right = ManoLayer(hand_file, dtype=F64)
    left = ManoLayer(hand_file, side="left", dtype=F64)
    assert left.origin == "mirrored"
    gen = torch.Generator().manual_seed(0)
    pose = torch.randn(3, 48, generator=gen, dtype=F64) * 0.4
    betas = torch.randn(3, 10, generator=gen, dtype=F64)
    transl = torch.randn(3, 3, generator=gen, dtype=F64)
    a = right(pose, betas, transl)
    b = left(mirror_pose(pose), betas, mirror_points(transl))
    torch.testing.assert_close(b.vertices, mirror_points(a.vertices), atol=1e-9, rtol=0)
    torch.testing.assert_close(b.joints, mirror_points(a.joints), atol=1e-9, rtol=0)
    torch.testing.assert_close(left.faces, right.faces.flip(-1))
    # x -> -x: the left hand's fingers point along +x; the thumb stays on +z.
    rest = left(torch.zeros(1, 48, dtype=F64)).joints[0]
    assert (rest[[8, 12, 16, 20], 0] > rest[0, 0] + 0.12).all()
    assert rest[4, 2] > rest[8, 2] > rest[20, 2]


def test_left_file_beside_the_right_is_preferred(model: dict, tmp_path: Path) -> None:
    right_file = save_mano_pickle(model, tmp_path / "MANO_RIGHT.pkl")
    left_model = mirror_mano_dict(model)
    left_model["v_template"] = left_model["v_template"] + np.array([0.0, 0.0, 0.01])
    save_mano_pickle(left_model, tmp_path / "MANO_LEFT.pkl")
    for path in (right_file, tmp_path):
        layer = ManoLayer(path, side="left", dtype=F64)
        assert layer.origin == "file" and layer.model_file.name == "MANO_LEFT.pkl"
        rest = layer(torch.zeros(1, 48, dtype=F64)).vertices[0].numpy()
        np.testing.assert_allclose(rest, left_model["v_template"], atol=1e-12)
    with pytest.raises(ValueError, match="left hand"):
        ManoLayer(tmp_path / "MANO_LEFT.pkl", side="right")


def test_official_left_shape_sign_is_fixed(model: dict, tmp_path: Path) -> None:
    save_mano_pickle(model, tmp_path / "MANO_RIGHT.pkl")
    buggy = mirror_mano_dict(model)
    buggy["shapedirs"] = buggy["shapedirs"].copy()
    buggy["shapedirs"][:, 0, :] = model["shapedirs"][:, 0, :]  # the official file's x sign bug
    save_mano_pickle(buggy, tmp_path / "MANO_LEFT.pkl")
    layer = ManoLayer(tmp_path, side="left", dtype=F64)
    expected = -model["shapedirs"][:, 0, :]
    np.testing.assert_allclose(layer.mano.shapedirs[:, 0, :].numpy(), expected, atol=1e-12)
