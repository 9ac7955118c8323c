"""HomaeConfig: one set of defaults, YAML overrides, validation errors that name the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from homae_model.config import (
    PACKAGE_DIR,
    DataConfig,
    HomaeConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)

REPO = Path(__file__).resolve().parents[2]
MODEL_CONFIGS = REPO / "config" / "model"


def test_defaults_are_the_paper():
    cfg = HomaeConfig()
    cfg.validate()
    m = cfg.model
    assert m.encoder.name == "vit_small_patch14_dinov2" and m.encoder.img_size == 224
    assert (m.masking.patch_size, m.masking.num_patches, m.masking.mu) == (28, 12, 0.5)
    assert m.masking.fill == "noise"
    assert m.decoder.feat_channels == 223
    assert (m.points.num_hand, m.points.num_obj, m.points.sdf_scale) == (600, 200, 3.1)
    assert m.points.fourier_freqs == 5
    assert (m.sdf_head.hidden, m.sdf_head.layers, m.sdf_head.inject_layer) == (512, 4, 2)
    assert (m.fusion.beta_init, m.fusion.beta_min) == (0.1, 2e-3)
    h = m.hand_head
    assert (h.d_model, h.enc_layers, h.dec_layers, h.heads, h.ffn) == (256, 6, 4, 4, 1024)
    assert m.object_head.layers == 3
    assert (m.inference.voxel_res, m.inference.sampling) == (64, "coarse_to_fine")
    loss = cfg.loss
    assert (loss.lambda_rec, loss.lambda_mano, loss.lambda_obj, loss.lambda_sdf) == (1, 1, 1, 1)
    assert (loss.mano_pose, loss.mano_shape, loss.mano_joints, loss.mano_verts) == (
        10.0,
        0.1,
        1e4,
        1e4,
    )
    assert (loss.obj_rot, loss.obj_trans, loss.sdf_hand, loss.sdf_obj) == (0.7, 100.0, 50.0, 25.0)
    t = cfg.train
    assert (t.optimizer, t.lr, t.lr_decay, t.lr_decay_every, t.epochs, t.batch_size) == (
        "adam",
        1e-4,
        0.7,
        5,
        60,
        24,
    )
    assert (t.gt_points_until_epoch, t.gt_points_prob_after) == (40, 0.4)


def test_data_config_is_exactly_the_design():
    assert DataConfig() == DataConfig(
        image_size=224, crop_scale=1.5, num_hand_points=600, num_obj_points=200,
        surface_std=0.005, uniform_fraction=0.1, sdf_clamp=0.05, center_jitter=0.1,
        scale_std=0.2, rot_prob=0.6, rot_std_deg=30.0, rot_max_deg=60.0, blur_prob=0.2,
        color_jitter=(0.5, 0.5, 0.5, 0.15), augment=True,
    )  # fmt: skip


def test_paper_yaml_equals_defaults():
    assert load_config(MODEL_CONFIGS / "paper.yaml") == HomaeConfig()


@pytest.mark.parametrize("name", ["small", "tiny"])
def test_small_and_tiny_keep_an_8x8_mask_grid(name):
    cfg = load_config(MODEL_CONFIGS / f"{name}.yaml")
    assert cfg.model.encoder.img_size // cfg.model.masking.patch_size == 8
    assert cfg.data.image_size == cfg.model.encoder.img_size
    assert cfg != HomaeConfig()


def test_round_trip_dict_and_yaml(tmp_path):
    cfg = load_config(MODEL_CONFIGS / "tiny.yaml")
    assert config_from_dict(config_to_dict(cfg)) == cfg
    save_config(cfg, tmp_path / "c.yaml")
    again = load_config(tmp_path / "c.yaml")
    assert again == cfg
    assert isinstance(again.data.color_jitter, tuple)


def test_unknown_key_lists_valid_keys(tmp_path):
    with pytest.raises(ValueError, match=r"model\.masking\.patchsize") as err:
        config_from_dict({"model": {"masking": {"patchsize": 28}}})
    assert "patch_size" in str(err.value) and "num_patches" in str(err.value)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"trian": {"lr": 1}}))
    with pytest.raises(ValueError, match=re.escape("bad.yaml")) as err:
        load_config(path)
    assert "'trian'" in str(err.value) and "train" in str(err.value)


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"model": {"masking": {"fill": "blur"}}}, "model.masking.fill"),
        ({"model": {"masking": {"mu": 1.5}}}, "model.masking.mu"),
        ({"train": {"lr": 0.0}}, "train.lr"),
        ({"train": {"optimizer": "sgd"}}, "train.optimizer"),
        ({"data": {"rot_prob": -0.1}}, "data.rot_prob"),
        ({"model": {"inference": {"sampling": "random"}}}, "model.inference.sampling"),
        ({"model": {"points": {"num_hand": "many"}}}, "model.points.num_hand"),
        ({"model": {"masking": {"num_patches": 65}}}, "model.masking.num_patches"),
        ({"model": {"encoder": {"img_size": 100}}}, "model.encoder.img_size"),
        ({"data": {"image_size": 112}}, "data.image_size"),
        ({"model": {"decoder": {"num_stages": 2}}}, "model.decoder.stage_channels"),
        ({"model": {"inference": {"coarse_res": 5}}}, "model.inference.coarse_res"),
    ],
)
def test_bad_values_name_the_key(override, needle):
    with pytest.raises(ValueError, match=needle.replace(".", r"\.")):
        config_from_dict(override)


def test_choices_are_listed():
    with pytest.raises(ValueError, match=r"\['noise', 'zero', 'mean'\]"):
        config_from_dict({"model": {"masking": {"fill": "gray"}}})


def test_missing_file():
    with pytest.raises(FileNotFoundError, match=re.escape("nope.yaml")):
        load_config("nope.yaml")


def test_mano_path_resolution(tmp_path):
    cfg = HomaeConfig()
    assert cfg.mano.resolved_path() == PACKAGE_DIR / "assets" / "hand" / "MANO_RIGHT.pkl"
    cfg.mano.model_path = str(tmp_path / "MANO_RIGHT.pkl")
    assert cfg.mano.resolved_path() == tmp_path / "MANO_RIGHT.pkl"


def test_conv_stem_refuses_pretrained_weights_naming_both_keys():
    small = REPO / "config/model/small.yaml"
    assert load_config(small, ["model.encoder.stem=conv"]).model.encoder.stem == "conv"
    with pytest.raises(ValueError, match=r"model\.encoder\.stem.*model\.encoder\.pretrained_path"):
        load_config(small, ["model.encoder.stem=conv", "model.encoder.pretrained_path=/w.pth"])
    with pytest.raises(ValueError, match=r"model\.encoder\.stem"):
        load_config(small, ["model.encoder.stem=resnet"])
