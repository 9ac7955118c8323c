"""Multi-camera synthetic clips: one world scene, consistent labels, extrinsics, occlusion, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from homae_model.cli.synth import main as synth_main
from homae_model.data.synth_multicam import open_multicam, write_multicam_sequence
from homae_model.data.synth_scene import DEFAULT_MANO_PATH, SynthConfig
from homae_model.data.synthetic import SyntheticSource
from homae_model.fusion.frames import transform_points
from homae_model.geometry.camera import project_points
from homae_ros.messages.intrinsics import load_intrinsics

pytestmark = pytest.mark.skipif(
    not DEFAULT_MANO_PATH.is_file(), reason=f"bundled hand model missing: {DEFAULT_MANO_PATH}"
)

FRAMES = 8


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("multicam") / "clip"
    config = SynthConfig(width=128, height=96)
    return write_multicam_sequence(out, 7, 2, FRAMES, 10.0, config, occlude=True)


def test_cameras_see_one_world_scene(clip: Path) -> None:
    mc = open_multicam(clip)
    assert mc.cameras == ["cam0", "cam1"] and mc.meta["occluded_camera"] == "cam1"
    sources = {c: SyntheticSource(mc.camera_dirs[c]) for c in mc.cameras}
    assert all(len(s) == FRAMES for s in sources.values())
    assert sources["cam0"].sequence.timestamps == sources["cam1"].sequence.timestamps
    for i in (0, FRAMES - 1):
        world = {}
        for c, src in sources.items():
            s = src[i]
            T = mc.T_world_cam[c]
            world[c] = (transform_points(T, s.hand_joints), transform_points(T, s.obj_trans))
            # Labels are camera-frame: the 2D joints are the projection with this camera's K.
            np.testing.assert_allclose(project_points(s.hand_joints, s.K), s.hand_joints_2d,
                                       atol=1e-6)  # fmt: skip
            np.testing.assert_allclose(load_intrinsics(mc.camera_dirs[c] / "camera_info.yaml").K,
                                       s.K, atol=1e-9)  # fmt: skip
        np.testing.assert_allclose(world["cam0"][0], world["cam1"][0], atol=1e-6)
        np.testing.assert_allclose(world["cam0"][1], world["cam1"][1], atol=1e-6)
    # The cameras look at the scene from different directions.
    axes = [mc.T_world_cam[c][:3, 2] for c in mc.cameras]
    assert abs(float(axes[0] @ axes[1])) < 0.8


def test_object_hides_the_hand_from_camera_1_only(clip: Path) -> None:
    mc = open_multicam(clip)
    vis = {c: [SyntheticSource(mc.camera_dirs[c])[i].hand_visible for i in range(FRAMES)]
           for c in mc.cameras}  # fmt: skip
    late = slice(FRAMES // 2, None)  # grasped: the hand is behind the object for camera 1
    assert min(vis["cam0"][late]) > 0.7
    assert max(vis["cam1"][late]) < 0.5


def test_extrinsics_file_is_tf_static_shaped(clip: Path) -> None:
    data = yaml.safe_load((clip / "extrinsics.yaml").read_text())
    assert data["world_frame"] == "world"
    children = [t["child_frame_id"] for t in data["transforms"]]
    assert children == ["cam0_color_optical_frame", "cam1_color_optical_frame"]
    assert all(t["header"]["frame_id"] == "world" for t in data["transforms"])
    assert set(data["transforms"][0]["transform"]["rotation"]) == {"x", "y", "z", "w"}


def test_same_seed_same_clip(clip: Path, tmp_path: Path) -> None:
    again = write_multicam_sequence(tmp_path / "again", 7, 2, 2, 10.0,
                                    SynthConfig(width=128, height=96), occlude=True)  # fmt: skip
    assert (again / "extrinsics.yaml").read_bytes() == (clip / "extrinsics.yaml").read_bytes()
    for c in ("cam0", "cam1"):
        assert (again / c / "rgb" / "000000.png").read_bytes() == (
            clip / c / "rgb" / "000000.png"
        ).read_bytes()


def test_cli_cameras_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cli"
    argv = ["--out", str(out), "--cameras", "3", "--frames", "2", "--size", "64x48", "--quiet"]
    assert synth_main(argv) == 0
    assert open_multicam(out).cameras == ["cam0", "cam1", "cam2"]
    assert (out / "cam2" / "contact_sheet.png").is_file()
    assert synth_main(["--out", str(tmp_path / "x"), "--occlude", "--quiet"]) == 1
    assert "--occlude needs --cameras" in capsys.readouterr().err
    assert synth_main(["--out", str(tmp_path / "y"), "--cameras", "1", "--occlude"]) == 1
    assert synth_main(["--out", str(tmp_path / "z"), "--cameras", "99"]) == 1
    assert "--cameras must be in 1..8" in capsys.readouterr().err
