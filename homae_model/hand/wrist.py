"""Close the wrist of a MANO-topology hand mesh: its one open boundary loop, capped by a fan.

MANO's mesh (and the project's synthetic hand) is a disc, open only at the wrist;
`close_wrist` adds one vertex at the loop's centroid and a triangle fan, giving a watertight,
outward-oriented surface for signed distances.
"""

from __future__ import annotations

import numpy as np


def wrist_boundary_loop(faces: np.ndarray) -> np.ndarray:
    """The ordered vertex loop of a MANO-topology mesh's single open boundary (the wrist).

    Args:
        faces: (F, 3) int vertex indices of a disc-like, consistently oriented mesh.

    Returns:
        (L,) int64 vertex ids in the order of the boundary edges' direction in the faces.

    Raises:
        ValueError: if the mesh has no boundary, more than one loop, or a non-manifold boundary.
    """
    f = np.asarray(faces, dtype=np.int64)
    if f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"faces: expected shape (F, 3), got {f.shape}")
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]], axis=0)
    key = np.sort(directed, axis=1)
    _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    boundary = directed[counts[inverse.ravel()] == 1]
    if len(boundary) == 0:
        raise ValueError("faces: the mesh is closed (no wrist boundary to cap)")
    nxt = dict(zip(boundary[:, 0].tolist(), boundary[:, 1].tolist(), strict=True))
    if len(nxt) != len(boundary):
        raise ValueError("faces: non-manifold boundary (a vertex starts two boundary edges)")
    start = int(boundary[0, 0])
    loop = [start]
    while (v := nxt[loop[-1]]) != start:
        loop.append(v)
        if len(loop) > len(boundary):
            raise ValueError("faces: broken boundary loop")
    if len(loop) != len(boundary):
        raise ValueError(f"faces: {len(boundary)} boundary edges form more than one loop")
    return np.asarray(loop, dtype=np.int64)


_LOOP_CACHE: dict[bytes, np.ndarray] = {}


def close_wrist(vertices, faces):
    """Cap the wrist hole: one vertex at the loop centroid and a triangle fan.

    Works for the synthetic hand and for real MANO (both are open only at the wrist). The
    result is watertight and keeps the faces' outward orientation, as signed distances need.

    Args:
        vertices: (..., V, 3) numpy array or torch tensor (any leading batch dims).
        faces: (F, 3) int numpy array (or torch tensor) of the open mesh.

    Returns:
        (vertices (..., V+1, 3), faces (F+L, 3)) of the same array types; the new vertex is the
        last one, L is the loop size (16 for MANO).
    """
    is_torch_faces = not isinstance(faces, np.ndarray) and hasattr(faces, "numpy")
    f = np.asarray(faces.cpu().numpy() if is_torch_faces else faces, dtype=np.int64)
    key = f.tobytes()
    if key not in _LOOP_CACHE:
        _LOOP_CACHE.clear()
        _LOOP_CACHE[key] = wrist_boundary_loop(f)
    loop = _LOOP_CACHE[key]
    n = vertices.shape[-2]
    if isinstance(vertices, np.ndarray):
        centre = vertices[..., loop, :].mean(axis=-2, keepdims=True)
        new_vertices = np.concatenate([vertices, centre], axis=-2)
    else:
        import torch

        centre = vertices[..., torch.as_tensor(loop, device=vertices.device), :]
        new_vertices = torch.cat([vertices, centre.mean(dim=-2, keepdim=True)], dim=-2)
    # Boundary edge a -> b is used by a face in that direction: the cap uses b -> a.
    cap = np.stack([np.roll(loop, -1), loop, np.full_like(loop, n)], axis=1)
    new_faces = np.concatenate([f, cap], axis=0)
    if is_torch_faces:
        import torch

        new_faces = torch.as_tensor(new_faces, device=faces.device)
    return new_vertices, new_faces
