"""Left-hand synthetic scenes: the mirrored right-hand scene of the same seed, labelled left."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from homae_model.cli.synth import main as synth_main
from homae_model.data.synth_scene import DEFAULT_MANO_PATH, SceneGenerator, SynthConfig
from homae_model.hand.mano import ManoLayer

pytestmark = pytest.mark.skipif(
    not DEFAULT_MANO_PATH.is_file(), reason=f"bundled hand model missing: {DEFAULT_MANO_PATH}"
)

SIZE = 96
M = np.array([-1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def twins() -> list[tuple]:
    right = SceneGenerator(SynthConfig(width=SIZE, height=SIZE))
    left = SceneGenerator(SynthConfig(width=SIZE, height=SIZE, left_fraction=1.0))
    return [(right.generate(i, seed=5).raw, left.generate(i, seed=5).raw) for i in range(3)]


def test_left_scene_is_the_mirrored_right_scene(twins) -> None:
    lib = SceneGenerator().library
    layer = ManoLayer(str(DEFAULT_MANO_PATH), side="left").eval()
    for r, s in twins:
        assert r.side == "right" and s.side == "left"
        assert s.obj_name == r.obj_name
        np.testing.assert_allclose(s.hand_joints, r.hand_joints * M, atol=1e-6)
        np.testing.assert_allclose(s.obj_trans, r.obj_trans * M, atol=1e-9)
        # the left labels are a left MANO hand: the left layer rebuilds the stored joints
        with torch.no_grad():
            out = layer(
                torch.as_tensor(s.mano_pose[None], dtype=torch.float32),
                torch.as_tensor(s.mano_shape[None], dtype=torch.float32),
                torch.as_tensor(s.mano_transl[None], dtype=torch.float32),
            )
        np.testing.assert_allclose(out.joints[0].numpy(), s.hand_joints, atol=1e-5)
        # the object is the real mesh, posed so that it fills the mirrored object
        verts = lib.get(r.obj_name).vertices
        posed_r = verts @ Rotation.from_rotvec(r.obj_rot).as_matrix().T + r.obj_trans
        posed_l = verts @ Rotation.from_rotvec(s.obj_rot).as_matrix().T + s.obj_trans
        assert cKDTree(posed_r * M).query(posed_l)[0].max() < 1e-6
        # the hand is rendered on the image: hand pixels in the mask, inside the hand box
        ys, xs = np.nonzero(s.masks == 1)
        assert len(xs) > 20
        x0, y0, x1, y1 = s.hand_box
        assert (
            x0 - 1 <= xs.min() and xs.max() <= x1 + 1 and y0 - 1 <= ys.min() and ys.max() <= y1 + 1
        )


def test_left_fraction_mixes_sides_and_keeps_right_samples(twins, tmp_path) -> None:
    mixed = SceneGenerator(SynthConfig(width=SIZE, height=SIZE, left_fraction=0.5))
    sides = [mixed.generate(i, seed=5).raw for i in range(8)]
    names = [s.side for s in sides]
    assert "left" in names and "right" in names
    for i, s in enumerate(sides[:3]):
        r = twins[i][0]
        if s.side == "right":  # unchanged by the option: same bytes as a right-only set
            np.testing.assert_array_equal(s.image, r.image)
    assert synth_main(["--out", str(tmp_path / "x"), "--left-fraction", "1.5", "--quiet"]) == 2
