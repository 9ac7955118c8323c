"""The synthetic MANO-format hand through ManoLayer (smplx): shapes, anatomy, rig, errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import torch

from homae_model.hand import BUNDLED_MODEL_PATH
from homae_model.hand.constants import (
    FINGERTIP_IDS_HO3D,
    FINGERTIP_IDS_MANOPTH_RIGHT,
    JOINT_NAMES,
    MANO_FINGER_JOINTS,
    MANO_PARENTS,
    MANO_REQUIRED_SHAPES,
    MANO_TO_PROJECT,
    MIDDLE_MCP,
    SKELETON_EDGES,
)
from homae_model.hand.mano import ManoLayer, flexion_axes, load_mano_dict
from homae_model.hand.synthetic_hand import build_synthetic_hand, save_mano_pickle

F64 = torch.float64


@pytest.fixture(scope="module")
def layer(hand_file: Path) -> ManoLayer:
    return ManoLayer(hand_file, dtype=F64)


def _rest(layer: ManoLayer, betas: torch.Tensor | None = None):
    return layer(torch.zeros(1, 48, dtype=F64), betas)


def _mano16(joints21: torch.Tensor) -> torch.Tensor:
    """Project-order joints -> MANO-order 16 joints."""
    inv = {m: p for p, m in enumerate(MANO_TO_PROJECT)}
    return joints21[..., [inv[i] for i in range(16)], :]


def test_constants_are_consistent() -> None:
    assert len(JOINT_NAMES) == 21 and JOINT_NAMES[MIDDLE_MCP] == "middle1"
    assert sorted(MANO_TO_PROJECT) == list(range(21))
    assert len(SKELETON_EDGES) == 20
    assert all(JOINT_NAMES[c].startswith(JOINT_NAMES[p][:4]) or p == 0 for p, c in SKELETON_EDGES)


def test_bundled_file_loads_through_smplx_and_matches_the_builder(model: dict) -> None:
    layer = ManoLayer(BUNDLED_MODEL_PATH)
    out = layer(torch.zeros(2, 48), torch.zeros(2, 10), torch.zeros(2, 3))
    assert out.vertices.shape == (2, 778, 3) and out.joints.shape == (2, 21, 3)
    assert layer.faces.shape == (1538, 3) and layer.faces.dtype == torch.int64
    assert BUNDLED_MODEL_PATH.stat().st_size < 4 * 2**20
    bundled = load_mano_dict(BUNDLED_MODEL_PATH)  # the committed asset is the current builder's
    for key in ("v_template", "weights", "posedirs", "shapedirs", "f", "fingertip_ids"):
        np.testing.assert_allclose(bundled[key], model[key], atol=1e-12, err_msg=key)
    np.testing.assert_allclose(bundled["J_regressor"].toarray(), model["J_regressor"].toarray())


def test_model_dict_format(model: dict) -> None:
    for key, shape in MANO_REQUIRED_SHAPES.items():
        assert model[key].shape == shape, key
    assert scipy.sparse.isspmatrix_csc(model["J_regressor"])
    for key in ("v_template", "weights", "posedirs", "shapedirs", "J_regressor"):
        assert model[key].dtype == np.float64, key
    assert model["kintree_table"][0].tolist() == list(MANO_PARENTS)
    w = model["weights"]
    assert w.min() >= 0 and np.abs(w.sum(1) - 1).max() < 1e-12
    reg = model["J_regressor"].toarray()
    assert reg.min() >= 0 and np.allclose(reg.sum(1), 1)
    np.testing.assert_allclose(reg @ model["v_template"], model["J"])
    assert np.abs(model["posedirs"]).max() > 0  # correctives present
    np.testing.assert_array_equal(model["hands_components"], np.eye(45))


def test_deterministic_per_seed(model: dict) -> None:
    again = build_synthetic_hand(0)
    np.testing.assert_array_equal(again["v_template"], model["v_template"])
    other = build_synthetic_hand(3)
    np.testing.assert_array_equal(other["f"], model["f"])
    assert np.abs(other["v_template"] - model["v_template"]).max() > 1e-3
    np.testing.assert_array_equal(build_synthetic_hand(3)["v_template"], other["v_template"])


def test_rest_pose_is_hand_like(layer: ManoLayer) -> None:
    out = _rest(layer)
    v, j = out.vertices[0].numpy(), out.joints[0].numpy()
    length = np.linalg.norm(j[12] - j[0])  # wrist -> middle tip
    assert 0.17 < length < 0.20
    palm_centre = j[[0, 5, 9, 13, 17]].mean(0)
    tips = j[[4, 8, 12, 16, 20]]
    assert (np.linalg.norm(tips - palm_centre, axis=1) > 0.05).all()
    lo, hi = v.min(0), v.max(0)
    assert ((j >= lo - 1e-9) & (j <= hi + 1e-9)).all()
    # Tips are mesh vertices (the layer's fingertip ids), in thumb..pinky order.
    np.testing.assert_allclose(tips, v[layer.fingertip_ids.numpy()])
    # MANO's axes: fingers along -x, thumb on +z, palm facing -y; bones 1.3-4.5 cm.
    assert (tips[1:, 0] < j[0, 0] - 0.12).all()
    assert j[4, 2] > j[8, 2] > j[12, 2] > j[16, 2] > j[20, 2]
    bones = np.array([np.linalg.norm(j[c] - j[p]) for p, c in SKELETON_EDGES])
    assert bones.min() > 0.012 and bones.max() < 0.11
    mcp_span = np.linalg.norm(j[5] - j[17])
    assert 0.05 < mcp_span < 0.07


def test_tip_vertices_are_the_digit_ends(model: dict) -> None:
    v, w = model["v_template"], model["weights"]
    j = model["J"]
    for tip, name in zip(
        model["fingertip_ids"], ("thumb", "index", "middle", "ring", "pinky"), strict=True
    ):
        last = MANO_FINGER_JOINTS[name][2]
        members = np.flatnonzero(w[:, last] > 0.5)
        direction = v[tip] - j[last]
        assert tip in members
        proj = (v[members] - j[last]) @ direction
        assert proj.max() == pytest.approx(direction @ direction)


def _bend(chain: tuple[int, ...], axes: np.ndarray, angle: float) -> torch.Tensor:
    pose = torch.zeros(1, 48, dtype=F64)
    for k in chain:
        pose[0, 3 * k : 3 * k + 3] = torch.as_tensor(axes[k - 1] * angle)
    return pose


def test_bending_the_index_moves_only_the_index(layer: ManoLayer, model: dict) -> None:
    rest = _rest(layer)
    axes = flexion_axes(model["J"])
    bent = layer(_bend(MANO_FINGER_JOINTS["index"], axes, 1.0))
    moved = (bent.vertices - rest.vertices)[0].norm(dim=-1).numpy()
    w = model["weights"]
    owner = w.argmax(1)
    index_joints = set(MANO_FINGER_JOINTS["index"])
    others = [j for name, c in MANO_FINGER_JOINTS.items() if name != "index" for j in c]
    assert np.isin(owner, others).sum() > 400
    assert moved[np.isin(owner, others)].max() < 1e-6
    far = np.linalg.norm(model["v_template"] - model["J"][1], axis=1) > 0.04
    assert moved[far & (owner == 0)].max() < 1e-6
    assert moved[np.isin(owner, [2, 3])].min() > 5e-3  # the whole distal index moves
    assert set(np.flatnonzero(moved > 1e-6)) <= set(np.flatnonzero(w[:, list(index_joints)].sum(1)))
    tip_rest, tip_bent = rest.joints[0, 8].numpy(), bent.joints[0, 8].numpy()
    assert np.linalg.norm(tip_bent - tip_rest) > 0.03
    assert tip_bent[1] < tip_rest[1] - 0.02  # toward the palm (-y)
    torch.testing.assert_close(bent.joints[0, 12], rest.joints[0, 12])  # middle tip still


def test_fist_keeps_the_mesh_sane(layer: ManoLayer, model: dict) -> None:
    axes = flexion_axes(model["J"])
    chains = [c for n, c in MANO_FINGER_JOINTS.items() if n != "thumb"]
    pose = sum(_bend(c, axes, 1.2) for c in chains)
    out = layer(pose)
    j = out.joints[0].numpy()
    palm_centre = j[[0, 5, 9, 13, 17]].mean(0)
    # Curled fingertips come back near the palm.
    assert (np.linalg.norm(j[[8, 12, 16, 20]] - palm_centre, axis=1) < 0.07).all()
    edges = np.concatenate([model["f"][:, [0, 1]], model["f"][:, [1, 2]]])
    length = lambda v: np.linalg.norm(v[edges[:, 0]] - v[edges[:, 1]], axis=1)  # noqa: E731
    ratio = length(out.vertices[0].numpy()) / length(model["v_template"])
    assert 0.15 < ratio.min() and ratio.max() < 2.5  # no collapsed / torn triangles


def test_pose_correctives_are_local(layer: ManoLayer, model: dict) -> None:
    pd = model["posedirs"]
    w = model["weights"]
    for j in range(1, 16):
        touched = np.abs(pd[:, :, 9 * (j - 1) : 9 * j]).sum((1, 2)) > 0
        assert touched.any()
        assert (w[touched, j] > 0).all()


def test_shape_directions_change_size_plausibly(layer: ManoLayer) -> None:
    base = _rest(layer)
    j0 = base.joints[0].numpy()

    def measure(k: int, value: float):
        betas = torch.zeros(1, 10, dtype=F64)
        betas[0, k] = value
        out = _rest(layer, betas)
        j = out.joints[0].numpy()
        disp = (out.vertices - base.vertices)[0].norm(dim=-1).max().item()
        length = np.linalg.norm(j[12] - j[0]) / np.linalg.norm(j0[12] - j0[0])
        span = np.linalg.norm(j[5] - j[17]) / np.linalg.norm(j0[5] - j0[17])
        return length, span, disp

    assert measure(0, 2.0)[:2] == pytest.approx((1.10, 1.10), abs=0.01)  # overall size
    assert measure(0, -2.0)[:2] == pytest.approx((0.90, 0.90), abs=0.01)
    length, span, _ = measure(1, 2.0)  # palm width
    assert length == pytest.approx(1.0, abs=0.005) and span > 1.07
    length, span, _ = measure(2, 2.0)  # finger length
    assert 1.03 < length < 1.07 and span == pytest.approx(1.0, abs=0.005)
    for k in range(10):
        disp = measure(k, 2.0)[2]
        assert 5e-4 < disp < 0.025, k  # every direction does something, none is extreme


def test_flexion_axes_point_the_right_way(model: dict) -> None:
    axes = flexion_axes(model["J"])
    assert axes.shape == (15, 3)
    np.testing.assert_allclose(np.linalg.norm(axes, axis=1), 1.0)
    assert (axes[:12, 2] > 0.9).all()  # fingers bend about +z (as in MANO's right hand)
    left = flexion_axes(model["J"] * np.array([-1, 1, 1]), side="left")
    np.testing.assert_allclose(left, axes * np.array([-1, 1, 1]) * -1, atol=1e-12)


def test_gradients_flow(layer: ManoLayer) -> None:
    pose = torch.zeros(2, 48, dtype=F64, requires_grad=True)
    shape = torch.zeros(2, 10, dtype=F64, requires_grad=True)
    out = layer(pose, shape, torch.zeros(2, 3, dtype=F64))
    out.joints.sum().backward()
    assert torch.isfinite(pose.grad).all() and shape.grad.abs().sum() > 0
    assert sum(p.numel() for p in layer.parameters()) == 0


def test_translation_and_none_arguments(layer: ManoLayer) -> None:
    t = torch.tensor([[0.1, -0.2, 0.5]], dtype=F64)
    a = layer(torch.zeros(1, 48, dtype=F64), None, None)
    b = layer(torch.zeros(1, 48, dtype=F64), torch.zeros(1, 10, dtype=F64), t)
    torch.testing.assert_close(b.vertices, a.vertices + t[:, None])
    torch.testing.assert_close(b.joints, a.joints + t[:, None])


def test_any_file_name_and_folder_layouts(model: dict, tmp_path: Path) -> None:
    odd = save_mano_pickle(model, tmp_path / "my_hand_v2.pkl")
    nested = save_mano_pickle(model, tmp_path / "models" / "mano" / "MANO_RIGHT.pkl")
    ref = ManoLayer(odd)(torch.zeros(1, 48)).vertices
    torch.testing.assert_close(ManoLayer(tmp_path / "models")(torch.zeros(1, 48)).vertices, ref)
    torch.testing.assert_close(ManoLayer(nested.parent)(torch.zeros(1, 48)).vertices, ref)


def test_real_mano_style_file_uses_manopth_tips(model: dict, tmp_path: Path) -> None:
    plain = {k: v for k, v in model.items() if k != "fingertip_ids"}
    path = save_mano_pickle(plain, tmp_path / "MANO_RIGHT.pkl")
    layer = ManoLayer(path)
    assert layer.fingertip_ids.tolist() == list(FINGERTIP_IDS_MANOPTH_RIGHT)
    out = layer(torch.zeros(1, 48))
    torch.testing.assert_close(out.joints[0, 4], out.vertices[0, 745])


def test_fingertip_conventions(model: dict, tmp_path: Path) -> None:
    plain = {k: v for k, v in model.items() if k != "fingertip_ids"}
    path = save_mano_pickle(plain, tmp_path / "MANO_RIGHT.pkl")
    layer = ManoLayer(path, fingertips="ho3d")
    assert layer.fingertip_ids.tolist() == list(FINGERTIP_IDS_HO3D)
    assert layer.fingertip_source == "ho3d"
    out = layer(torch.zeros(1, 48))
    for joint, vertex in zip((4, 8, 12, 16, 20), FINGERTIP_IDS_HO3D, strict=True):
        torch.testing.assert_close(out.joints[0, joint], out.vertices[0, vertex])
    assert layer.set_fingertips("manopth") == "manopth"
    assert layer.fingertip_ids.tolist() == list(FINGERTIP_IDS_MANOPTH_RIGHT)
    assert layer.set_fingertips(None) == "manopth"  # the default, as before
    assert layer.set_fingertips([1, 2, 3, 4, 5]) == "explicit"
    assert layer.fingertip_ids.tolist() == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="unknown fingertip convention 'freihand'"):
        layer.set_fingertips("freihand")
    with pytest.raises(ValueError, match="5 vertex ids"):
        ManoLayer(path, fingertips=[1, 2, 3])
    # A file with its own tips (the synthetic hand: not MANO's vertex ids) keeps them.
    own = ManoLayer(BUNDLED_MODEL_PATH, fingertips="ho3d")
    assert own.fingertip_source == "model file"
    stored = load_mano_dict(BUNDLED_MODEL_PATH)["fingertip_ids"]
    assert own.fingertip_ids.tolist() == stored.tolist()


def test_errors_name_the_problem(model: dict, tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "MANO_RIGHT.pkl"
    with pytest.raises(FileNotFoundError, match="nope"):
        ManoLayer(missing)
    with pytest.raises(FileNotFoundError, match=r"MANO_RIGHT\.pkl"):
        ManoLayer(tmp_path)
    broken = {k: v for k, v in model.items() if k != "shapedirs"}
    path = save_mano_pickle(broken, tmp_path / "broken" / "MANO_RIGHT.pkl")
    with pytest.raises(KeyError, match=r"shapedirs.*|.*broken") as info:
        ManoLayer(path)
    assert "shapedirs" in str(info.value) and str(path) in str(info.value)
    bad = dict(model, weights=model["weights"][:, :15])
    path = save_mano_pickle(bad, tmp_path / "bad" / "MANO_RIGHT.pkl")
    with pytest.raises(ValueError, match=r"weights.*778, 15"):
        ManoLayer(path)
    with pytest.raises(ValueError, match="side"):
        ManoLayer(BUNDLED_MODEL_PATH, side="middle")
    layer = ManoLayer(BUNDLED_MODEL_PATH)
    with pytest.raises(ValueError, match="pose"):
        layer(torch.zeros(1, 45))
    with pytest.raises(ValueError, match="shape"):
        layer(torch.zeros(2, 48), torch.zeros(2, 11))
    with pytest.raises(ValueError, match="transl"):
        layer(torch.zeros(2, 48), torch.zeros(2, 10), torch.zeros(1, 3))


def test_pickle_is_plain(hand_file: Path) -> None:
    with hand_file.open("rb") as fh:
        data = pickle.load(fh)
    assert {type(v).__module__.split(".")[0] for v in data.values()} <= {
        "numpy",
        "scipy",
        "builtins",
    }
