"""homae-infer (no ROS): folder of images / video -> overlays + JSON; K.yaml parsing and errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from homae_ros.messages.intrinsics import load_intrinsics, parse_intrinsics
from homae_ros.tools.infer import main

W, H = 160, 120
F = 300.0
OBJECT = "006_mustard_bottle"
K_TRUE = np.array([[F, 0.0, 79.5], [0.0, F, 59.5], [0.0, 0.0, 1.0]])
ROS_CALIB = f"""image_width: {W}
image_height: {H}
camera_name: test
camera_matrix:
  rows: 3
  cols: 3
  data: [{F}, 0, 79.5, 0, {F}, 59.5, 0, 0, 1]
distortion_model: plumb_bob
distortion_coefficients: {{rows: 1, cols: 5, data: [0, 0, 0, 0, 0]}}
"""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from tests.ros.nodeutil import tiny_checkpoint

    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture()
def k_yaml(tmp_path) -> Path:
    path = tmp_path / "K.yaml"
    path.write_text(ROS_CALIB)
    return path


def _rgb(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)


def _args(src: Path, k: Path, out: Path, checkpoint: Path, *extra: str) -> list[str]:
    return [
        str(src),
        "--intrinsics",
        str(k),
        "--out",
        str(out),
        "--checkpoint",
        str(checkpoint),
        "--device",
        "cpu",
        "--no-progress",
        "--object",
        OBJECT,
        *extra,
    ]


def test_folder_of_images(tmp_path, k_yaml, checkpoint, capsys):
    src = tmp_path / "images"
    src.mkdir()
    for i in range(3):
        cv2.imwrite(str(src / f"frame{i}.png"), _rgb(i)[:, :, ::-1])
    (src / "broken.jpg").write_bytes(b"not an image")
    (src / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    assert main(_args(src, k_yaml, out, checkpoint, "--roi", "20", "10", "140", "110")) == 0
    captured = capsys.readouterr()
    assert "3/4 frames processed" in captured.out
    assert "broken.jpg" in captured.err  # the unreadable file is named

    for i in range(3):
        record = json.loads((out / f"frame{i}.json").read_text())
        assert record["image_size"] == [W, H]
        np.testing.assert_allclose(record["K"], K_TRUE)
        (pair,) = record["pairs"]
        assert pair["hand"]["box"] == [20.0, 10.0, 140.0, 110.0]
        joints = np.array(pair["hand"]["joints"])
        assert joints.shape == (21, 3) and np.all(np.isfinite(joints)) and np.all(joints[:, 2] > 0)
        uv = (joints @ K_TRUE.T)[:, :2] / joints[:, 2:]
        np.testing.assert_allclose(np.array(pair["hand"]["joints_2d"], float), uv, atol=2e-3)
        assert len(pair["hand"]["mano_pose"]) == 48 and len(pair["hand"]["mano_shape"]) == 10
        obj = pair["object"]
        assert obj["name"] == OBJECT and obj["known"]
        R = np.array(obj["rotation_matrix"])
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-4)
        assert set(record["timings_ms"]) == {"estimate", "draw"}
        assert record["timings_ms"]["estimate"] > 0
        overlay = cv2.imread(str(out / f"frame{i}.png"))[:, :, ::-1]
        assert overlay.shape == (H, W, 3)
        assert np.any(overlay != _rgb(i))  # something was drawn
        # the object box is drawn in blue along its right edge (most of it not covered)
        edge = overlay[10:111, 140]
        assert np.mean(np.all(edge == (60, 120, 255), axis=1)) > 0.5
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 4 and summary["processed"] == 3
    assert summary["skipped"] == [{"source": str(src / "broken.jpg"), "reason": "unreadable image"}]


def test_video_gives_mp4_and_sequence_frames(tmp_path, checkpoint):
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (W, H))
    assert writer.isOpened()
    for i in range(3):
        writer.write(_rgb(i)[:, :, ::-1])
    writer.release()
    k = tmp_path / "K.yaml"
    k.write_text(f"fx: {F}\nfy: {F}\ncx: 79.5\ncy: 59.5\n")
    out = tmp_path / "out"
    assert main(_args(video, k, out, checkpoint, "--detector", "roi")) == 0
    stamps = [json.loads((out / f"clip_{i:06d}.json").read_text())["stamp_s"] for i in range(3)]
    np.testing.assert_allclose(stamps, [0.0, 0.1, 0.2])
    cap = cv2.VideoCapture(str(out / "clip_overlay.mp4"))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    assert frames == 3


@pytest.mark.parametrize(
    "text",
    [
        ROS_CALIB,
        f"height: {H}\nwidth: {W}\nk: [{F}, 0.0, 79.5, 0.0, {F}, 59.5, 0.0, 0.0, 1.0]\n---\n",
        f"fx: {F}\nfy: {F}\ncx: 79.5\ncy: 59.5\n",
    ],
    ids=["ros_calibration", "camera_info_echo", "plain"],
)
def test_intrinsics_layouts(tmp_path, text):
    path = tmp_path / "K.yaml"
    path.write_text(text)
    intr = load_intrinsics(path)
    np.testing.assert_array_equal(intr.K, K_TRUE)
    np.testing.assert_array_equal(intr.for_image(W, H), K_TRUE)


def test_intrinsics_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.yaml"):
        load_intrinsics(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("focal: 300\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*camera_matrix.*focal"):
        load_intrinsics(bad)
    bad.write_text("fx: -300\nfy: 300\ncx: 1\ncy: 1\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*focal lengths"):
        load_intrinsics(bad)
    bad.write_text("k: [1, 2, 3]\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*'k' must hold 9 numbers"):
        load_intrinsics(bad)
    bad.write_text(
        "camera_matrix: {data: [300, 0, 1, 0, 300, 1, 0, 0, 1]}\nimage_width: 640\n"
        "image_height: 480\n"
    )
    with pytest.raises(ValueError, match=r"bad\.yaml are for 640x480 px .* 160x120"):
        load_intrinsics(bad).for_image(W, H)
    with pytest.raises(ValueError, match="<x>: expected a YAML mapping"):
        parse_intrinsics([1, 2], "<x>")


def test_cli_errors(tmp_path, k_yaml, checkpoint, capsys):
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), _rgb(0))
    out = tmp_path / "out"
    missing = tmp_path / "nope.yaml"
    assert main(_args(img, missing, out, checkpoint)) == 1
    assert "nope.yaml" in capsys.readouterr().err
    assert (
        main(
            [
                str(img),
                "--intrinsics",
                str(k_yaml),
                "--out",
                str(out),
                "--detector",
                "roi",
                "--checkpoint",
                str(checkpoint),
            ]
        )
        == 1
    )
    assert "--detector roi needs --object" in capsys.readouterr().err
    assert (
        main(
            _args(
                img,
                k_yaml,
                out,
                checkpoint,
                "--roi",
                "0",
                "0",
                "9",
                "9",
                "--object",
                "no_such_object",
            )
        )
        == 1
    )
    assert "no_such_object" in capsys.readouterr().err
    assert (
        main(_args(tmp_path / "nothing.png", k_yaml, out, checkpoint, "--roi", "0", "0", "9", "9"))
        == 1
    )
    assert "nothing.png does not exist" in capsys.readouterr().err


def test_missing_bundled_weights_say_so(tmp_path, k_yaml, capsys):
    from homae_model.bundled import DEMO_CHECKPOINT_NAME, bundled_weights_dir

    if (bundled_weights_dir() / DEMO_CHECKPOINT_NAME).exists():
        pytest.skip("the bundled demo weights exist")
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), _rgb(0))
    rc = main(
        [
            str(img),
            "--intrinsics",
            str(k_yaml),
            "--out",
            str(tmp_path / "o"),
            "--device",
            "cpu",
            "--roi",
            "0",
            "0",
            "9",
            "9",
            "--object",
            OBJECT,
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1 and "checkpoint" in err and "bundled default" in err
    assert DEMO_CHECKPOINT_NAME in err
