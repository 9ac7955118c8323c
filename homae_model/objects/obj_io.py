"""Minimal Wavefront OBJ reader and writer for triangle meshes.

Only geometry is read: `v` lines (x y z, extra components such as vertex colours ignored) and
`f` lines (polygons are fan-triangulated; indices are 1-based, negative indices count back from
the last vertex read so far; `v/vt/vn` forms keep the vertex index). Every other statement
(`vt`, `vn`, `o`, `g`, `s`, `usemtl`, `mtllib`, comments) is ignored. Errors name the file and
the line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _parse_index(token: str, num_vertices: int, where: str) -> int:
    """Convert one OBJ face token (`7`, `7/1`, `7//3`, `-1`) to a 0-based vertex index."""
    head = token.split("/", 1)[0]
    try:
        value = int(head)
    except ValueError as err:
        raise ValueError(f"{where}: bad face index {token!r}") from err
    if value > 0:
        index = value - 1
    elif value < 0:
        index = num_vertices + value
    else:
        raise ValueError(f"{where}: face index 0 is invalid (OBJ indices start at 1)")
    if not 0 <= index < num_vertices:
        raise ValueError(
            f"{where}: face index {value} is out of range ({num_vertices} vertices read so far)"
        )
    return index


def read_obj(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read the triangle geometry of an OBJ file.

    Args:
        path: the `.obj` file.

    Returns:
        vertices (V, 3) float64 in the file's units, faces (F, 3) int64 0-based indices.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: naming the file (and line) for a malformed vertex or face, an index out of
            range, or a file without vertices or faces.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"OBJ file not found: {path}")
    vertices: list[tuple[float, float, float]] = []
    faces: list[tuple[int, int, int]] = []
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for line_no, line in enumerate(handle, start=1):
            parts = line.split()
            if not parts:
                continue
            key = parts[0]
            where = f"{path}:{line_no}"
            if key == "v":
                if len(parts) < 4:
                    raise ValueError(f"{where}: vertex needs 3 coordinates, got {line.strip()!r}")
                try:
                    vertices.append((float(parts[1]), float(parts[2]), float(parts[3])))
                except ValueError as err:
                    raise ValueError(f"{where}: bad vertex {line.strip()!r}") from err
            elif key == "f":
                if len(parts) < 4:
                    raise ValueError(f"{where}: face needs at least 3 vertices")
                ids = [_parse_index(tok, len(vertices), where) for tok in parts[1:]]
                for k in range(1, len(ids) - 1):
                    faces.append((ids[0], ids[k], ids[k + 1]))
    if not vertices:
        raise ValueError(f"OBJ file {path} has no vertices ('v' lines)")
    if not faces:
        raise ValueError(f"OBJ file {path} has no faces ('f' lines)")
    verts = np.asarray(vertices, dtype=np.float64)
    if not np.all(np.isfinite(verts)):
        raise ValueError(f"OBJ file {path} has NaN or inf vertex coordinates")
    return verts, np.asarray(faces, dtype=np.int64)


def write_obj(path: str | Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Write a triangle mesh as OBJ (`v` and 1-based `f` lines only).

    Args:
        path: output file; its folder is created if needed.
        vertices: (V, 3) coordinates.
        faces: (F, 3) 0-based vertex indices.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    verts = np.asarray(vertices, dtype=np.float64)
    tris = np.asarray(faces, dtype=np.int64)
    lines = [f"v {x:.9g} {y:.9g} {z:.9g}" for x, y, z in verts]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in tris]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
