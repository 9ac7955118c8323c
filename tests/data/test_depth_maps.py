"""Dense relative-depth targets: `surface_depth_map` and the pipeline's hand / object maps."""

from dataclasses import replace

import numpy as np

from homae_model.data.depth_maps import surface_depth_map
from homae_model.data.pipeline import DEPTH_MAP_KEYS, TRAINING_KEYS, SamplePipeline
from tests.data.test_pipeline import CFG, MANO_PATH, make_raw, objects  # noqa: F401

K = np.array([[100.0, 0.0, 32.0], [0.0, 100.0, 32.0], [0.0, 0.0, 1.0]])


def test_nearest_surface_per_cell_relative_to_the_reference_and_nan_elsewhere():
    rng = np.random.default_rng(0)
    # a square plate at z = 0.5 m covering the crop's left half (x < 0), and a second plate
    # behind it at z = 0.6 m covering the whole crop: the near one wins where both project
    xy = rng.uniform((-0.16, -0.16), (0.0, 0.16), size=(4000, 2))
    near = np.c_[xy, np.full(len(xy), 0.5)]
    xy = rng.uniform(-0.2, 0.2, size=(8000, 2))
    far = np.c_[xy, np.full(len(xy), 0.6)]
    behind_camera = np.array([[0.0, 0.0, -0.5]])
    m = surface_depth_map(np.r_[near, far, behind_camera], K, 64, 8, ref_depth=0.55)
    assert m.shape == (8, 8) and m.dtype == np.float32
    np.testing.assert_allclose(m[:, :4], -0.05, atol=1e-6)  # left half: the near plate
    np.testing.assert_allclose(m[:, 4:], 0.05, atol=1e-6)  # right half: only the far one
    # nothing: NaN everywhere; points outside the crop are ignored
    empty = surface_depth_map(np.array([[1.0, 1.0, 0.5]]), K, 64, 8, ref_depth=0.5)
    assert np.isnan(empty).all()


def test_pipeline_maps_cover_the_hand_and_the_root_lies_behind_its_front_surface(objects):  # noqa: F811
    cfg = replace(CFG, depth_map_cells=8, rot_prob=0.0)
    pipe = SamplePipeline(cfg, MANO_PATH, objects, train=False)
    d = pipe(make_raw(pipe, 2), np.random.default_rng(3))
    assert set(d) == set(TRAINING_KEYS) | set(DEPTH_MAP_KEYS)
    hand, obj = d["hand_depth_map"].numpy(), d["obj_depth_map"].numpy()
    assert hand.shape == obj.shape == (8, 8)
    assert np.isfinite(hand).sum() >= 4 and np.isfinite(obj).sum() >= 4
    # the hand's front surface lies within a hand's size of its root, in front or behind
    assert np.nanmax(np.abs(hand)) < 0.2
    # the root joint is inside the hand: its cell is covered, by a surface in front of it
    K_crop, root = d["K"].double().numpy(), d["anchor"].double().numpy()
    u, v = (K_crop @ root)[:2] / root[2]
    i, j = int(v * 8 / 64), int(u * 8 / 64)
    assert np.isfinite(hand[i, j]) and hand[i, j] < 0.0
    # the maps agree with the hand vertices' depths where the vertices project
    verts = d["hand_verts"].double().numpy()
    vmap = surface_depth_map(verts, K_crop, 64, 8, root[2])
    both = np.isfinite(vmap) & np.isfinite(hand)
    assert both.sum() >= 4 and np.median(np.abs(vmap[both] - hand[both])) < 0.01


def test_no_maps_unless_asked(objects):  # noqa: F811
    pipe = SamplePipeline(CFG, MANO_PATH, objects, train=False)
    d = pipe(make_raw(pipe, 2), np.random.default_rng(3))
    assert not set(DEPTH_MAP_KEYS) & set(d)
