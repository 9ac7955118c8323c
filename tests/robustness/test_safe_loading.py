"""Loading files never runs code, and every user-given path is checked by name.

Each loader is handed a pickle whose `__reduce__` calls `os.system` to write a marker file: it
must be refused and the marker must not exist afterwards. (A control test shows the same
pickle DOES write its marker when unpickled the unsafe way, so the refusals mean something.)
Covered elsewhere, not repeated here:
- the MANO converter's allow-list unpickler: tests/model/test_convert_mano.py
  (`test_refuses_code_execution`);
- a corrupt newest training checkpoint: resume falls back to the previous good one and says
  so: tests/train/test_resume.py (`test_corrupt_newest_checkpoint_falls_back`).
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from homae_model.estimation.estimator import FrameEstimator

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "config" / "model" / "tiny.yaml"


class Exploit:
    """Pickles to `os.system("echo pwned > <marker>")`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.marker}",))


def write_exploit(path: Path, marker: Path, torch_format: bool = False) -> Path:
    """Write a code-running pickle to `path` (plain pickle, or torch.save's zip format)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"state_dict": Exploit(marker)}
    if torch_format:
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=4))
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from tests.ros.nodeutil import tiny_checkpoint

    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt"))


def test_control_the_exploit_really_runs_code_when_unpickled_unsafely(tmp_path) -> None:
    marker = tmp_path / "control_marker"
    path = write_exploit(tmp_path / "evil.pkl", marker)
    pickle.loads(path.read_bytes())  # what a careless loader would do
    assert marker.read_text().strip() == "pwned"


@pytest.mark.parametrize("torch_format", [True, False], ids=["torch_save", "raw_pickle"])
def test_encoder_pretrained_pth_pickle_is_refused(tmp_path, torch_format) -> None:
    from homae_model.config import load_config
    from homae_model.model import HomaeModel
    from homae_model.nn.encoder import load_state_dict_file

    marker = tmp_path / "marker"
    evil = write_exploit(tmp_path / "dinov2.pth", marker, torch_format)
    with pytest.raises(ValueError, match=r"pretrained_path = .*dinov2\.pth.*refused") as err:
        load_state_dict_file(evil)
    assert isinstance(err.value.__cause__, pickle.UnpicklingError)
    cfg = load_config(TINY)
    cfg.model.encoder.pretrained_path = str(evil)
    with pytest.raises(ValueError, match="pretrained_path"):
        HomaeModel(cfg)
    assert not marker.exists(), "the pickle ran code"


def test_checkpoint_weights_that_are_a_pickle_are_refused(tmp_path, checkpoint) -> None:
    from homae_model.checkpoint import load_model

    marker = tmp_path / "marker"
    ckpt = tmp_path / "ckpt"
    shutil.copytree(checkpoint, ckpt)
    write_exploit(ckpt / "model.safetensors", marker)
    with pytest.raises(ValueError, match="not a readable safetensors file") as err:
        load_model(ckpt)
    assert str(ckpt / "model.safetensors") in str(err.value)
    with pytest.raises(ValueError, match=r"parameter 'checkpoint' = .*not a readable safetensors"):
        FrameEstimator.load(checkpoint=str(ckpt), backend="roi")
    assert not marker.exists()


def test_checkpoint_config_with_a_python_tag_is_refused(tmp_path, checkpoint) -> None:
    from homae_model.checkpoint import load_model

    marker = tmp_path / "marker"
    ckpt = tmp_path / "ckpt"
    shutil.copytree(checkpoint, ckpt)
    text = (ckpt / "config.yaml").read_text()
    tag = f'!!python/object/apply:os.system ["echo pwned > {marker}"]'
    (ckpt / "config.yaml").write_text(text.replace("seed: 0", f"seed: {tag}"))
    assert tag in (ckpt / "config.yaml").read_text()
    with pytest.raises(ValueError, match=r"config\.yaml: invalid YAML"):
        load_model(ckpt)
    assert not marker.exists()


def test_detector_weights_that_are_a_pickle_are_refused(tmp_path, checkpoint) -> None:
    from homae_model.detector.model import build_detector, load_detector, save_detector
    from homae_model.estimation.detection import DetectionConfig

    marker = tmp_path / "marker"
    weights = tmp_path / "det.safetensors"
    save_detector(build_detector(class_names=("hand", "006_mustard_bottle")), weights)
    write_exploit(weights, marker)  # the sidecar stays valid: only the tensors are evil
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_detector(weights)
    det = DetectionConfig(weights=str(weights), allowed_objects=("006_mustard_bottle",))
    with pytest.raises(ValueError, match=r"parameter 'detector\.weights'"):
        FrameEstimator.load(checkpoint=str(checkpoint), detection=det, backend="torchvision")
    assert not marker.exists()


def test_mano_model_path_pickle_with_code_is_refused_by_the_node_loader(tmp_path, checkpoint):
    marker = tmp_path / "marker"
    evil = write_exploit(tmp_path / "MANO_RIGHT.pkl", marker)
    with pytest.raises(ValueError, match=r"parameter 'mano_model_path' = .*MANO_RIGHT\.pkl"):
        FrameEstimator.load(checkpoint=str(checkpoint), mano_model_path=str(evil), backend="roi")
    assert not marker.exists()


# ------------------------------------------------------------------ path messages
@pytest.mark.parametrize(
    "parameter",
    ["checkpoint", "mano_model_path", "object_library", "detector.weights", "detector.side_net"],
)
def test_missing_node_paths_name_the_parameter_and_the_path(tmp_path, checkpoint, parameter):
    from homae_model.estimation.detection import DetectionConfig

    missing = tmp_path / f"missing_{parameter}"
    kwargs = {"checkpoint": str(checkpoint), "backend": "roi"}
    if parameter.startswith("detector."):
        kwargs["backend"] = "torchvision"
        kwargs["detection"] = DetectionConfig(**{parameter.split(".")[1]: str(missing)})
    else:
        kwargs[parameter] = str(missing)
    with pytest.raises(FileNotFoundError) as err:
        FrameEstimator.load(**kwargs)
    text = str(err.value)
    assert f"parameter '{parameter}' = '{missing}'" in text and "does not exist" in text, text


def test_existing_but_wrong_node_paths_name_the_parameter(tmp_path, checkpoint) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=rf"parameter 'checkpoint' = '{empty}'.*weights"):
        FrameEstimator.load(checkpoint=str(empty), backend="roi")
    with pytest.raises(FileNotFoundError, match=rf"parameter 'object_library' = '{empty}'"):
        FrameEstimator.load(checkpoint=str(checkpoint), object_library=str(empty), backend="roi")
    junk = tmp_path / "MANO_RIGHT.pkl"
    junk.write_bytes(pickle.dumps({"v_template": [1, 2, 3]}))
    with pytest.raises(ValueError, match=r"parameter 'mano_model_path' = .*MANO_RIGHT\.pkl"):
        FrameEstimator.load(checkpoint=str(checkpoint), mano_model_path=str(junk), backend="roi")
    from homae_model.estimation.detection import DetectionConfig

    (tmp_path / "sides.safetensors").write_bytes(b"junk")
    (tmp_path / "sides.json").write_text('{"format": "homae-side-net/1"}')
    with pytest.raises(ValueError, match=r"parameter 'detector.side_net' = .*sides\.safetensors"):
        FrameEstimator.load(
            checkpoint=str(checkpoint),
            detection=DetectionConfig(side_net=str(tmp_path / "sides.safetensors")),
        )


def test_train_cli_names_a_missing_data_folder(tmp_path, capsys) -> None:
    from homae_model.cli.train import main

    missing = tmp_path / "no_data"
    assert main(["--config", str(TINY), "--data", str(missing), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("homae-train: error:") and "data folder" in err and str(missing) in err


def test_eval_cli_names_missing_checkpoint_and_data(tmp_path, checkpoint, capsys) -> None:
    from homae_model.cli.evaluate import main

    missing_ckpt, missing_data = tmp_path / "no_ckpt", tmp_path / "no_data"
    assert main(["--checkpoint", str(missing_ckpt), "--data", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("homae-eval: error:") and str(missing_ckpt) in err, err
    assert main(["--checkpoint", str(checkpoint), "--data", str(missing_data)]) == 1
    err = capsys.readouterr().err
    assert "data folder" in err and str(missing_data) in err, err


def test_eval_cli_missing_checkpoint_message_says_checkpoint(tmp_path, capsys) -> None:
    from homae_model.cli.evaluate import main

    assert main(["--checkpoint", str(tmp_path / "no_ckpt"), "--data", str(tmp_path)]) == 1
    assert "checkpoint" in capsys.readouterr().err


# ------------------------------------------------------------------ atomic writes
def test_a_failed_checkpoint_write_leaves_the_previous_one_intact(tmp_path, monkeypatch) -> None:
    from safetensors.torch import load_file

    import homae_model.checkpoint as ck
    from homae_model.config import load_config
    from homae_model.model import HomaeModel

    cfg = load_config(TINY)
    torch.manual_seed(0)
    model = HomaeModel(cfg)
    weights = ck.save_checkpoint(tmp_path, model, cfg)
    before = weights.read_bytes()

    def crash_half_way(state, filename, metadata=None):
        Path(filename).write_bytes(b"\x00" * 1000)  # a partial file, then the process "dies"
        raise OSError("No space left on device")

    monkeypatch.setattr(ck, "save_file", crash_half_way)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    with pytest.raises(OSError, match="No space left"):
        ck.save_checkpoint(tmp_path, model, cfg)
    assert weights.read_bytes() == before, "the old checkpoint is untouched"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "model.safetensors"]
    load_file(str(weights))  # still a valid safetensors file
