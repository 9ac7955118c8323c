"""homae-eval on HO3D-layout splits: a submission answers every frame in evaluation.txt order
(detector misses fall back to the split's boxes or the previous estimate), --limit writes a
partial file, weights folders are accepted, and labelled splits get baselines beside the model.
"""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import homae_model.evaluation.evaluate as ev
import homae_model.evaluation.submission as submission
from homae_model.evaluation.frames import FrameWarnings
from homae_model.evaluation.submission import OPENCV_TO_OPENGL, PROJECT_TO_HO3D
from tests.train import TINY_CONFIG

W, H = 128, 96
K = np.array([[120.0, 0.0, 64.0], [0.0, 120.0, 48.0], [0.0, 0.0, 1.0]])
GL = np.diag([1.0, -1.0, -1.0])
OBJ_OFFSET = np.array([0.03, 0.0, 0.0])
MISS = 200
"""Red value of pixel (0, 0) in the images the fake detector misses."""
# evaluation.txt order, unsorted and interleaving two sequences: (name, missed, usable box)
FRAMES = (
    ("SM1/0002", False, True),
    ("AP10/0000", True, True),  # a miss: answered from the split's handBoundingBox
    ("SM1/0000", False, True),
    ("AP10/0001", False, True),
    ("SM1/0001", True, False),  # a miss with an unusable box: the previous estimate
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised tiny HOMAE saved as a checkpoint folder."""
    from homae_model.checkpoint import save_checkpoint
    from homae_model.config import load_config
    from homae_model.model import HomaeModel

    cfg = load_config(TINY_CONFIG)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("ckpt") / "step_00000001"
    save_checkpoint(folder, HomaeModel(cfg), cfg)
    return folder


def _corners(centre_gl: np.ndarray) -> np.ndarray:
    half = np.array([0.03, 0.05, 0.03])
    signs = np.array([[(k >> a) & 1 for a in range(3)] for k in range(8)]) * 2.0 - 1.0
    return centre_gl + signs * half


def _write(root: Path, split: str, name: str, meta: dict, marker: int) -> None:
    seq, frame = name.split("/")
    folder = root / split / seq
    for sub in ("rgb", "meta"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(marker)
    image = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    image[0, 0] = (marker, 0, 0)
    cv2.imwrite(str(folder / "rgb" / f"{frame}.png"), image[:, :, ::-1])
    with open(folder / "meta" / f"{frame}.pkl", "wb") as f:
        pickle.dump(meta, f)


def _project(points_gl: np.ndarray) -> np.ndarray:
    cv = points_gl @ GL.T
    uv = cv @ K.T
    return uv[:, :2] / uv[:, 2:]


def eval_split(root: Path) -> Path:
    """An HO3D v2 evaluation split in the released layout (root joint + hand box only)."""
    for i, (name, missed, usable) in enumerate(FRAMES):
        wrist = np.array([-0.04 + 0.02 * i, 0.01, -0.5])
        uv = _project(wrist[None])[0]
        box = np.array([uv[0] - 20, uv[1] - 20, uv[0] + 20, uv[1] + 20])
        if not usable:
            box[2:] = box[:2]  # zero area
        meta = {
            "handJoints3D": wrist,
            "handBoundingBox": box,
            "camMat": K,
            "objRot": np.array([0.1, 0.2 * i, 0.3]),
            "objTrans": wrist + OBJ_OFFSET,
            "objName": "010_potted_meat_can",
            "objCorners3D": _corners(wrist + OBJ_OFFSET),
            "handPose": None,
        }
        _write(root, "evaluation", name, meta, MISS if missed else i)
    (root / "evaluation.txt").write_text("\n".join(f[0] for f in FRAMES) + "\n")
    return root


def train_split(root: Path, names: list[str], seed: int) -> Path:
    """A labelled HO3D split (train layout) with random hands and objects."""
    rng = np.random.default_rng(seed)
    for i, name in enumerate(names):
        wrist = np.array([rng.uniform(-0.05, 0.05), rng.uniform(-0.03, 0.03), -0.5])
        joints = wrist + rng.normal(0, 0.03, (21, 3))
        joints[0] = wrist
        obj = wrist + rng.normal(0, 0.02, 3) + [0.04, 0.0, 0.0]
        meta = {
            "handPose": rng.normal(0, 0.2, 48),
            "handBeta": rng.normal(0, 0.5, 10),
            "handTrans": wrist - [0.09, 0.0, 0.0],
            "handJoints3D": joints,
            "camMat": K,
            "objRot": rng.normal(0, 1.0, 3),
            "objTrans": obj,
            "objName": ("006_mustard_bottle", "010_potted_meat_can")[i % 2],
            "objCorners3D": _corners(obj),
        }
        _write(root, "train", name, meta, i)
    (root / "train.txt").write_text("\n".join(names) + "\n")
    return root


def _fake_boxes(image: np.ndarray, hand_box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hand_box = np.asarray(hand_box, np.float64)
    return hand_box + np.array([2.0, 1.0, -2.0, 1.0]), hand_box + np.array([10.0, -5, 25, 10])


@pytest.fixture()
def fake_detector(monkeypatch):
    """A detector that finds the labelled pair, except in images marked MISS."""

    def detected(det, image, hand_box):
        return None if image[0, 0, 0] == MISS else _fake_boxes(image, hand_box)

    fake = ev._Detector(object(), None, Path("fake.safetensors"), "fake detector")
    monkeypatch.setattr(ev, "_load_detector", lambda *args: fake)
    monkeypatch.setattr(ev, "_detected_pair", detected)


def _ho3d(joints: np.ndarray) -> np.ndarray:
    return np.asarray(joints)[list(PROJECT_TO_HO3D)] @ OPENCV_TO_OPENGL


def _eval_submission_split(tmp_path: Path, checkpoint: Path, *options: str):
    """homae-eval on a fresh HO3D evaluation split: (data, report folder, warning messages)."""
    from homae_model.cli.evaluate import main

    data = eval_split(tmp_path / "ho3d")
    out = tmp_path / "eval"
    argv = ["--checkpoint", str(checkpoint), "--data", str(data), "--out", str(out)]
    with pytest.warns(UserWarning) as record:
        assert main([*argv, *options, "--no-progress"]) == 0
    return data, out, [str(w.message) for w in record]


@pytest.mark.slow
def test_submission_answers_every_frame_in_evaluation_txt_order(
    tmp_path, checkpoint, fake_detector, capsys
) -> None:
    from homae_model.data.ho3d import HO3DSource
    from homae_model.inference import Predictor

    data, out, messages = _eval_submission_split(tmp_path, checkpoint)
    assert any("AP10/0000" in m and "split's own hand and object boxes" in m for m in messages)
    assert any("SM1/0001" in m and "previous estimate" in m for m in messages)

    # The official eval.py's format checks: [xyz, verts], one entry per frame.
    subs = {p: json.loads((out / f).read_text()) for p, f in
            (("gt-anchored", "pred.json"), ("gt-free", "pred_gt-free.json"))}  # fmt: skip
    for sub in subs.values():
        assert len(sub) == 2 and len(sub[0]) == len(sub[1]) == len(FRAMES)
        assert all(np.shape(x) == (21, 3) for x in sub[0])
        assert all(np.shape(v) == (778, 3) for v in sub[1])

    # Each entry is its evaluation.txt frame's own estimate.
    predictor = Predictor.from_checkpoint(checkpoint)
    src = HO3DSource(data, "evaluation")
    for i, (name, missed, usable) in enumerate(FRAMES):
        raw = src[i]
        assert src.names[i] == name
        j = 3 if not usable else i  # answered with the previous frame's estimate
        raw_j = src[j]
        pairs = [(raw_j.hand_box, raw_j.obj_box)]
        want = predictor.predict(raw_j.image, K, pairs, anchors=[raw_j.root_joint])[0]
        np.testing.assert_allclose(subs["gt-anchored"][0][i], _ho3d(want.joints), atol=1e-5)
        if not missed or not usable:
            pairs = [_fake_boxes(raw_j.image, raw_j.hand_box)]
        want = predictor.predict(raw_j.image, K, pairs)[0]
        np.testing.assert_allclose(subs["gt-free"][0][i], _ho3d(want.joints), atol=1e-5)
        np.testing.assert_allclose(
            subs["gt-free"][1][i], want.vertices @ OPENCV_TO_OPENGL, atol=1e-5
        )
        del raw

    # The report on disk is the complete one and names every fallback.
    report = json.loads((out / "report.json").read_text())
    assert report["files"]["ho3d_submission_gt-anchored"] == str(out / "pred.json")
    assert report["files"]["ho3d_submission_gt-free"] == str(out / "pred_gt-free.json")
    assert report["files"]["report_json"] == str(out / "report.json")
    gt_free = report["meta"]["gt_free"]
    assert [m["frame"] for m in gt_free["misses"]] == ["AP10/0000", "SM1/0001"]
    used = {(f["protocol"], f["frame"]): f["used"] for f in gt_free["fallbacks"]}
    assert used == {
        ("gt-free", "AP10/0000"): "split boxes",
        ("gt-free", "SM1/0001"): "previous estimate",
        ("gt-anchored", "SM1/0001"): "previous estimate",
    }
    assert report["meta"]["fingertips"]["labels"] == "ho3d"
    assert "baselines" not in report  # no labels, nothing to measure

    # The CLI names every file and prints no empty metric lines.
    printed = capsys.readouterr().out
    assert f"HO3D submission (gt-anchored): {out / 'pred.json'}" in printed
    assert f"HO3D submission (gt-free): {out / 'pred_gt-free.json'}" in printed
    assert f"report (JSON): {out / 'report.json'}" in printed
    assert "gt-anchored:" not in printed and "gt-free (" not in printed
    assert "detector missed 2 frame(s): AP10/0000, SM1/0001" in printed


@pytest.mark.slow
def test_limit_on_a_submission_split_writes_a_partial_file(
    tmp_path, checkpoint, fake_detector, capsys
) -> None:
    _, out, messages = _eval_submission_split(
        tmp_path, checkpoint, "--limit", "2", "--protocol", "gt-free"
    )
    assert any("pred_partial" in m for m in messages)
    assert not (out / "pred.json").exists()
    partial = out / "pred_partial_2of5.json"
    assert len(json.loads(partial.read_text())[0]) == 2
    printed = capsys.readouterr().out
    assert f"HO3D submission (gt-free): {partial}" in printed and "--limit 2" in printed


def test_fill_missing_uses_the_previous_then_the_next_estimate() -> None:
    a, b = ("A", "a"), ("B", "b")
    entries = [None, a, None, None, b]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filled = submission.fill_missing(entries, ["s/0", "s/1", "s/2", "s/3", "s/4"], "gt-free")
    assert entries == [a, a, a, a, b]
    assert [(f["frame"], f["used"]) for f in filled] == [
        ("s/0", "next estimate"),
        ("s/2", "previous estimate"),
        ("s/3", "previous estimate"),
    ]
    assert len(caught) == 3 and "s/0" in str(caught[0].message)
    with pytest.raises(ValueError, match="nothing to submit"):
        submission.fill_missing([None], ["s/0"], "gt-free")
    assert submission.submission_name("gt-free", False, 5, 5) == "pred_gt-free.json"
    assert submission.submission_name("gt-free", True, 2, 5) == "pred_partial_2of5.json"


def test_weights_folder_is_a_checkpoint(tmp_path, checkpoint) -> None:
    import shutil

    from homae_model.bundled import DEMO_CHECKPOINT_NAME, SOURCE_WEIGHTS_DIR

    if (SOURCE_WEIGHTS_DIR / DEMO_CHECKPOINT_NAME).is_file():  # the bundled folder itself
        assert ev.resolve_weights(SOURCE_WEIGHTS_DIR) == SOURCE_WEIGHTS_DIR / DEMO_CHECKPOINT_NAME
    folder = tmp_path / "weights"
    folder.mkdir()
    shutil.copy(checkpoint / "model.safetensors", folder / "mine.safetensors")
    with pytest.raises(FileNotFoundError, match=r"without config\.yaml"):
        ev.resolve_weights(folder)
    shutil.copy(checkpoint / "config.yaml", folder / "config.yaml")
    assert ev.resolve_weights(folder) == folder / "mine.safetensors"
    shutil.copy(checkpoint / "model.safetensors", folder / "other.safetensors")
    with pytest.raises(FileNotFoundError, match="several weights files"):
        ev.resolve_weights(folder)
    assert ev.resolve_weights(checkpoint) == checkpoint  # checkpoint folders as before
    assert ev.resolve_weights(checkpoint / "model.safetensors") == checkpoint
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="pass the run folder"):
        ev.resolve_weights(empty)


@pytest.mark.slow
def test_demo_weights_folder_evaluates(tmp_path, capsys) -> None:
    from homae_model.bundled import DEMO_CHECKPOINT_NAME, SOURCE_WEIGHTS_DIR
    from homae_model.cli.evaluate import main

    if not (SOURCE_WEIGHTS_DIR / DEMO_CHECKPOINT_NAME).is_file():
        pytest.skip("the bundled demo weights are not in this checkout")
    data = train_split(tmp_path / "ho3d", ["MC1/0000", "MC1/0001"], seed=1)
    out = tmp_path / "eval"
    argv = ["--checkpoint", str(SOURCE_WEIGHTS_DIR), "--data", str(data), "--split", "train"]
    argv += ["--protocol", "gt-anchored", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["meta"]["checkpoint"] == str(SOURCE_WEIGHTS_DIR / DEMO_CHECKPOINT_NAME)
    assert report["metrics"]["gt-anchored"]["MJE"] > 0
    printed = capsys.readouterr().out
    assert "gt-anchored (2 samples): MJE" in printed
    assert f"report (Markdown): {out / 'report.md'}" in printed


@pytest.mark.slow
def test_labelled_split_reports_baselines_beside_the_model(tmp_path, checkpoint, capsys) -> None:
    from homae_model.cli.evaluate import main
    from homae_model.data.ho3d import HO3DSource
    from homae_model.evaluation.baselines import baseline_means, frame_from_raw

    names = ["MC1/0000", "MC1/0001", "SM2/0000", "SM2/0001"]
    data = train_split(tmp_path / "ho3d", names, seed=2)
    out = tmp_path / "eval"
    argv = ["--checkpoint", str(checkpoint), "--data", str(data), "--split", "train"]
    argv += ["--protocol", "gt-anchored", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    base = report["baselines"]
    assert base["source"]["frames"] == "the evaluated frames" and base["counts"] == {
        "gt-anchored": 4
    }
    # The constant hand's MJE, computed here from the labels.
    src = HO3DSource(data, "train")
    gt = np.stack([src.load(i, image=False).hand_joints for i in range(4)])
    rel = gt - gt[:, :1]
    mje = np.linalg.norm(rel - rel.mean(axis=0), axis=-1).mean() * 1000
    assert base["metrics"]["gt-anchored"]["MJE"] == pytest.approx(mje)
    for name in ("PA-MJE", "OCE", "MCE", "ADD-S"):
        assert base["metrics"]["gt-anchored"][name] > 0
    assert base["extras"]["gt-anchored"]["ADD-S (HOISDF)"] > 0
    md = (out / "report.md").read_text()
    assert "| Baseline: constant hand, mean object pose (4) |" in md
    assert "HOISDF conventions" in md
    printed = capsys.readouterr().out
    assert "baseline, gt-anchored (constant hand, mean object pose): MJE" in printed

    # --baseline-data: the means come from another labelled split.
    other = train_split(tmp_path / "other", ["XX1/0000", "XX1/0001", "XX1/0002"], seed=7)
    argv = ["--checkpoint", str(checkpoint), "--data", str(data), "--split", "train"]
    argv += ["--protocol", "gt-anchored", "--out", str(tmp_path / "eval2"), "--no-progress"]
    argv += ["--baseline-data", str(other), "--baseline-split", "train"]
    assert main(argv) == 0
    report2 = json.loads((tmp_path / "eval2" / "report.json").read_text())
    osrc = HO3DSource(other, "train")
    means = baseline_means([frame_from_raw(osrc.load(i, image=False)) for i in range(3)])
    got = report2["baselines"]
    assert got["source"]["data"] == str(other) and got["source"]["count"] == 3
    np.testing.assert_allclose(got["means"]["root_relative_joints_m"], means.root_relative_joints)
    mje2 = np.linalg.norm(rel - means.root_relative_joints, axis=-1).mean() * 1000
    assert got["metrics"]["gt-anchored"]["MJE"] == pytest.approx(mje2)
    # Model rows are the same run's either way.
    assert report2["metrics"] == report["metrics"]


def test_frame_warnings_are_capped() -> None:
    warner = FrameWarnings(limit=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(5):
            warner.warn(f"frame s/{i}")
        warner.close()
    assert [str(w.message) for w in caught[:2]] == ["frame s/0", "frame s/1"]
    assert len(caught) == 3 and "3 more frame(s)" in str(caught[2].message)
