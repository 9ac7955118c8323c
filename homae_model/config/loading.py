"""Loading HOMAE configs with OmegaConf: YAML files, base files, dotted overrides, derived keys.

A config is composed from layers merged, in order, onto the schema (`OmegaConf.structured` of
`HomaeConfig`, where every `DERIVED` key is an interpolation of its source):

1. the ``base:`` file(s) a YAML file names (resolved relative to that file, recursively);
2. the file itself;
3. dotted command-line overrides (``model.masking.enabled=false train.lr=1e-4``).

OmegaConf merges the layers, refuses unknown keys, converts and checks the values against the
dataclass types and resolves the derived keys; `OmegaConf.to_object` then builds the dataclasses
the code uses, and `HomaeConfig.validate` checks what types cannot say (ranges, choices, pairs).
Config files stay strict where OmegaConf is lenient: ``'no'`` is not a bool, ``12`` not a string,
``1e-4`` (text to YAML 1.1) not a number. Every error is a ``ValueError`` that names the file (or
the override) and the key, and for an unknown key the valid and nearest ones.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from homae_model.config.schema import DERIVED, LENGTH_RESOLVER, HomaeConfig, get_path

T = TypeVar("T")

BASE_KEY = "base"
"""Top-level key of a config file naming the file(s) it overrides (relative to itself)."""

_OVERRIDE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

if not OmegaConf.has_resolver(LENGTH_RESOLVER):
    OmegaConf.register_new_resolver(LENGTH_RESOLVER, lambda value: len(value))

Layer = tuple[str, dict[str, Any]]
"""(where it comes from: a file path or "override 'KEY=VALUE'", nested dict)."""


# --------------------------------------------------------------------------------------------
# schema walk: the checks OmegaConf is too lenient for, and readable type names
# --------------------------------------------------------------------------------------------


def _optional(tp: Any) -> tuple[Any, bool]:
    """(X, True) for ``X | None``, else (tp, False)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _describe(tp: Any) -> str:
    base, _ = _optional(tp)
    if dataclasses.is_dataclass(base):
        return "a mapping"
    if typing.get_origin(base) in (list, tuple):
        return "a list"
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}
    return names.get(base, getattr(base, "__name__", str(base)))


def _yaml_text_number(text: str) -> str | None:
    """'1e-4' -> '1.0e-4': how to write a number YAML 1.1 read as text; None if not one."""
    try:
        float(text)
    except ValueError:
        return None
    mantissa, sep, exponent = text.strip().lower().partition("e")
    if sep and "." not in mantissa:
        return f"{mantissa}.0e{exponent}"
    return text.strip()


def _is_interpolation(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("${") and value.endswith("}")


def _check_leaf(value: Any, tp: Any, path: str) -> None:
    """Refuse what OmegaConf would silently convert (or not check at all)."""
    base, _ = _optional(tp)
    if value is None or _is_interpolation(value):
        return  # null: OmegaConf checks Optional; interpolations resolve later
    origin = typing.get_origin(base)
    if origin in (list, tuple) and isinstance(value, (list, tuple)):
        args = typing.get_args(base)
        if origin is tuple and Ellipsis not in args and len(args) != len(value):
            raise ValueError(f"{path}: expected {len(args)} values, got {len(value)}")
        for i, v in enumerate(value):
            _check_leaf(
                v, args[0] if origin is list else args[min(i, len(args) - 1)], f"{path}[{i}]"
            )
        return
    if base is bool and not isinstance(value, bool):
        raise ValueError(f"{path}: expected true/false, got {value!r}")
    if base is str and not isinstance(value, str):
        raise ValueError(f"{path}: expected a string, got {value!r}")
    if base is float:
        if isinstance(value, str) and _yaml_text_number(value) is not None:
            raise ValueError(
                f"{path}: expected a number, got {value!r} (YAML reads an exponent without a "
                f"decimal point as text: write {_yaml_text_number(value)})"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{path}: expected a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ValueError(f"{path}: expected a finite number, got {value!r}")


def _check_layer(data: Any, cls: type, path: str = "") -> dict[str, Any]:
    """A copy of a layer whose sections are mappings (``null``: empty) and leaves strictly typed.

    Unknown keys are left for OmegaConf's merge to refuse (translated by `_message`).
    """
    if not isinstance(data, dict):
        raise ValueError(f"{path or '<root>'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    out = dict(data)
    for name, value in data.items():
        if name not in hints:
            continue
        sub = f"{path}.{name}" if path else str(name)
        if dataclasses.is_dataclass(hints[name]):
            out[name] = {} if value is None else _check_layer(value, hints[name], sub)
        else:
            _check_leaf(value, hints[name], sub)
    return out


def _type_at(cls: type, path: str) -> Any:
    """The annotated type at a dotted path with list indices (``a.b[1]``), or None."""
    tp: Any = cls
    for part in path.split("."):
        name, *indices = part.split("[")
        base, _ = _optional(tp)
        if not dataclasses.is_dataclass(base):
            return None
        tp = typing.get_type_hints(base).get(name)
        for _ in indices:
            args = typing.get_args(_optional(tp)[0])
            tp = args[0] if args else None
    return tp


def _valid_keys(cls: type, path: str) -> list[str]:
    tp = _type_at(cls, path) if path else cls
    base, _ = _optional(tp)
    return [f.name for f in dataclasses.fields(base)] if dataclasses.is_dataclass(base) else []


def _all_keys(cls: type, path: str = "") -> list[str]:
    out = []
    for f in dataclasses.fields(cls):
        sub = f"{path}.{f.name}" if path else f.name
        tp = typing.get_type_hints(cls)[f.name]
        out += _all_keys(tp, sub) if dataclasses.is_dataclass(tp) else [sub]
    return out


def _unknown_key(cls: type, full_key: str) -> str:
    """The message for an unknown key: the valid keys of its section and the nearest ones."""
    parent, _, name = full_key.rpartition(".")
    while parent and not _valid_keys(cls, parent):  # the unknown part is higher up
        parent, _, name = parent.rpartition(".")
    names = _valid_keys(cls, parent)
    shown = f"{parent}.{name}" if parent else name
    near = [f"{parent}.{n}" if parent else n for n in difflib.get_close_matches(name, names, 3)]
    if not near:  # e.g. a key under the wrong section
        near = difflib.get_close_matches(full_key, _all_keys(cls), 3, 0.7)
    text = f"unknown config key(s) {[shown]}; valid keys of {parent or '<root>'}: {names}"
    return text + (f"; nearest: {near}" if near else "")


def _message(exc: OmegaConfBaseException, cls: type) -> str:
    """OmegaConf's error as this project's: key path first, expected type, offending value."""
    key = getattr(exc, "full_key", "") or ""
    if isinstance(exc, ConfigKeyError) and key:
        return _unknown_key(cls, key)
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if not key:
        return first
    value = getattr(exc, "value", None)
    tp = _type_at(cls, key)
    if tp is None:
        return f"{key}: {first}"
    if value is None and "None" in first:
        return f"{key}: null is not allowed (expected {_describe(tp)})"
    return f"{key}: expected {_describe(tp)}, got {value!r} ({first})"


# --------------------------------------------------------------------------------------------
# layers -> config
# --------------------------------------------------------------------------------------------


def _drop_restated(data: dict[str, Any]) -> dict[str, Any]:
    """Remove derived keys a layer states equal to their source; refuse unequal ones.

    A saved, fully resolved config states both keys of every pair; dropping the equal derived
    one keeps it derived, so an override of the source carries over.
    """
    for pair in DERIVED:
        value, source_value = _get(data, pair.key), _get(data, pair.source)
        if value is _ABSENT or source_value is _ABSENT:
            continue
        if _is_interpolation(value) or _is_interpolation(source_value):
            continue
        if not pair.agrees(value, source_value):
            raise ValueError(pair.conflict(value, source_value))
        section, _, name = pair.key.rpartition(".")
        _get(data, section).pop(name)
    return data


_ABSENT = object()


def _get(data: Any, path: str) -> Any:
    for name in path.split("."):
        if not isinstance(data, dict) or name not in data:
            return _ABSENT
        data = data[name]
    return data


def _schema(cls: type[T]) -> DictConfig:
    node = OmegaConf.structured(cls)
    if cls is HomaeConfig:
        for pair in DERIVED:
            OmegaConf.update(node, pair.key, pair.interpolation(), merge=False)
    return node


def _source_prefix(source: str) -> str:
    return f"{source}: " if source else ""


def compose(layers: Sequence[Layer], cls: type[T] = HomaeConfig) -> T:  # type: ignore[assignment]
    """Merge layers onto the schema of `cls` and build the dataclass (validated if it can be).

    Args:
        layers: (source, nested dict) pairs, lowest priority first; `source` prefixes errors.
        cls: the dataclass (the schema).

    Raises:
        ValueError: naming the source and the key.
    """
    node = _schema(cls)
    for source, data in layers:
        try:
            data = _check_layer(data, cls)
            if cls is HomaeConfig:
                data = _drop_restated(data)
            node = OmegaConf.merge(node, data)
        except OmegaConfBaseException as exc:
            raise ValueError(_source_prefix(source) + _message(exc, cls)) from None
        except ValueError as exc:
            raise ValueError(_source_prefix(source) + str(exc)) from None
    where = _source_prefix(", ".join(s for s, _ in layers[-1:]) if layers else "")
    try:
        cfg = OmegaConf.to_object(node)
    except OmegaConfBaseException as exc:
        raise ValueError(where + _message(exc, cls)) from None
    validate = getattr(cfg, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as exc:
            raise ValueError(where + str(exc)) from None
    return typing.cast(T, cfg)


def parse_overrides(overrides: Sequence[str]) -> list[Layer]:
    """Dotted ``KEY=VALUE`` command-line overrides as layers (one per override).

    The value is read as YAML (``false``, ``1e-4``, ``null``, ``[a, b]``), as OmegaConf does.

    Raises:
        ValueError: an item without ``=`` or with a malformed key, naming it.
    """
    layers = []
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not sep or not _OVERRIDE_KEY.match(key.strip()):
            raise ValueError(
                f"override {item!r}: expected KEY=VALUE with a dotted key, "
                "e.g. model.masking.enabled=false"
            )
        try:
            data = OmegaConf.to_container(OmegaConf.from_dotlist([item]))
        except (OmegaConfBaseException, yaml.YAMLError) as exc:
            raise ValueError(f"override {item!r}: {str(exc).splitlines()[0]}") from None
        layers.append((f"override {item!r}", typing.cast(dict[str, Any], data)))
    return layers


def _file_layers(path: Path, seen: tuple[Path, ...] = ()) -> list[Layer]:
    """The layers of a config file: its base files' (recursively), then its own."""
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    if path.resolve() in seen:
        chain = " -> ".join(str(p) for p in (*seen, path.resolve()))
        raise ValueError(f"{path}: {BASE_KEY}: config files include each other ({chain})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML: {exc}") from exc
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ValueError(f"{path}: <root>: expected a mapping, got {type(data).__name__}")
    bases = data.pop(BASE_KEY, None)
    bases = [bases] if isinstance(bases, str) else bases
    if bases is not None and (
        not isinstance(bases, list) or not all(isinstance(b, str) for b in bases)
    ):
        raise ValueError(f"{path}: {BASE_KEY}: expected a file name or a list of file names")
    layers: list[Layer] = []
    for name in bases or []:
        base = (path.parent / name).expanduser()
        if not base.is_file():
            raise FileNotFoundError(f"{path}: {BASE_KEY} config file not found: {base}")
        layers += _file_layers(base, (*seen, path.resolve()))
    return [*layers, (str(path), data)]


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def config_from_dict(data: dict[str, Any] | None) -> HomaeConfig:
    """Build a validated config from a (partial) nested dict; missing keys keep the defaults.

    Raises:
        ValueError: unknown key (listing the valid ones), wrong type or out-of-range value.
    """
    return compose([("", data or {})])


def config_to_dict(cfg: HomaeConfig) -> dict[str, Any]:
    """Nested plain dict (lists instead of tuples) suitable for YAML."""

    def convert(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: convert(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [convert(x) for x in v]
        return v

    return convert(dataclasses.asdict(cfg))


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> HomaeConfig:
    """Read a YAML config (on top of its ``base:`` files and the defaults), then `overrides`.

    Args:
        path: the YAML file. A top-level ``base: other.yaml`` (or a list) names files, relative
            to this one, that it overrides.
        overrides: dotted ``KEY=VALUE`` items applied last (``model.masking.enabled=false``).

    Raises:
        FileNotFoundError: the file (or a base file) does not exist.
        ValueError: bad YAML, unknown keys, wrong types, out-of-range values or a derived key
            that disagrees with its source (the message names the file or override and key).
    """
    layers = _file_layers(Path(path))
    layers += parse_overrides(overrides)
    cfg = compose(layers)
    return cfg


def apply_overrides(cfg: T, overrides: Sequence[str]) -> T:
    """A copy of a config dataclass (`HomaeConfig` or any other) with dotted overrides applied.

    Raises:
        ValueError: unknown key (with the nearest valid ones), wrong type or invalid value.
    """
    if not overrides:
        return cfg
    base = config_to_dict(cfg) if isinstance(cfg, HomaeConfig) else dataclasses.asdict(cfg)  # type: ignore[arg-type]
    return compose([("", base), *parse_overrides(overrides)], type(cfg))


def save_config(cfg: HomaeConfig, path: str | Path) -> None:
    """Write the fully resolved config as YAML (every field, derived ones included)."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


__all__ = [
    "BASE_KEY",
    "apply_overrides",
    "compose",
    "config_from_dict",
    "config_to_dict",
    "get_path",
    "load_config",
    "parse_overrides",
    "save_config",
]
