"""Loading errors name the setting once; the mark is an attribute, not a match on the text."""

from __future__ import annotations

from pathlib import Path

import pytest

from homae_model.estimation.detection import DetectionConfig
from homae_model.estimation.errors import parameter_error
from homae_model.estimation.estimator import FrameEstimator, _named


def test_named_adds_the_parameter_once() -> None:
    def fail() -> None:
        raise ValueError("bad header")

    with pytest.raises(ValueError) as info:
        _named("checkpoint", "x.safetensors", Path("x.safetensors"), fail)
    assert str(info.value).count("parameter 'checkpoint'") == 1
    assert info.value.parameter == "checkpoint"
    # an error that already names its setting passes through unchanged
    inner = parameter_error(FileNotFoundError, "detector.weights", "parameter 'detector.weights'")
    with pytest.raises(FileNotFoundError) as info2:
        _named("detector.weights", "w", Path("w"), lambda: (_ for _ in ()).throw(inner))
    assert info2.value is inner


def test_detector_weights_that_are_a_folder_are_named_once(tmp_path: Path) -> None:
    folder = tmp_path / "not_a_file"
    folder.mkdir()
    det = DetectionConfig(device="cpu", weights=str(folder))
    with pytest.raises(FileNotFoundError) as info:
        FrameEstimator.load(backend="torchvision", detection=det)
    assert str(info.value).count("parameter 'detector.weights'") == 1
    assert str(folder) in str(info.value)
