"""The synthetic hand's skin: a lighter, less saturated palm and nails on the back of the tips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import binary_dilation

from homae_model.data.hand_appearance import (
    hand_regions,
    hand_vertex_colors,
    layer_regions,
    palm_color,
)
from homae_model.data.synth_scene import (
    DEFAULT_MANO_PATH,
    SKIN_TONES,
    SceneGenerator,
    SynthConfig,
)
from homae_model.render.gl import Light, RenderMesh

pytestmark = pytest.mark.skipif(
    not DEFAULT_MANO_PATH.is_file(), reason=f"bundled hand model missing: {DEFAULT_MANO_PATH}"
)

SIZE = 128
K = np.array([[220.0, 0.0, SIZE / 2], [0.0, 220.0, SIZE / 2], [0.0, 0.0, 1.0]])
# camera-from-MANO rotations: MANO's flat hand has its back toward +y
FROM_BACK = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # camera on +y
FROM_PALM = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # camera on -y


@pytest.fixture(scope="module")
def generator() -> SceneGenerator:
    return SceneGenerator(SynthConfig(width=SIZE, height=SIZE))


def _rest(generator: SceneGenerator, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    layer = generator.hand_layer(side)
    with torch.no_grad():
        out = layer(torch.zeros(1, 48))
    return out.vertices[0].numpy(), layer.faces.numpy(), out.joints[0].numpy()


def _render_hand(generator: SceneGenerator, side: str, R: np.ndarray, skin: np.ndarray):
    """(RGB pixels of the hand (N, 3) in [0, 1]) of the flat hand seen through R."""
    verts, faces, _ = _rest(generator, side)
    cam = (verts - verts.mean(0)) @ R.T + np.array([0.0, 0.0, 0.45])
    colors = hand_vertex_colors(skin, generator._regions(side), np.ones((len(verts), 1)))
    mesh = RenderMesh(cam, faces, skin, 1, vertex_colors=colors, specular=0.08)
    # a frontal light: both sides of the hand are lit alike
    light = Light(direction=np.array([0.0, 0.0, -1.0]), ambient=0.35, diffuse=0.75)
    out = generator.renderer.render([mesh], K, np.array([0.2, 0.3, 0.5]), light)
    pixels = out.rgb[out.ids == 1].astype(np.float64) / 255.0
    assert len(pixels) > 500, "the hand should fill part of the image"
    return pixels


def _saturation(rgb: np.ndarray) -> np.ndarray:
    hi, lo = rgb.max(axis=-1), rgb.min(axis=-1)
    return (hi - lo) / np.maximum(hi, 1e-6)


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("tone", [1, 4, 7])
def test_rendered_palm_is_lighter_and_less_saturated_than_back(generator, side, tone) -> None:
    skin = SKIN_TONES[tone]
    back = _render_hand(generator, side, FROM_BACK, skin)
    palm = _render_hand(generator, side, FROM_PALM, skin)
    # a light skin's palm is about as light as its back (pinker, less saturated); darker skins
    # have clearly lighter palms
    margin = 0.02 if tone >= 3 else -0.01
    assert palm.mean() > back.mean() + margin, (side, tone, palm.mean(), back.mean())
    assert np.median(_saturation(palm)) < np.median(_saturation(back)) - 0.05, (side, tone)


@pytest.mark.parametrize("side", ["right", "left"])
def test_regions_follow_the_hand_geometry(generator, side) -> None:
    verts, faces, joints = _rest(generator, side)
    regions = hand_regions(verts, faces, joints, side)
    assert regions.palm.shape == regions.nail.shape == (len(verts),)
    assert 0.3 < (regions.palm > 0.5).mean() < 0.7  # about half the skin is palmar
    # MANO's flat hand has its back toward +y for both sides
    assert verts[regions.palm > 0.5, 1].mean() < verts[regions.palm < 0.5, 1].mean() - 0.005
    nails = regions.nail > 0.5
    assert verts[nails, 1].mean() > verts[:, 1].mean()  # nails are on the back
    tips = joints[[4, 8, 12, 16, 20]]
    nearest = np.linalg.norm(verts[nails][:, None] - tips[None], axis=2).argmin(axis=1)
    assert set(nearest.tolist()) == {0, 1, 2, 3, 4}, "a nail on each digit"
    assert np.linalg.norm(verts[nails][:, None] - tips[None], axis=2).min(axis=1).max() < 0.02
    # the generator uses the same regions (the left layer is the mirrored right one)
    cached = generator._regions(side)
    np.testing.assert_allclose(cached.palm, regions.palm, atol=1e-5)


def test_colors_contrast_zero_is_uniform_skin_and_bad_input_is_named(generator) -> None:
    skin = np.array([0.6, 0.4, 0.3])
    regions = layer_regions(generator.hand_layer("right"))
    flat = hand_vertex_colors(skin, regions, np.ones((778, 1)), contrast=0.0)
    np.testing.assert_allclose(flat, np.broadcast_to(skin, flat.shape))
    full = hand_vertex_colors(skin, regions, np.ones((778, 1)))
    assert full[regions.palm > 0.9].mean() > full[regions.palm < 0.1].mean() + 0.03
    assert palm_color(skin).mean() > skin.mean()
    verts, faces, joints = _rest(generator, "right")
    with pytest.raises(ValueError, match="side"):
        hand_regions(verts, faces, joints, "both")
    with pytest.raises(ValueError, match="joints"):
        hand_regions(verts, faces, joints[:16], "right")


def test_uniform_skin_changes_only_the_hand_pixels() -> None:
    palm = SceneGenerator(SynthConfig(width=96, height=96)).generate(2, seed=3).raw
    flat = SceneGenerator(SynthConfig(width=96, height=96, uniform_skin=True)).generate(2, seed=3)
    flat = flat.raw
    np.testing.assert_array_equal(palm.masks, flat.masks)
    np.testing.assert_array_equal(palm.hand_joints, flat.hand_joints)
    hand = palm.masks == 1
    assert hand.sum() > 20
    near = binary_dilation(hand, iterations=2)  # the edge pixels blend in some hand colour
    np.testing.assert_array_equal(palm.image[~near], flat.image[~near])
    assert np.abs(palm.image[hand].astype(int) - flat.image[hand].astype(int)).mean() > 2.0


def test_meta_records_the_look_and_the_demo_clip_keeps_the_uniform_one(tmp_path) -> None:
    import json

    from homae_model.cli.synth import main as synth_main
    from homae_ros.demo.clip import DEMO_LOOK, reusable_clip

    common = ["--num", "1", "--size", "64x64", "--seed", "1", "--quiet", "--no-contact-sheet"]
    assert synth_main(["--out", str(tmp_path / "palm"), *common]) == 0
    assert synth_main(["--out", str(tmp_path / "flat"), *common, *DEMO_LOOK]) == 0
    palm = json.loads((tmp_path / "palm" / "meta.json").read_text())
    flat = json.loads((tmp_path / "flat" / "meta.json").read_text())
    assert palm["uniform_skin"] is False
    assert "uniform_skin" not in flat  # as in every set made before the palm look
    assert reusable_clip(tmp_path / "flat", 1, 1) and not reusable_clip(tmp_path / "palm", 1, 1)
