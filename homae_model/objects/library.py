"""Object mesh library: procedural stand-ins for YCB objects, or the real YCB models.

`ObjectLibrary.procedural()` builds the project's stand-ins (true metric sizes, YCB ids as
names, object frame at the bounding-box centre, z the long/revolution axis);
`ObjectLibrary.from_ycb(folder)` reads `<folder>/<name>/textured_simple.obj` and keeps each
file's own frame (the frame the datasets' object poses refer to).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial import ConvexHull

from homae_model.objects import procedural as pm
from homae_model.objects.obj_io import read_obj

YCB_MODEL_FILE = "textured_simple.obj"
"""File name of a YCB model inside its `<name>/` folder."""

DEFAULT_COLOR = (0.6, 0.6, 0.6)
"""RGB in [0, 1] for objects without a known base colour."""


class UnknownObjectError(KeyError):
    """An object name that is not in the library; the message lists the valid names."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown object"


@dataclass(frozen=True)
class ObjectMesh:
    """One rigid object model.

    Attributes:
        name: library name, e.g. "006_mustard_bottle".
        vertices: (V, 3) float64 vertices in the object frame, metres.
        faces: (F, 3) int64 triangle vertex indices, counter-clockwise seen from outside.
        corners: (8, 3) bounding-box corners in the object frame; corner `i` takes the max of
            x if bit 2 of i is set, of y if bit 1, of z if bit 0 (else the min).
        diameter: largest distance between two vertices, metres.
        color: (3,) base RGB colour in [0, 1].
        vertex_colors: optional (V, 3) per-vertex RGB in [0, 1] (overrides `color`).
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    corners: np.ndarray
    diameter: float
    color: np.ndarray
    vertex_colors: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        name: str,
        vertices: np.ndarray,
        faces: np.ndarray,
        color: tuple[float, float, float] | np.ndarray = DEFAULT_COLOR,
        vertex_colors: np.ndarray | None = None,
    ) -> ObjectMesh:
        """Make an ObjectMesh, deriving corners and diameter from the vertices."""
        verts = np.ascontiguousarray(vertices, dtype=np.float64)
        lo, hi = verts.min(axis=0), verts.max(axis=0)
        bits = np.array([[(i >> 2) & 1, (i >> 1) & 1, i & 1] for i in range(8)], dtype=bool)
        corners = np.where(bits, hi, lo)
        try:
            hull = verts[ConvexHull(verts).vertices]
        except Exception:  # degenerate (flat) meshes: fall back to all vertices
            hull = verts
        diffs = hull[:, None, :] - hull[None, :, :]
        diameter = float(np.sqrt((diffs**2).sum(-1).max()))
        return cls(
            name=name,
            vertices=verts,
            faces=np.ascontiguousarray(faces, dtype=np.int64),
            corners=corners,
            diameter=diameter,
            color=np.asarray(color, dtype=np.float64),
            vertex_colors=None if vertex_colors is None else np.asarray(vertex_colors, np.float64),
        )

    def sample_surface(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Sample points uniformly (by area) on the surface.

        Args:
            n: number of points.
            rng: random generator.

        Returns:
            (n, 3) float64 points in the object frame, metres.
        """
        from homae_model.geometry.surface import sample_surface

        return sample_surface(self.vertices, self.faces, n, rng)


# ------------------------------------------------------------------ procedural stand-ins


def _can(diameter: float, height: float, bevel: float = 0.004) -> tuple[np.ndarray, np.ndarray]:
    r, h = diameter / 2, height / 2
    profile = [
        (0, -h),
        (0.6 * r, -h),
        (r - bevel, -h),
        (r, -h + bevel),
        (r, -0.5 * h),
        (r, 0.0),
        (r, 0.5 * h),
        (r, h - bevel),
        (r - bevel, h),
        (0.6 * r, h),
        (0, h),
    ]
    return pm.revolve(np.asarray(profile), segments=64)


def _rounded_box(
    size: tuple[float, float, float], exponent: float = 8.0
) -> tuple[np.ndarray, np.ndarray]:
    sx, sy, sz = size
    h, b = sz / 2, 0.004
    section = pm.superellipse(72, exponent, (sx / 2, sy / 2))
    profile = [
        (0, -h),
        (0.7, -h),
        (1 - b / sy * 2, -h),
        (1, -h + b),
        (1, 0),
        (1, h - b),
        (1 - b / sy * 2, h),
        (0.7, h),
        (0, h),
    ]
    return pm.revolve(np.asarray(profile), section=section)


def _bottle(
    width: float, depth: float, height: float, neck_radius: float, shoulder: float
) -> tuple[np.ndarray, np.ndarray]:
    """Oval bottle: body of half-axes (width/2, depth/2), shoulder at `shoulder` x height."""
    h = height / 2
    z_sh = -h + shoulder * height
    z_neck = z_sh + 0.12 * height
    rn = neck_radius / width  # half the neck radius relative to the body half-width
    profile = [
        (0, -h),
        (0.7, -h),
        (0.95, -h),
        (1.0, -h + 0.006),
        (1.0, -h + 0.3 * height),
        (1.0, z_sh - 0.02),
        (0.97, z_sh),
        (0.85, z_sh + 0.04 * height),
        (0.6, z_sh + 0.08 * height),
        (2 * rn, z_neck),
        (2 * rn, h - 0.004),
        (1.6 * rn, h),
        (0, h),
    ]
    section = pm.superellipse(48, 2.6, (width / 2, depth / 2))
    return pm.revolve(np.asarray(profile), section=section)


def _mug(diameter: float, height: float, handle_reach: float) -> tuple[np.ndarray, np.ndarray]:
    r, h, t = diameter / 2, height / 2, 0.005
    profile = [
        (0, -h),
        (r - 0.004, -h),
        (r, -h + 0.004),
        (r, 0),
        (r, h),
        (r - t, h),
        (r - t, 0),
        (r - t, -h + 2 * t),
        (0, -h + 2 * t),
    ]
    body_v, body_f = pm.revolve(np.asarray(profile), segments=56)
    angle = np.linspace(-np.pi / 2 * 0.95, np.pi / 2 * 0.95, 20)
    rz = 0.32 * height
    path = np.stack(
        [
            r - 0.004 + (handle_reach - 0.006) * np.cos(angle),
            np.zeros_like(angle),
            rz * np.sin(angle),
        ],
        axis=1,
    )
    hv, hf = pm.tube(path, 0.006, segments=12)
    return np.concatenate([body_v, hv]), np.concatenate([body_f, hf + len(body_v)])


def _bowl(diameter: float, height: float) -> tuple[np.ndarray, np.ndarray]:
    r, h, t = diameter / 2, height / 2, 0.004
    s = np.linspace(0.0, 1.0, 7)[1:]
    outer = [
        (
            0.35 * r + 0.65 * r * np.sin(si * np.pi / 2),
            -h + height * (1 - np.cos(si * np.pi / 2)) ** 0.8,
        )
        for si in s
    ]
    inner = [
        (
            (r - t) * np.sin(si * np.pi / 2),
            -h + t + (height - t) * (1 - np.cos(si * np.pi / 2)) ** 0.8,
        )
        for si in s[::-1]
    ]
    profile = [(0, -h), (0.3 * r, -h), *outer, *inner[:-1], (0.3 * r * 0.5, -h + t), (0, -h + t)]
    return pm.revolve(np.asarray(profile), segments=64)


def _banana(length: float, thickness: float) -> tuple[np.ndarray, np.ndarray]:
    angle = np.linspace(-0.6, 0.6, 24)
    radius = length / (2 * np.sin(0.6)) / 0.995
    path = np.stack([radius * np.sin(angle), np.zeros_like(angle), -radius * np.cos(angle)], axis=1)
    taper = (
        thickness / 2 * (0.35 + 0.65 * np.sin(np.linspace(0.05, np.pi - 0.05, len(angle))) ** 0.5)
    )
    return pm.tube(path, taper, segments=16)


def _marker(diameter: float, length: float) -> tuple[np.ndarray, np.ndarray]:
    r, h = diameter / 2, length / 2
    profile = [
        (0, -h),
        (0.7 * r, -h),
        (r, -h + 0.003),
        (r, h - 0.012),
        (0.6 * r, h - 0.004),
        (0.3 * r, h),
        (0, h),
    ]
    return pm.revolve(np.asarray(profile), segments=72)


# name -> (builder, colour, optional colour bands over z fraction [(z_from, z_to, rgb)])
_Builder = Callable[[], tuple[np.ndarray, np.ndarray]]
_PROCEDURAL: dict[
    str,
    tuple[
        _Builder, tuple[float, float, float], list[tuple[float, float, tuple[float, float, float]]]
    ],
] = {
    "002_master_chef_can": (
        lambda: _can(0.102, 0.139),
        (0.12, 0.32, 0.72),
        [(0.0, 0.08, (0.75, 0.75, 0.78)), (0.92, 1.0, (0.75, 0.75, 0.78))],
    ),
    "003_cracker_box": (lambda: pm.box((0.060, 0.158, 0.210), 16), (0.82, 0.16, 0.10), []),
    "004_sugar_box": (lambda: pm.box((0.038, 0.089, 0.175), 16), (0.95, 0.86, 0.35), []),
    "005_tomato_soup_can": (
        lambda: _can(0.066, 0.101),
        (0.80, 0.12, 0.10),
        [(0.0, 0.45, (0.93, 0.93, 0.9))],
    ),
    "006_mustard_bottle": (
        lambda: _bottle(0.095, 0.058, 0.190, 0.014, 0.62),
        (0.96, 0.80, 0.06),
        [],
    ),
    "007_tuna_fish_can": (
        lambda: _can(0.085, 0.033, 0.003),
        (0.72, 0.72, 0.76),
        [(0.2, 0.8, (0.2, 0.35, 0.7))],
    ),
    "008_pudding_box": (lambda: pm.box((0.035, 0.110, 0.089), 14), (0.50, 0.32, 0.20), []),
    "009_gelatin_box": (lambda: pm.box((0.028, 0.085, 0.073), 14), (0.82, 0.22, 0.30), []),
    "010_potted_meat_can": (
        lambda: _rounded_box((0.097, 0.050, 0.082)),
        (0.22, 0.36, 0.72),
        [(0.0, 0.1, (0.75, 0.75, 0.78)), (0.9, 1.0, (0.75, 0.75, 0.78))],
    ),
    "011_banana": (lambda: _banana(0.19, 0.036), (0.95, 0.84, 0.22), []),
    "021_bleach_cleanser": (
        lambda: _bottle(0.098, 0.065, 0.250, 0.016, 0.68),
        (0.92, 0.92, 0.94),
        [(0.25, 0.6, (0.2, 0.4, 0.85))],
    ),
    "024_bowl": (lambda: _bowl(0.159, 0.053), (0.78, 0.16, 0.12), []),
    "025_mug": (lambda: _mug(0.080, 0.082, 0.037), (0.72, 0.12, 0.12), []),
    "036_wood_block": (lambda: pm.box((0.085, 0.085, 0.200), 14), (0.78, 0.62, 0.42), []),
    "040_large_marker": (
        lambda: _marker(0.018, 0.121),
        (0.08, 0.08, 0.09),
        [(0.25, 0.75, (0.9, 0.9, 0.9))],
    ),
    "061_foam_brick": (lambda: pm.box((0.050, 0.075, 0.050), 12), (0.85, 0.22, 0.2), []),
}

PROCEDURAL_NAMES: tuple[str, ...] = tuple(sorted(_PROCEDURAL))
"""Names of the procedural stand-ins (YCB ids)."""


def _band_colors(vertices: np.ndarray, base: np.ndarray, bands: list) -> np.ndarray | None:
    if not bands:
        return None
    z = vertices[:, 2]
    frac = (z - z.min()) / max(float(np.ptp(z)), 1e-9)
    colors = np.tile(base, (len(vertices), 1))
    for lo, hi, rgb in bands:
        colors[(frac >= lo - 1e-6) & (frac <= hi + 1e-6)] = rgb
    return colors


def build_procedural(name: str) -> ObjectMesh:
    """Build one procedural stand-in, recentred at its bounding-box centre.

    Raises:
        UnknownObjectError: for a name without a procedural builder.
    """
    if name not in _PROCEDURAL:
        raise UnknownObjectError(
            f"no procedural object {name!r}; valid names: {', '.join(PROCEDURAL_NAMES)}"
        )
    builder, color, bands = _PROCEDURAL[name]
    vertices, faces = builder()
    vertices = vertices - (vertices.min(0) + vertices.max(0)) / 2.0
    base = np.asarray(color, dtype=np.float64)
    return ObjectMesh.build(name, vertices, faces, base, _band_colors(vertices, base, bands))


class ObjectLibrary:
    """A named set of object meshes.

    Attributes:
        names: sorted list of object names; `index(name)` is the position in this list (the
            `obj_id` of the training dict).
    """

    def __init__(self, meshes: dict[str, ObjectMesh]) -> None:
        """Wrap already built meshes (use `procedural()` or `from_ycb()` normally)."""
        if not meshes:
            raise ValueError("an ObjectLibrary needs at least one object")
        self._meshes = dict(meshes)
        self.names: list[str] = sorted(self._meshes)

    @classmethod
    def procedural(cls, names: list[str] | tuple[str, ...] | None = None) -> ObjectLibrary:
        """The project's procedural stand-ins for YCB objects (all of them by default)."""
        return cls({n: build_procedural(n) for n in (names or PROCEDURAL_NAMES)})

    @classmethod
    def from_ycb(
        cls, folder: str | Path, names: list[str] | tuple[str, ...] | None = None
    ) -> ObjectLibrary:
        """Read YCB models `<folder>/<name>/textured_simple.obj` (metres, file frame kept).

        Args:
            folder: the YCB `models` folder.
            names: objects to load; default: every sub-folder holding a model file.

        Raises:
            FileNotFoundError: naming the folder or the missing model file.
            ValueError: naming the file for a malformed OBJ.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"YCB models folder not found: {folder}")
        if names is None:
            names = sorted(p.parent.name for p in folder.glob(f"*/{YCB_MODEL_FILE}"))
            if not names:
                raise FileNotFoundError(
                    f"no YCB models in {folder}: expected <name>/{YCB_MODEL_FILE} files"
                )
        meshes = {}
        for name in names:
            path = folder / name / YCB_MODEL_FILE
            if not path.is_file():
                raise FileNotFoundError(f"YCB model file not found: {path}")
            vertices, faces = read_obj(path)
            color = _PROCEDURAL[name][1] if name in _PROCEDURAL else DEFAULT_COLOR
            meshes[name] = ObjectMesh.build(name, vertices, faces, color)
        return cls(meshes)

    def index(self, name: str) -> int:
        """Position of `name` in `names` (the integer object id)."""
        self._check(name)
        return self.names.index(name)

    def get(self, name: str) -> ObjectMesh:
        """The mesh called `name`.

        Raises:
            UnknownObjectError: (a KeyError) listing the valid names.
        """
        self._check(name)
        return self._meshes[name]

    def _check(self, name: str) -> None:
        if name not in self._meshes:
            raise UnknownObjectError(
                f"unknown object {name!r}; valid names: {', '.join(self.names)}"
            )

    def __contains__(self, name: object) -> bool:
        return name in self._meshes

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[ObjectMesh]:
        return (self._meshes[n] for n in self.names)
