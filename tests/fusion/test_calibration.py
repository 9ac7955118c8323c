"""Calibration YAML (camera optical frames -> world): round trip, chains, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.spatial.transform import Rotation

from homae_model.fusion.calibration import (
    calibration_yaml,
    load_calibration,
    parse_calibration,
    transform_entry,
)
from homae_model.fusion.frames import make_transform


def random_T(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_transform(Rotation.random(random_state=rng).as_matrix(), rng.normal(size=3))


def test_round_trip(tmp_path: Path) -> None:
    Ts = {"cam0": random_T(0), "cam1": random_T(1)}
    text = calibration_yaml(
        "world", {n: (f"{n}_optical", T, f"{n}/ci.yaml") for n, T in Ts.items()}
    )
    path = tmp_path / "extrinsics.yaml"
    path.write_text(text)
    calib = load_calibration(path)
    assert calib.world_frame == "world"
    for n, T in Ts.items():
        np.testing.assert_allclose(calib.transform(f"{n}_optical"), T, atol=1e-12)
    assert calib.cameras["cam1"] == {"frame_id": "cam1_optical", "camera_info": "cam1/ci.yaml"}
    np.testing.assert_allclose(calib.transform("world"), np.eye(4))


def test_chains_compose_to_the_world() -> None:
    T_rig, T_cam = random_T(2), random_T(3)
    chain = [transform_entry("rig", "cam", T_cam), transform_entry("world", "rig", T_rig)]
    data = {"world_frame": "world", "transforms": chain}
    calib = parse_calibration(data, "chain.yaml")
    np.testing.assert_allclose(calib.transform("cam"), T_rig @ T_cam, atol=1e-12)


def test_errors_name_the_file_and_the_entry(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml"):
        load_calibration(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("world_frame: world\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*'transforms'"):
        load_calibration(bad)
    entry = transform_entry("world", "cam", np.eye(4))
    entry["transform"]["rotation"] = {"x": 0.0, "y": 0.0, "z": 0.0, "w": 2.0}
    with pytest.raises(ValueError, match=r"c.yaml: transforms\[0\].*unit quaternion"):
        parse_calibration({"world_frame": "world", "transforms": [entry]}, "c.yaml")
    del entry["child_frame_id"]
    with pytest.raises(ValueError, match="child_frame_id"):
        parse_calibration({"world_frame": "world", "transforms": [entry]}, "c.yaml")
    loose = transform_entry("elsewhere", "cam", np.eye(4))
    with pytest.raises(ValueError, match="does not lead to the world frame"):
        parse_calibration({"world_frame": "world", "transforms": [loose]}, "c.yaml")
    calib = parse_calibration(yaml.safe_load(calibration_yaml("world", {})), "empty.yaml")
    with pytest.raises(KeyError, match=r"frame 'cam9' is not in empty\.yaml"):
        calib.transform("cam9")
