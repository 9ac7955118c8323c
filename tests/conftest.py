"""Test-wide setup: import paths, an isolated ROS graph, CPU threads, the demo's ONNX export."""

from __future__ import annotations

import importlib.util
import os
import random
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STUBS = REPO / "tests" / "stubs" / "python"

# The repo root comes first so the source tree is tested; generated messages are found through
# install/ (colcon) which `make test` puts on PYTHONPATH.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# Stand-ins for ROS packages that are not on PyPI, used only when the real one is missing.
for _name in ("tf2_ros", "message_filters", "launch", "launch_ros"):
    if importlib.util.find_spec(_name) is None and str(STUBS) not in sys.path:
        sys.path.append(str(STUBS))

# One isolated ROS graph per test run: localhost only, a domain id of our own, logs in /tmp.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="homae_roslog_"))
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Graphs the onnxruntime runtime exports on first use go to a temporary cache, not ~/.cache.
os.environ.setdefault("HOMAE_ONNX_CACHE", tempfile.mkdtemp(prefix="homae_onnx_cache_"))

# torch._dynamo imports triton when first loaded (torchvision's ops load it); importing triton
# after the synthetic renderer has made an EGL context kills the process (segfault in
# triton/knobs.py). A full run loads it while collecting the detector tests; a subset that
# renders first (tests/data, then tests/train) would not, so load it here, before any test.
import torch._dynamo  # noqa: E402, F401


@pytest.fixture(scope="session")
def demo_onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled demo model exported by `homae-export` (once per test session)."""
    from homae_model.bundled import demo_checkpoint
    from homae_model.cli.export import main as export_main

    if not demo_checkpoint().is_file():
        pytest.skip(f"no bundled demo weights: {demo_checkpoint()}")
    out = tmp_path_factory.mktemp("onnx") / "demo"
    assert export_main(["--checkpoint", str(demo_checkpoint().parent), "--out", str(out)]) == 0
    return out
