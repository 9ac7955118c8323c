"""Test-wide setup: import paths, an isolated ROS graph, CPU threads."""

from __future__ import annotations

import importlib.util
import os
import random
import sys
import tempfile
from pathlib import Path

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
