"""Convert the official MANO pickles (Python 2, chumpy objects) to plain numpy, without chumpy.

The official ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` were pickled by Python 2 and hold numpy
arrays, a scipy.sparse J_regressor and chumpy ``Ch`` objects (e.g. ``shapedirs``). chumpy does
not run on Python 3.11 / numpy 2, so `SafeManoUnpickler` never imports it: its `find_class`

- maps chumpy classes (``chumpy.ch.Ch``, ``chumpy.ch_ops.*``, ``chumpy.reordering.*``, ...) to
  tiny stand-ins that only keep their pickled state (a chumpy ``Ch`` stores its array under the
  state key ``'x'``),
- maps scipy.sparse matrix classes to stand-ins rebuilt as ``csc_matrix`` afterwards (robust to
  scipy's private module moves),
- allows numpy's array / dtype / scalar reconstruction functions, ``copyreg._reconstructor``
  with ``object`` / ``set`` as bases, and ``_codecs.encode`` restricted to latin-1 text (how
  Python 3 writes bytes in protocol 0-2 pickles),
- and REFUSES every other global (``os.system``, ``builtins.eval``, ...) with
  `UnsafePickleError` naming it, so a crafted file cannot run code.

`load_mano_pickle` returns plain values (np.ndarray, scipy.sparse.csc_matrix, str);
`convert_mano` checks the keys and shapes `smplx.MANO` needs and writes a protocol-4 pickle.
The same loader reads this project's own files (plain numpy), see `homae_model.hand.mano`.
"""

from __future__ import annotations

import copyreg
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from homae_model.hand.constants import MANO_REQUIRED_SHAPES


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle referenced a global outside the allow-list (it could run code)."""


class MissingKeyError(KeyError):
    """A MANO model file lacks a required key (message names the key and the file)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class _ChumpyStandIn:
    """Replaces any chumpy class while unpickling; keeps the pickled state only."""

    chumpy_class = "chumpy.?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: dict = {}

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {"state": state}

    def to_array(self) -> np.ndarray:
        if "x" not in self.state:
            raise ValueError(
                f"chumpy object {self.chumpy_class} stores no array (state key 'x'); "
                f"state keys: {sorted(self.state)}"
            )
        x = self.state["x"]
        return x.to_array() if isinstance(x, _ChumpyStandIn) else np.asarray(x)


class _SparseStandIn:
    """Replaces scipy.sparse matrix classes while unpickling; rebuilt by `to_csc`."""

    sparse_format = "csc"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: dict = {}

    def __setstate__(self, state: Any) -> None:
        self.state = dict(state)

    def to_csc(self) -> scipy.sparse.csc_matrix:
        s = self.state
        shape = tuple(s.get("_shape", s.get("shape")))
        fmt = self.sparse_format
        if fmt in ("csc", "csr"):
            cls = scipy.sparse.csc_matrix if fmt == "csc" else scipy.sparse.csr_matrix
            m = cls((np.asarray(s["data"]), np.asarray(s["indices"]), np.asarray(s["indptr"])),
                    shape=shape)  # fmt: skip
        elif fmt == "coo":
            rc = (np.asarray(s["row"]), np.asarray(s["col"]))
            m = scipy.sparse.coo_matrix((np.asarray(s["data"]), rc), shape=shape)
        else:
            raise ValueError(f"unsupported scipy.sparse format in pickle: {fmt}")
        return scipy.sparse.csc_matrix(m)


_STANDIN_CACHE: dict[tuple[str, str], type] = {}


def _standin(base: type, module: str, name: str, **attrs: Any) -> type:
    key = (module, name)
    if key not in _STANDIN_CACHE:
        _STANDIN_CACHE[key] = type(f"StandIn_{name}", (base,), attrs)
    return _STANDIN_CACHE[key]


def _numpy_globals() -> dict[str, Any]:
    """Numpy's reconstruction callables, found the way this numpy pickles (version-proof)."""
    reconstruct = np.zeros(1).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    out = {"_reconstruct": reconstruct, "scalar": scalar}
    try:
        from numpy._core.numeric import _frombuffer  # numpy >= 2 (protocol 5 pickles)
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.numeric import _frombuffer  # type: ignore[no-redef]
    out["_frombuffer"] = _frombuffer
    return out


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """Stand-in for ``_codecs.encode``, accepting only latin-1 text -> bytes.

    Python 3 writes bytes (e.g. numpy's raw data) this way in protocol 0-2 pickles.
    """
    if not isinstance(text, str) or encoding.lower() not in ("latin1", "latin-1", "iso-8859-1"):
        raise UnsafePickleError(f"refusing _codecs.encode({type(text).__name__}, {encoding!r})")
    return text.encode("latin1")


_NUMPY = _numpy_globals()
_NUMPY_MODULES = {
    "numpy.core.multiarray",
    "numpy._core.multiarray",
    "numpy.core.numeric",
    "numpy._core.numeric",
}
_BUILTINS = {"object": object, "set": set, "frozenset": frozenset}
_SPARSE_FORMATS = {"csc_matrix": "csc", "csr_matrix": "csr", "coo_matrix": "coo",
                   "csc_array": "csc", "csr_array": "csr", "coo_array": "coo"}  # fmt: skip


class SafeManoUnpickler(pickle.Unpickler):
    """Unpickler for MANO files: chumpy / scipy.sparse as stand-ins, numpy, nothing else.

    See the module docstring. Use with ``encoding='latin1'`` for Python 2 files.
    """

    source = "<pickle>"

    def find_class(self, module: str, name: str) -> Any:
        """Resolve an allowed global or raise `UnsafePickleError` naming it."""
        if module == "chumpy" or module.startswith("chumpy."):
            return _standin(_ChumpyStandIn, module, name, chumpy_class=f"{module}.{name}")
        if module.startswith("scipy.sparse") and name in _SPARSE_FORMATS:
            return _standin(_SparseStandIn, module, name, sparse_format=_SPARSE_FORMATS[name])
        if module in ("numpy", "numpy.core", "numpy._core") and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module in _NUMPY_MODULES and name in _NUMPY:
            return _NUMPY[name]
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return copyreg._reconstructor
        if module == "_codecs" and name == "encode":
            return _latin1_bytes
        if module in ("__builtin__", "builtins") and name in _BUILTINS:
            return _BUILTINS[name]
        raise UnsafePickleError(
            f"{self.source}: refusing to load '{module}.{name}' (not numpy, scipy.sparse or "
            "chumpy data); the file may be corrupt or malicious"
        )


def _plain(value: Any) -> Any:
    """Stand-ins -> numpy / csc; numpy scalars and lists -> arrays; strings unchanged."""
    if isinstance(value, _ChumpyStandIn):
        return value.to_array()
    if isinstance(value, _SparseStandIn):
        return value.to_csc()
    if isinstance(value, (str, bytes, np.ndarray)) or scipy.sparse.issparse(value):
        return value
    if isinstance(value, (list, tuple, int, float, np.generic)):
        return np.asarray(value)
    return value


def load_mano_pickle(path: str | Path) -> dict[str, Any]:
    """Safely load a MANO pickle (official chumpy file or a plain one) as plain values.

    Args:
        path: the .pkl file.

    Returns:
        dict of np.ndarray / scipy.sparse.csc_matrix / str values (no validation).

    Raises:
        FileNotFoundError: the file does not exist.
        UnsafePickleError: the pickle references a disallowed global.
        ValueError: the pickle is not a dict, or a chumpy value holds no array.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MANO model file not found: {path}")
    with path.open("rb") as fh:
        unpickler = SafeManoUnpickler(fh, encoding="latin1")
        unpickler.source = str(path)
        try:
            data = unpickler.load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, AttributeError, TypeError) as exc:
            raise ValueError(f"{path}: not a readable MANO pickle ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of model arrays, got {type(data).__name__}")
    out = {}
    for key, value in data.items():
        try:
            out[str(key)] = _plain(value)
        except ValueError as exc:
            raise ValueError(f"{path}: key '{key}': {exc}") from exc
    return out


def validate_mano_dict(model: dict[str, Any], source: str | Path) -> dict[str, Any]:
    """Check the keys and shapes `smplx.MANO` needs; normalise dtypes (float64, int64 faces).

    Args:
        model: dict from `load_mano_pickle` (or `build_synthetic_hand`).
        source: the file it came from, for error messages.

    Returns:
        A new dict with the same keys; required arrays as float64 (faces / kintree int64,
        J_regressor scipy.sparse csc).

    Raises:
        MissingKeyError: a required key is absent (names the key and the file).
        ValueError: a value has the wrong shape (names the key, shapes and the file).
    """
    out = dict(model)
    for key, shape in MANO_REQUIRED_SHAPES.items():
        if key not in model:
            raise MissingKeyError(
                f"{source}: MANO model is missing the key '{key}' (expected shape {shape}); "
                f"keys present: {sorted(model)}"
            )
        value = model[key]
        if scipy.sparse.issparse(value):
            value = scipy.sparse.csc_matrix(value, dtype=np.float64)
        else:
            value = np.asarray(value)
            if key in ("f", "kintree_table"):
                value = value.astype(np.int64)
            else:
                value = value.astype(np.float64)
        if tuple(value.shape) != shape:
            raise ValueError(
                f"{source}: MANO key '{key}' has shape {tuple(value.shape)}, expected {shape}"
            )
        out[key] = value
    if not scipy.sparse.issparse(out["J_regressor"]):
        out["J_regressor"] = scipy.sparse.csc_matrix(out["J_regressor"])
    return out


def convert_mano(src: str | Path, dst: str | Path) -> Path:
    """Convert an official MANO pickle to a plain numpy pickle `smplx` can load.

    Args:
        src: official ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` (Python 2, chumpy inside).
        dst: output file (keep the ``MANO_RIGHT`` / ``MANO_LEFT`` name for smplx); parent
            folders are created. Must differ from src.

    Returns:
        The written path.

    Raises:
        FileNotFoundError, UnsafePickleError, MissingKeyError, ValueError: see
            `load_mano_pickle` and `validate_mano_dict`.
    """
    src, dst = Path(src), Path(dst)
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise ValueError(f"destination {dst} is the source file; choose another path")
    model = validate_mano_dict(load_mano_pickle(src), src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with dst.open("wb") as fh:
        pickle.dump(model, fh, protocol=4)
    return dst
