"""Signed distances to watertight triangle meshes, computed on the fly, and SDF training samples.

`mesh_sdf(points, vertices, faces)` is exact: the closest point on every candidate triangle
(Ericson's region classification, vectorised numpy), candidates pruned with a bounding-sphere
test that cannot discard the true closest triangle, and the sign from the angle-weighted
pseudo-normal of the closest feature (face, edge or vertex; Baerentzen & Aanaes 2005), which is
exact for a closed, consistently (outward) oriented mesh. Distances are in the mesh's units;
negative inside.

`sample_sdf_points` draws the training points of the SDF heads: surface samples jittered by
N(0, surface_std) plus a `uniform_fraction` of points uniform in the cube of half side
`cube_half_size` (1 / sdf_scale = 1 / 3.1 m) around the anchor; targets clamped to +-clamp.
Hand meshes must be capped at the wrist first (`homae_model.hand` `close_wrist`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from homae_model.geometry.surface import sample_surface

SDF_SCALE: float = 3.1
"""HOISDF's scale from metres to SDF units; the point cube has half side 1 / SDF_SCALE m."""

_CHUNK_PAIRS = 2_000_000  # (points x faces) entries handled at once


@dataclass
class MeshSDF:
    """A triangle mesh prepared for signed-distance queries.

    Attributes:
        vertices: (V, 3) float64 vertex positions.
        faces: (F, 3) int64 vertex indices, outward (counter-clockwise seen from outside).
        face_normals: (F, 3) unit face normals.
        vertex_normals: (V, 3) angle-weighted pseudo-normals (not normalised).
        edge_normals: (F, 3, 3) pseudo-normal of each face's edges (v0v1, v1v2, v2v0); None
            when the mesh is not watertight (the sign then comes from the winding number).
        centres: (F, 3) face centroids.
        radii: (F,) bounding-sphere radius of each face about its centroid.
        areas: (F,) face areas (for `sample_surface`), or None.
    """

    vertices: np.ndarray
    faces: np.ndarray
    face_normals: np.ndarray
    vertex_normals: np.ndarray
    edge_normals: np.ndarray | None
    centres: np.ndarray
    radii: np.ndarray
    areas: np.ndarray | None = None


@functools.lru_cache(maxsize=16)
def _edge_topology(faces_bytes: bytes, num_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """(edge index of each face corner (3F,), faces per edge (E,)) of a triangle list.

    Depends only on the faces, so a posed hand (same faces every sample) computes it once.
    """
    f = np.frombuffer(faces_bytes, dtype=np.int64).reshape(num_faces, 3)
    edges = np.stack([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]], axis=1).reshape(-1, 2)
    _, inverse, counts = np.unique(
        np.sort(edges, axis=1), axis=0, return_inverse=True, return_counts=True
    )
    return inverse.reshape(-1), counts


def _scatter_add(index: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """(n, 3) sums of the (M, 3) `values` rows by their (M,) `index` (np.add.at, via bincount)."""
    return np.stack(
        [np.bincount(index, weights=values[:, c], minlength=n) for c in range(3)], axis=1
    )


def merge_duplicate_vertices(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices at exactly the same position, keeping first-occurrence order.

    A numeric lexicographic sort (`np.lexsort`) finds the duplicates, many times faster than
    `np.unique(axis=0)` on float rows. The order is kept, so a mesh without duplicates (the
    posed hand) keeps its face indices and its cached edge topology.

    Args:
        vertices: (V, 3) positions.

    Returns:
        (unique (U, 3) positions in order of first occurrence; remap (V,) old -> new index).
    """
    n = len(vertices)
    order = np.lexsort((vertices[:, 2], vertices[:, 1], vertices[:, 0]))
    ordered = vertices[order]
    first = np.ones(n, dtype=bool)
    first[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    if first.all():
        return vertices, np.arange(n, dtype=np.int64)
    group = np.cumsum(first) - 1  # group of each sorted vertex
    rep = np.full(int(group[-1]) + 1, n, dtype=np.int64)
    np.minimum.at(rep, group, order)  # first original index of each group
    rank = np.empty_like(rep)
    rank[np.argsort(rep)] = np.arange(len(rep))
    remap = np.empty(n, dtype=np.int64)
    remap[order] = rank[group]
    return vertices[np.sort(rep)], remap


def prepare_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    require_watertight: bool = False,
    merge_duplicates: bool = True,
) -> MeshSDF:
    """Precompute normals, pseudo-normals and bounding spheres of a closed mesh.

    Vertices at identical positions are merged first (OBJ files duplicate them along texture
    seams) and faces that collapse are dropped.

    Args:
        vertices: (V, 3) vertex positions.
        faces: (F, 3) integer vertex indices, consistently oriented outward.
        require_watertight: raise if, after merging, some edge is not shared by exactly two
            faces; otherwise such a mesh gets its sign from the generalised winding number
            (robust to small holes, slower).
        merge_duplicates: weld vertices at identical positions first. A mesh known to have
            none (the posed MANO hand, every training sample) may skip the search.

    Returns:
        MeshSDF ready for `mesh_sdf`.

    Raises:
        ValueError: bad shapes or out-of-range indices; a mesh that is not watertight when
            `require_watertight`.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise ValueError(
            f"mesh needs vertices (V, 3) and faces (F, 3), got {v.shape} and {f.shape}"
        )
    if f.min() < 0 or f.max() >= len(v):
        raise ValueError(f"face indices must lie in [0, {len(v)}), got [{f.min()}, {f.max()}]")
    if merge_duplicates:
        v, remap = merge_duplicate_vertices(v)
        f = remap[f]
        f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 2] != f[:, 0])]
    if len(f) == 0:
        raise ValueError("mesh has no non-degenerate faces")
    tri = v[f]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area2 = np.linalg.norm(cross, axis=1, keepdims=True)
    normals = cross / np.maximum(area2, 1e-300)

    # Angle-weighted vertex pseudo-normals. Edge k runs from corner k to corner k+1; the angle
    # at corner k lies between edge k and the reversed edge k-1.
    edges = np.roll(tri, -1, axis=1) - tri  # (F, 3 edges, 3)
    lengths = np.sqrt(np.einsum("fki,fki->fk", edges, edges))
    prev = np.roll(edges, 1, axis=1)
    cos = -np.einsum("fki,fki->fk", edges, prev) / np.maximum(
        lengths * np.roll(lengths, 1, axis=1), 1e-300
    )
    angle = np.arccos(np.clip(cos, -1.0, 1.0))  # (F, 3) per corner
    weighted = (angle[:, :, None] * normals[:, None, :]).reshape(-1, 3)
    vertex_normals = _scatter_add(f.reshape(-1), weighted, len(v))

    # Edge pseudo-normals: sum of the two adjacent face normals.
    inverse, counts = _edge_topology(np.ascontiguousarray(f).tobytes(), len(f))
    edge_normals = None
    if np.all(counts == 2):
        edge_sum = _scatter_add(inverse.reshape(-1), np.repeat(normals, 3, axis=0), len(counts))
        edge_normals = edge_sum[inverse.reshape(-1)].reshape(-1, 3, 3)
    elif require_watertight:
        bad = int(np.sum(counts != 2))
        raise ValueError(f"mesh is not watertight: {bad} edges are not shared by exactly two faces")

    centres = tri.mean(axis=1)
    radii = np.linalg.norm(tri - centres[:, None], axis=2).max(axis=1)
    return MeshSDF(
        vertices=v,
        faces=f,
        face_normals=normals,
        vertex_normals=vertex_normals,
        edge_normals=edge_normals,
        centres=centres,
        radii=radii,
        areas=0.5 * area2[:, 0],
    )


def _closest_on_triangles(
    p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Closest points on triangles (a, b, c) to points p, all (M, 3), and the feature region.

    Returns:
        `(q (M, 3), region (M,))`, region: 0 interior, 1/2/3 vertex a/b/c, 4 edge ab, 5 edge bc,
        6 edge ca.
    """
    ab, ac, ap = b - a, c - a, p - a
    d1 = np.einsum("ij,ij->i", ab, ap)
    d2 = np.einsum("ij,ij->i", ac, ap)
    bp = p - b
    d3 = np.einsum("ij,ij->i", ab, bp)
    d4 = np.einsum("ij,ij->i", ac, bp)
    cp = p - c
    d5 = np.einsum("ij,ij->i", ab, cp)
    d6 = np.einsum("ij,ij->i", ac, cp)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2

    denom = np.maximum(va + vb + vc, 1e-300)
    v_in = vb / denom
    w_in = vc / denom
    q = a + ab * v_in[:, None] + ac * w_in[:, None]
    region = np.zeros(len(p), dtype=np.int64)
    done = np.zeros(len(p), dtype=bool)

    def assign(mask: np.ndarray, point: np.ndarray, code: int) -> None:
        sel = mask & ~done
        q[sel] = point[sel]
        region[sel] = code
        done[sel] = True

    with np.errstate(divide="ignore", invalid="ignore"):
        assign((d1 <= 0) & (d2 <= 0), a, 1)
        assign((d3 >= 0) & (d4 <= d3), b, 2)
        assign((d6 >= 0) & (d5 <= d6), c, 3)
        t = d1 / (d1 - d3)
        assign((vc <= 0) & (d1 >= 0) & (d3 <= 0), a + ab * t[:, None], 4)
        t = d2 / (d2 - d6)
        assign((vb <= 0) & (d2 >= 0) & (d6 <= 0), a + ac * t[:, None], 6)
        t = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        assign((va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0), b + (c - b) * t[:, None], 5)
    return q, region


def winding_number(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Generalised winding number (Jacobson et al. 2013) of points w.r.t. a triangle soup.

    About 1 inside and 0 outside a closed outward mesh; degrades gracefully with holes.

    Args:
        points: (N, 3) query points.
        vertices: (V, 3) vertex positions.
        faces: (F, 3) vertex indices.

    Returns:
        (N,) float64 winding numbers.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    out = np.zeros(len(p))
    step = max(1, _CHUNK_PAIRS // (4 * len(tri)))
    for start in range(0, len(p), step):
        d = tri[None] - p[start : start + step, None, None]  # (n, F, 3, 3)
        a, b, c = d[:, :, 0], d[:, :, 1], d[:, :, 2]
        la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
        det = np.einsum("nfi,nfi->nf", a, np.cross(b, c))
        den = (
            la * lb * lc
            + np.einsum("nfi,nfi->nf", a, b) * lc
            + np.einsum("nfi,nfi->nf", b, c) * la
            + np.einsum("nfi,nfi->nf", c, a) * lb
        )
        out[start : start + step] = np.arctan2(det, den).sum(axis=1) / (2.0 * np.pi)
    return out


def candidate_faces(points: np.ndarray, mesh: MeshSDF) -> tuple[np.ndarray, np.ndarray]:
    """(point, face) pairs that may hold a point's closest surface point.

    The centroid lies on its face, so the nearest centroid bounds the distance from above; a
    face can only hold the closest point if `|p - centre| - radius <= upper`. The test never
    discards the true closest face.

    Args:
        points: (N, 3) float64 query points.
        mesh: a `prepare_mesh` result.

    Returns:
        `(point_ids, face_ids)`, equal-length int arrays, sorted by point id; every point has at
        least one candidate.
    """
    point_ids: list[np.ndarray] = []
    face_ids: list[np.ndarray] = []
    step = max(1, _CHUNK_PAIRS // len(mesh.faces))
    centres_sq = np.sum(mesh.centres**2, axis=1)[None, :]
    for start in range(0, len(points), step):
        chunk = points[start : start + step]
        # |p - centre| with the expansion trick, clipped at 0 against round-off.
        dist2 = np.sum(chunk**2, axis=1)[:, None] - 2.0 * chunk @ mesh.centres.T + centres_sq
        dist = np.sqrt(np.maximum(dist2, 0.0))
        upper = dist.min(axis=1, keepdims=True)
        rows, cols = np.nonzero(dist - mesh.radii[None, :] <= upper + 1e-9)
        point_ids.append(rows + start)
        face_ids.append(cols)
    return np.concatenate(point_ids), np.concatenate(face_ids)


def mesh_sdf(points: np.ndarray, mesh: MeshSDF) -> np.ndarray:
    """Exact signed distance from points to a prepared watertight mesh.

    Args:
        points: (N, 3) query points, same frame and units as the mesh.
        mesh: a `prepare_mesh` result.

    Returns:
        (N,) float64 signed distances, negative inside.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    n = len(p)
    if n == 0:
        return np.zeros(0)
    pid, fid = candidate_faces(p, mesh)

    tri = mesh.vertices[mesh.faces[fid]]
    q, region = _closest_on_triangles(p[pid], tri[:, 0], tri[:, 1], tri[:, 2])
    diff = p[pid] - q
    dist = np.linalg.norm(diff, axis=1)

    # Per point, the candidate with the smallest distance (pid is sorted by construction).
    starts = np.flatnonzero(np.r_[True, pid[1:] != pid[:-1]])
    best_d = np.minimum.reduceat(dist, starts)
    is_best = dist <= best_d[np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(pid)]))]
    candidates = np.flatnonzero(is_best)
    cand_pid = pid[candidates]  # sorted: keep the first best candidate of each point
    best = candidates[np.r_[True, cand_pid[1:] != cand_pid[:-1]]]

    out = np.empty(n)
    if mesh.edge_normals is None:
        inside = winding_number(p[pid[best]], mesh.vertices, mesh.faces) > 0.5
        out[pid[best]] = np.where(inside, -1.0, 1.0) * dist[best]
        return out
    f_best = fid[best]
    r_best = region[best]
    normal = mesh.face_normals[f_best].copy()
    vert_idx = mesh.faces[f_best]
    for code, k in ((1, 0), (2, 1), (3, 2)):
        sel = r_best == code
        normal[sel] = mesh.vertex_normals[vert_idx[sel, k]]
    for code, k in ((4, 0), (5, 1), (6, 2)):
        sel = r_best == code
        normal[sel] = mesh.edge_normals[f_best[sel], k]
    sign = np.where(np.einsum("ij,ij->i", diff[best], normal) < 0.0, -1.0, 1.0)
    out[pid[best]] = sign * dist[best]
    return out


def sample_sdf_points(
    mesh: MeshSDF,
    n: int,
    anchor: np.ndarray,
    rng: np.random.Generator,
    surface_std: float,
    uniform_fraction: float,
    clamp: float,
    cube_half_size: float = 1.0 / SDF_SCALE,
) -> tuple[np.ndarray, np.ndarray]:
    """Training points for an SDF head and their clamped signed distances.

    Args:
        mesh: the posed, watertight mesh (camera frame, metres).
        n: number of points.
        anchor: (3,) centre of the uniform cube (the GT hand root), metres.
        rng: numpy random generator.
        surface_std: std (m) of the Gaussian offsets added to surface samples.
        uniform_fraction: fraction of the n points drawn uniformly in the cube.
        clamp: targets are clamped to [-clamp, clamp] (m).
        cube_half_size: half side of the cube around the anchor (m).

    Returns:
        `(points (n, 3), sdf (n,))`, float64, camera frame, metres.
    """
    n_uniform = round(n * uniform_fraction)
    n_surface = n - n_uniform
    surface = sample_surface(mesh.vertices, mesh.faces, n_surface, rng, mesh.areas)
    surface = surface + rng.normal(0.0, surface_std, size=surface.shape)
    uniform = np.asarray(anchor, dtype=np.float64) + rng.uniform(
        -cube_half_size, cube_half_size, (n_uniform, 3)
    )
    points = np.concatenate([surface, uniform], axis=0)
    sdf = np.clip(mesh_sdf(points, mesh), -clamp, clamp)
    return points, sdf
