"""The model on a CUDA device (marker `gpu`; skipped without one; run by benchmarks/gpu_check.sh).

The demo model's Predictor on CUDA must give the CPU's estimates (joints and object translation
within 1 mm: the same network, float32 kernels of another device), and the voxel search the
same voxels and evaluation count on an analytic sphere.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from homae_model.bundled import demo_checkpoint
from homae_model.geometry.voxels import coarse_to_fine_select, dense_select
from homae_model.inference import Predictor

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _frame() -> tuple[np.ndarray, np.ndarray, list]:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    K = np.array([[300.0, 0.0, 159.5], [0.0, 300.0, 119.5], [0.0, 0.0, 1.0]])
    pairs = [
        (np.array([100.0, 60.0, 180.0, 150.0]), np.array([150.0, 80.0, 220.0, 170.0])),
        (np.array([40.0, 100.0, 120.0, 200.0]), np.array([90.0, 120.0, 150.0, 210.0])),
    ]
    return image, K, pairs


def test_predictor_on_cuda_matches_cpu() -> None:
    image, K, pairs = _frame()
    cpu = Predictor.from_checkpoint(demo_checkpoint(), device="cpu").predict(image, K, pairs)
    gpu = Predictor.from_checkpoint(demo_checkpoint(), device="cuda").predict(image, K, pairs)
    assert len(gpu) == len(cpu) == 2
    for a, b in zip(cpu, gpu, strict=True):
        assert np.abs(a.joints - b.joints).max() < 1e-3
        assert np.abs(a.obj_trans - b.obj_trans).max() < 1e-3


def test_voxel_search_on_cuda_matches_cpu() -> None:
    K = torch.tensor([[[500.0, 0.0, 111.5], [0.0, 500.0, 111.5], [0.0, 0.0, 1.0]]])
    anchor = torch.tensor([[0.01, -0.02, 0.5]])
    box = torch.tensor([[0.0, 0.0, 224.0, 224.0]])
    centre = anchor + torch.tensor([0.013, 0.007, -0.011])
    out = {}
    for dev in ("cpu", "cuda"):
        c = centre.to(dev)

        def fn(p: torch.Tensor, c: torch.Tensor = c) -> torch.Tensor:
            return (p - c[:, None]).norm(dim=-1) - 0.08

        args = (anchor.to(dev), K.to(dev), box.to(dev), 600)
        out[dev] = (dense_select(fn, *args), coarse_to_fine_select(fn, *args))
    for a, b in zip(out["cpu"], out["cuda"], strict=True):
        assert a.num_evals == b.num_evals
        keys = [
            {tuple(x) for x in (s.points[0].cpu() * 1e4).round().long().tolist()} for s in (a, b)
        ]
        assert keys[0] == keys[1]
