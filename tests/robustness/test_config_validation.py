"""Config validation, systematically: every field of HomaeConfig refuses bad values by name.

tests/model/test_config.py checks a handful of keys; here every leaf field of every section is
walked: a value of the wrong type, a choice outside the list and a value outside the range are
errors that name the key path (and list the choices / give the bound), never silent defaults.
Unknown keys at every level list the valid ones. A fuzz test throws random nested structures
at `config_from_dict`: it returns a validated config or raises ValueError, nothing else.
Node parameters (homae_ros/node/params.py) are covered by tests/ros/test_params.py.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homae_model.config import (
    _DATA_BOUNDS,
    DataConfig,
    HomaeConfig,
    config_from_dict,
    config_to_dict,
    load_config,
)


def _leaves(cls: type = HomaeConfig, path: str = ""):
    """(key path, type, bounds, choices) of every non-dataclass field."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        sub = f"{path}.{f.name}" if path else f.name
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from _leaves(tp, sub)
            continue
        bounds = _DATA_BOUNDS.get(f.name, {}) if cls is DataConfig else dict(f.metadata)
        yield sub, tp, {k: bounds.get(k) for k in ("ge", "gt", "le")}, f.metadata.get("choices")


LEAVES = list(_leaves())
BOUNDED = [(p, b) for p, _, b, _ in LEAVES if any(v is not None for v in b.values())]
CHOICES = [(p, c) for p, _, _, c in LEAVES if c]


def _nest(path: str, value) -> dict:
    out: dict = value
    for key in reversed(path.split(".")):
        out = {key: out}
    return out


def _base(tp) -> type:
    """`X` of `X | None`, else the type itself."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _wrong_value(tp):
    base = _base(tp)
    origin = typing.get_origin(base)
    if origin in (list, tuple):
        return "not a list"
    if base is bool:
        return "yes"
    if base in (int, float):
        return "ten"
    if base is str:
        return 12
    raise AssertionError(base)


def test_the_walk_covers_every_section() -> None:
    sections = {p.split(".")[0] for p, *_ in LEAVES}
    assert sections == {"model", "loss", "train", "data", "mano"}
    assert len(LEAVES) > 80 and len(BOUNDED) > 50 and len(CHOICES) >= 3


@pytest.mark.parametrize(("path", "tp"), [(p, t) for p, t, _, _ in LEAVES], ids=lambda x: str(x))
def test_wrong_type_names_the_key(path, tp) -> None:
    with pytest.raises(ValueError, match=re.escape(path)):
        config_from_dict(_nest(path, _wrong_value(tp)))


@pytest.mark.parametrize(("path", "bounds"), BOUNDED, ids=[p for p, _ in BOUNDED])
def test_out_of_range_names_the_key_and_the_bound(path, bounds) -> None:
    if bounds["ge"] is not None:
        bad, word = bounds["ge"] - 1, f">= {bounds['ge']}"
    elif bounds["gt"] is not None:
        bad, word = bounds["gt"], f"> {bounds['gt']}"
    else:
        bad, word = bounds["le"] + 1, f"<= {bounds['le']}"
    tp = next(t for p, t, _, _ in LEAVES if p == path)
    if _base(tp) is int or typing.get_origin(_base(tp)) is list:
        bad = math.floor(bad)
    value = [bad] if typing.get_origin(_base(tp)) is list else bad
    with pytest.raises(ValueError, match=re.escape(path)) as err:
        config_from_dict(_nest(path, value))
    assert "out of range" in str(err.value) and word in str(err.value), str(err.value)


@pytest.mark.parametrize(("path", "choices"), CHOICES, ids=[p for p, _ in CHOICES])
def test_unknown_choice_lists_the_valid_ones(path, choices) -> None:
    with pytest.raises(ValueError, match=re.escape(path)) as err:
        config_from_dict(_nest(path, "definitely_not_a_choice"))
    assert str(list(choices)) in str(err.value)


def _sections(cls: type = HomaeConfig, path: str = ""):
    hints = typing.get_type_hints(cls)
    yield path, [f.name for f in dataclasses.fields(cls)]
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _sections(hints[f.name], f"{path}.{f.name}" if path else f.name)


@pytest.mark.parametrize(("path", "names"), list(_sections()), ids=lambda x: str(x)[:30])
def test_unknown_key_at_every_level_lists_the_valid_keys(path, names) -> None:
    typo = names[0] + "_typo"
    data = _nest(path, {typo: 1}) if path else {typo: 1}
    with pytest.raises(ValueError, match="unknown config key") as err:
        config_from_dict(data)
    text = str(err.value)
    assert (f"{path}.{typo}" if path else typo) in text, text
    assert all(n in text for n in names), text


@pytest.mark.parametrize(
    ("yaml_text", "needle"),
    [
        ("train:\n  lr: 1e-4\n", r"train\.lr: expected a number, got '1e-4'.*1\.0e-4"),
        ("train:\n  lr: .nan\n", r"train\.lr: expected a finite number"),
        ("train:\n  epochs: 2.5\n", r"train\.epochs: expected an integer"),
        ("train:\n  epochs: true\n", r"train\.epochs: expected an integer"),
        ("train:\n  amp: 'no'\n", r"train\.amp: expected true/false"),
        ("model:\n  encoder: 3\n", r"model\.encoder: expected a mapping"),
        ("model:\n  decoder:\n    stage_channels: [32, x]\n", r"stage_channels\[1\]"),
        ("data:\n  color_jitter: [0.5, 0.5]\n", r"data\.color_jitter: expected 4 values"),
        ("train:\n  optimizer: null\n", r"train\.optimizer: null is not allowed"),
        ("- a\n- b\n", r"<root>: expected a mapping"),
        ("train: {lr: 1\n", r"invalid YAML"),
    ],
)
def test_yaml_mistakes_are_errors_naming_file_and_key(tmp_path: Path, yaml_text, needle) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ValueError, match=needle) as err:
        load_config(path)
    assert str(path) in str(err.value)


# A random mix of plausible and junk values at real and made-up keys.
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 300), st.floats(allow_nan=True),
    st.text(max_size=6), st.sampled_from(["noise", "adam", "dense", "coarse_to_fine"]),
)  # fmt: skip
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_PATHS = st.sampled_from([p for p, *_ in LEAVES] + ["model.encoder", "train", "data.nope"])


@settings(
    max_examples=200, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
@given(st.lists(st.tuples(_PATHS, _VALUES), max_size=4))
def test_random_overrides_give_a_valid_config_or_a_value_error(overrides) -> None:
    data: dict = {}
    for path, value in overrides:
        node = data
        keys = path.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {}) if isinstance(node.get(key, {}), dict) else {}
        node[keys[-1]] = value
    try:
        cfg = config_from_dict(data)
    except ValueError as err:
        assert len(str(err)) > 10
        return
    cfg.validate()  # whatever was accepted is valid and round-trips
    assert config_from_dict(config_to_dict(cfg)) == cfg
