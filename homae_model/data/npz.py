"""Deterministic, fast .npz files: the annotation container of the synthetic sets.

`write_npz` writes an uncompressed zip whose bytes depend only on the arrays (fixed member
dates, sorted keys); `read_npz` reads one back by slicing the stored members out of the file
held in memory and parsing their .npy headers directly, falling back to numpy's reader for
anything unusual. Errors name the file.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an uncompressed .npz whose bytes depend only on the arrays (fixed zip dates)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


_LOCAL_HEADER = 30
"""Size of a zip local file header before its name and extra field."""


_NPY_MAGIC = b"\x93NUMPY"
_NPY_HEADER = re.compile(
    r"^\{'descr': '([<>|=][a-zA-Z]\d*)', 'fortran_order': (True|False), "
    r"'shape': \(((?:\d+, ?)*\d*)\), \}\s*$"
)


def _parse_npy(data: bytes) -> np.ndarray | None:
    """Parse a plain-dtype .npy held in memory without `ast`.

    The header is the slow part of `np.lib.format.read_array` for small arrays. Returns None
    for anything it does not recognise (the caller then uses numpy's reader, which also gives
    numpy's errors).
    """
    if data[:6] != _NPY_MAGIC or data[6] not in (1, 2, 3):
        return None
    if data[6] == 1:
        hlen, start = int.from_bytes(data[8:10], "little"), 10
    else:
        hlen, start = int.from_bytes(data[8:12], "little"), 12
    match = _NPY_HEADER.match(data[start : start + hlen].decode("latin1"))
    if match is None:
        return None
    dtype = np.dtype(match.group(1))
    if dtype.hasobject:
        return None
    shape = tuple(int(x) for x in match.group(3).replace(" ", "").split(",") if x)
    count = int(np.prod(shape, dtype=np.int64))
    offset = start + hlen
    if offset + count * dtype.itemsize > len(data):
        raise EOFError(f"array data ends early ({len(data) - offset} bytes for shape {shape})")
    order = "F" if match.group(2) == "True" else "C"
    out = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return out.reshape(shape, order=order).copy()


def _stored_member(buf: bytes, info: zipfile.ZipInfo) -> bytes:
    """The bytes of an uncompressed zip member, sliced from the archive held in memory."""
    off = info.header_offset
    if buf[off : off + 4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header for {info.filename}")
    start = off + _LOCAL_HEADER + int.from_bytes(buf[off + 26 : off + 28], "little")
    start += int.from_bytes(buf[off + 28 : off + 30], "little")
    if start + info.file_size > len(buf):
        raise EOFError(f"member {info.filename} runs past the end of the file")
    return buf[start : start + info.file_size]


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Read an .npz fully; errors name the file (missing, truncated or corrupt).

    The file is read once into memory and its (uncompressed, as `write_npz` writes them)
    members are sliced out and their .npy headers parsed with a regular expression, several
    times faster than `np.load` member by member; compressed members and unusual headers go
    through zipfile and numpy's reader.
    """
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    try:
        buf = path.read_bytes()
        out = {}
        with zipfile.ZipFile(io.BytesIO(buf)) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                if info.compress_type == zipfile.ZIP_STORED:
                    data = _stored_member(buf, info)
                    array = _parse_npy(data)
                    if array is None:
                        array = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
                else:
                    array = np.lib.format.read_array(zf.open(info), allow_pickle=False)
                out[info.filename[:-4]] = array
        return out
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise ValueError(f"annotation file {path} is truncated or corrupt: {err}") from err
