"""Procedural triangle meshes: boxes, surfaces of revolution, swept tubes, spheres.

All builders return `(vertices (V, 3) float64, faces (F, 3) int64)` of a closed,
outward-oriented (counter-clockwise seen from outside) triangle mesh in metres; every edge is
shared by exactly two faces. They are the parts of the project's stand-ins for YCB objects
(`homae_model.objects.library`) and of the distractor occluders of the synthetic data.
"""

from __future__ import annotations

import numpy as np

# Weld tolerance (m) for merging coincident vertices of separately built patches.
_WELD_TOL = 1e-7


def weld(
    vertices: np.ndarray, faces: np.ndarray, tol: float = _WELD_TOL
) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices closer than `tol` (on a grid) and drop faces that became degenerate.

    Args:
        vertices: (V, 3) positions.
        faces: (F, 3) vertex indices.
        tol: merge grid size in the vertices' units.

    Returns:
        (V', 3) unique vertices and (F', 3) re-indexed faces.
    """
    keys = np.round(np.asarray(vertices) / tol).astype(np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(first)  # keep the original vertex order for determinism/readability
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    new_faces = remap[inverse[np.asarray(faces)]]
    keep = (
        (new_faces[:, 0] != new_faces[:, 1])
        & (new_faces[:, 1] != new_faces[:, 2])
        & (new_faces[:, 0] != new_faces[:, 2])
    )
    return np.asarray(vertices)[first[order]], new_faces[keep]


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Volume enclosed by a closed triangle mesh (positive when oriented outward), m^3."""
    tri = np.asarray(vertices)[np.asarray(faces)]
    return float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0)


def orient_outward(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Return `faces` flipped if the closed mesh encloses a negative volume."""
    faces = np.asarray(faces)
    return faces[:, ::-1].copy() if signed_volume(vertices, faces) < 0 else faces


def box(size: tuple[float, float, float], divisions: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box centred at the origin, each face split into a grid.

    Args:
        size: (sx, sy, sz) edge lengths in metres.
        divisions: grid cells along the longest edge; other edges get proportionally fewer
            (at least 2).

    Returns:
        vertices (V, 3), faces (F, 3).
    """
    half = np.asarray(size, dtype=np.float64) / 2.0
    cells = np.maximum(2, np.round(divisions * half / half.max())).astype(int)
    verts: list[np.ndarray] = []
    faces: list[np.ndarray] = []
    offset = 0
    for axis in range(3):
        u_ax, v_ax = (axis + 1) % 3, (axis + 2) % 3
        nu, nv = cells[u_ax], cells[v_ax]
        uu, vv = np.meshgrid(
            np.linspace(-half[u_ax], half[u_ax], nu + 1),
            np.linspace(-half[v_ax], half[v_ax], nv + 1),
            indexing="ij",
        )
        idx = np.arange((nu + 1) * (nv + 1)).reshape(nu + 1, nv + 1)
        a, b = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel()
        c, d = idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
        for sign in (1.0, -1.0):
            pts = np.zeros(((nu + 1) * (nv + 1), 3))
            pts[:, axis] = sign * half[axis]
            pts[:, u_ax] = uu.ravel()
            pts[:, v_ax] = vv.ravel()
            # (u, v, axis) is right-handed, so a-b-c is counter-clockwise seen from +axis.
            quad = np.stack([a, b, c, a, c, d], axis=1).reshape(-1, 3)
            if sign < 0:
                quad = quad[:, ::-1]
            verts.append(pts)
            faces.append(quad + offset)
            offset += len(pts)
    return weld(np.concatenate(verts), np.concatenate(faces))


def superellipse(
    segments: int, exponent: float = 2.0, axes: tuple[float, float] = (1.0, 1.0)
) -> np.ndarray:
    """Closed counter-clockwise cross-section curve |x/a|^p + |y/b|^p = 1.

    Args:
        segments: number of points.
        exponent: p; 2 gives an ellipse, larger values a rounded rectangle.
        axes: (a, b) half-axes.

    Returns:
        (segments, 2) points.
    """
    theta = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    c, s = np.cos(theta), np.sin(theta)
    power = 2.0 / exponent
    x = np.sign(c) * np.abs(c) ** power * axes[0]
    y = np.sign(s) * np.abs(s) ** power * axes[1]
    return np.stack([x, y], axis=1)


def revolve(
    profile: np.ndarray, segments: int = 48, section: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Surface of revolution about the z axis, closed by poles at both profile ends.

    Args:
        profile: (N, 2) (r, z) points, N >= 3; the first and last must have r == 0 (the poles
            on the axis), the others r > 0. Walking the profile from the first to the last
            point with the solid on the left side gives outward normals (e.g. bottom pole ->
            outer wall up -> top pole for a solid; for a cup continue down the inner wall).
        segments: points per ring (ignored when `section` is given).
        section: optional (S, 2) counter-clockwise unit cross-section (e.g. `superellipse`);
            ring points are `r * section`. Default: a circle.

    Returns:
        vertices (V, 3), faces (F, 3).
    """
    profile = np.asarray(profile, dtype=np.float64)
    if profile.ndim != 2 or profile.shape[1] != 2 or len(profile) < 3:
        raise ValueError(f"profile must be (N>=3, 2) (r, z) points, got shape {profile.shape}")
    if profile[0, 0] != 0.0 or profile[-1, 0] != 0.0 or np.any(profile[1:-1, 0] <= 0):
        raise ValueError("profile must start and end on the axis (r = 0) with r > 0 between")
    if section is None:
        section = superellipse(segments)
    section = np.asarray(section, dtype=np.float64)
    seg = len(section)
    rings = profile[1:-1]
    ring_pts = np.concatenate([np.column_stack([r * section, np.full(seg, z)]) for r, z in rings])
    bottom = np.array([[0.0, 0.0, profile[0, 1]]])
    top = np.array([[0.0, 0.0, profile[-1, 1]]])
    vertices = np.concatenate([bottom, ring_pts, top])
    n_rings = len(rings)
    top_id = 1 + n_rings * seg
    j = np.arange(seg)
    jn = (j + 1) % seg
    faces = [np.stack([np.zeros(seg, int), 1 + jn, 1 + j], axis=1)]
    for i in range(n_rings - 1):
        a, b = 1 + i * seg + j, 1 + i * seg + jn
        c, d = 1 + (i + 1) * seg + j, 1 + (i + 1) * seg + jn
        faces.append(np.stack([a, b, c], axis=1))
        faces.append(np.stack([b, d, c], axis=1))
    last = 1 + (n_rings - 1) * seg
    faces.append(np.stack([last + j, last + jn, np.full(seg, top_id)], axis=1))
    return vertices, np.concatenate(faces).astype(np.int64)


def _frames(path: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tangents and two normals along a polyline (parallel transport of a start normal)."""
    tangents = np.gradient(path, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    ref = np.array([0.0, 0.0, 1.0]) if abs(tangents[0, 2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    normal = np.cross(tangents[0], ref)
    normal /= np.linalg.norm(normal)
    normals, binormals = [], []
    for t in tangents:
        normal = normal - t * (normal @ t)
        normal /= np.linalg.norm(normal)
        normals.append(normal)
        binormals.append(np.cross(t, normal))
    return tangents, np.asarray(normals), np.asarray(binormals)


def tube(
    path: np.ndarray, radius: np.ndarray | float, segments: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Closed tube swept along a polyline, capped by a pole vertex at each end.

    Args:
        path: (M, 3) centre-line points, M >= 2.
        radius: scalar or (M,) radius per path point, metres (> 0).
        segments: points per ring.

    Returns:
        vertices (V, 3), faces (F, 3), oriented outward.
    """
    path = np.asarray(path, dtype=np.float64)
    radius = np.broadcast_to(np.asarray(radius, dtype=np.float64), (len(path),))
    _, normals, binormals = _frames(path)
    theta = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    ring = (
        path[:, None, :]
        + radius[:, None, None]
        * (
            np.cos(theta)[None, :, None] * normals[:, None]
            + np.sin(theta)[None, :, None] * binormals[:, None]
        )
    ).reshape(-1, 3)
    m = len(path)
    vertices = np.concatenate([path[:1], ring, path[-1:]])
    j = np.arange(segments)
    jn = (j + 1) % segments
    faces = [np.stack([np.zeros(segments, int), 1 + jn, 1 + j], axis=1)]
    for i in range(m - 1):
        a, b = 1 + i * segments + j, 1 + i * segments + jn
        c, d = 1 + (i + 1) * segments + j, 1 + (i + 1) * segments + jn
        faces.append(np.stack([a, b, c], axis=1))
        faces.append(np.stack([b, d, c], axis=1))
    last, top = 1 + (m - 1) * segments, 1 + m * segments
    faces.append(np.stack([last + j, last + jn, np.full(segments, top)], axis=1))
    faces_arr = np.concatenate(faces).astype(np.int64)
    return vertices, orient_outward(vertices, faces_arr)


def icosphere(radius: float, subdivisions: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Sphere from a subdivided icosahedron (20 * 4^subdivisions faces), centred at 0."""
    t = (1.0 + 5.0**0.5) / 2.0
    verts = np.array(
        [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
         [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]],
        dtype=np.float64,
    )  # fmt: skip
    faces = np.array(
        [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
         [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
         [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]],
        dtype=np.int64,
    )  # fmt: skip
    verts /= np.linalg.norm(verts, axis=1, keepdims=True)
    for _ in range(subdivisions):
        a, b, c = faces[:, 0], faces[:, 1], faces[:, 2]
        mids = np.concatenate(
            [(verts[a] + verts[b]) / 2, (verts[b] + verts[c]) / 2, (verts[c] + verts[a]) / 2]
        )
        n, f = len(verts), len(faces)
        ab, bc, ca = n + np.arange(f), n + f + np.arange(f), n + 2 * f + np.arange(f)
        verts = np.concatenate([verts, mids])
        faces = np.concatenate(
            [
                np.stack([a, ab, ca], 1),
                np.stack([b, bc, ab], 1),
                np.stack([c, ca, bc], 1),
                np.stack([ab, bc, ca], 1),
            ]
        )
        verts, faces = weld(verts, faces, tol=1e-9)
        verts /= np.linalg.norm(verts, axis=1, keepdims=True)
    return verts * radius, orient_outward(verts, faces)


def edge_manifold_errors(faces: np.ndarray) -> int:
    """Count directed edges that are not matched by exactly one opposite edge.

    A closed, consistently oriented mesh has every directed edge (a, b) exactly once and its
    reverse (b, a) exactly once, so the count is 0.

    Args:
        faces: (F, 3) vertex indices.

    Returns:
        number of offending directed edges (0 for a watertight, consistently oriented mesh).
    """
    f = np.asarray(faces)
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    uniq, counts = np.unique(edges, axis=0, return_counts=True)
    bad = int((counts != 1).sum())
    directed = {tuple(e) for e in uniq.tolist()}
    bad += sum(1 for a, b in directed if (b, a) not in directed)
    return bad


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Un-normalised face normals (length = 2 x triangle area), (F, 3)."""
    tri = vertices[faces]
    return np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])


def smooth_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals, (V, 3) unit vectors."""
    fn = face_normals(vertices, faces)
    normals = np.zeros_like(vertices, dtype=np.float64)
    for k in range(3):
        for axis in range(3):
            normals[:, axis] += np.bincount(faces[:, k], fn[:, axis], minlength=len(vertices))
    norm = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.maximum(norm, 1e-12)


def split_creases(
    vertices: np.ndarray,
    faces: np.ndarray,
    angle_deg: float = 40.0,
    colors: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Duplicate vertices along sharp edges so that smooth shading keeps creases crisp.

    Each face corner gets the area-weighted mean normal of the faces around its vertex whose
    normal is within `angle_deg` of its own face's normal; corners with equal vertex and normal
    share one output vertex.

    Args:
        vertices: (V, 3) positions.
        faces: (F, 3) indices.
        angle_deg: crease angle in degrees.
        colors: optional (V, 3) per-vertex colours, carried to the new vertices.

    Returns:
        vertices (V', 3), faces (F, 3), normals (V', 3), colors (V', 3) or None.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    fn = face_normals(vertices, faces)
    unit = fn / np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-15)
    corner_v = faces.ravel()
    corner_f = np.repeat(np.arange(len(faces)), 3)
    order = np.argsort(corner_v, kind="stable")
    counts_v = np.bincount(corner_v, minlength=len(vertices))
    starts_v = np.cumsum(counts_v) - counts_v
    counts = counts_v[corner_v]
    owner = np.repeat(np.arange(len(corner_v)), counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    other_f = corner_f[order[starts_v[corner_v][owner] + within]]
    keep = np.einsum("ij,ij->i", unit[corner_f[owner]], unit[other_f]) > np.cos(
        np.radians(angle_deg)
    )
    acc = np.zeros((len(corner_v), 3))
    for axis in range(3):
        acc[:, axis] = np.bincount(owner[keep], fn[other_f[keep], axis], minlength=len(corner_v))
    normals = acc / np.maximum(np.linalg.norm(acc, axis=1, keepdims=True), 1e-15)
    key = np.column_stack([corner_v, np.round(normals * 1e4).astype(np.int64)])
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    new_faces = inverse.reshape(-1).reshape(-1, 3)
    out_colors = None if colors is None else np.asarray(colors)[corner_v[first]]
    return vertices[corner_v[first]], new_faces, normals[first], out_colors
