"""A left hand's mesh marker keeps outward normals: mirrored vertices need reversed winding."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from homae_model.tracking.frame import hand_side
from homae_ros.messages.outputs import _faces


def _normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    return np.cross(b - a, c - a)


def test_left_faces_keep_normals_outward_after_mirroring() -> None:
    # a tetrahedron with outward normals, mirrored in x like a left hand
    verts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    centre = verts.mean(0)
    out = np.einsum("fk,fk->f", _normals(verts, faces), verts[faces].mean(1) - centre)
    assert np.all(out > 0)
    mirrored = verts * np.array([-1.0, 1.0, 1.0])
    left = _faces(faces, "left")
    out_left = np.einsum(
        "fk,fk->f", _normals(mirrored, left), mirrored[left].mean(1) - centre * [-1, 1, 1]
    )
    assert np.all(out_left > 0)
    assert _faces(faces, "right") is faces


def test_published_side_is_the_estimate_side() -> None:
    assert hand_side(SimpleNamespace(side="left")) == "left"
    assert hand_side(SimpleNamespace(side="right")) == "right"
