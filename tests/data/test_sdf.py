import numpy as np
import pytest

from homae_model.data.sdf import (
    candidate_faces,
    mesh_sdf,
    prepare_mesh,
    sample_sdf_points,
    winding_number,
)
from homae_model.geometry.surface import sample_surface


def box_mesh(half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=float)
    vertices = signs * half
    # index = 4*ix + 2*iy + iz; two outward triangles per side
    quads = [
        (0, 1, 3, 2),  # x = -1
        (4, 6, 7, 5),  # x = +1
        (0, 4, 5, 1),  # y = -1
        (2, 3, 7, 6),  # y = +1
        (0, 2, 6, 4),  # z = -1
        (1, 5, 7, 3),  # z = +1
    ]
    faces = []
    for a, b, c, d in quads:
        faces += [(a, b, c), (a, c, d)]
    return vertices, np.array(faces)


def box_sdf(p: np.ndarray, half: np.ndarray) -> np.ndarray:
    q = np.abs(p) - half
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
    inside = np.minimum(q.max(axis=1), 0.0)
    return outside + inside


def icosphere(level: int) -> tuple[np.ndarray, np.ndarray]:
    t = (1.0 + 5**0.5) / 2
    v = [
        (-1, t, 0),
        (1, t, 0),
        (-1, -t, 0),
        (1, -t, 0),
        (0, -1, t),
        (0, 1, t),
        (0, -1, -t),
        (0, 1, -t),
        (t, 0, -1),
        (t, 0, 1),
        (-t, 0, -1),
        (-t, 0, 1),
    ]
    f = [
        (0, 11, 5),
        (0, 5, 1),
        (0, 1, 7),
        (0, 7, 10),
        (0, 10, 11),
        (1, 5, 9),
        (5, 11, 4),
        (11, 10, 2),
        (10, 7, 6),
        (7, 1, 8),
        (3, 9, 4),
        (3, 4, 2),
        (3, 2, 6),
        (3, 6, 8),
        (3, 8, 9),
        (4, 9, 5),
        (2, 4, 11),
        (6, 2, 10),
        (8, 6, 7),
        (9, 8, 1),
    ]
    verts = [np.array(x, float) / np.linalg.norm(x) for x in v]
    faces = f
    for _ in range(level):
        cache: dict[tuple[int, int], int] = {}

        def mid(a: int, b: int, cache: dict = cache) -> int:
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = verts[a] + verts[b]
                verts.append(m / np.linalg.norm(m))
                cache[key] = len(verts) - 1
            return cache[key]

        new = []
        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new
    return np.array(verts), np.array(faces)


def test_box_sdf_is_exact():
    half = np.array([0.05, 0.03, 0.08])
    v, f = box_mesh(half)
    mesh = prepare_mesh(v, f)
    rng = np.random.default_rng(0)
    p = rng.uniform(-0.15, 0.15, size=(2000, 3))
    # include points exactly in face/edge/vertex regions and deep inside
    p = np.concatenate(
        [p, [[0, 0, 0], [0.1, 0.1, 0.1], [0.1, 0, 0], [0.1, 0.1, 0], [0.0, 0.0, 0.079]]]
    )
    np.testing.assert_allclose(mesh_sdf(p, mesh), box_sdf(p, half), atol=1e-12)


def test_translated_rotated_box():
    half = np.array([0.02, 0.04, 0.06])
    v, f = box_mesh(half)
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    t = np.array([0.1, -0.2, 0.5])
    mesh = prepare_mesh(v @ q.T + t, f)
    p_local = rng.uniform(-0.1, 0.1, size=(500, 3))
    np.testing.assert_allclose(
        mesh_sdf(p_local @ q.T + t, mesh), box_sdf(p_local, half), atol=1e-12
    )


def test_icosphere_matches_analytic_sphere():
    radius = 0.07
    v, f = icosphere(3)
    v = v * radius
    mesh = prepare_mesh(v, f)
    # faceting error: the mesh lies between the inscribed-face distance and the sphere
    tri = v[f]
    centre_r = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]) / centre_r[:, None]
    inradius = np.abs(np.sum(n * tri[:, 0], axis=1)).min()
    tol = radius - inradius
    rng = np.random.default_rng(2)
    p = rng.uniform(-0.15, 0.15, size=(3000, 3))
    got = mesh_sdf(p, mesh)
    want = np.linalg.norm(p, axis=1) - radius
    assert tol < 0.002
    assert np.all(np.abs(got - want) <= tol + 1e-12)
    assert np.all(got[want < -tol] < 0) and np.all(got[want > tol] > 0)


def test_sign_flips_for_inward_mesh_and_open_mesh_rejected():
    half = np.array([0.05, 0.05, 0.05])
    v, f = box_mesh(half)
    inward = prepare_mesh(v, f[:, ::-1])
    assert mesh_sdf(np.zeros((1, 3)), inward)[0] > 0
    with pytest.raises(ValueError, match="watertight"):
        prepare_mesh(v, f[:-1], require_watertight=True)


def test_duplicated_seam_vertices_are_welded():
    half = np.array([0.04, 0.05, 0.06])
    v, f = box_mesh(half)
    # every face gets its own copy of its vertices, as textured OBJ files do along seams
    v_split = v[f].reshape(-1, 3)
    f_split = np.arange(len(v_split)).reshape(-1, 3)
    mesh = prepare_mesh(v_split, f_split, require_watertight=True)
    assert mesh.edge_normals is not None and len(mesh.vertices) == 8
    p = np.random.default_rng(5).uniform(-0.1, 0.1, (300, 3))
    np.testing.assert_allclose(mesh_sdf(p, mesh), box_sdf(p, half), atol=1e-12)


def test_open_mesh_falls_back_to_winding_number():
    half = np.array([0.05, 0.05, 0.05])
    v, f = box_mesh(half)
    mesh = prepare_mesh(v, f[:-2])  # one side missing
    assert mesh.edge_normals is None
    p = np.array([[0.0, 0.0, 0.0], [0.03, -0.02, 0.0], [0.2, 0.0, 0.0], [0.0, -0.3, 0.1]])
    got = mesh_sdf(p, mesh)
    np.testing.assert_allclose(np.abs(got), np.abs(box_sdf(p, half)), atol=1e-12)
    np.testing.assert_array_equal(np.sign(got), [-1, -1, 1, 1])
    w = winding_number(p, v, f)
    np.testing.assert_allclose(w, [1, 1, 0, 0], atol=1e-9)


def test_sample_sdf_points_distribution():
    half = np.array([0.05, 0.05, 0.05])
    v, f = box_mesh(half)
    mesh = prepare_mesh(v, f)
    rng = np.random.default_rng(3)
    anchor = np.array([0.0, 0.0, 0.0])
    pts, sdf = sample_sdf_points(mesh, 600, anchor, rng, 0.005, 0.1, 0.05)
    assert pts.shape == (600, 3) and sdf.shape == (600,)
    assert np.all(np.abs(sdf) <= 0.05)
    near = sdf[:540]
    assert np.std(near) == pytest.approx(0.005, rel=0.25)
    uniform = pts[540:]
    assert np.all(np.abs(uniform - anchor) <= 1 / 3.1)
    assert np.abs(uniform).max() > 0.2  # spread over the whole cube
    surface = sample_surface(v, f, 1000, rng)
    np.testing.assert_allclose(np.abs(surface).max(axis=1), 0.05, atol=1e-12)


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    t = np.clip(np.dot(p - a, b - a) / np.dot(b - a, b - a), 0.0, 1.0)
    return float(np.linalg.norm(p - (a + t * (b - a))))


def _point_triangle_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Reference distance: the plane foot when it is inside, else the nearest edge."""
    n = np.cross(b - a, c - a)
    n = n / np.linalg.norm(n)
    foot = p - np.dot(p - a, n) * n
    inside = all(
        np.dot(np.cross(v1 - v0, foot - v0), n) >= 0 for v0, v1 in ((a, b), (b, c), (c, a))
    )
    if inside:
        return float(abs(np.dot(p - a, n)))
    return min(_segment_distance(p, a, b), _segment_distance(p, b, c), _segment_distance(p, c, a))


def test_candidate_pruning_on_a_hand_sized_mesh():
    """The bounding-sphere test keeps few faces per point and never drops the closest one."""
    v, f = icosphere(4)  # 5120 faces, more than a capped MANO hand (1554)
    mesh = prepare_mesh(v * 0.05, f)
    rng = np.random.default_rng(4)
    p = sample_surface(mesh.vertices, mesh.faces, 600, rng) + rng.normal(0, 0.005, (600, 3))
    pid, fid = candidate_faces(p, mesh)
    assert np.all(np.diff(pid) >= 0)
    assert np.array_equal(np.unique(pid), np.arange(600))
    assert len(pid) < 0.01 * 600 * len(f)  # under 1% of the dense (point, face) pairs
    # brute force over all faces: the nearest face is always among the candidates
    tri = mesh.vertices[mesh.faces]
    centre_dist = np.linalg.norm(p[:, None] - mesh.centres[None], axis=2)
    for i in rng.choice(600, 20, replace=False):
        own = fid[pid == i]
        d_all = [_point_triangle_distance(p[i], *tri[j]) for j in np.argsort(centre_dist[i])[:200]]
        d_cand = min(_point_triangle_distance(p[i], *tri[j]) for j in own)
        assert d_cand <= min(d_all) + 1e-12
