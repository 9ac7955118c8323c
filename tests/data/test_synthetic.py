"""Synthetic scenes: determinism, reader, label consistency, occlusion, errors, clips, CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from homae_model.cli.synth import main as synth_main
from homae_model.data.grasp import SurfaceSDF
from homae_model.data.npz import read_npz, write_npz
from homae_model.data.synth_scene import DEFAULT_MANO_PATH, SceneGenerator, SynthConfig
from homae_model.data.synth_writer import write_dataset, write_sequence
from homae_model.data.synthetic import SyntheticSource
from homae_model.geometry.camera import project_points
from homae_model.objects.library import ObjectLibrary

pytestmark = pytest.mark.skipif(
    not DEFAULT_MANO_PATH.is_file(), reason=f"bundled hand model missing: {DEFAULT_MANO_PATH}"
)

SIZE = 96
CONFIG = SynthConfig(width=SIZE, height=SIZE, distractor_prob=0.5, save_depth=True)


@pytest.fixture(scope="module")
def generator() -> SceneGenerator:
    return SceneGenerator(CONFIG)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "set"
    write_dataset(root, 4, seed=7, config=CONFIG, progress=False)
    return root


def _mano(generator: SceneGenerator, sample) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        out = generator.mano(
            torch.as_tensor(sample.mano_pose[None], dtype=torch.float32),
            torch.as_tensor(sample.mano_shape[None], dtype=torch.float32),
            torch.as_tensor(sample.mano_transl[None], dtype=torch.float32),
        )
    return out.vertices[0].double().numpy(), out.joints[0].double().numpy()


def test_same_seed_is_byte_identical(dataset: Path, tmp_path: Path) -> None:
    # A second run, in two worker processes, gives the same bytes.
    again = write_dataset(tmp_path / "again", 4, seed=7, config=CONFIG, workers=2, progress=False)
    files = sorted(p.relative_to(dataset) for p in dataset.rglob("*") if p.is_file())
    assert len(files) == 1 + 3 * 4
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (dataset / rel).read_bytes() == (again / rel).read_bytes(), rel
    other = write_dataset(tmp_path / "other", 1, seed=8, config=CONFIG, progress=False)
    assert (other / "ann/000000.npz").read_bytes() != (dataset / "ann/000000.npz").read_bytes()


def test_source_loads_samples(dataset: Path) -> None:
    source = SyntheticSource(dataset)
    assert len(source) == 4
    names = ObjectLibrary.procedural().names
    for i in range(4):
        s = source[i]
        assert s.image.shape == (SIZE, SIZE, 3) and s.image.dtype == np.uint8
        assert s.masks.shape == (SIZE, SIZE) and set(np.unique(s.masks)) <= {0, 1, 2, 3}
        assert s.obj_name in names and s.side == "right"
        assert s.source.endswith(f"ann/{i:06d}.npz")
        assert 0.0 <= s.hand_visible <= 1.0 and 0.0 <= s.obj_visible <= 1.0
        assert s.image.std() > 5  # not a blank image
    assert source.annotation(0)["depth"].shape == (SIZE, SIZE)
    with pytest.raises(IndexError):
        source[4]


def test_labels_are_consistent(dataset: Path, generator: SceneGenerator) -> None:
    source = SyntheticSource(dataset)
    lib = ObjectLibrary.procedural()
    for i in range(len(source)):
        s = source[i]
        np.testing.assert_allclose(s.hand_joints_2d, project_points(s.hand_joints, s.K), atol=1e-4)
        verts, joints = _mano(generator, s)
        np.testing.assert_allclose(joints, s.hand_joints, atol=1e-5)
        assert np.all(joints[:, 2] > 0.2) and np.all(joints[:, 2] < 1.0)
        # Most projected hand vertices land on hand/object/occluder pixels (front faces visible,
        # back faces hidden behind the hand itself or the object).
        uv = np.rint(project_points(verts, s.K)).astype(int)
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < SIZE) & (uv[:, 1] >= 0) & (uv[:, 1] < SIZE)
        labels = s.masks[uv[inside, 1], uv[inside, 0]]
        assert np.mean(labels > 0) > 0.85  # tiny image: silhouette vertices round off
        near_fg = cv2.dilate((s.masks > 0).astype(np.uint8), np.ones((3, 3), np.uint8))
        assert np.mean(near_fg[uv[inside, 1], uv[inside, 0]]) > 0.99
        assert ((s.masks == 1).sum() > 0) == (s.hand_visible > 0)
        assert ((s.masks == 2).sum() > 0) == (s.obj_visible > 0)
        # The object's pose puts its model where the mask says it is.
        mesh = lib.get(s.obj_name)
        from scipy.spatial.transform import Rotation

        pts = mesh.vertices @ Rotation.from_rotvec(s.obj_rot).as_matrix().T + s.obj_trans
        uv = np.rint(project_points(pts, s.K)).astype(int)
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < SIZE) & (uv[:, 1] >= 0) & (uv[:, 1] < SIZE)
        assert np.mean(s.masks[uv[inside, 1], uv[inside, 0]] > 0) > 0.9
        # Boxes contain the visible mask pixels of their part.
        for label, box in ((1, s.hand_box), (2, s.obj_box)):
            ys, xs = np.nonzero(s.masks == label)
            if len(xs):
                assert xs.min() >= box[0] - 1 and xs.max() <= box[2] + 1
                assert ys.min() >= box[1] - 1 and ys.max() <= box[3] + 1


def test_hand_touches_object_without_deep_penetration(generator: SceneGenerator) -> None:
    lib = generator.library
    from scipy.spatial.transform import Rotation

    for i in range(3):
        s = generator.generate(i, seed=11, distractors=False).raw
        verts, _ = _mano(generator, s)
        R = Rotation.from_rotvec(s.obj_rot).as_matrix()
        sdf = SurfaceSDF(lib.get(s.obj_name))((verts - s.obj_trans) @ R)
        assert sdf.min() > -0.01, f"deep interpenetration {sdf.min():.4f} m"
        assert np.sum(np.abs(sdf) < 0.004) >= 10, "hand does not touch the object"
        # Fingers are flexed (a grasp, not a flat hand).
        assert np.linalg.norm(s.mano_pose[3:]) > 0.5


def test_distractor_lowers_visibility(generator: SceneGenerator) -> None:
    lowered = 0
    for i in range(4):
        clear = generator.generate(i, seed=5, distractors=False)
        occluded = generator.generate(i, seed=5, distractors=True)
        np.testing.assert_array_equal(clear.raw.mano_pose, occluded.raw.mano_pose)
        assert clear.num_distractors == 0 and occluded.num_distractors >= 1
        assert 3 not in clear.raw.masks and (occluded.raw.masks == 3).any()
        before = clear.raw.hand_visible + clear.raw.obj_visible
        after = occluded.raw.hand_visible + occluded.raw.obj_visible
        assert after <= before + 1e-9
        lowered += after < before - 0.01
        for v in (clear.raw.hand_visible, clear.raw.obj_visible, occluded.raw.hand_visible):
            assert 0.0 <= v <= 1.0
    assert lowered >= 3


def _copy(dataset: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(dataset, dst)
    return dst


def test_read_npz_matches_numpy_and_names_damaged_files(tmp_path: Path) -> None:
    arrays = {
        "f32": np.arange(12, dtype=np.float32).reshape(4, 3),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "name": np.array("obj_003_cracker_box"),
        "scalar": np.array(0.25),
        "empty": np.zeros((0, 3)),
        "flags": np.array([True, False]),
        "big_endian": np.arange(3, dtype=">i4"),
    }
    path = tmp_path / "a.npz"
    write_npz(path, arrays)
    got = read_npz(path)
    with np.load(path) as ref:
        assert sorted(got) == sorted(ref.files)
        for key in ref.files:
            assert got[key].dtype == ref[key].dtype and got[key].shape == ref[key].shape, key
            np.testing.assert_array_equal(got[key], ref[key])
    got["f32"][0, 0] = 7.0  # arrays are writable copies, not views of the file buffer
    data = bytearray(path.read_bytes())
    at = data.index(b"'descr'")
    data[at : at + 7] = b"'desc_'"  # a damaged .npy header inside an intact archive
    (tmp_path / "b.npz").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"b\.npz.*(truncated|corrupt)"):
        read_npz(tmp_path / "b.npz")


def test_bad_data_errors_name_the_file(dataset: Path, tmp_path: Path) -> None:
    root = _copy(dataset, tmp_path)
    source = SyntheticSource(root)
    (root / "rgb/000001.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"rgb[/\\]000001\.png"):
        source[1]
    ann = root / "ann/000002.npz"
    ann.write_bytes(ann.read_bytes()[:300])
    with pytest.raises(ValueError, match=r"000002\.npz.*(truncated|corrupt)"):
        source[2]
    data = dict(np.load(root / "ann/000003.npz"))
    data["hand_joints"][4, 1] = np.nan
    write_npz(root / "ann/000003.npz", data)
    with pytest.raises(ValueError, match=r"000003\.npz.*hand_joints.*NaN"):
        source[3]
    data = dict(np.load(root / "ann/000000.npz"))
    data["obj_name"] = np.array("999_unicorn")
    write_npz(root / "ann/000000.npz", data)
    with pytest.raises(ValueError, match=r"000000\.npz.*unknown object name '999_unicorn'"):
        source[0]
    (root / "meta.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"meta\.json"):
        SyntheticSource(root)


def test_sequence_clip(tmp_path: Path) -> None:
    config = SynthConfig(width=64, height=48)
    root = write_sequence(tmp_path / "clip", seed=3, num_frames=12, fps=15.0, config=config)
    info = yaml.safe_load((root / "camera_info.yaml").read_text())
    assert (info["width"], info["height"], info["distortion_model"]) == (64, 48, "plumb_bob")
    assert len(info["K"]) == 9 and len(info["P"]) == 12 and len(info["D"]) == 5
    source = SyntheticSource(root)
    assert len(source) == 12 and source.sequence is not None
    np.testing.assert_allclose(source.sequence.timestamps, np.arange(12) / 15.0)
    frames = [source[i] for i in range(12)]
    for f in frames:
        np.testing.assert_allclose(f.K.ravel(), info["K"])
    wrists = np.array([f.hand_joints[0] for f in frames])
    steps = np.linalg.norm(np.diff(wrists, axis=0), axis=1)
    assert steps.max() < 0.05  # smooth: at most 1.5x the mean speed of a 12 cm move
    assert np.linalg.norm(wrists[-1] - wrists[0]) > 0.1  # but it does move
    objs = np.array([f.obj_trans for f in frames])
    np.testing.assert_allclose(objs[1], objs[0])  # object rests while the hand approaches
    assert np.linalg.norm(objs[-1] - objs[0]) == pytest.approx(0.12, abs=1e-6)  # lifted


def test_cli_writes_set_and_contact_sheet(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    code = synth_main(
        ["--out", str(out), "--num", "2", "--seed", "1", "--size", "80x64", "--quiet"]
    )
    assert code == 0
    assert (out / "contact_sheet.png").stat().st_size > 1000
    assert len(SyntheticSource(out)) == 2
    assert synth_main(["--out", str(out), "--num", "1", "--ycb", str(tmp_path / "none")]) == 1
    with pytest.raises(SystemExit):
        synth_main(["--out", str(out), "--size", "big"])


def test_surface_sdf_matches_analytic_box() -> None:
    mesh = ObjectLibrary.procedural(["036_wood_block"]).get("036_wood_block")
    sdf = SurfaceSDF(mesh)
    pts = np.random.default_rng(0).uniform(-0.15, 0.15, (5000, 3))
    q = np.abs(pts) - np.array([0.0425, 0.0425, 0.1])
    true = np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0)
    got = sdf(pts)
    near = np.abs(true) < 0.02
    assert np.abs(got - true)[near].mean() < 0.001
    assert np.abs(got - true)[near].max() < 0.004
    clear = np.abs(true) > 0.004
    np.testing.assert_array_equal(np.sign(got[clear]), np.sign(true[clear]))
    far = np.array([[0.5, 0.0, 0.0]])  # outside the padded grid
    assert sdf(far)[0] == pytest.approx(0.5 - 0.0425, abs=0.005)
