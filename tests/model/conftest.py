"""Fixtures shared by the hand tests: the project's synthetic hand, built and saved once."""

from __future__ import annotations

from pathlib import Path

import pytest

from homae_model.hand.synthetic_hand import build_synthetic_hand, save_mano_pickle


@pytest.fixture(scope="module")
def model() -> dict:
    return build_synthetic_hand(0)


@pytest.fixture(scope="module")
def hand_file(model: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_mano_pickle(model, tmp_path_factory.mktemp("hand") / "MANO_RIGHT.pkl")
