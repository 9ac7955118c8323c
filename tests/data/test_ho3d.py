import pickle
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from homae_model.data.ho3d import HO3D_TO_PROJECT, HO3DEvalSample, HO3DSource

CAM = np.array([[614.0, 0.0, 312.0], [0.0, 613.0, 241.0], [0.0, 0.0, 1.0]])
GL = np.diag([1.0, -1.0, -1.0])


def write_frame(root: Path, split: str, seq: str, frame: str, meta: dict, seg: bool = True) -> None:
    folder = root / split / seq
    for sub in ("rgb", "meta", "seg"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[10:20, 30:40] = (250, 10, 5)  # RGB red patch
    cv2.imwrite(str(folder / "rgb" / f"{frame}.png"), rgb[:, :, ::-1])
    with open(folder / "meta" / f"{frame}.pkl", "wb") as f:
        pickle.dump(meta, f)
    if seg:
        s = np.zeros((240, 320, 3), np.uint8)  # HO3D seg is smaller than the image
        s[0:50, 0:50] = (0, 0, 255)  # BGR red: hand
        s[100:150, 100:150] = (255, 0, 0)  # BGR blue: object
        cv2.imwrite(str(folder / "seg" / f"{frame}.jpg"), s)


def train_meta(rng: np.random.Generator) -> dict:
    joints_gl = rng.uniform([-0.1, -0.1, -0.6], [0.1, 0.1, -0.4], size=(21, 3))
    corners_gl = rng.uniform([-0.1, -0.1, -0.6], [0.1, 0.1, -0.4], size=(8, 3))
    return {
        "handPose": rng.normal(0, 0.3, 48).astype(np.float32),
        "handBeta": rng.normal(0, 1, 10),
        "handTrans": np.array([0.02, -0.03, -0.5]),
        "handJoints3D": joints_gl,
        "camMat": CAM,
        "objRot": np.array([[0.4], [-0.3], [1.2]]),
        "objTrans": np.array([0.05, 0.01, -0.55]),
        "objName": "006_mustard_bottle",
        "objLabel": 5,
        "objCorners3D": corners_gl,
        "objCorners3DRest": corners_gl - corners_gl.mean(0),
    }


@pytest.fixture()
def ho3d_root(tmp_path: Path) -> tuple[Path, list[dict]]:
    rng = np.random.default_rng(0)
    metas = [train_meta(rng) for _ in range(2)]
    write_frame(tmp_path, "train", "ABF10", "0000", metas[0])
    write_frame(tmp_path, "train", "MC1", "0007", metas[1], seg=False)
    (tmp_path / "train.txt").write_text("ABF10/0000\nMC1/0007\n")
    ev = {
        "handJoints3D": np.array([0.01, 0.02, -0.5]),
        "handBoundingBox": np.array([100.0, 120.0, 220.0, 260.0]),
        "camMat": CAM,
        "objRot": np.array([0.1, 0.2, 0.3]),
        "objTrans": np.array([0.0, 0.05, -0.6]),
        "objName": "010_potted_meat_can",
        "objCorners3D": metas[0]["objCorners3D"],
        "handPose": None,
    }
    write_frame(tmp_path, "evaluation", "SM1", "0001", ev)
    (tmp_path / "evaluation.txt").write_text("SM1/0001\n")
    return tmp_path, metas


def test_train_fields_units_and_axes(ho3d_root):
    root, metas = ho3d_root
    src = HO3DSource(root, "train")
    assert len(src) == 2
    s = src[0]
    m = metas[0]
    np.testing.assert_array_equal(s.K, CAM)
    assert s.side == "right" and s.obj_name == "006_mustard_bottle"
    assert s.source.endswith("ABF10/meta/0000.pkl")
    # OpenGL -> OpenCV: y and z negated; HO3D (MANO) order -> project order
    j = m["handJoints3D"]
    np.testing.assert_allclose(s.hand_joints[0], [j[0, 0], -j[0, 1], -j[0, 2]])
    np.testing.assert_allclose(s.hand_joints[1], [j[13, 0], -j[13, 1], -j[13, 2]])  # thumb1
    np.testing.assert_allclose(s.hand_joints[4], [j[16, 0], -j[16, 1], -j[16, 2]])  # thumb tip
    np.testing.assert_allclose(s.hand_joints[5], j[1] * [1, -1, -1])  # index1
    np.testing.assert_allclose(s.hand_joints[13], j[10] * [1, -1, -1])  # ring1
    np.testing.assert_allclose(s.hand_joints[20], j[20] * [1, -1, -1])  # pinky tip
    assert np.all(s.hand_joints[:, 2] > 0)
    assert list(HO3D_TO_PROJECT) == [
        0,
        13,
        14,
        15,
        16,
        1,
        2,
        3,
        17,
        4,
        5,
        6,
        18,
        10,
        11,
        12,
        19,
        7,
        8,
        9,
        20,
    ]
    # 2D = projection; boxes
    uv = s.hand_joints @ CAM.T
    np.testing.assert_allclose(s.hand_joints_2d, uv[:, :2] / uv[:, 2:])
    np.testing.assert_allclose(s.hand_box, [*s.hand_joints_2d.min(0), *s.hand_joints_2d.max(0)])
    c = m["objCorners3D"] * [1, -1, -1]
    cuv = c @ CAM.T
    cuv = cuv[:, :2] / cuv[:, 2:]
    np.testing.assert_allclose(s.obj_box, [*cuv.min(0), *cuv.max(0)])
    # object pose
    np.testing.assert_allclose(s.obj_trans, [0.05, -0.01, 0.55])
    R_gl = Rotation.from_rotvec(m["objRot"].ravel()).as_matrix()
    np.testing.assert_allclose(Rotation.from_rotvec(s.obj_rot).as_matrix(), GL @ R_gl, atol=1e-12)
    # MANO: flat-mean finger pose unchanged, global orientation and translation converted
    np.testing.assert_allclose(s.mano_pose[3:], m["handPose"][3:].astype(np.float64))
    R_g = Rotation.from_rotvec(m["handPose"][:3].astype(np.float64)).as_matrix()
    np.testing.assert_allclose(
        Rotation.from_rotvec(s.mano_pose[:3]).as_matrix(), GL @ R_g, atol=1e-6
    )
    root_rest = j[0] - m["handTrans"]
    np.testing.assert_allclose(s.mano_transl, GL @ (root_rest + m["handTrans"]) - root_rest)
    np.testing.assert_allclose(s.mano_shape, m["handBeta"])
    # image is RGB; masks from the (smaller) seg image
    assert tuple(s.image[15, 35]) == (250, 10, 5)  # PNG is lossless
    assert s.masks.shape == (480, 640)
    assert s.masks[50, 50] == 1 and s.masks[250, 250] == 2 and s.masks[400, 600] == 0
    assert src[1].masks is None


def test_mano_translation_conversion_reproduces_the_mesh():
    """MANO-like model X = R_g (X_rest - root) + root + t: OpenCV params give GL @ X."""
    from homae_model.data.transforms import rotate_mano

    rng = np.random.default_rng(1)
    rest = rng.normal(0, 0.05, (30, 3))
    root = rest[0]
    pose = rng.normal(0, 0.5, 48)
    t = np.array([0.02, 0.1, -0.5])

    def model(p, tr):
        return (rest - root) @ Rotation.from_rotvec(p[:3]).as_matrix().T + root + tr

    X_gl = model(pose, t)
    pose_cv, t_cv = rotate_mano(pose, t, root, GL)
    np.testing.assert_allclose(model(pose_cv, t_cv), X_gl @ GL.T, atol=1e-12)


def test_evaluation_split(ho3d_root):
    root, _ = ho3d_root
    src = HO3DSource(root, "evaluation")
    s = src[0]
    assert isinstance(s, HO3DEvalSample)
    np.testing.assert_allclose(s.root_joint, [0.01, -0.02, 0.5])
    np.testing.assert_allclose(s.hand_box, [100, 120, 220, 260])
    np.testing.assert_allclose(s.obj_trans, [0.0, -0.05, 0.6])
    assert s.obj_name == "010_potted_meat_can" and s.image.shape == (480, 640, 3)
    assert src.load(0, image=False).image.size == 0


def test_bad_data_errors_name_the_file(ho3d_root):
    root, metas = ho3d_root
    src = HO3DSource(root, "train")
    (root / "train" / "ABF10" / "rgb" / "0000.png").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape("ABF10/rgb/0000.png")):
        src[0]
    meta_file = root / "train" / "MC1" / "meta" / "0007.pkl"
    data = meta_file.read_bytes()
    meta_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=re.escape("MC1/meta/0007.pkl")):
        src[1]
    bad = dict(metas[1])
    bad["handJoints3D"] = bad["handJoints3D"].copy()
    bad["handJoints3D"][3, 1] = np.nan
    meta_file.write_bytes(pickle.dumps(bad))
    with pytest.raises(ValueError, match=r"0007.pkl.*handJoints3D.*NaN"):
        src[1]
    bad["handJoints3D"] = metas[1]["handJoints3D"]
    bad["objRot"] = None
    meta_file.write_bytes(pickle.dumps(bad))
    with pytest.raises(ValueError, match=r"0007.pkl.*objRot"):
        src[1]
    with pytest.raises(ValueError, match="split"):
        HO3DSource(root, "test")
    with pytest.raises(FileNotFoundError, match=re.escape("nowhere/train.txt")):
        HO3DSource(root / "nowhere", "train")


def test_ho3d_fingertip_convention_reproduces_the_loaders_joints(tmp_path):
    """HO3D's labels: MANO's 16 joints + vertices 744, 333, 444, 555, 672 (its setup_mano.py).

    handJoints3D is built here the way HO3D builds it, from MANO parameters in its OpenGL frame;
    the loader's joints (OpenCV, project order) are then reproduced by the project's hand layer
    from the loader's MANO parameters with the "ho3d" convention, and not with manopth's tips.
    """
    import torch

    from homae_model.data.sources import open_source
    from homae_model.hand import BUNDLED_MODEL_PATH
    from homae_model.hand.constants import FINGERTIP_IDS_HO3D, MANO_TO_PROJECT
    from homae_model.hand.mano import ManoLayer, load_mano_dict
    from homae_model.hand.synthetic_hand import save_mano_pickle

    # A MANO-format file without its own tip ids stands for real MANO (same vertex count).
    plain = {k: v for k, v in load_mano_dict(BUNDLED_MODEL_PATH).items() if k != "fingertip_ids"}
    mano_file = save_mano_pickle(plain, tmp_path / "mano" / "MANO_RIGHT.pkl")
    rng = np.random.default_rng(3)
    pose = rng.normal(0, 0.3, 48)
    pose[:3] = [2.8, 0.3, -0.2]  # a hand seen from a camera looking down -z (OpenGL)
    beta = rng.normal(0, 1, 10)
    trans = np.array([0.03, -0.02, -0.45])

    # HO3D's joints: MANO joints (MANO order) then the five tip vertices, in the GL frame.
    layer = ManoLayer(mano_file, dtype=torch.float64)
    out = layer(torch.as_tensor(pose)[None], torch.as_tensor(beta)[None],
                torch.as_tensor(trans)[None])  # fmt: skip
    verts = out.vertices[0].numpy()
    inv = {m: p for p, m in enumerate(MANO_TO_PROJECT)}
    mano16 = out.joints[0].numpy()[[inv[i] for i in range(16)]]
    joints_gl = np.concatenate([mano16, verts[[744, 333, 444, 555, 672]]])
    assert FINGERTIP_IDS_HO3D == (744, 333, 444, 555, 672)

    meta = train_meta(rng)
    meta.update(handPose=pose, handBeta=beta, handTrans=trans, handJoints3D=joints_gl)
    root = tmp_path / "ho3d"
    write_frame(root, "train", "MC2", "0003", meta, seg=False)
    (root / "train.txt").write_text("MC2/0003\n")
    opened = open_source(root, "train")
    assert opened.fingertips == "ho3d"
    raw = opened.source[0]

    def joints(fingertips: str) -> np.ndarray:
        hand = ManoLayer(mano_file, dtype=torch.float64, fingertips=fingertips)
        res = hand(*(torch.as_tensor(np.asarray(x, np.float64))[None]
                     for x in (raw.mano_pose, raw.mano_shape, raw.mano_transl)))  # fmt: skip
        return res.joints[0].numpy()

    np.testing.assert_allclose(joints("ho3d"), raw.hand_joints, atol=1e-8)
    error = np.linalg.norm(joints("manopth") - raw.hand_joints, axis=1)
    differ = [4, 8, 16, 20]  # thumb, index, ring and pinky tips; the middle tip is 444 in both
    np.testing.assert_allclose(np.delete(error, differ), 0.0, atol=1e-8)
    assert np.all(error[differ] > 1e-4)
