from dataclasses import replace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from homae_model.config import DataConfig
from homae_model.data.schema import RawSample
from homae_model.data.transforms import (
    AugmentParams,
    jitter_box,
    mirror_axis_angle,
    mirror_mesh,
    mirror_sample,
    photometric,
    sample_augmentation,
)
from homae_model.geometry.crop import crop_image, transform_points_2d, union_crop_box

K_FULL = np.array([[610.0, 0.0, 318.0], [0.0, 605.0, 243.0], [0.0, 0.0, 1.0]])


def project(K, X):
    uv = X @ K.T
    return uv[:, :2] / uv[:, 2:]


def make_raw(side="right", seed=0):
    rng = np.random.default_rng(seed)
    joints = rng.uniform([-0.08, -0.08, 0.45], [0.08, 0.08, 0.6], size=(21, 3))
    uv = project(K_FULL, joints)
    hand_box = np.concatenate([uv.min(0), uv.max(0)])
    return RawSample(
        image=rng.integers(0, 255, size=(480, 640, 3), dtype=np.uint8),
        K=K_FULL.copy(),
        side=side,
        mano_pose=rng.normal(0, 0.3, 48),
        mano_shape=rng.normal(0, 1, 10),
        mano_transl=np.array([0.01, 0.02, 0.5]),
        hand_joints=joints,
        hand_joints_2d=uv,
        obj_name="006_mustard_bottle",
        obj_rot=np.array([0.3, -0.2, 1.0]),
        obj_trans=np.array([0.03, -0.02, 0.52]),
        hand_box=hand_box,
        obj_box=hand_box + np.array([20, 10, 40, 30.0]),
        source="test",
    ).validate()


def test_sample_augmentation_respects_config():
    cfg = DataConfig()
    rng = np.random.default_rng(0)
    draws = [sample_augmentation(cfg, rng) for _ in range(2000)]
    scales = np.array([d.scale for d in draws])
    rots = np.array([d.rotation_deg for d in draws])
    offsets = np.stack([d.center_offset for d in draws])
    assert scales.min() >= 0.6 - 1e-9 and scales.max() <= 1.4 + 1e-9
    assert np.std(scales) == pytest.approx(0.2, rel=0.2)
    assert np.mean(rots != 0) == pytest.approx(0.6, abs=0.05)
    assert np.abs(rots).max() <= 60.0
    assert np.abs(offsets).max() <= 0.1
    assert np.mean([d.blur_sigma > 0 for d in draws]) == pytest.approx(0.2, abs=0.04)
    hues = np.array([d.hue for d in draws])
    assert np.abs(hues).max() <= 0.15
    ident = sample_augmentation(cfg, rng, enabled=False)
    assert ident.scale == 1.0 and ident.rotation_deg == 0.0 and ident.brightness == 1.0
    assert sample_augmentation(replace(cfg, augment=False), rng).rotation_deg == 0.0


@pytest.mark.parametrize("seed", range(8))
def test_augmented_crop_keeps_2d_and_3d_labels_consistent(seed):
    cfg = DataConfig(image_size=96, rot_prob=1.0)
    raw = make_raw(seed=seed)
    rng = np.random.default_rng(seed)
    params = sample_augmentation(cfg, rng)
    box = jitter_box(union_crop_box(raw.hand_box, raw.obj_box, cfg.crop_scale), params)
    crop = crop_image(raw.image, raw.K, box, cfg.image_size, rotation_deg=params.rotation_deg)
    uv_crop = transform_points_2d(crop.affine, raw.hand_joints_2d)
    projected = project(crop.K, raw.hand_joints @ crop.rot.T)
    assert np.abs(projected - uv_crop).max() < 0.5
    np.testing.assert_allclose(projected, uv_crop, atol=1e-6)
    assert params.rotation_deg != 0.0


def test_jitter_box():
    box = np.array([0.0, 0.0, 100.0, 100.0])
    p = AugmentParams(center_offset=np.array([0.1, -0.1]), scale=1.2)
    np.testing.assert_allclose(jitter_box(box, p), [60 - 60, 40 - 60, 60 + 60, 40 + 60])


def test_photometric_identity_and_changes():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(photometric(img, AugmentParams.identity()), img)
    dark = photometric(img, replace(AugmentParams.identity(), brightness=0.5))
    np.testing.assert_allclose(dark.astype(float), img * 0.5, atol=1.0)
    grey = photometric(img, replace(AugmentParams.identity(), saturation=0.0))
    assert np.abs(grey[..., 0].astype(int) - grey[..., 1]).max() <= 1
    hue = photometric(
        np.full((4, 4, 3), (255, 0, 0), np.uint8), replace(AugmentParams.identity(), hue=1 / 3)
    )
    assert tuple(hue[0, 0]) == (0, 255, 0)
    blurred = photometric(img, replace(AugmentParams.identity(), blur_sigma=1.0))
    assert blurred.std() < img.std()


def test_mirror_sample_reflects_consistently():
    raw = make_raw(side="left")
    m = mirror_sample(raw)
    assert m.side == "right"
    np.testing.assert_array_equal(m.image, raw.image[:, ::-1])
    np.testing.assert_allclose(project(m.K, m.hand_joints), m.hand_joints_2d, atol=1e-9)
    np.testing.assert_allclose(m.hand_joints_2d[:, 0], 639 - raw.hand_joints_2d[:, 0])
    assert (
        m.hand_box[0] <= m.hand_joints_2d[:, 0].min()
        and m.hand_box[2] >= m.hand_joints_2d[:, 0].max()
    )
    # object: mirrored model + mirrored pose reproduces the mirrored points
    F = np.diag([-1.0, 1.0, 1.0])
    x_obj = np.random.default_rng(1).normal(size=(10, 3))
    X = x_obj @ Rotation.from_rotvec(raw.obj_rot).as_matrix().T + raw.obj_trans
    x_mirror, _ = mirror_mesh(x_obj, np.zeros((0, 3), int))
    X_m = x_mirror @ Rotation.from_rotvec(m.obj_rot).as_matrix().T + m.obj_trans
    np.testing.assert_allclose(X_m, X @ F.T, atol=1e-12)
    R = Rotation.from_rotvec([0.2, 0.5, -0.7]).as_matrix()
    np.testing.assert_allclose(
        Rotation.from_rotvec(mirror_axis_angle(np.array([0.2, 0.5, -0.7]))).as_matrix(),
        F @ R @ F,
        atol=1e-12,
    )
    assert mirror_sample(make_raw()) is not None and mirror_sample(make_raw()).side == "right"
