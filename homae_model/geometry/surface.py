"""Points on a triangle mesh surface (pure numpy): area-weighted uniform samples."""

from __future__ import annotations

import numpy as np


def sample_surface(
    vertices: np.ndarray,
    faces: np.ndarray,
    n: int,
    rng: np.random.Generator,
    areas: np.ndarray | None = None,
) -> np.ndarray:
    """Area-weighted uniform samples on a triangle mesh surface.

    Args:
        vertices: (V, 3) vertex positions.
        faces: (F, 3) vertex indices.
        n: number of samples.
        rng: numpy random generator.
        areas: (F,) face areas when already known (`MeshSDF.areas`); same draws either way.

    Returns:
        (n, 3) float64 surface points.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces)
    area = areas
    if area is None:
        tri = vertices[faces]
        cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        area = 0.5 * np.linalg.norm(cross, axis=1)
    face = rng.choice(len(faces), size=n, p=area / area.sum())
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1.0
    u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
    t = vertices[faces[face]]
    return t[:, 0] + (t[:, 1] - t[:, 0]) * u[:, None] + (t[:, 2] - t[:, 0]) * v[:, None]
