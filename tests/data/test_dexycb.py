import pickle
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from scipy.spatial.transform import Rotation

from homae_model.data import dexycb
from homae_model.data.dataset import scan
from homae_model.data.dexycb import SERIALS, SUBJECTS, DexYCBSource, load_mano_pca

FX, FY, PPX, PPY = 615.5, 614.0, 321.0, 238.5
HALF = np.array([0.03, 0.04, 0.09])  # the test object: a box
SEQ_RIGHT = (0, 4)  # (subject index, sequence index): val split uses i % 5 == 4
SEQ_LEFT = (1, 9)


def write_obj_box(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"v {x * HALF[0]} {y * HALF[1]} {z * HALF[2]}"
        for x in (-1, 1)
        for y in (-1, 1)
        for z in (-1, 1)
    ]
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    for a, b, c, d in quads:
        lines += [f"f {a + 1} {b + 1} {c + 1}", f"f {a + 1} {c + 1} {d + 1}"]
    path.write_text("\n".join(lines) + "\n")


def labels(rng: np.random.Generator, ycb_ids, has_hand=True) -> dict:
    joint_3d = rng.uniform([-0.1, -0.1, 0.5], [0.1, 0.1, 0.7], size=(1, 21, 3)).astype(np.float32)
    K = np.array([[FX, 0, PPX], [0, FY, PPY], [0, 0, 1]])
    uv = joint_3d[0] @ K.T
    joint_2d = (uv[:, :2] / uv[:, 2:])[None].astype(np.float32)
    pose_y = np.zeros((len(ycb_ids), 3, 4), np.float32)
    for k in range(len(ycb_ids)):
        pose_y[k, :, :3] = Rotation.from_rotvec(rng.normal(0, 1, 3)).as_matrix()
        pose_y[k, :, 3] = [0.02 * k, 0.01, 0.6]
    seg = np.zeros((480, 640), np.uint8)
    seg[0:10, 0:10] = 255
    seg[20:30, 20:30] = ycb_ids[1]
    seg[40:50, 40:50] = ycb_ids[0]
    pose_m = rng.normal(0, 0.5, (1, 51)).astype(np.float32)
    if not has_hand:
        joint_3d[:] = -1
        joint_2d[:] = -1
        pose_m[:] = 0
    return {
        "seg": seg,
        "pose_y": pose_y,
        "pose_m": pose_m,
        "joint_3d": joint_3d,
        "joint_2d": joint_2d,
    }


@pytest.fixture()
def dex_root(tmp_path: Path):
    rng = np.random.default_rng(0)
    root = tmp_path / "dexycb"
    intr = root / "calibration" / "intrinsics"
    intr.mkdir(parents=True)
    for s in SERIALS:
        (intr / f"{s}_640x480.yml").write_text(
            yaml.safe_dump(
                {"color": {"fx": FX, "fy": FY, "ppx": PPX, "ppy": PPY}, "depth": {"fx": 1.0}}
            )
        )
    betas = {"right": rng.normal(0, 1, 10).tolist(), "left": rng.normal(0, 1, 10).tolist()}
    for side in ("right", "left"):
        calib = root / "calibration" / f"mano_20200101-{side}"
        calib.mkdir(parents=True)
        (calib / "mano.yml").write_text(yaml.safe_dump({"betas": betas[side]}))
    write_obj_box(root / "models" / "006_mustard_bottle" / "textured_simple.obj")
    frames = {}
    for subj in (0, 1):
        for i in range(100):
            seq = root / SUBJECTS[subj] / f"2020{i:04d}_120000"
            seq.mkdir(parents=True)
            side = "left" if (subj, i) == SEQ_LEFT else "right"
            nframes = 2 if (subj, i) in (SEQ_RIGHT, SEQ_LEFT) else 0
            meta = {
                "serials": list(SERIALS),
                "num_frames": nframes,
                "ycb_ids": [3, 5, 14],  # grasped: 5 = 006_mustard_bottle
                "ycb_grasp_ind": 1,
                "mano_sides": [side],
                "mano_calib": [f"20200101-{side}"],
            }
            (seq / "meta.yml").write_text(yaml.safe_dump(meta))
            for c, serial in enumerate(SERIALS):
                (seq / serial).mkdir()
                for f in range(nframes):
                    lab = labels(
                        rng, meta["ycb_ids"], has_hand=not (side == "right" and f == 1 and c == 0)
                    )
                    np.savez_compressed(seq / serial / f"labels_{f:06d}.npz", **lab)
                    img = np.zeros((480, 640, 3), np.uint8)
                    img[:, :, 2] = 200  # RGB blue
                    cv2.imwrite(str(seq / serial / f"color_{f:06d}.jpg"), img[:, :, ::-1])
                    frames[(subj, i, c, f)] = lab
    mano = tmp_path / "mano"
    mano.mkdir()
    comps, _ = np.linalg.qr(rng.normal(size=(45, 45)))
    mean = rng.normal(0, 0.2, 45)
    with open(mano / "MANO_RIGHT.pkl", "wb") as f:
        pickle.dump({"hands_components": comps, "hands_mean": mean}, f)
    return root, mano, frames, betas, (comps, mean)


def test_s0_split_facts():
    subj, seqs = dexycb._S0_SPLITS["test"]
    assert subj == tuple(range(2, 10)) and seqs == tuple(range(4, 100, 5))
    subj, seqs = dexycb._S0_SPLITS["train"]
    assert subj == tuple(range(10)) and len(seqs) == 80 and 4 not in seqs and 3 in seqs
    assert dexycb._S0_SPLITS["val"][0] == (0, 1)
    assert len(SERIALS) == 8 and len(SUBJECTS) == 10
    assert dexycb.YCB_CLASSES[5] == "006_mustard_bottle" and len(dexycb.YCB_CLASSES) == 21


def test_right_hand_sample_fields(dex_root):
    root, mano, frames, betas, (comps, mean) = dex_root
    src = DexYCBSource(root, split="val", hands="right", mano_dir=mano)
    assert len(src) == 8 * 2  # one right-hand sequence, 8 cameras, 2 frames
    s = src[0]
    lab = frames[(*SEQ_RIGHT, 0, 0)]
    np.testing.assert_allclose(s.K, [[FX, 0, PPX], [0, FY, PPY], [0, 0, 1]])
    np.testing.assert_allclose(s.hand_joints, lab["joint_3d"][0], rtol=1e-6)
    np.testing.assert_allclose(s.hand_joints_2d, lab["joint_2d"][0], rtol=1e-6)
    pm = lab["pose_m"][0].astype(np.float64)
    np.testing.assert_allclose(s.mano_pose[:3], pm[:3])
    np.testing.assert_allclose(s.mano_pose[3:], mean + pm[3:48] @ comps, atol=1e-6)
    np.testing.assert_allclose(s.mano_transl, pm[48:51])
    np.testing.assert_allclose(s.mano_shape, betas["right"])
    assert s.obj_name == "006_mustard_bottle" and s.side == "right"
    R, t = lab["pose_y"][1, :, :3], lab["pose_y"][1, :, 3]
    np.testing.assert_allclose(Rotation.from_rotvec(s.obj_rot).as_matrix(), R, atol=1e-6)
    np.testing.assert_allclose(s.obj_trans, t, atol=1e-7)
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * HALF
    cam = corners @ R.T.astype(np.float64) + t
    uv = cam @ s.K.T
    uv = uv[:, :2] / uv[:, 2:]
    np.testing.assert_allclose(s.obj_box, [*uv.min(0), *uv.max(0)], atol=1e-4)
    np.testing.assert_allclose(s.hand_box, [*s.hand_joints_2d.min(0), *s.hand_joints_2d.max(0)])
    assert (
        s.image.shape == (480, 640, 3)
        and abs(int(s.image[5, 5, 2]) - 200) <= 3
        and s.image[5, 5, 0] < 5
    )
    assert (
        s.masks[5, 5] == 1
        and s.masks[45, 45] == 3
        and s.masks[25, 25] == 2
        and s.masks[300, 300] == 0
    )
    assert "labels_000000.npz" in s.source


def test_left_hands_and_mirrored_pca(dex_root):
    root, mano, frames, betas, (comps, mean) = dex_root
    src = DexYCBSource(root, split="val", hands="both", mano_dir=mano)
    assert len(src) == 8 * 2 * 2
    left = [i for i in range(len(src)) if src.sequences[src.index[i][0]].side == "left"]
    s = src[left[0]]
    assert s.side == "left"
    np.testing.assert_allclose(s.mano_shape, betas["left"])
    lab = frames[(*SEQ_LEFT, 0, 0)]
    pm = lab["pose_m"][0].astype(np.float64)
    comps_l = (comps.reshape(45, 15, 3) * [1, -1, -1]).reshape(45, 45)
    mean_l = (mean.reshape(15, 3) * [1, -1, -1]).reshape(45)
    np.testing.assert_allclose(s.mano_pose[3:], mean_l + pm[3:48] @ comps_l, atol=1e-6)
    # a MANO_LEFT.pkl takes precedence over the mirrored right basis
    with open(mano / "MANO_LEFT.pkl", "wb") as f:
        pickle.dump({"hands_components": np.eye(45), "hands_mean": np.zeros(45)}, f)
    c, _m = load_mano_pca(mano, "left")
    np.testing.assert_array_equal(c, np.eye(45))


def test_bad_frames_are_reported(dex_root):
    root, mano, _frames, _, _ = dex_root
    src = DexYCBSource(root, split="val", hands="right", mano_dir=mano)
    with pytest.raises(ValueError, match="no hand annotation"):
        src[1]  # camera 0, frame 1
    color, _label = src.paths(2)
    color.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(color))):
        src[2]
    assert src.load(2, image=False).image.size == 0  # labels still load
    _, label3 = src.paths(3)
    label3.write_bytes(label3.read_bytes()[:100])
    with pytest.raises(ValueError, match=re.escape(str(label3))):
        src[3]
    report = scan(src)
    assert sorted(i for i, _, _ in report.bad) == [1, 3]
    assert len(report.good) == 14
    assert any("no hand annotation" in why for _, _, why in report.bad)
    with pytest.raises(ValueError, match="mano_dir"):
        DexYCBSource(root, split="val")
    with pytest.raises(ValueError, match="split"):
        DexYCBSource(root, split="dev", mano_dir=mano)
