"""Machine-independent counts behind `make bench`: SDF evaluations of dense vs coarse-to-fine.

Times are never asserted; only how many SDF evaluations each search spends on a fixed analytic
SDF (a sphere, exactly 1-Lipschitz) and that both searches select the same voxels.
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.run import _ratio_entry, point_keys
from homae_model.geometry.voxels import _levels, coarse_to_fine_select, dense_select

K = torch.tensor([[[500.0, 0.0, 111.5], [0.0, 500.0, 111.5], [0.0, 0.0, 1.0]]])
ANCHOR = torch.tensor([[0.01, -0.02, 0.5]])
CENTRE = ANCHOR + torch.tensor([0.013, 0.007, -0.011])


def counting_sphere(radius: float, calls: list[int]):
    def fn(points: torch.Tensor) -> torch.Tensor:
        calls.append(points.shape[0] * points.shape[1])
        return (points - CENTRE[:, None]).norm(dim=-1) - radius

    return fn


def test_levels_double_up_to_the_fine_grid():
    assert _levels(64, 16) == [16, 32, 64]
    assert _levels(32, 8) == [8, 16, 32]
    assert _levels(48, 16) == [16, 48]
    assert _levels(16, 16) == [16]


def test_dense_counts_every_in_box_voxel():
    calls: list[int] = []
    box = torch.tensor([[0.0, 0.0, 224.0, 224.0]])
    sel = dense_select(counting_sphere(0.08, calls), ANCHOR, K, box, 600)
    assert sel.num_evals == sum(calls)
    assert 30000 < sel.num_evals < 40000  # the frustum of the full crop inside the 64^3 cube
    assert sel.num_evals < 64**3


@pytest.mark.parametrize("k", [600, 200])
def test_coarse_to_fine_spends_under_ten_percent_of_dense(k):
    box = torch.tensor([[0.0, 0.0, 224.0, 224.0]])
    dense_calls: list[int] = []
    c2f_calls: list[int] = []
    dense = dense_select(counting_sphere(0.08, dense_calls), ANCHOR, K, box, k)
    c2f = coarse_to_fine_select(counting_sphere(0.08, c2f_calls), ANCHOR, K, box, k)
    assert c2f.num_evals == sum(c2f_calls)
    assert c2f.num_evals <= 0.10 * dense.num_evals
    assert point_keys(c2f.points[0]) == point_keys(dense.points[0])
    torch.testing.assert_close(c2f.sdf.abs().sort().values, dense.sdf.abs().sort().values)


def test_small_box_still_exact_and_cheaper():
    box = torch.tensor([[60.0, 60.0, 170.0, 170.0]])
    dense = dense_select(counting_sphere(0.05, []), ANCHOR, K, box, 200)
    c2f = coarse_to_fine_select(counting_sphere(0.05, []), ANCHOR, K, box, 200)
    assert c2f.num_evals < 0.2 * dense.num_evals
    assert point_keys(c2f.points[0]) == point_keys(dense.points[0])


def test_ratio_entry_reports_the_miss():
    met = _ratio_entry(2.0, 2.5)
    assert met["met"] is True and "missed_by" not in met
    missed = _ratio_entry(5.0, 2.5)
    assert missed["met"] is False
    assert missed["missed_by"].startswith("2.00x")


def test_report_gives_the_int8_option_its_own_not_equivalent_line():
    from benchmarks.report import _onnx_lines

    eq = {
        "pairs": 2,
        "hand_joints_max_mm": 0.0001,
        "obj_trans_mm": 0.0001,
        "obj_rot_deg": 0.0,
        "anchor_mm": 0.0,
        "same_sdf_evaluations": True,
    }
    info = {
        "opset": 17,
        "export_seconds": 6.0,
        "session_seconds": 0.3,
        "graph_mb": {"encoder": 84.1},
        "provider": "CPUExecutionProvider",
        "threads": 1,
        "equivalence": eq,
    }
    assert not any("int8" in line for line in _onnx_lines(info))
    int8 = {
        "quantization": "int8 weights",
        "quantized_graphs": ["encoder", "heads"],
        "quantize_seconds": 1.9,
        "graph_mb": {"encoder": 23.5},
        "equivalence": {**eq, "hand_joints_max_mm": 4.0, "same_sdf_evaluations": False},
    }
    lines = [line for line in _onnx_lines({**info, "int8": int8}) if "int8" in line]
    assert len(lines) == 1 and "NOT equivalent" in lines[0] and "4.000 mm" in lines[0]
