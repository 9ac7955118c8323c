"""The project's own articulated right hand in MANO's file format (MANO itself cannot ship).

`build_synthetic_hand(seed)` returns a dict with every key `smplx.MANO` reads (plain numpy and
a scipy.sparse J_regressor, float64 like MANO) plus `fingertip_ids`; `save_mano_pickle` writes
it as ``MANO_RIGHT.pkl`` (pickle protocol 4). It has MANO's exact topology counts: 778 vertices,
1538 faces, 16 joints with MANO's parents, 10 shape and 135 pose-corrective directions. Like
MANO's mesh it is a disc: closed everywhere except one 16-edge loop at the wrist
(V - E + F = 1, E = 2315); `wrist.close_wrist` caps it (one centroid vertex, a 16-triangle
fan) into a watertight, outward-oriented surface for signed distances. The mesh itself is
designed in `synthetic_mesh`; this module rigs it (weights, regressor, correctives, shapes).

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

import pickle
from pathlib import Path

import numpy as np
import scipy.sparse

from homae_model.hand.constants import (
    MANO_PARENTS,
    NUM_BETAS,
    NUM_FACES,
    NUM_MANO_JOINTS,
    NUM_POSE_BASIS,
    NUM_VERTICES,
)
from homae_model.hand.synthetic_mesh import (
    Digit,
    Rig,
    build_geometry,
    digit_frame,
    ramp,
    smoothstep,
)

__all__ = [
    "REST_WRIST",
    "build_synthetic_hand",
    "save_mano_pickle",
]

REST_WRIST = np.array([0.0957, 0.0064, 0.0062])
"""Rest position of the wrist joint (MANO right template's, metres)."""
LOCAL_TO_MANO = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
"""Rotation from the local design frame (u distal, v thumb side, w dorsal) to MANO axes."""

_SHAPE_STEP = 0.05  # relative change per unit beta
_POSE_INFLATE = 0.001  # m of normal offset per unit of (3 - trace R)


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


def _thumb_axis(thumb: Digit, s: np.ndarray) -> np.ndarray:
    """Points on the thumb's polyline at arc length s from the CMC (local frame)."""
    l0 = thumb.lengths[0]
    d1, d2 = np.asarray(thumb.direction), np.asarray(thumb.direction2)
    return (
        np.asarray(thumb.root)
        + np.minimum(s, l0)[:, None] * d1
        + np.maximum(s - l0, 0.0)[:, None] * d2
    )


def _skinning_weights(verts: np.ndarray, digits: list[Digit], rig: Rig) -> np.ndarray:
    """(V, 16) LBS weights: C1 ramps across each joint along each digit, rows sum to 1."""
    w = np.zeros((len(verts), NUM_MANO_JOINTS))
    fingers, thumb = digits[:4], digits[4]
    for k, f in enumerate(fingers):
        sel = rig.digit == k
        s = rig.axial[sel]
        p, m = f.lengths[0], f.lengths[1]
        r1, r2, r3 = ramp(s, 0.0, _H_MCP), ramp(s, p, _H_JOINT), ramp(s, p + m, _H_JOINT)
        w[sel, 0] = 1 - r1
        w[np.ix_(sel, f.chain)] = np.stack([r1 - r2, r2 - r3, r3], axis=1)
    sel = rig.digit == 4
    s = rig.axial[sel]
    l0, l1 = thumb.lengths[0], thumb.lengths[1]
    r = [ramp(s, 0.0, _H_THUMB[0]), ramp(s, l0, _H_THUMB[1]), ramp(s, l0 + l1, _H_JOINT)]
    w[sel, 0] = 1 - r[0]
    w[np.ix_(sel, thumb.chain)] = np.stack([r[0] - r[1], r[1] - r[2], r[2]], axis=1)

    # Palm (and the thumb web): the nearest finger's MCP ramp, the thumb's CMC near the thenar.
    finger_webs = [v for v, (a, _) in rig.webs.items() if a >= 0]
    palm = np.flatnonzero((rig.digit < 0) & ~np.isin(np.arange(len(verts)), finger_webs))
    pts = verts[palm]
    s_f = np.stack([(pts - f.root) @ np.asarray(f.direction) for f in fingers], axis=1)
    lateral = np.stack(
        [np.abs((pts - f.root) @ digit_frame(np.asarray(f.direction))[1]) for f in fingers], 1
    )
    nearest = np.argmin(lateral, axis=1)
    finger_w = ramp(s_f[np.arange(len(palm)), nearest], 0.0, _H_MCP)
    d1 = np.asarray(thumb.direction)
    s_t = np.clip((pts - thumb.root) @ d1, 0.0, l0)
    dist = np.linalg.norm(pts - (np.asarray(thumb.root) + s_t[:, None] * d1), axis=1)
    thumb_w = (1 - smoothstep((dist - 0.008) / 0.018)) * ramp((pts - thumb.root) @ d1, 0, 0.012)
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
    fade = palm_w * (1 - smoothstep(verts[:, 0] / 0.05))
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
        dirs[sel, :, 3] = st * ramp(s, 0.0, 0.01)[:, None] * radial
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
    verts, faces, digits, joints, rig, reg_sets = build_geometry(scale)
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


def _tip_ids(rig: Rig) -> list[int]:
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
