"""The project's own articulated right hand in MANO's file format (MANO itself cannot ship).

`build_synthetic_hand(seed)` returns a dict with every key `smplx.MANO` reads (plain numpy and
a scipy.sparse J_regressor, float64 like MANO) plus `fingertip_ids`; `save_mano_pickle` writes
it as ``MANO_RIGHT.pkl`` (pickle protocol 4). It has MANO's exact topology counts: 778 vertices,
1538 faces, 16 joints with MANO's parents, 10 shape and 135 pose-corrective directions. Like
MANO's mesh it is a disc: closed everywhere except one 16-edge loop at the wrist
(V - E + F = 1, E = 2315); `close_wrist` caps it (one centroid vertex, a 16-triangle fan) into a
watertight, outward-oriented surface for signed distances.

Axes and units follow MANO's right-hand template (metres): fingers point along -x, the palm
faces -y (back of the hand +y), the thumb is on the +z side, and the rest wrist joint sits at
MANO's template wrist (0.0957, 0.0064, 0.0062), so poses mean the same on both models (finger
flexion is mostly a positive rotation about z). The mesh is built in a local frame
(u distal, v toward the thumb, w dorsal; x = -u, y = w, z = v) as tubes of elliptic rings:
wrist -> palm, which splits into the thumb and the upper palm, which splits into four fingers;
neighbouring tubes share one web vertex, and every finger ends in a cap whose apex is the
fingertip vertex. Dimensions follow HOMAE_SPEC 2b (hand length 18.5 cm, palm 8.3 cm wide).

Skinning weights are smooth ramps (C1, centred on each joint) along each digit; the pose
correctives inflate the skin along the normal around a bent joint (about 2 mm at 90 degrees);
the shape directions, in order, change: 0 overall size, 1 palm width, 2 digit length,
3 digit thickness, 4 palm length, 5 palm thickness, 6 thumb size, 7 index vs ring length,
8 wrist size, 9 soft-tissue thickness (each 5 % per unit beta, +-10 % at 2 sd).
"""

from __future__ import annotations

import itertools
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse

from homae_model.hand.constants import (
    MANO_FINGER_JOINTS,
    MANO_PARENTS,
    NUM_BETAS,
    NUM_FACES,
    NUM_MANO_JOINTS,
    NUM_POSE_BASIS,
    NUM_VERTICES,
)

__all__ = [
    "REST_WRIST",
    "build_synthetic_hand",
    "close_wrist",
    "save_mano_pickle",
    "wrist_boundary_loop",
]

REST_WRIST = np.array([0.0957, 0.0064, 0.0062])
"""Rest position of the wrist joint (MANO right template's, metres)."""
LOCAL_TO_MANO = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
"""Rotation from the local design frame (u distal, v thumb side, w dorsal) to MANO axes."""

_RING = 10  # vertices per finger / thumb ring
_SHAPE_STEP = 0.05  # relative change per unit beta
_POSE_INFLATE = 0.001  # m of normal offset per unit of (3 - trace R)


@dataclass(frozen=True)
class _Digit:
    """One finger in the local frame (metres); `chain` are its MANO joint ids."""

    name: str
    chain: tuple[int, int, int]
    root: tuple[float, float, float]  # MCP (fingers) or CMC (thumb)
    direction: tuple[float, float, float]  # first bone
    lengths: tuple[float, float, float]  # bone lengths, the last one to the tip
    widths: tuple[float, float]  # base, tip
    direction2: tuple[float, float, float] | None = None  # thumb: bones 2-3


def _fingers(scale: np.ndarray) -> list[_Digit]:
    """The four fingers, ulnar to radial (pinky, ring, middle, index): their tube order."""

    def finger(name, root, angle, length, widths, k):
        a = np.radians(angle)
        lengths = tuple(float(x) for x in np.array([1.0, 0.6, 0.45]) / 2.05 * length * scale[k])
        return _Digit(
            name, MANO_FINGER_JOINTS[name], root, (np.cos(a), np.sin(a), 0.0), lengths, widths
        )

    return [
        finger("pinky", (0.088, -0.0345, -0.005), -19.0, 0.060, (0.0165, 0.0135), 3),
        finger("ring", (0.099, -0.0165, -0.002), -11.0, 0.075, (0.0185, 0.0150), 2),
        finger("middle", (0.105, 0.003, 0.0), -4.0, 0.080, (0.0200, 0.0160), 1),
        finger("index", (0.098, 0.0235, -0.002), 3.0, 0.073, (0.0195, 0.0155), 0),
    ]


def _thumb(scale: float) -> _Digit:
    d1 = np.array([0.62, 0.74, -0.22])
    d2 = np.array([0.80, 0.50, -0.30])
    return _Digit(
        "thumb",
        MANO_FINGER_JOINTS["thumb"],
        (0.026, 0.024, -0.012),
        tuple(d1 / np.linalg.norm(d1)),
        (0.032 * scale, 0.0353 * scale, 0.0247 * scale),
        (0.0225, 0.0185),
        tuple(d2 / np.linalg.norm(d2)),
    )


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _ramp(s: np.ndarray, centre: float, half: float) -> np.ndarray:
    """0 before centre - half, 1 after centre + half, C1 in between."""
    return _smoothstep((s - centre + half) / (2.0 * half))


# ---------------------------------------------------------------------------- mesh helpers


def _loop_length(points: np.ndarray) -> float:
    return float(np.linalg.norm(np.roll(points, -1, axis=0) - points, axis=1).sum())


def _arc_params(points: np.ndarray) -> np.ndarray:
    """Normalised arc length of each vertex of a closed polyline, 0 at vertex 0."""
    seg = np.linalg.norm(np.roll(points, -1, axis=0) - points, axis=1)
    return np.concatenate([[0.0], np.cumsum(seg)[:-1]]) / seg.sum()


def _resample_loop(points: np.ndarray, q: np.ndarray, params: np.ndarray | None = None):
    """Points at normalised arc-length parameters q along a closed polyline."""
    params = _arc_params(points) if params is None else params
    x = np.concatenate([params, [1.0]])
    y = np.concatenate([points, points[:1]], axis=0)
    return np.stack([np.interp(q, x, y[:, k]) for k in range(3)], axis=1)


def _allocate(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer counts proportional to weights that sum exactly to total."""
    raw = weights / weights.sum() * total
    counts = np.floor(raw).astype(int)
    for i in np.argsort(counts - raw)[: total - counts.sum()]:
        counts[i] += 1
    return counts


def _zip_rings(a_ids, a_params, b_ids, b_params) -> list[tuple[int, int, int]]:
    """Triangle strip (len(a) + len(b) outward triangles) between two closed rings.

    Both rings run counter-clockwise about the proximal (a) to distal (b) direction and are
    parameterised by normalised arc length from a common start.
    """
    na, nb = len(a_ids), len(b_ids)
    i = j = 0
    tris = []
    while i < na or j < nb:
        next_a = a_params[i + 1] if i + 1 < na else 1.0 + a_params[0]
        next_b = b_params[j + 1] if j + 1 < nb else 1.0 + b_params[0]
        if i < na and (j >= nb or next_a <= next_b):
            tris.append((int(a_ids[i]), int(a_ids[(i + 1) % na]), int(b_ids[j % nb])))
            i += 1
        else:
            tris.append((int(a_ids[i % na]), int(b_ids[(j + 1) % nb]), int(b_ids[j])))
            j += 1
    return tris


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


def _ring_points(centre, e1, e2, a, b, n):
    """Ellipse ring, vertex 0 along +e2, counter-clockwise about e1 x e2; a along e1."""
    phi = np.pi / 2 + 2 * np.pi * np.arange(n) / n
    a = np.where(np.cos(phi) < 0, a * 1.06, a)  # fuller on the palmar side
    return centre + (a * np.cos(phi))[:, None] * e1 + (b * np.sin(phi))[:, None] * e2


def _superellipse(centre, a, b, power, n):
    """Palm cross-section ring (n vertices, equal arc spacing) in a plane u = const.

    Vertex 0 is at the ulnar (-v) extreme, order counter-clockwise about +u; a: half
    thickness (w), b: half width (v).
    """
    phi = np.pi / 2 + 2 * np.pi * np.arange(720) / 720
    c, s = np.cos(phi), np.sin(phi)
    w = a * np.sign(c) * np.abs(c) ** (2 / power)
    v = -b * np.sign(s) * np.abs(s) ** (2 / power)
    dense = np.stack([np.full_like(v, centre[0]), v + centre[1], w + centre[2]], axis=1)
    return _resample_loop(dense, np.arange(n) / n)


class _Builder:
    """Accumulates vertices (local frame), faces and per-vertex rig annotations."""

    def __init__(self) -> None:
        self.points: list[np.ndarray] = []
        self.faces: list[tuple[int, int, int]] = []
        self.count = 0

    def add(self, pts: np.ndarray) -> np.ndarray:
        pts = np.atleast_2d(np.asarray(pts, dtype=np.float64))
        ids = np.arange(self.count, self.count + len(pts))
        self.points.append(pts)
        self.count += len(pts)
        return ids

    def zip(self, a_ids, a_params, b_ids, b_params) -> None:
        self.faces.extend(_zip_rings(a_ids, a_params, b_ids, b_params))

    def vertices(self) -> np.ndarray:
        return np.concatenate(self.points, axis=0)


def _digit_frame(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(e1 dorsal, e2 ulnar) with e1 x e2 = direction."""
    e1 = np.array([0.0, 0.0, 1.0]) - direction[2] * direction
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(direction, e1)


def _finger_stations(lengths, cap: float) -> tuple[np.ndarray, np.ndarray]:
    """Ring stations along a finger (m from the MCP) and their cap scale factors."""
    p, m, d = lengths
    s = [0.0, *(p * np.array([0.25, 0.5, 0.75, 1.0])), *(p + m * np.array([1 / 3, 2 / 3, 1.0]))]
    s += [p + m + (d - cap) * f for f in (0.5, 1.0)]
    theta = np.radians([42.0, 72.0])
    s += list(p + m + d - cap + cap * np.sin(theta))
    scale = np.ones(len(s))
    scale[-2:] = np.cos(theta)
    return np.array(s), scale


def _width_profile(s, joints, length, widths):
    """Finger width along the axis: linear taper plus small knuckle bulges."""
    w = widths[0] + (widths[1] - widths[0]) * np.clip(s / length, 0, 1)
    for j in joints:
        w = w * (1.0 + 0.05 * np.exp(-(((s - j) / 0.006) ** 2)))
    return w


@dataclass
class _Rig:
    """Per-vertex annotations used to build weights, correctives and shape directions."""

    digit: np.ndarray  # -1 palm, -2 web, else index into the digit list
    axial: np.ndarray  # metres along the digit from its root joint (nan on the palm)
    webs: dict[int, tuple[int, int]]  # web vertex -> (digit a, digit b)


def _build_geometry(scale: np.ndarray):
    """Vertices (local frame), faces, digits, designed joints (local) and the rig notes."""
    b = _Builder()
    fingers = _fingers(scale[:4])
    thumb = _thumb(float(scale[4]))
    digits = [*fingers, thumb]
    joints = np.zeros((NUM_MANO_JOINTS, 3))
    for f in fingers:
        d = np.asarray(f.direction)
        cum = np.cumsum([0.0, f.lengths[0], f.lengths[1]])
        joints[list(f.chain)] = np.asarray(f.root) + cum[:, None] * d
    d1, d2 = np.asarray(thumb.direction), np.asarray(thumb.direction2)
    t_mcp = np.asarray(thumb.root) + thumb.lengths[0] * d1
    joints[list(thumb.chain)] = [thumb.root, t_mcp, t_mcp + thumb.lengths[1] * d2]

    # -- Ring geometry of the four fingers (base rings at the MCPs, shared web vertices).
    finger_rings, finger_stations = [], []
    for f in fingers:
        d = np.asarray(f.direction)
        e1, e2 = _digit_frame(d)
        cap = 0.5 * f.widths[1] * 0.95
        st, cap_scale = _finger_stations(f.lengths, cap)
        length = sum(f.lengths)
        width = _width_profile(st, [f.lengths[0], f.lengths[0] + f.lengths[1]], length, f.widths)
        rings = [
            _ring_points(np.asarray(f.root) + s * d, e1, e2, 0.44 * w * c, 0.5 * w * c, _RING)
            for s, w, c in zip(st, width, cap_scale, strict=True)
        ]
        finger_rings.append(rings)
        finger_stations.append(st)
    half = _RING // 2
    for k in range(3):  # web k between finger k (ulnar) and k + 1: right of k == left of k+1
        mid = 0.5 * (finger_rings[k][0][half] + finger_rings[k + 1][0][0])
        finger_rings[k][0][half] = mid
        finger_rings[k + 1][0][0] = mid

    # -- Palm outlines: wrist ring, ring A (where the thumb leaves), finger composite.
    wrist = _superellipse((-0.012, 0.0, -0.001), 0.0175, 0.028, 2.3, 16)
    a_outline = _superellipse((0.048, -0.006, -0.002), 0.0135, 0.036, 3.0, 160)

    # Thumb tube: its first ring B leaves ring A at the web vertex W.
    cap_t = 0.5 * thumb.widths[1] * 0.95
    t_b = 0.55 * thumb.lengths[0]
    l0, l1, l2 = thumb.lengths
    t_st = np.array(
        [t_b, 0.5 * (t_b + l0), l0, l0 + l1 / 3, l0 + 2 * l1 / 3, l0 + l1]
        + [l0 + l1 + (l2 - cap_t) * f for f in (0.5, 1.0)]
        + list(l0 + l1 + l2 - cap_t + cap_t * np.sin(np.radians([42.0, 72.0])))
    )
    t_cap = np.ones(len(t_st))
    t_cap[-2:] = np.cos(np.radians([42.0, 72.0]))
    t_width = np.interp(t_st, [t_b, l0, l0 + l1, l0 + l1 + l2], [0.026, 0.0225, 0.0205, 0.0185])

    def thumb_point(s):
        return np.asarray(thumb.root) + min(s, l0) * d1 + max(s - l0, 0.0) * d2

    def thumb_dir(s):
        t = _smoothstep((s - l0 + 0.006) / 0.012)
        v = (1 - t) * d1 + t * d2
        return v / np.linalg.norm(v)

    centre_b = thumb_point(t_b)
    # Vertices left for the five palm rings: all but the wrist loop, the thumb (its first ring
    # shares W with ring A) and the four fingers (sharing three web vertices).
    fixed = 16 + len(t_st) * _RING + 4 * (len(finger_stations[0]) * _RING + 1) - 3
    palm_budget = NUM_VERTICES - fixed

    finger_comp_ids_order = _finger_composite_order()
    comp_pts = np.concatenate([finger_rings[f][0][i][None] for f, i in finger_comp_ids_order])

    # Counts of the five palm rings (L1, L2, A, U1, U2) proportional to their perimeters.
    perims = []
    for t in (1 / 3, 2 / 3):
        perims.append(_loop_length(wrist) * (1 - t) + _loop_length(a_outline) * t * 1.3)
    perims.append(_loop_length(a_outline))
    for t in (1 / 3, 2 / 3):
        perims.append(_loop_length(a_outline) * (1 - t) + _loop_length(comp_pts) * t)
    counts = _allocate(np.array(perims), palm_budget)
    ring_a = _resample_loop(a_outline, np.arange(counts[2]) / counts[2])
    i_w = int(np.argmin(np.linalg.norm(ring_a - centre_b, axis=1)))  # W: A's vertex nearest B

    # Thumb ring frames: e2 of ring B points at W; parallel transport along the thumb.
    t_rings = []
    e2 = ring_a[i_w] - centre_b
    for s, w, c in zip(t_st, t_width, t_cap, strict=True):
        t = thumb_dir(s)
        e2 = e2 - (e2 @ t) * t
        e2 /= np.linalg.norm(e2)
        e1 = np.cross(e2, t)
        t_rings.append(_ring_points(thumb_point(s), e1, e2, 0.45 * w * c, 0.5 * w * c, _RING))
    web_t = 0.5 * (ring_a[i_w] + t_rings[0][0])
    ring_a[i_w] = web_t
    t_rings[0][0] = web_t

    # -- Allocate vertex ids and stitch the palm.
    digit_of: list[np.ndarray] = []
    axial_of: list[np.ndarray] = []

    def add(pts, digit=-1, axial=np.nan):
        ids = b.add(pts)
        digit_of.append(np.full(len(ids), digit))
        axial_of.append(np.full(len(ids), axial, dtype=np.float64))
        return ids

    wrist_ids = add(wrist)
    a_ids = add(ring_a)
    thumb_ids = [np.concatenate([[a_ids[i_w]], add(t_rings[0][1:], 4, t_st[0])])]
    thumb_ids += [add(r, 4, s) for r, s in zip(t_rings[1:], t_st[1:], strict=True)]
    thumb_apex = add(thumb_point(l0 + l1 + l2)[None], 4, l0 + l1 + l2)[0]

    finger_ids: list[list[np.ndarray]] = [[] for _ in fingers]
    webs: dict[int, tuple[int, int]] = {}
    for k in range(4):
        base = finger_rings[k][0]
        if k == 0:
            ids = add(base, k, 0.0)
        else:
            ids = np.concatenate([[finger_ids[k - 1][0][half]], add(base[1:], k, 0.0)])
            webs[int(ids[0])] = (k - 1, k)
        finger_ids[k].append(ids)
    for k in range(4):
        for r, s in zip(finger_rings[k][1:], finger_stations[k][1:], strict=True):
            finger_ids[k].append(add(r, k, s))
    apexes = []
    for k, f in enumerate(fingers):
        tip = np.asarray(f.root) + sum(f.lengths) * np.asarray(f.direction)
        apexes.append(add(tip[None], k, sum(f.lengths))[0])

    verts_so_far = b.vertices()
    # Thumb composite: A lower arc to W, ring B after W, back at W, A upper arc.
    thumb_comp = np.concatenate(
        [a_ids[: i_w + 1], thumb_ids[0][1:], [a_ids[i_w]], a_ids[i_w + 1 :]]
    )
    finger_comp = np.array([finger_ids[f][0][i] for f, i in finger_comp_ids_order])
    comp_t_params = _arc_params(verts_so_far[thumb_comp])
    comp_f_params = _arc_params(verts_so_far[finger_comp])

    def lerp_rings(ids_a, params_a, ids_b, params_b, fractions, counts_):
        pa, pb = verts_so_far[ids_a], verts_so_far[ids_b]
        out = []
        for t, n in zip(fractions, counts_, strict=True):
            q = np.arange(n) / n
            pts = (1 - t) * _resample_loop(pa, q, params_a) + t * _resample_loop(pb, q, params_b)
            out.append(pts)
        return out

    p_wrist = _arc_params(wrist)
    lower = lerp_rings(wrist_ids, p_wrist, thumb_comp, comp_t_params, (0.36, 0.7), counts[:2])
    p_a = _arc_params(verts_so_far[a_ids])
    upper = lerp_rings(a_ids, p_a, finger_comp, comp_f_params, (0.36, 0.7), counts[3:])
    lower_ids = [add(r) for r in lower]
    upper_ids = [add(r) for r in upper]
    even = [np.arange(len(i)) / len(i) for i in (*lower_ids, *upper_ids)]

    b.zip(wrist_ids, p_wrist, lower_ids[0], even[0])
    b.zip(lower_ids[0], even[0], lower_ids[1], even[1])
    b.zip(lower_ids[1], even[1], thumb_comp, comp_t_params)
    b.zip(a_ids, p_a, upper_ids[0], even[2])
    b.zip(upper_ids[0], even[2], upper_ids[1], even[3])
    b.zip(upper_ids[1], even[3], finger_comp, comp_f_params)
    ring_params = np.arange(_RING) / _RING
    for rings, apex in [(thumb_ids, thumb_apex), *zip(finger_ids, apexes, strict=True)]:
        for r0, r1 in itertools.pairwise(rings):
            b.zip(r0, ring_params, r1, ring_params)
        b.faces.extend(
            (int(r), int(rings[-1][(i + 1) % _RING]), int(apex)) for i, r in enumerate(rings[-1])
        )

    rig = _Rig(np.concatenate(digit_of), np.concatenate(axial_of), webs)
    rig.digit[list(webs)] = -2
    rig.digit[a_ids[i_w]] = -2
    rig.webs[int(a_ids[i_w])] = (-1, 4)
    # Vertices whose convex combination gives each joint (rings through the joint); the thumb
    # CMC (13), inside the palm, uses every vertex within 2.5 cm.
    regressor_sets = {0: np.concatenate([wrist_ids, lower_ids[0]])}
    regressor_sets.update({14: thumb_ids[2], 15: thumb_ids[5]})
    for k, f in enumerate(fingers):  # MCP, PIP, DIP rings are stations 0, 4 and 7
        regressor_sets.update(
            {j: finger_ids[k][r] for j, r in zip(f.chain, (0, 4, 7), strict=True)}
        )
    return b.vertices(), np.asarray(b.faces, dtype=np.int64), digits, joints, rig, regressor_sets


def _finger_composite_order() -> list[tuple[int, int]]:
    """(finger, ring index) pairs along the outline of the four finger base rings.

    Counter-clockwise about +u from the pinky's ulnar extreme: palmar arcs ulnar -> radial,
    then dorsal arcs back; each web vertex appears twice (palmar and dorsal pass).
    """
    half = _RING // 2
    order = [(0, i) for i in range(half + 1)]
    for k in (1, 2, 3):
        order += [(k, i) for i in range(1, half + 1)]
    order += [(3, i) for i in range(half + 1, _RING)]
    for k in (2, 1, 0):
        order += [(k, half)] + [(k, i) for i in range(half + 1, _RING)]  # web, dorsal arc
    return order


# ---------------------------------------------------------------------------- rig

_H_MCP = 0.013  # half width (m) of the skinning ramp at finger MCPs
_H_JOINT = 0.0065  # at PIP / DIP / thumb IP
_H_THUMB = (0.012, 0.008)  # at the thumb CMC, MCP


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (outward for outward faces)."""
    tri = vertices[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    return n / np.linalg.norm(n, axis=1, keepdims=True).clip(1e-12)


def _thumb_axis(thumb: _Digit, s: np.ndarray) -> np.ndarray:
    """Points on the thumb's polyline at arc length s from the CMC (local frame)."""
    l0 = thumb.lengths[0]
    d1, d2 = np.asarray(thumb.direction), np.asarray(thumb.direction2)
    return (
        np.asarray(thumb.root)
        + np.minimum(s, l0)[:, None] * d1
        + np.maximum(s - l0, 0.0)[:, None] * d2
    )


def _skinning_weights(verts: np.ndarray, digits: list[_Digit], rig: _Rig) -> np.ndarray:
    """(V, 16) LBS weights: C1 ramps across each joint along each digit, rows sum to 1."""
    w = np.zeros((len(verts), NUM_MANO_JOINTS))
    fingers, thumb = digits[:4], digits[4]
    for k, f in enumerate(fingers):
        sel = rig.digit == k
        s = rig.axial[sel]
        p, m = f.lengths[0], f.lengths[1]
        r1, r2, r3 = _ramp(s, 0.0, _H_MCP), _ramp(s, p, _H_JOINT), _ramp(s, p + m, _H_JOINT)
        w[sel, 0] = 1 - r1
        w[np.ix_(sel, f.chain)] = np.stack([r1 - r2, r2 - r3, r3], axis=1)
    sel = rig.digit == 4
    s = rig.axial[sel]
    l0, l1 = thumb.lengths[0], thumb.lengths[1]
    r = [_ramp(s, 0.0, _H_THUMB[0]), _ramp(s, l0, _H_THUMB[1]), _ramp(s, l0 + l1, _H_JOINT)]
    w[sel, 0] = 1 - r[0]
    w[np.ix_(sel, thumb.chain)] = np.stack([r[0] - r[1], r[1] - r[2], r[2]], axis=1)

    # Palm (and the thumb web): the nearest finger's MCP ramp, the thumb's CMC near the thenar.
    finger_webs = [v for v, (a, _) in rig.webs.items() if a >= 0]
    palm = np.flatnonzero((rig.digit < 0) & ~np.isin(np.arange(len(verts)), finger_webs))
    pts = verts[palm]
    s_f = np.stack([(pts - f.root) @ np.asarray(f.direction) for f in fingers], axis=1)
    lateral = np.stack(
        [np.abs((pts - f.root) @ _digit_frame(np.asarray(f.direction))[1]) for f in fingers], 1
    )
    nearest = np.argmin(lateral, axis=1)
    finger_w = _ramp(s_f[np.arange(len(palm)), nearest], 0.0, _H_MCP)
    d1 = np.asarray(thumb.direction)
    s_t = np.clip((pts - thumb.root) @ d1, 0.0, l0)
    dist = np.linalg.norm(pts - (np.asarray(thumb.root) + s_t[:, None] * d1), axis=1)
    thumb_w = (1 - _smoothstep((dist - 0.008) / 0.018)) * _ramp((pts - thumb.root) @ d1, 0, 0.012)
    total = np.maximum(finger_w + thumb_w, 1.0)
    finger_w, thumb_w = finger_w / total, thumb_w / total
    w[palm, 0] = 1 - finger_w - thumb_w
    chains = np.array([f.chain[0] for f in fingers])
    w[palm, chains[nearest]] = finger_w
    w[palm, thumb.chain[0]] = thumb_w
    for v, (a, b) in rig.webs.items():
        if a >= 0:
            w[v] = 0.0
            w[v, [0, fingers[a].chain[0], fingers[b].chain[0]]] = (0.5, 0.25, 0.25)
    return w


def _joint_regressor(verts, joints, candidates) -> scipy.sparse.csc_matrix:
    """(16, V) sparse convex weights over nearby vertices that reproduce each joint."""
    from scipy.optimize import nnls

    rows, cols, vals = [], [], []
    for j in range(NUM_MANO_JOINTS):
        ids = candidates.get(j)
        if ids is None:
            ids = np.flatnonzero(np.linalg.norm(verts - joints[j], axis=1) < 0.025)
        ids = np.asarray(ids)
        a = np.vstack([verts[ids].T * 100.0, np.ones(len(ids))])  # cm, then the sum row
        target = np.concatenate([joints[j] * 100.0, [1.0]])
        reg = 0.05
        lhs = np.vstack([a * 10.0, reg * np.eye(len(ids))])
        rhs = np.concatenate([target * 10.0, reg * np.full(len(ids), 1.0 / len(ids))])
        x, _ = nnls(lhs, rhs)
        x[x < 1e-6] = 0.0
        x /= x.sum()
        keep = np.flatnonzero(x)
        rows += [j] * len(keep)
        cols += ids[keep].tolist()
        vals += x[keep].tolist()
    shape = (NUM_MANO_JOINTS, len(verts))
    return scipy.sparse.csc_matrix((vals, (rows, cols)), shape=shape, dtype=np.float64)


def _pose_correctives(weights: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """(V, 3, 135) pose correctives: skin pushed out along the normal around a bent joint.

    The offset grows with 3 - trace(R) = 2 (1 - cos angle) and is confined to the vertices
    blended across that joint (4 w_joint w_parent > 0).
    """
    posedirs = np.zeros((len(weights), 3, NUM_POSE_BASIS))
    for j in range(1, NUM_MANO_JOINTS):
        bump = np.clip(4.0 * weights[:, j] * weights[:, MANO_PARENTS[j]], 0.0, 1.0)
        for k in (0, 4, 8):  # diagonal entries of R - I
            posedirs[:, :, 9 * (j - 1) + k] = -_POSE_INFLATE * bump[:, None] * normals
    return posedirs


def _shape_directions(verts, normals, digits, rig, weights) -> np.ndarray:
    """(V, 3, 10) shape directions in the local frame (see the module docstring)."""
    st = _SHAPE_STEP
    fingers, thumb = digits[:4], digits[4]
    chain_w = np.stack([weights[:, list(d.chain)].sum(1) for d in digits], axis=1)  # (V, 5)
    palm_w = weights[:, 0]
    roots = np.array([d.root for d in digits])
    anchor = palm_w[:, None] * verts + chain_w @ roots  # palm point, digit roots for digits
    dirs = np.zeros((len(verts), 3, NUM_BETAS))
    dirs[:, :, 0] = st * verts
    dirs[:, 1, 1] = st * anchor[:, 1]
    dirs[:, 0, 4] = st * anchor[:, 0]
    dirs[:, 2, 5] = st * palm_w * verts[:, 2]
    dirs[:, :, 6] = st * chain_w[:, 4:5] * (verts - np.asarray(thumb.root))
    fade = palm_w * (1 - _smoothstep(verts[:, 0] / 0.05))
    dirs[:, 1:, 8] = st * fade[:, None] * verts[:, 1:]
    dirs[:, :, 9] = 0.0008 * normals
    for k, f in enumerate(fingers):
        sel = rig.digit == k
        d = np.asarray(f.direction)
        s = rig.axial[sel]
        grow = st * np.maximum(s, 0.0)[:, None] * d
        dirs[sel, :, 2] = grow
        if f.name in ("index", "ring"):
            dirs[sel, :, 7] = grow if f.name == "index" else -grow
        radial = verts[sel] - (np.asarray(f.root) + s[:, None] * d)
        dirs[sel, :, 3] = st * _ramp(s, 0.0, 0.01)[:, None] * radial
    sel = rig.digit == 4
    s = rig.axial[sel]
    l0 = thumb.lengths[0]
    dirs[sel, :, 2] = st * np.maximum(s - l0, 0.0)[:, None] * np.asarray(thumb.direction2)
    dirs[sel, :, 3] = st * (verts[sel] - _thumb_axis(thumb, s))
    return dirs


# ---------------------------------------------------------------------------- public API


def build_synthetic_hand(seed: int = 0) -> dict[str, np.ndarray]:
    """Build the procedural right hand as a MANO model dict (the keys `smplx.MANO` reads).

    Args:
        seed: 0 gives the nominal hand; other seeds jitter finger and thumb lengths (about
            3 % sd) deterministically.

    Returns:
        dict with v_template (778, 3) m, f (1538, 3) int64, J_regressor (16, 778) scipy.sparse
        csc, J (16, 3) rest joints, kintree_table (2, 16) int64, weights (778, 16),
        posedirs (778, 3, 135), shapedirs (778, 3, 10), hands_components (45, 45) identity,
        hands_mean (45,) zeros, fingertip_ids (5,) int64 (thumb, index, middle, ring, pinky
        tip vertices), bs_style "lbs", bs_type "lrotmin". Floats are float64, MANO axes.

    Raises:
        RuntimeError: if the generated topology does not match MANO's counts (a bug).
    """
    scale = np.ones(5)
    if seed != 0:
        rng = np.random.default_rng(seed)
        scale = np.clip(1.0 + 0.03 * rng.standard_normal(5), 0.92, 1.08)
    verts, faces, digits, joints, rig, reg_sets = _build_geometry(scale)
    if verts.shape != (NUM_VERTICES, 3) or faces.shape != (NUM_FACES, 3):
        raise RuntimeError(f"synthetic hand: built {verts.shape} vertices, {faces.shape} faces")
    normals = _vertex_normals(verts, faces)
    weights = _skinning_weights(verts, digits, rig)
    regressor = _joint_regressor(verts, joints, reg_sets)
    shapedirs = _shape_directions(verts, normals, digits, rig, weights)
    rot = LOCAL_TO_MANO
    v_template = verts @ rot.T + REST_WRIST
    normals_mano = normals @ rot.T
    shapedirs = np.einsum("ij,vjk->vik", rot, shapedirs)
    posedirs = _pose_correctives(weights, normals_mano)
    tips = _tip_ids(rig)
    kintree = np.stack([np.asarray(MANO_PARENTS), np.arange(NUM_MANO_JOINTS)]).astype(np.int64)
    return {
        "v_template": v_template,
        "f": faces,
        "J_regressor": regressor,
        "J": regressor @ v_template,
        "kintree_table": kintree,
        "weights": weights,
        "posedirs": posedirs,
        "shapedirs": shapedirs,
        "hands_components": np.eye(45),
        "hands_mean": np.zeros(45),
        "fingertip_ids": np.asarray(tips, dtype=np.int64),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


def _tip_ids(rig: _Rig) -> list[int]:
    """Apex vertex of each digit, in the order thumb, index, middle, ring, pinky."""
    order = {"thumb": 4, "index": 3, "middle": 2, "ring": 1, "pinky": 0}
    tips = []
    for name in ("thumb", "index", "middle", "ring", "pinky"):
        k = order[name]
        sel = np.flatnonzero(rig.digit == k)
        tips.append(int(sel[np.argmax(rig.axial[sel])]))
    return tips


def save_mano_pickle(model: dict, path: str | Path) -> Path:
    """Write a MANO model dict as a plain pickle (protocol 4), creating parent folders.

    Args:
        model: dict of numpy arrays / scipy.sparse matrices / strings (e.g. from
            `build_synthetic_hand`).
        path: output file; name it ``MANO_RIGHT.pkl`` so `smplx` recognises the side.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        pickle.dump(dict(model), fh, protocol=4)
    return path
