"""The hand's global orientation from 2D keypoints: rotate an estimated hand about its wrist.

The heads' articulation is good long before their global orientation is: on the demo model's
held-out scenes the joints are 13.5 mm off once the orientation is put right (R-MJE) but the
orientation itself is about 97 degrees off. A 2D keypoint network learns the joints' pixels far
faster than a 3D head learns the orientation. Given the hand's root-relative joints P (the
articulation, camera frame), its root r and the keypoints' pixels u, the orientation is the
rotation R about the root whose projection of R P + r lands on u:

    min_R  sum_j w_j | pi(K (R p_j + r)) - u_j |^2,   R in SO(3),

solved by Levenberg-Marquardt on the left increment R <- exp([d]x) R, from the 24 rotations of
the cube's symmetry group applied to the heads' own orientation (one of them is the identity),
so that the fit does not depend on the heads' orientation being near. With `fit_root` the root
moves too (its depth then comes from the hand's size in the image), held near its start by a
Gaussian prior when `root_sigma_m` is given.

A near-planar hand has two good fits that are mirror views of each other in depth (tilted
towards the camera or away from it, palm or back facing it). `choose_solution` breaks that tie
with a palm-facing cue when one is given (the hand-side network's palm logit): among the
solutions whose cost is at most `ratio` times the best one, the cheapest with the cued palm
direction wins.

Pure numpy; no I/O. Frames: camera (x right, y down, z forward), metres, pixels of the image
the intrinsics K belong to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "FitSolution",
    "choose_solution",
    "cube_rotations",
    "fit_wrist_rotation",
    "palm_faces_camera",
    "rotate_about_root",
]

STALLED_DAMPING = 1e4
"""Levenberg-Marquardt damping at which a start counts as converged (about 7 refused steps)."""

WRIST, INDEX_BASE, LITTLE_BASE = 0, 5, 17
"""Project joint order (`homae_model.hand.constants`: the wrist, then thumb, index, middle, ring
and little finger, 4 joints each)."""


@dataclass(frozen=True)
class FitSolution:
    """One local minimum of the reprojection fit.

    Attributes:
        rotation: (3,3) R applied about the root to the given joints.
        cost: the objective: mean weighted squared reprojection error (pixels^2), plus the
            root prior's term with `root_sigma_m`.
        joints: (J,3) R P + r, camera frame, metres.
        root: (3,) r: the given root, or the fitted one (`fit_root`).
        rms_px: weighted root-mean-square reprojection error, pixels.
    """

    rotation: np.ndarray
    cost: float
    joints: np.ndarray
    root: np.ndarray
    rms_px: float


def cube_rotations() -> np.ndarray:
    """(24,3,3) the rotations of the cube's symmetry group (signed permutation matrices, det +1).

    The identity is first.
    """
    mats = []
    for perm in ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)):
        for signs in np.ndindex(2, 2, 2):
            m = np.zeros((3, 3))
            for row, col in enumerate(perm):
                m[row, col] = 1.0 if signs[row] == 0 else -1.0
            if np.linalg.det(m) > 0:
                mats.append(m)
    out = np.stack(mats)
    ident = int(np.argmin(np.abs(out - np.eye(3)).sum(axis=(1, 2))))
    return np.concatenate([out[ident : ident + 1], np.delete(out, ident, axis=0)])


def _skew(v: np.ndarray) -> np.ndarray:
    """(...,3) -> (...,3,3) cross-product matrices."""
    z = np.zeros(v.shape[:-1])
    x, y, w = v[..., 0], v[..., 1], v[..., 2]
    return np.stack(
        [np.stack([z, -w, y], -1), np.stack([w, z, -x], -1), np.stack([-y, x, z], -1)], -2
    )


def _exp_so3(d: np.ndarray) -> np.ndarray:
    """(S,3) rotation vectors -> (S,3,3) rotation matrices (Rodrigues; this layer stays numpy)."""
    theta = np.linalg.norm(d, axis=-1)[:, None, None]
    k = _skew(d)
    t = np.where(theta < 1e-12, 1.0, theta)
    a = np.where(theta < 1e-12, 1.0, np.sin(t) / t)
    b = np.where(theta < 1e-12, 0.5, (1.0 - np.cos(t)) / t**2)
    return np.eye(3) + a * k + b * (k @ k)


def _residuals(
    rot: np.ndarray, rel: np.ndarray, root: np.ndarray, uv: np.ndarray, K: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Residuals (S,J,2), Jacobians (S,J,2,6) and joints (S,J,3) for S hypotheses.

    The Jacobian's columns: a left increment of the rotation (3), then the root (3).
    """
    y = rel @ np.swapaxes(rot, -1, -2)  # (S,J,3) R p
    x = y + root[:, None, :]
    p = x @ K.T
    z = np.maximum(p[..., 2:3], 1e-6)
    proj = p[..., :2] / z
    dproj = (K[None, None, :2, :] - proj[..., :, None] * K[None, None, 2:3, :]) / z[..., None]
    jac = np.concatenate([dproj @ -_skew(y), dproj], axis=-1)  # d(R p)/dd = -[R p]x
    return proj - uv, jac, x


def fit_wrist_rotation(
    rel_joints: np.ndarray,
    root: np.ndarray,
    uv: np.ndarray,
    K: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    fit_root: bool = False,
    root_sigma_m: float | None = None,
    prior_px: float = 8.0,
    starts: np.ndarray | None = None,
    iterations: int = 30,
) -> list[FitSolution]:
    """Rotations about the root that project the joints onto their keypoints, best first.

    Args:
        rel_joints: (J,3) joints minus the root, camera frame, metres (the articulation).
        root: (3,) the root (wrist) position, camera frame, metres: it stays put, or it is the
            start of the root's own fit with `fit_root`.
        uv: (J,2) keypoint pixels.
        K: (3,3) intrinsics of those pixels.
        weights: (J,) non-negative per-keypoint weights (default: all 1).
        fit_root: also move the root (its depth then comes from the hand's size in the image).
        root_sigma_m: with `fit_root`, a Gaussian prior on the root at `root` with this standard
            deviation (metres) per axis; None: no prior.
        prior_px: the prior's weight: a root one sigma away costs as much as every keypoint
            `prior_px` pixels further off.
        starts: (S,3,3) starting rotations (default: `cube_rotations()`).
        iterations: Levenberg-Marquardt steps per start.

    Returns:
        One `FitSolution` per start, sorted by cost (duplicates are not merged).

    Raises:
        ValueError: on mismatched shapes, non-finite inputs or a root behind the camera.
    """
    rel = np.asarray(rel_joints, np.float64)
    root = np.asarray(root, np.float64).reshape(3)
    uv = np.asarray(uv, np.float64)
    K = np.asarray(K, np.float64)
    n = rel.shape[0]
    if rel.shape != (n, 3) or uv.shape != (n, 2) or K.shape != (3, 3):
        raise ValueError(
            f"rel_joints (J,3), uv (J,2), K (3,3) expected; got {rel.shape}, {uv.shape}, {K.shape}"
        )
    if not (np.isfinite(rel).all() and np.isfinite(root).all() and np.isfinite(uv).all()):
        raise ValueError("rel_joints, root and uv must be finite")
    if root[2] <= 0:
        raise ValueError(f"root must lie in front of the camera (z > 0), got z = {root[2]}")
    w = np.ones(n) if weights is None else np.asarray(weights, np.float64).reshape(n)
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be non-negative with a positive sum")
    sw = np.sqrt(w / w.sum())[None, :, None]
    rot = (cube_rotations() if starts is None else np.asarray(starts, np.float64)).copy()
    s = len(rot)
    roots = np.repeat(root[None], s, axis=0)
    dof = 6 if fit_root else 3
    lam = np.full(s, 1e-3)

    prior = fit_root and root_sigma_m is not None
    if prior and not root_sigma_m > 0:
        raise ValueError(f"root_sigma_m must be > 0, got {root_sigma_m}")
    scale = prior_px / root_sigma_m if prior else 0.0

    def cost_of(r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        res, jac, _ = _residuals(r, rel, t, uv, K)
        res = (res * sw).reshape(s, -1)  # (S,M) rows: u and v of each keypoint
        jac = (jac * sw[..., None])[..., :dof].reshape(s, -1, dof)
        if prior:  # three more rows: scale * (t - root), one per axis
            p_jac = np.broadcast_to(scale * np.eye(3), (s, 3, 3))
            res = np.concatenate([res, scale * (t - root)], 1)
            jac = np.concatenate([jac, np.concatenate([np.zeros((s, 3, 3)), p_jac], 2)], 1)
        return (res**2).sum(axis=1), res, jac

    cost, res, jac = cost_of(rot, roots)
    for _ in range(iterations):
        h = np.swapaxes(jac, 1, 2) @ jac  # (S,dof,dof)
        g = np.swapaxes(jac, 1, 2) @ res[..., None]
        diag = np.diagonal(h, axis1=1, axis2=2)[:, None] + 1e-9
        step = -np.linalg.solve(h + lam[:, None, None] * (np.eye(dof) * diag), g)[..., 0]
        trial = _exp_so3(step[:, :3]) @ rot
        t_roots = roots + step[:, 3:] if fit_root else roots
        if fit_root:  # a step that puts the root behind the camera is refused
            t_roots = np.where(t_roots[:, 2:3] > 1e-3, t_roots, roots)
        t_cost, t_res, t_jac = cost_of(trial, t_roots)
        better = t_cost < cost
        rot = np.where(better[:, None, None], trial, rot)
        roots = np.where(better[:, None], t_roots, roots)
        cost = np.where(better, t_cost, cost)
        res = np.where(better[:, None], t_res, res)
        jac = np.where(better[:, None, None], t_jac, jac)
        lam = np.where(better, lam * 0.3, lam * 10.0).clip(1e-9, 1e9)
        if (lam >= STALLED_DAMPING).all():  # every start refused several steps in a row
            break
    reproj, _, joints = _residuals(rot, rel, roots, uv, K)
    rms = np.sqrt(((reproj * sw) ** 2).sum(axis=(1, 2)))
    order = np.argsort(cost, kind="stable")
    return [FitSolution(rot[i], float(cost[i]), joints[i], roots[i], float(rms[i])) for i in order]


def palm_faces_camera(joints: np.ndarray, side: str) -> bool:
    """Whether the palm's outward normal points towards the camera centre.

    Args:
        joints: (21,3) camera-frame joints, metres (project order).
        side: "right" or "left" (a mirrored hand reverses the normal's cross product).
    """
    j = np.asarray(joints, np.float64)
    normal = np.cross(j[INDEX_BASE] - j[WRIST], j[LITTLE_BASE] - j[WRIST])
    if side == "left":
        normal = -normal
    return bool(np.dot(normal, j[WRIST]) < 0.0)


def choose_solution(
    solutions: list[FitSolution], side: str, palm_logit: float | None, ratio: float = 2.0
) -> FitSolution:
    """The fit to keep: the cheapest, or the cheapest with the cued palm direction.

    Args:
        solutions: `fit_wrist_rotation`'s output (best first).
        side: "right" or "left".
        palm_logit: > 0 when the palm faces the camera (hand-side network), or None (no cue).
        ratio: a solution with the cued palm direction is taken when its cost is at most
            `ratio` times the best cost.
    """
    if not solutions:
        raise ValueError("no solutions to choose from")
    best = solutions[0]
    if palm_logit is None or not np.isfinite(palm_logit):
        return best
    want = palm_logit > 0.0
    for sol in solutions:
        if sol.cost > ratio * best.cost:
            break
        if palm_faces_camera(sol.joints, side) == want:
            return sol
    return best


def rotate_about_root(points: np.ndarray, root: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """(N,3) points -> R (points - root) + root."""
    p = np.asarray(points, np.float64)
    r = np.asarray(root, np.float64).reshape(1, 3)
    return (p - r) @ np.asarray(rotation, np.float64).T + r
