"""Config composition: base files, dotted overrides, derived keys stated once (issue 16)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from homae_model.config import (
    DERIVED,
    HomaeConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)
from homae_model.config.schema import get_path

REPO = Path(__file__).resolve().parents[2]
MODEL_CONFIGS = REPO / "config" / "model"
DEMO_CONFIG = REPO / "weights" / "demo" / "config.yaml"


def _nest(path: str, value) -> dict:
    out: dict = value
    for key in reversed(path.split(".")):
        out = {key: out}
    return out


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ------------------------------------------------------------------------------ derived keys


@pytest.mark.parametrize("pair", DERIVED, ids=lambda p: p.key)
def test_derived_key_follows_its_source(pair) -> None:
    value = [8, 8] if pair.length else (0.03 if "clamp" in pair.source else 42)
    if pair.source == "model.encoder.img_size":  # keep the masking grid valid
        value = 112
        data = _merge(_nest(pair.source, value), _nest("model.masking.patch_size", 14))
    else:
        data = _nest(pair.source, value)
    cfg = config_from_dict(data)
    assert get_path(cfg, pair.key) == pair.expected(value)


@pytest.mark.parametrize("pair", DERIVED, ids=lambda p: p.key)
def test_both_keys_of_a_pair_disagreeing_is_an_error_naming_both(tmp_path, pair) -> None:
    source = get_path(HomaeConfig(), pair.source)
    derived = get_path(HomaeConfig(), pair.key)
    bad = derived + 1 if isinstance(derived, int) else derived * 2
    path = _write(tmp_path / "both.yaml", _merge(_nest(pair.source, source), _nest(pair.key, bad)))
    with pytest.raises(ValueError) as err:
        load_config(path)
    text = str(err.value)
    assert str(path) in text and pair.key in text and pair.source in text, text
    assert f"set only {pair.source}" in text
    # the same disagreement from a command-line override names the override
    with pytest.raises(ValueError, match=re.escape(f"override '{pair.key}={bad}'")) as err:
        load_config(MODEL_CONFIGS / "tiny.yaml", [f"{pair.key}={bad}"])
    assert pair.source in str(err.value)


def test_both_keys_equal_are_accepted_and_the_saved_config_keeps_both(tmp_path) -> None:
    cfg = load_config(MODEL_CONFIGS / "small.yaml")
    save_config(cfg, tmp_path / "saved.yaml")
    saved = yaml.safe_load((tmp_path / "saved.yaml").read_text())
    for pair in DERIVED:  # the saved config is the full resolved one
        assert get_path(cfg, pair.key) == pair.expected(get_path(cfg, pair.source))
        section, _, name = pair.key.rpartition(".")
        node = saved
        for part in section.split("."):
            node = node[part]
        assert name in node
    assert load_config(tmp_path / "saved.yaml") == cfg
    # an override of a source in a saved config carries over to its derived key
    again = load_config(tmp_path / "saved.yaml", ["model.points.num_hand=128"])
    assert again.data.num_hand_points == 128 and again.model.points.num_hand == 128


def test_no_model_config_states_a_derived_key() -> None:
    for path in sorted(MODEL_CONFIGS.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        for pair in DERIVED:
            node = data
            for part in pair.key.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            assert node is None, f"{path.name} states {pair.key} (derived from {pair.source})"


def test_weights_demo_config_still_loads_and_is_the_small_cnn_recipe() -> None:
    # the bundled weights (session 12) are small_cnn.yaml fine-tuned with the camera-frame joint
    # / vertex weight at 2e3 (weights/demo/README.md, "A convolutional encoder"), with the hand's
    # orientation refit to the keypoints of the bundled keypoint networks (session 16; the side
    # network fine-tuned at 64 and at 96 px and averaged, session 17)
    demo = load_config(DEMO_CONFIG)
    after = [
        "loss.mano_joints=2e3",
        "loss.mano_verts=2e3",
        "model.inference.keypoint_net=keypoints_synthetic.safetensors",
        "model.inference.keypoint_ensemble=[keypoints96_synthetic.safetensors]",
    ]
    assert demo == load_config(MODEL_CONFIGS / "small_cnn.yaml", after)
    assert demo.model.encoder.arch == "cnn" and demo.model.hand_head.image_token


# ------------------------------------------------------------------------------ base files


def test_small_nomask_is_small_with_masking_off() -> None:
    small = load_config(MODEL_CONFIGS / "small.yaml")
    nomask = load_config(MODEL_CONFIGS / "small_nomask.yaml")
    assert small.model.masking.enabled and not nomask.model.masking.enabled
    small.model.masking.enabled = False
    assert nomask == small
    raw = yaml.safe_load((MODEL_CONFIGS / "small_nomask.yaml").read_text())
    assert raw == {"base": "small.yaml", "model": {"masking": {"enabled": False}}}
    # the same as the dotted override on the base
    assert load_config(MODEL_CONFIGS / "small.yaml", ["model.masking.enabled=false"]) == nomask


def test_base_is_relative_to_the_file_chains_and_the_file_wins(tmp_path) -> None:
    (tmp_path / "a").mkdir()
    _write(tmp_path / "root.yaml", {"train": {"lr": 0.5, "epochs": 3}, "loss": {"anchor": 2.0}})
    _write(tmp_path / "a" / "mid.yaml", {"base": "../root.yaml", "train": {"lr": 0.25}})
    leaf = _write(tmp_path / "a" / "leaf.yaml", {"base": ["mid.yaml"], "train": {"epochs": 7}})
    cfg = load_config(leaf)
    assert (cfg.train.lr, cfg.train.epochs, cfg.loss.anchor) == (0.25, 7, 2.0)
    assert load_config(leaf, ["train.lr=0.125"]).train.lr == 0.125


def test_base_errors_name_the_file(tmp_path) -> None:
    missing = _write(tmp_path / "m.yaml", {"base": "nope.yaml"})
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.yaml"))):
        load_config(missing)
    _write(tmp_path / "x.yaml", {"base": "y.yaml"})
    _write(tmp_path / "y.yaml", {"base": "x.yaml"})
    with pytest.raises(ValueError, match="include each other"):
        load_config(tmp_path / "x.yaml")
    bad_base = _write(tmp_path / "b.yaml", {"base": 3})
    with pytest.raises(ValueError, match=re.escape(f"{bad_base}: base: expected a file name")):
        load_config(bad_base)
    _write(tmp_path / "typo.yaml", {"train": {"lrr": 1.0}})
    child = _write(tmp_path / "child.yaml", {"base": "typo.yaml"})
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "typo.yaml"))) as err:
        load_config(child)
    assert "train.lrr" in str(err.value)


# ------------------------------------------------------------------------------ overrides


def test_overrides_are_typed_and_applied_in_order() -> None:
    cfg = load_config(
        MODEL_CONFIGS / "tiny.yaml",
        ["model.masking.enabled=false", "train.lr=1e-4", "train.lr=3e-4",
         "train.trainable=[anchor_head., aux_head.]", "model.encoder.pretrained_path=null",
         "data.color_jitter=[0.1, 0.2, 0.3, 0.04]"],
    )  # fmt: skip
    assert cfg.model.masking.enabled is False and cfg.train.lr == 3e-4
    assert cfg.train.trainable == ["anchor_head.", "aux_head."]
    assert cfg.data.color_jitter == (0.1, 0.2, 0.3, 0.04)


@pytest.mark.parametrize(
    ("item", "needles"),
    [
        (
            "model.masking.enable=false",
            ["model.masking.enable", "nearest", "model.masking.enabled"],
        ),
        ("modle.masking.enabled=false", ["'modle'", "nearest: ['model']"]),
        ("train.batchsize=4", ["train.batchsize", "train.batch_size"]),
        ("model.masking.enabled=maybe", ["model.masking.enabled: expected true/false"]),
        ("train.epochs=2.5", ["train.epochs: expected an integer"]),
        ("train.lr=0", ["train.lr=0.0 out of range"]),
        ("model.masking=3", ["model.masking: expected a mapping"]),
        ("train.lr", ["expected KEY=VALUE"]),
        ("=3", ["expected KEY=VALUE"]),
    ],
)
def test_bad_override_names_the_override_and_the_key(item, needles) -> None:
    with pytest.raises(ValueError) as err:
        load_config(MODEL_CONFIGS / "tiny.yaml", [item])
    text = str(err.value)
    assert repr(item) in text and all(n in text for n in needles), text


def test_apply_overrides_to_a_loaded_config_and_to_other_dataclasses() -> None:
    from homae_model.detector.train import DetectorTrainConfig

    cfg = load_config(MODEL_CONFIGS / "tiny.yaml")
    changed = apply_overrides(cfg, ["model.inference.sampling=dense"])
    assert changed.model.inference.sampling == "dense" and cfg.model.inference.sampling != "dense"
    assert config_to_dict(changed)["data"] == config_to_dict(cfg)["data"]
    det = apply_overrides(DetectorTrainConfig(epochs=3), ["weight_decay=0", "augment=false"])
    assert (det.epochs, det.weight_decay, det.augment) == (3, 0.0, False)
    with pytest.raises(ValueError, match=r"weight_decy.*nearest: \['weight_decay'\]"):
        apply_overrides(DetectorTrainConfig(), ["weight_decy=0"])


# ------------------------------------------------------------------------------ commands


@pytest.mark.parametrize("module", ["train", "evaluate", "summary", "fit_anchor", "train_detector"])
def test_every_config_command_documents_dotted_overrides(module, capsys) -> None:
    import importlib

    cli = importlib.import_module(f"homae_model.cli.{module}")
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "KEY=VALUE" in text and "config overrides" in text
    assert re.search(r"\n    homae-[a-z-]+ .*[a-z_]+\.?[a-z_.]*=\S+", text), text


def test_train_help_shows_the_override_example_and_the_shorthands(capsys) -> None:
    from homae_model.cli.train import main

    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "model.masking.enabled=false" in text and "train.lr=1e-4" in text
    assert "--epochs N and --batch-size N are shorthands" in " ".join(text.split())


def test_summary_takes_overrides(capsys) -> None:
    import json

    from homae_model.cli.summary import main

    tiny = str(MODEL_CONFIGS / "tiny.yaml")
    assert main([tiny]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main([tiny, "model.hand_head.enc_layers=2"]) == 0
    deeper = json.loads(capsys.readouterr().out)
    assert deeper["params"]["total"] > plain["params"]["total"]
    assert main([tiny, "model.hand_head.enc_layer=2"]) == 2
    assert "model.hand_head.enc_layers" in capsys.readouterr().err
