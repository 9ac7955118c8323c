"""Voxel grids, box filtering, dense vs coarse-to-fine top-k selection on an analytic SDF."""

from __future__ import annotations

import pytest
import torch

from homae_model.geometry.voxels import (
    coarse_to_fine_select,
    dense_select,
    grid_points,
    grid_to_camera,
    points_in_box,
)

K = torch.tensor([[[500.0, 0.0, 111.5], [0.0, 500.0, 111.5], [0.0, 0.0, 1.0]]])
ANCHOR = torch.tensor([[0.01, -0.02, 0.5]])


def sphere(centre: torch.Tensor, radius: float):
    return lambda p: (p - centre[:, None]).norm(dim=-1) - radius


def keys(points: torch.Tensor) -> set:
    return {tuple(x) for x in (points * 1e4).round().long().tolist()}


def test_grid_points_are_cell_centres():
    g = grid_points(4)
    assert g.shape == (64, 3)
    torch.testing.assert_close(g[0], torch.tensor([-0.75, -0.75, -0.75]))
    torch.testing.assert_close(g[1], torch.tensor([-0.75, -0.75, -0.25]))
    assert float(g.abs().max()) == 0.75


def test_grid_to_camera_scale_and_anchor():
    p = grid_to_camera(torch.tensor([[1.0, 0.0, -1.0]]), ANCHOR, 2.0)
    torch.testing.assert_close(p, ANCHOR[:, None] + torch.tensor([[[0.5, 0.0, -0.5]]]))


def test_points_in_box():
    pts = torch.tensor([[[0.0, 0.0, 0.5], [0.2, 0.0, 0.5], [0.0, 0.0, -0.5]]])
    inside = points_in_box(pts, K, torch.tensor([[100.0, 100.0, 130.0, 130.0]]))
    assert inside.tolist() == [[True, False, False]]


@pytest.mark.parametrize("box", [[0.0, 0.0, 224.0, 224.0], [90.0, 80.0, 170.0, 150.0]])
@pytest.mark.parametrize("k", [600, 200])
def test_coarse_to_fine_matches_dense_on_a_sphere(box, k):
    centre = ANCHOR + torch.tensor([0.013, 0.007, -0.011])
    fn = sphere(centre, 0.08)
    box_t = torch.tensor([box])
    dense = dense_select(fn, ANCHOR, K, box_t, k, res=64, sdf_scale=3.1)
    c2f = coarse_to_fine_select(fn, ANCHOR, K, box_t, k, res=64, coarse_res=16, sdf_scale=3.1)
    assert dense.points.shape == c2f.points.shape == (1, k, 3)
    overlap = len(keys(dense.points[0]) & keys(c2f.points[0])) / k
    assert overlap >= 0.95
    assert c2f.num_evals < dense.num_evals / 2
    # the selection hugs the surface: within about one voxel (1 cm) when the box holds it all
    assert float(dense.sdf.abs().max()) < (0.01 if box[2] == 224.0 else 0.03)
    torch.testing.assert_close(dense.sdf, fn(dense.points))


def test_batched_selection_and_eval_count():
    anchors = torch.cat([ANCHOR, ANCHOR + torch.tensor([[0.02, 0.0, 0.1]])])
    ks = K.expand(2, 3, 3)
    centres = anchors + 0.01
    fn = sphere(centres, 0.06)
    box = torch.tensor([[0.0, 0.0, 224.0, 224.0]]).expand(2, 4)
    dense = dense_select(fn, anchors, ks, box, 300, res=32, sdf_scale=3.1)
    calls = []

    def counting(p):
        calls.append(p.shape[0] * p.shape[1])
        return fn(p)

    c2f = coarse_to_fine_select(counting, anchors, ks, box, 300, res=32, coarse_res=8)
    assert c2f.num_evals == sum(calls)
    for b in range(2):
        assert len(keys(dense.points[b]) & keys(c2f.points[b])) / 300 >= 0.95


def test_tiny_box_falls_back_to_all_voxels():
    fn = sphere(ANCHOR, 0.05)
    sel = dense_select(fn, ANCHOR, K, torch.tensor([[0.0, 0.0, 1.0, 1.0]]), 50, res=16)
    assert sel.points.shape == (1, 50, 3)
    assert sel.num_evals == 16**3


def test_coarse_res_must_divide():
    with pytest.raises(ValueError, match="coarse_res"):
        coarse_to_fine_select(sphere(ANCHOR, 0.05), ANCHOR, K, torch.zeros(1, 4), 10, coarse_res=5)
