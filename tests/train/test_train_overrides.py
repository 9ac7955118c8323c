"""homae-train with dotted overrides: the run saves the resolved config with their values."""

from __future__ import annotations

import pytest
import yaml

from homae_model.config import load_config
from homae_model.training.state import list_checkpoints
from tests.train import TINY_CONFIG, synthetic_set


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synthetic_set(tmp_path_factory.mktemp("overrides") / "data", num=8)


def test_run_started_with_overrides_saves_the_resolved_config(tmp_path, data, capsys) -> None:
    from homae_model.cli.train import main

    run = tmp_path / "run"
    argv = ["--config", str(TINY_CONFIG), "--data", str(data), "--out", str(run)]
    argv += ["--device", "cpu", "--max-steps", "1", "--no-progress", "--preview-every", "0"]
    # overrides after the options, a shorthand among them, and one more before an option
    argv += ["model.masking.enabled=false", "train.lr=2.5e-4", "--batch-size", "2"]
    argv += ["model.points.num_hand=48", "--ckpt-every-steps", "1"]
    assert main(argv) == 0, capsys.readouterr().err

    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["masking"]["enabled"] is False
    assert saved["train"]["lr"] == 2.5e-4 and saved["train"]["batch_size"] == 2
    # the full resolved config: the derived key is written, with the override's value
    assert saved["model"]["points"]["num_hand"] == 48 and saved["data"]["num_hand_points"] == 48
    assert saved["data"]["image_size"] == saved["model"]["encoder"]["img_size"] == 56
    given = ["model.masking.enabled=false", "train.lr=2.5e-4", "train.batch_size=2"]
    expected = load_config(TINY_CONFIG, [*given, "model.points.num_hand=48"])
    assert load_config(run / "config.yaml") == expected
    ckpt = list_checkpoints(run)[-1]
    assert load_config(ckpt / "config.yaml") == expected


def test_bad_override_fails_before_training_naming_the_nearest_key(tmp_path, data, capsys):
    from homae_model.cli.train import main

    run = tmp_path / "run"
    argv = ["--config", str(TINY_CONFIG), "--data", str(data), "--out", str(run)]
    assert main([*argv, "--max-steps", "1", "model.masking.enable=false"]) == 1
    err = capsys.readouterr().err
    assert "model.masking.enable=false" in err and "model.masking.enabled" in err
    assert not run.exists() or not list_checkpoints(run)


def test_resume_with_an_override_of_the_network_is_refused(tmp_path, data) -> None:
    from homae_model.training.trainer import TrainOptions, train

    run = tmp_path / "run"
    first = ("train.batch_size=2",)
    opts = TrainOptions(data=data, config=TINY_CONFIG, out=run, device="cpu", max_steps=1,
                        progress=False, preview_every=0, overrides=first)  # fmt: skip
    train(opts)
    again = TrainOptions(data=data, resume=run, device="cpu", max_steps=2, progress=False,
                         preview_every=0, overrides=("model.hand_head.ffn=32",))  # fmt: skip
    with pytest.raises(ValueError, match=r"overrides \['model\.hand_head\.ffn=32'\] does not"):
        train(again)
    # a training-section override on resume is allowed and lands in the saved config
    ok = TrainOptions(data=data, resume=run, device="cpu", max_steps=2, progress=False,
                      preview_every=0, overrides=("train.lr=5.0e-5",))  # fmt: skip
    train(ok)
    assert load_config(run / "config.yaml").train.lr == 5.0e-5
