"""Random plausible right-hand grasps of a library object, in the hand's own (MANO) frame.

The grasp is built with the MANO layer at zero global orientation and zero translation
("hand frame"): the object is put against the palm, then each finger closes about its joints'
flexion axes until it touches the object (the classic close-until-contact heuristic), the
thumb rotating towards the object. Contact is judged with an approximate signed distance of
the object (nearest dense surface sample + its normal); grasps with deep interpenetration
are rejected and resampled.

Hand-frame axes derived from the rest joints: `d` wrist -> middle MCP (along the fingers),
`n` palm normal (out of the palm), `l = d x n` (towards the thumb side for a right hand).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import map_coordinates
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from homae_model.objects.library import ObjectMesh

# Project joint order (wrist, thumb 1-4, index 5-8, middle 9-12, ring 13-16, pinky 17-20) of the
# 15 articulated MANO joints, in MANO's internal pose order (index, middle, pinky, ring, thumb).
MANO_TO_PROJECT_JOINT: tuple[int, ...] = (5, 6, 7, 9, 10, 11, 17, 18, 19, 13, 14, 15, 1, 2, 3)
"""Project joint index of MANO pose joint k+1 (k = 0..14)."""

# Fingers as (MANO pose joint ids 1..15 proximal -> distal, project joint chain incl. the tip).
FINGERS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int, int]]] = {
    "thumb": ((13, 14, 15), (1, 2, 3, 4)),
    "index": ((1, 2, 3), (5, 6, 7, 8)),
    "middle": ((4, 5, 6), (9, 10, 11, 12)),
    "ring": ((10, 11, 12), (13, 14, 15, 16)),
    "pinky": ((7, 8, 9), (17, 18, 19, 20)),
}

MAX_FLEXION_DEG = np.array([80.0, 95.0, 70.0])
"""Largest flexion of MCP, PIP, DIP for the closing sweep (degrees)."""

THUMB_MAX_DEG = np.array([55.0, 45.0, 60.0])
"""Largest rotation of the thumb CMC, MCP, IP towards the object (degrees)."""

CLOSE_LEVELS = 16
"""Number of flexion levels tried per closing sweep (one batched MANO forward each)."""

PENETRATION_TOL_M = 0.002
"""A finger stops closing before any of its vertices is deeper than this inside the object."""

MAX_PENETRATION_M = 0.006
"""Grasps with a hand vertex deeper than this inside the object are rejected."""


class SurfaceSDF:
    """Approximate signed distance to a closed mesh, tabulated on a grid (object frame).

    The sign of a grid node comes from the winding number of the mesh along a vertical ray
    (signed crossings below the node, so overlapping closed parts count as inside); the
    magnitude from dense surface samples: `|dot(p - s, n_s)|` for the nearest sample `s`
    with normal `n_s` within one grid step (exact on flat parts), `|p - s|` farther away.
    Queries interpolate trilinearly; outside the padded grid the distance to the grid is
    added. Good to about a millimetre near the surface, which is what contact tests need;
    built once per object (tens of ms).

    Args:
        mesh: the object (closed, outward-oriented).
        step: grid spacing, metres.
        padding: grid margin around the object's bounding box, metres.
        num_samples: surface samples.
        seed: sampling seed (fixed so that the SDF is the same in every process).
    """

    def __init__(
        self,
        mesh: ObjectMesh,
        step: float = 0.004,
        padding: float = 0.03,
        num_samples: int = 12000,
        seed: int = 0,
    ) -> None:
        rng = np.random.default_rng(seed)
        tri = mesh.vertices[mesh.faces]
        cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        area = 0.5 * np.linalg.norm(cross, axis=1)
        face = rng.choice(len(tri), size=num_samples, p=area / area.sum())
        u, v = rng.random(num_samples), rng.random(num_samples)
        flip = u + v > 1.0
        u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
        t = tri[face]
        points = t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])
        normals = cross[face] / np.maximum(2.0 * area[face, None], 1e-15)
        self.origin = mesh.vertices.min(axis=0) - padding
        self.step = float(step)
        self.shape = np.ceil((np.ptp(mesh.vertices, axis=0) + 2 * padding) / step).astype(int) + 1
        axes = [self.origin[k] + step * np.arange(self.shape[k]) for k in range(3)]
        nodes = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        dist, idx = cKDTree(points).query(nodes)
        plane = np.abs(np.einsum("ij,ij->i", nodes - points[idx], normals[idx]))
        magnitude = np.where(dist < step, plane, dist).reshape(*self.shape)
        inside = self._winding(tri, cross, axes) > 0
        self.grid = np.where(inside, -magnitude, magnitude)

    def _winding(self, tri: np.ndarray, cross: np.ndarray, axes: list[np.ndarray]) -> np.ndarray:
        """Winding number (nx, ny, nz) of every grid node along the +z ray from below."""
        xs, ys, zs = axes
        # Tiny offsets keep the rays off the mesh's edges (grids and boxes share round numbers).
        xs, ys = xs + 1.2345e-7, ys + 2.3456e-7
        counts = np.zeros(self.shape, dtype=np.int64)
        for k in np.nonzero(np.abs(cross[:, 2]) > 1e-14)[0]:
            a, b, c = tri[k]
            lo, hi = np.minimum(np.minimum(a, b), c), np.maximum(np.maximum(a, b), c)
            ix = np.nonzero((xs >= lo[0]) & (xs <= hi[0]))[0]
            iy = np.nonzero((ys >= lo[1]) & (ys <= hi[1]))[0]
            if not len(ix) or not len(iy):
                continue
            gx, gy = np.meshgrid(xs[ix], ys[iy], indexing="ij")
            det = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
            w1 = ((gx - a[0]) * (c[1] - a[1]) - (gy - a[1]) * (c[0] - a[0])) / det
            w2 = ((b[0] - a[0]) * (gy - a[1]) - (b[1] - a[1]) * (gx - a[0])) / det
            hit = (w1 >= 0) & (w2 >= 0) & (w1 + w2 <= 1)
            if not hit.any():
                continue
            z = a[2] + w1[hit] * (b[2] - a[2]) + w2[hit] * (c[2] - a[2])
            above = np.searchsorted(zs, z, side="right")  # first node above the crossing
            ok = above < len(zs)
            hx, hy = np.nonzero(hit)
            # Entering the solid going up crosses a face whose outward normal points down.
            np.add.at(counts, (ix[hx[ok]], iy[hy[ok]], above[ok]), -int(np.sign(cross[k, 2])))
        return np.cumsum(counts, axis=2)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Signed distances (...,) in metres of object-frame points (..., 3)."""
        flat = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        g = (flat - self.origin) / self.step
        top = self.shape - 1.0
        clamped = np.clip(g, 0.0, top)
        outside = np.linalg.norm(g - clamped, axis=1) * self.step
        inner = map_coordinates(self.grid, clamped.T, order=1, mode="nearest", prefilter=False)
        sd = inner + outside
        return sd.reshape(np.shape(points)[:-1])


@dataclass
class HandGrasp:
    """A grasp in the hand frame (MANO output with zero global orientation and translation).

    Attributes:
        pose: (48,) MANO pose, global orientation zero.
        open_pose: (48,) the same hand with the fingers open (start of an approach).
        shape: (10,) MANO shape.
        vertices: (778, 3) hand-frame vertices of `pose`, metres.
        joints: (21, 3) hand-frame joints, project order.
        obj_R: (3, 3) object rotation in the hand frame.
        obj_t: (3,) object position in the hand frame, metres.
        palm_normal: (3,) unit `n` (out of the palm), hand frame.
        finger_dir: (3,) unit `d` (wrist -> middle MCP), hand frame.
        contacts: number of fingers (thumb included) touching the object.
        penetration: deepest hand vertex inside the object, metres (>= 0).
    """

    pose: np.ndarray
    open_pose: np.ndarray
    shape: np.ndarray
    vertices: np.ndarray
    joints: np.ndarray
    obj_R: np.ndarray
    obj_t: np.ndarray
    palm_normal: np.ndarray
    finger_dir: np.ndarray
    contacts: int
    penetration: float


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _finger_labels(vertices: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """Label each vertex with the finger (0 thumb .. 4 pinky) whose bones it is nearest to.

    Vertices nearest to a palm segment (wrist -> MCP) get -1.
    """
    segments, labels = [], []
    for f, (_, chain) in enumerate(FINGERS.values()):
        segments.append((joints[0], joints[chain[0]]))
        labels.append(-1 if f else 0)  # the thumb's first segment (wrist -> CMC) is the thumb
        for a, b in itertools.pairwise(chain):
            segments.append((joints[a], joints[b]))
            labels.append(f)
    start = np.array([s[0] for s in segments])
    end = np.array([s[1] for s in segments])
    seg = end - start
    t = np.einsum("vsk,sk->vs", vertices[:, None] - start[None], seg) / (seg**2).sum(-1)
    closest = start[None] + np.clip(t, 0, 1)[..., None] * seg[None]
    dist = np.linalg.norm(vertices[:, None] - closest, axis=-1)
    return np.asarray(labels)[dist.argmin(axis=1)]


class GraspSampler:
    """Samples grasps of library objects with a MANO layer.

    Args:
        mano: a `homae_model.hand.mano.ManoLayer` (right hand).
    """

    def __init__(self, mano: torch.nn.Module) -> None:
        self.mano = mano

    def _forward(self, pose: np.ndarray, shape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Batched MANO in the hand frame: pose (B, 48), shape (10,) -> verts, joints."""
        pose_t = torch.as_tensor(np.atleast_2d(pose), dtype=torch.float32)
        shape_t = torch.as_tensor(shape, dtype=torch.float32).expand(len(pose_t), -1)
        with torch.no_grad():
            out = self.mano(pose_t, shape_t, torch.zeros(len(pose_t), 3))
        return out.vertices.double().numpy(), out.joints.double().numpy()

    def sample(
        self,
        mesh: ObjectMesh,
        sdf: SurfaceSDF,
        rng: np.random.Generator,
        shape: np.ndarray | None = None,
        max_tries: int = 6,
    ) -> HandGrasp:
        """Sample one grasp of `mesh` (resampling up to `max_tries` times on interpenetration).

        Args:
            mesh: the object.
            sdf: its `SurfaceSDF`.
            rng: random generator (the only source of randomness).
            shape: (10,) MANO shape; default N(0, 1) clipped to [-2, 2].
            max_tries: attempts before the least-penetrating grasp is returned.

        Returns:
            the grasp with the fewest problems among the attempts (first acceptable one).
        """
        if shape is None:
            shape = np.clip(rng.standard_normal(10), -2.0, 2.0)
        rest_v, rest_j = self._forward(np.zeros(48), shape)
        rest = (rest_v[0], rest_j[0], _finger_labels(rest_v[0], rest_j[0]))
        best = None
        for _ in range(max_tries):
            grasp = self._attempt(mesh, sdf, rng, shape, rest)
            if grasp.penetration <= MAX_PENETRATION_M and grasp.contacts >= 2:
                return grasp
            if best is None or (grasp.penetration, -grasp.contacts) < (
                best.penetration,
                -best.contacts,
            ):
                best = grasp
        assert best is not None
        return best

    def _attempt(
        self,
        mesh: ObjectMesh,
        sdf: SurfaceSDF,
        rng: np.random.Generator,
        shape: np.ndarray,
        rest: tuple[np.ndarray, np.ndarray, np.ndarray],
    ) -> HandGrasp:
        rest_v, rest_j, labels = rest
        wrist = rest_j[0]
        d = _unit(rest_j[9] - wrist)
        n = _unit(np.cross(rest_j[5] - rest_j[17], d))
        lat = np.cross(d, n)
        palm_centre = (wrist + rest_j[5] + rest_j[9] + rest_j[13] + rest_j[17]) / 5.0

        obj_R = self._object_rotation(mesh, rng, d, n, lat)
        offset = palm_centre + d * rng.uniform(0.0, 0.035) + lat * rng.uniform(-0.015, 0.015)
        obj_t = self._touch_palm(mesh, sdf, obj_R, offset, n, rest_v)

        axes = _joint_axes(rest_j, n, obj_t)
        abduction = rng.normal(0.0, np.radians(4.0), 5)
        abduction[0] = 0.0
        open_pose = np.zeros(48)
        open_pose[3:] = _finger_poses(axes, n, np.full((1, 5), 0.1), np.zeros((1, 5)), abduction)[0]
        pose, contacts = self._close_fingers(
            axes, n, abduction, labels, shape, rng, sdf, obj_R, obj_t
        )
        verts, joints = self._forward(pose, shape)
        sd = sdf((verts[0] - obj_t) @ obj_R)
        return HandGrasp(
            pose=pose,
            open_pose=open_pose,
            shape=np.asarray(shape, dtype=np.float64),
            vertices=verts[0],
            joints=joints[0],
            obj_R=obj_R,
            obj_t=obj_t,
            palm_normal=n,
            finger_dir=d,
            contacts=contacts,
            penetration=float(max(0.0, -sd.min())),
        )

    @staticmethod
    def _object_rotation(
        mesh: ObjectMesh, rng: np.random.Generator, d: np.ndarray, n: np.ndarray, lat: np.ndarray
    ) -> np.ndarray:
        """Object rotation in the hand frame: long axis across the palm (power grasp) mostly."""
        extent = np.ptp(mesh.vertices, axis=0)
        order = np.argsort(extent)[::-1]  # long, middle, short object axes
        if rng.random() < 0.75:
            # long axis along `lat`, shortest axis along the palm normal (thin side in the palm)
            target = np.stack([lat, d, n], axis=1)  # columns: where long/mid/short axes go
            src = np.eye(3)[:, order]
            R = target @ src.T
            if np.linalg.det(R) < 0:
                R = np.stack([lat, -d, n], axis=1) @ src.T
            spin = Rotation.from_rotvec(lat * rng.uniform(-np.pi, np.pi))
            if extent[order[0]] < 1.3 * extent[order[1]]:  # round or squat: spin freely
                R = spin.as_matrix() @ R
            else:
                R = Rotation.from_rotvec(lat * rng.choice([0.0, np.pi])).as_matrix() @ R
            tilt = Rotation.from_rotvec(n * rng.normal(0.0, 0.3) + d * rng.normal(0.0, 0.15))
            return tilt.as_matrix() @ R
        return Rotation.random(random_state=rng).as_matrix()

    @staticmethod
    def _touch_palm(
        mesh: ObjectMesh,
        sdf: SurfaceSDF,
        obj_R: np.ndarray,
        offset: np.ndarray,
        n: np.ndarray,
        hand_verts: np.ndarray,
    ) -> np.ndarray:
        """Slide the object along the palm normal until it just touches the open hand."""

        def clearance(s: float) -> float:
            local = (hand_verts - (offset + n * s)) @ obj_R
            return float(sdf(local).min())

        lo, hi = -0.05, mesh.diameter + 0.05
        while clearance(hi) < 0.0:  # pragma: no cover - very large objects
            hi *= 2.0
        for _ in range(11):
            mid = 0.5 * (lo + hi)
            if clearance(mid) < 0.0:
                lo = mid
            else:
                hi = mid
        return offset + n * (hi + 0.001)

    def _close_fingers(
        self,
        axes: np.ndarray,
        n: np.ndarray,
        abduction: np.ndarray,
        labels: np.ndarray,
        shape: np.ndarray,
        rng: np.random.Generator,
        sdf: SurfaceSDF,
        obj_R: np.ndarray,
        obj_t: np.ndarray,
    ) -> tuple[np.ndarray, int]:
        """Close each finger until contact: whole chain first, then PIP/DIP only.

        Returns:
            the (48,) pose and the number of fingers touching the object.
        """
        masks = [labels == f for f in range(5)]
        grid = np.linspace(0.0, 1.0, CLOSE_LEVELS)
        ones = np.ones((CLOSE_LEVELS, 5))

        def first_hit(levels: np.ndarray, distal: np.ndarray) -> list[int | None]:
            poses = np.zeros((CLOSE_LEVELS, 48))
            poses[:, 3:] = _finger_poses(axes, n, levels, distal, abduction)
            verts, _ = self._forward(poses, shape)
            sd = sdf((verts - obj_t) @ obj_R)  # (L, 778)
            hits = []
            for m in masks:
                deep = np.nonzero(sd[:, m].min(axis=1) < -PENETRATION_TOL_M)[0]
                hits.append(int(deep[0]) if len(deep) else None)
            return hits

        # Stage 1: the whole finger closes; stop one level before it would penetrate.
        levels = np.zeros(5)
        touched = np.zeros(5, dtype=bool)
        upper = np.zeros(5)
        for f, hit in enumerate(first_hit(grid[:, None] * ones, 0 * ones)):
            if hit is None:  # never reaches the object: a relaxed, random curl
                levels[f] = rng.uniform(0.25, 0.7) if f else rng.uniform(0.1, 0.5)
            else:
                levels[f] = grid[max(hit - 1, 0)]
                upper[f] = grid[hit]
                touched[f] = hit > 0
        # Refine the touching fingers between the last free and the first penetrating level.
        fine = np.where(touched, levels + grid[:, None] * (upper - levels), levels)
        for f, hit in enumerate(first_hit(fine, 0 * ones)):
            if touched[f]:
                levels[f] = fine[max(hit - 1, 0), f] if hit is not None else fine[-1, f]
        # Stage 2: the touching fingers keep curling their distal joints (wrap around).
        distal_grid = 0.6 * grid[:, None] * touched[None, :]
        distal = np.zeros(5)
        for f, hit in enumerate(first_hit(levels[None, :] * ones, distal_grid)):
            if touched[f]:
                distal[f] = distal_grid[-1, f] if hit is None else distal_grid[max(hit - 1, 0), f]
        pose = np.zeros(48)
        pose[3:] = _finger_poses(axes, n, levels[None], distal[None], abduction)[0]
        verts, _ = self._forward(pose, shape)
        sd = sdf((verts[0] - obj_t) @ obj_R)
        contacts = sum(int(np.any(sd[m] < PENETRATION_TOL_M + 0.002)) for m in masks)
        return pose, contacts


def _joint_axes(rest_j: np.ndarray, n: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(5, 3, 3) rotation axes [finger, joint] for the closing sweep, hand frame.

    Fingers flex about `cross(bone, n)` (towards the palm); the thumb's joints rotate about
    `cross(bone, target - joint)` (towards the object).
    """
    axes = np.zeros((5, 3, 3))
    for f, (name, (_, chain)) in enumerate(FINGERS.items()):
        for k in range(3):
            joint, child = rest_j[chain[k]], rest_j[chain[k + 1]]
            towards = target - joint if name == "thumb" else n
            axes[f, k] = _unit(np.cross(child - joint, towards))
    return axes


def _finger_poses(
    axes: np.ndarray, n: np.ndarray, levels: np.ndarray, distal: np.ndarray, abduction: np.ndarray
) -> np.ndarray:
    """(L, 45) MANO finger poses for closing levels.

    Args:
        axes: (5, 3, 3) axes from `_joint_axes`.
        n: (3,) palm normal (abduction axis).
        levels: (L, 5) closing level per finger in [0, 1] (all three joints).
        distal: (L, 5) extra level for the two distal joints (not the thumb's).
        abduction: (5,) MCP spread angles about `n`, radians.

    Returns:
        (L, 45) axis-angle values of MANO joints 1..15.
    """
    num = len(levels)
    frac = np.repeat(levels[:, :, None], 3, axis=2)  # (L, 5, 3)
    frac[:, 1:, 1:] += distal[:, 1:, None]
    max_deg = np.concatenate([THUMB_MAX_DEG[None], np.repeat(MAX_FLEXION_DEG[None], 4, axis=0)])
    angles = np.radians(max_deg)[None] * frac  # (L, 5, 3)
    rotvec = axes[None] * angles[..., None]  # (L, 5, 3, 3)
    if np.any(abduction):
        flex = Rotation.from_rotvec(rotvec[:, :, 0].reshape(-1, 3))
        spread = Rotation.from_rotvec(np.tile(n[None] * abduction[:, None], (num, 1)))
        rotvec[:, :, 0] = (flex * spread).as_rotvec().reshape(num, 5, 3)
    pose = np.zeros((num, 15, 3))
    for f, (mano_ids, _) in enumerate(FINGERS.values()):
        pose[:, np.asarray(mano_ids) - 1] = rotvec[:, f]
    return pose.reshape(num, 45)
