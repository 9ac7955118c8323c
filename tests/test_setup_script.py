"""`make setup` ends bad input with a message that says what is missing."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SETUP = REPO / "scripts" / "setup.sh"


def _run(env_extra: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_extra}
    return subprocess.run(
        ["bash", str(SETUP)], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )


def test_wrong_python_version_is_named(tmp_path: Path) -> None:
    fake = tmp_path / "python3.99"
    fake.write_text('#!/bin/sh\necho "3.12"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    res = _run({"PYTHON": str(fake), "HOMAE_VENV": str(tmp_path / "venv")}, tmp_path)
    assert res.returncode != 0
    assert "Python 3.12" in res.stderr
    assert "only for CPython 3.11" in res.stderr
    assert not (tmp_path / "venv").exists()


def test_missing_python_is_named(tmp_path: Path) -> None:
    res = _run({"PYTHON": "no-such-python3.11", "HOMAE_VENV": str(tmp_path / "venv")}, tmp_path)
    assert res.returncode != 0
    assert "no Python interpreter 'no-such-python3.11'" in res.stderr


@pytest.mark.slow
def test_no_package_index_is_explained(tmp_path: Path) -> None:
    # A fresh venv with pip pointed at a closed local port and no other source of packages.
    env = {
        "PYTHON": sys.executable if sys.version_info[:2] == (3, 11) else "python3.11",
        "HOMAE_VENV": str(tmp_path / "venv"),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_EXTRA_INDEX_URL": "",
        "PIP_FIND_LINKS": "",
        "PIP_NO_CACHE_DIR": "1",
        "PIP_RETRIES": "0",
        "PIP_TIMEOUT": "2",
    }
    res = _run(env, tmp_path)
    assert res.returncode != 0
    assert "could not reach the package index" in res.stderr
    assert "PIP_INDEX_URL" in res.stderr
