"""homae-convert-mano: chumpy pickles -> numpy without chumpy; unsafe pickles are refused."""

from __future__ import annotations

import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import torch

from homae_model.cli.convert_mano import main as convert_main
from homae_model.hand.convert import (
    MissingKeyError,
    UnsafePickleError,
    convert_mano,
    load_mano_pickle,
)
from homae_model.hand.mano import ManoLayer
from homae_model.hand.synthetic_hand import build_synthetic_hand

FAKE_MODULES = ("chumpy", "chumpy.ch", "chumpy.reordering")


def _fake_chumpy() -> dict[str, type]:
    """Register chumpy-like classes under chumpy's module names (for pickling only)."""

    class Ch:
        def __init__(self, x):
            self.x = np.asarray(x, dtype=np.float64)
            self._dirty_vars = {"x"}
            self._depends_on_deps = {}
            self._make_dense = False

        def __getstate__(self):
            return dict(self.__dict__)

    class Select(Ch):  # an op: pickled without an 'x' of its own
        def __init__(self, a):
            self.a = a
            self.idxs = np.arange(3)

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    Select.__module__, Select.__qualname__ = "chumpy.reordering", "Select"
    mods = {name: types.ModuleType(name) for name in FAKE_MODULES}
    mods["chumpy.ch"].Ch = Ch
    mods["chumpy.reordering"].Select = Select
    sys.modules.update(mods)
    return {"Ch": Ch, "Select": Select}


def _remove_fake_chumpy() -> None:
    for name in FAKE_MODULES:
        sys.modules.pop(name, None)


def _write_official_like(path: Path, model: dict, protocol: int, **overrides) -> None:
    """A MANO pickle shaped like the official one: Ch objects, uint32 faces, csc regressor."""
    classes = _fake_chumpy()
    try:
        data = {k: v for k, v in model.items() if k not in ("fingertip_ids", "J")}
        data["shapedirs"] = classes["Ch"](model["shapedirs"])
        data["J"] = classes["Ch"](model["J"])
        data["f"] = model["f"].astype(np.uint32)
        data["hands_coeffs"] = np.zeros((3, 45))
        data.update(overrides)
        with path.open("wb") as fh:
            # Protocols 0-2 with fix_imports write Python-2 module names (copy_reg, __builtin__).
            pickle.dump(data, fh, protocol=protocol, fix_imports=True)
    finally:
        _remove_fake_chumpy()


@pytest.fixture(scope="module")
def model() -> dict:
    return build_synthetic_hand(0)


@pytest.mark.parametrize("protocol", [0, 2])
def test_converts_chumpy_pickle_without_chumpy(model: dict, tmp_path: Path, protocol: int) -> None:
    src = tmp_path / "official" / "MANO_RIGHT.pkl"
    src.parent.mkdir()
    _write_official_like(src, model, protocol)
    assert not any(name.startswith("chumpy") for name in sys.modules)
    with pytest.raises(ModuleNotFoundError):
        with src.open("rb") as fh:  # a plain unpickler would need chumpy
            pickle.load(fh, encoding="latin1")

    dst = convert_mano(src, tmp_path / "out" / "MANO_RIGHT.pkl")
    with dst.open("rb") as fh:
        converted = pickle.load(fh)  # plain numpy now: the standard unpickler reads it
    np.testing.assert_array_equal(converted["shapedirs"], model["shapedirs"])
    np.testing.assert_array_equal(converted["J"], model["J"])
    assert converted["f"].dtype == np.int64
    np.testing.assert_array_equal(converted["f"], model["f"])
    assert scipy.sparse.isspmatrix_csc(converted["J_regressor"])
    np.testing.assert_array_equal(
        converted["J_regressor"].toarray(), model["J_regressor"].toarray()
    )
    assert converted["bs_style"] == "lbs"

    # The converted file runs through smplx and matches the synthetic hand (manopth tips).
    pose = torch.randn(2, 48, generator=torch.Generator().manual_seed(0)) * 0.3
    a = ManoLayer(dst)(pose).vertices
    b = ManoLayer(src)(pose).vertices  # the layer reads official files directly, too
    torch.testing.assert_close(a, b)


def test_refuses_code_execution(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    src = tmp_path / "MANO_RIGHT.pkl"
    src.write_bytes(pickle.dumps({"v_template": Evil()}, protocol=2))
    with pytest.raises(UnsafePickleError, match=r"system") as info:
        convert_mano(src, tmp_path / "out.pkl")
    assert str(src) in str(info.value)
    assert not marker.exists() and not (tmp_path / "out.pkl").exists()

    src.write_bytes(pickle.dumps({"x": eval}, protocol=4))
    with pytest.raises(UnsafePickleError, match=r"builtins\.eval"):
        load_mano_pickle(src)


def test_missing_key_names_key_and_file(model: dict, tmp_path: Path) -> None:
    src = tmp_path / "MANO_RIGHT.pkl"
    trimmed = {k: v for k, v in model.items() if k != "posedirs"}
    _write_official_like(src, trimmed, 2)
    with pytest.raises(MissingKeyError, match="posedirs") as info:
        convert_mano(src, tmp_path / "out.pkl")
    assert str(src) in str(info.value)
    assert isinstance(info.value, KeyError)


def test_wrong_shape_names_the_key(model: dict, tmp_path: Path) -> None:
    src = tmp_path / "MANO_RIGHT.pkl"
    _write_official_like(src, model, 2, v_template=model["v_template"][:777])
    with pytest.raises(ValueError, match=r"v_template.*\(777, 3\)"):
        convert_mano(src, tmp_path / "out.pkl")


def test_chumpy_op_without_array_is_reported(model: dict, tmp_path: Path) -> None:
    classes = _fake_chumpy()
    try:
        op = classes["Select"](classes["Ch"](np.ones(3)))
        src = tmp_path / "MANO_RIGHT.pkl"
        src.write_bytes(pickle.dumps({"shapedirs": op}, protocol=2))
    finally:
        _remove_fake_chumpy()
    with pytest.raises(ValueError, match=r"chumpy\.reordering\.Select.*'x'"):
        load_mano_pickle(src)


def test_cli(model: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "MANO_RIGHT.pkl"
    _write_official_like(src, model, 2)
    out_dir = tmp_path / "converted"
    out_dir.mkdir()
    assert convert_main([str(src), str(out_dir)]) == 0
    assert (out_dir / "MANO_RIGHT.pkl").is_file()
    assert convert_main([str(tmp_path / "missing.pkl"), str(out_dir / "x.pkl")]) == 1
    assert "missing.pkl" in capsys.readouterr().err
    with pytest.raises(ValueError, match="source"):
        convert_mano(src, src)
