"""The synthetic hand's mesh: tubes of elliptic rings for the palm, thumb and fingers.

`build_geometry(scale)` designs the right hand in a local frame (u distal, v toward the thumb,
w dorsal; metres) as described in `synthetic_hand`: wrist -> palm, which splits into the thumb
and the upper palm, which splits into four fingers, every digit ending in a cap whose apex is
the fingertip vertex; it returns the vertices, faces, digits, designed joints and the per-vertex
notes (`Rig`) from which `synthetic_hand` builds the skinning weights, correctives and shapes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from homae_model.hand.constants import MANO_FINGER_JOINTS, NUM_MANO_JOINTS, NUM_VERTICES

RING = 10
"""Vertices per finger / thumb ring."""


@dataclass(frozen=True)
class Digit:
    """One finger in the local frame (metres); `chain` are its MANO joint ids."""

    name: str
    chain: tuple[int, int, int]
    root: tuple[float, float, float]  # MCP (fingers) or CMC (thumb)
    direction: tuple[float, float, float]  # first bone
    lengths: tuple[float, float, float]  # bone lengths, the last one to the tip
    widths: tuple[float, float]  # base, tip
    direction2: tuple[float, float, float] | None = None  # thumb: bones 2-3


def _fingers(scale: np.ndarray) -> list[Digit]:
    """The four fingers, ulnar to radial (pinky, ring, middle, index): their tube order."""

    def finger(name, root, angle, length, widths, k):
        a = np.radians(angle)
        lengths = tuple(float(x) for x in np.array([1.0, 0.6, 0.45]) / 2.05 * length * scale[k])
        return Digit(
            name, MANO_FINGER_JOINTS[name], root, (np.cos(a), np.sin(a), 0.0), lengths, widths
        )

    return [
        finger("pinky", (0.088, -0.0345, -0.005), -19.0, 0.060, (0.0165, 0.0135), 3),
        finger("ring", (0.099, -0.0165, -0.002), -11.0, 0.075, (0.0185, 0.0150), 2),
        finger("middle", (0.105, 0.003, 0.0), -4.0, 0.080, (0.0200, 0.0160), 1),
        finger("index", (0.098, 0.0235, -0.002), 3.0, 0.073, (0.0195, 0.0155), 0),
    ]


def _thumb(scale: float) -> Digit:
    d1 = np.array([0.62, 0.74, -0.22])
    d2 = np.array([0.80, 0.50, -0.30])
    return Digit(
        "thumb",
        MANO_FINGER_JOINTS["thumb"],
        (0.026, 0.024, -0.012),
        tuple(d1 / np.linalg.norm(d1)),
        (0.032 * scale, 0.0353 * scale, 0.0247 * scale),
        (0.0225, 0.0185),
        tuple(d2 / np.linalg.norm(d2)),
    )


def smoothstep(x: np.ndarray) -> np.ndarray:
    """C1 step: 0 below 0, 1 above 1, 3x^2 - 2x^3 in between (elementwise)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def ramp(s: np.ndarray, centre: float, half: float) -> np.ndarray:
    """0 before centre - half, 1 after centre + half, C1 in between."""
    return smoothstep((s - centre + half) / (2.0 * half))


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


def digit_frame(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
class Rig:
    """Per-vertex annotations used to build weights, correctives and shape directions."""

    digit: np.ndarray  # -1 palm, -2 web, else index into the digit list
    axial: np.ndarray  # metres along the digit from its root joint (nan on the palm)
    webs: dict[int, tuple[int, int]]  # web vertex -> (digit a, digit b)


def build_geometry(scale: np.ndarray):
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
        e1, e2 = digit_frame(d)
        cap = 0.5 * f.widths[1] * 0.95
        st, cap_scale = _finger_stations(f.lengths, cap)
        length = sum(f.lengths)
        width = _width_profile(st, [f.lengths[0], f.lengths[0] + f.lengths[1]], length, f.widths)
        rings = [
            _ring_points(np.asarray(f.root) + s * d, e1, e2, 0.44 * w * c, 0.5 * w * c, RING)
            for s, w, c in zip(st, width, cap_scale, strict=True)
        ]
        finger_rings.append(rings)
        finger_stations.append(st)
    half = RING // 2
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
        t = smoothstep((s - l0 + 0.006) / 0.012)
        v = (1 - t) * d1 + t * d2
        return v / np.linalg.norm(v)

    centre_b = thumb_point(t_b)
    # Vertices left for the five palm rings: all but the wrist loop, the thumb (its first ring
    # shares W with ring A) and the four fingers (sharing three web vertices).
    fixed = 16 + len(t_st) * RING + 4 * (len(finger_stations[0]) * RING + 1) - 3
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
        t_rings.append(_ring_points(thumb_point(s), e1, e2, 0.45 * w * c, 0.5 * w * c, RING))
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
    ring_params = np.arange(RING) / RING
    for rings, apex in [(thumb_ids, thumb_apex), *zip(finger_ids, apexes, strict=True)]:
        for r0, r1 in itertools.pairwise(rings):
            b.zip(r0, ring_params, r1, ring_params)
        b.faces.extend(
            (int(r), int(rings[-1][(i + 1) % RING]), int(apex)) for i, r in enumerate(rings[-1])
        )

    rig = Rig(np.concatenate(digit_of), np.concatenate(axial_of), webs)
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
    half = RING // 2
    order = [(0, i) for i in range(half + 1)]
    for k in (1, 2, 3):
        order += [(k, i) for i in range(1, half + 1)]
    order += [(3, i) for i in range(half + 1, RING)]
    for k in (2, 1, 0):
        order += [(k, half)] + [(k, i) for i in range(half + 1, RING)]  # web, dorsal arc
    return order
