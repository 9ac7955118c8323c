"""Accuracy of the per-camera and fused results of `make demo-multicam`, and its overlay.

Everything is compared in the clip's world frame: ground truth from camera 0's labels and
extrinsics, each camera's result through its own extrinsics, the fused result as published.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from homae_model.fusion.frames import invert, transform_points

SOURCES_FUSED = "fused"


def _world_gt(sample: Any, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from scipy.spatial.transform import Rotation

    R = T[:3, :3] @ Rotation.from_rotvec(sample.obj_rot).as_matrix()
    return transform_points(T, sample.hand_joints), R, transform_points(T, sample.obj_trans)


def _estimate(msg: Any, T: np.ndarray, obj_name: str) -> dict[str, Any]:
    """World-frame hand joints (first right hand, else first) and object pose of a result."""
    from homae_ros.messages.build import hand_from_msg, object_from_msg

    out: dict[str, Any] = {}
    if msg is None:
        return out
    hands = [hand_from_msg(h) for h in msg.hands]
    if hands:
        hand = next((h for h in hands if h.side == "right"), hands[0])
        out["joints"] = transform_points(T, hand.joints)
    objects = [object_from_msg(o) for o in msg.objects]
    if objects:
        obj = next((o for o in objects if o.name == obj_name), objects[0])
        out["R"], out["t"] = T[:3, :3] @ obj.R, transform_points(T, obj.t)
    return out


def frame_errors(
    rec_results: dict[str, dict[int, Any]], mc: Any, sources: dict[str, Any], library: Any
) -> tuple[dict[str, dict[int, dict[str, float]]], dict[int, dict[str, Any]]]:
    """Per source, per frame: {"MJE", "abs", "ADD-S"} in mm; and the world estimates.

    Returns:
        (errors[source][frame], estimates[frame][source]) for the frames each source answered.
    """
    from homae_model.metrics.hand import mje, per_joint_errors
    from homae_model.metrics.objects import ObjectPose, add_s

    cam0 = mc.cameras[0]
    errors: dict[str, dict[int, dict[str, float]]] = {s: {} for s in rec_results}
    estimates: dict[int, dict[str, Any]] = {}
    for i in range(len(sources[cam0])):
        gt = sources[cam0][i]
        joints_gt, R_gt, t_gt = _world_gt(gt, mc.T_world_cam[cam0])
        points = library.get(gt.obj_name).vertices if gt.obj_name in library else None
        for source, by_frame in rec_results.items():
            T = np.eye(4) if source == SOURCES_FUSED else mc.T_world_cam[source]
            est = _estimate(by_frame.get(i), T, gt.obj_name)
            estimates.setdefault(i, {})[source] = est
            if "joints" not in est:
                continue
            e = {
                "MJE": mje(est["joints"], joints_gt),
                "abs": float(per_joint_errors(est["joints"], joints_gt, "none").mean()),
            }
            if "R" in est and points is not None:
                e["ADD-S"] = float(
                    add_s(
                        ObjectPose.create(est["R"], est["t"]), ObjectPose.create(R_gt, t_gt), points
                    )
                )
            errors[source][i] = e
    return errors, estimates


def occluded_frames(mc: Any, sources: dict[str, Any], threshold: float) -> list[int]:
    """Frames where one camera sees less than `threshold` of the hand and another at least it."""
    n = len(sources[mc.cameras[0]])
    out = []
    for i in range(n):
        vis = [sources[c][i].hand_visible for c in mc.cameras]
        if min(vis) < threshold <= max(vis):
            out.append(i)
    return out


def _means(errors: dict[str, dict[int, dict[str, float]]], frames: list[int]) -> dict[str, Any]:
    """Per source, the mean errors over `frames` it answered."""
    out: dict[str, Any] = {"frames": {}, "mje_mm": {}, "abs_mje_mm": {}, "adds_mm": {}}
    for source, by_frame in errors.items():
        rows = [by_frame[i] for i in frames if i in by_frame]
        out["frames"][source] = len(rows)
        for key, name in (("mje_mm", "MJE"), ("abs_mje_mm", "abs"), ("adds_mm", "ADD-S")):
            vals = [r[name] for r in rows if name in r]
            out[key][source] = float(np.mean(vals)) if vals else None
    return out


def _paired(errors: dict[str, dict[int, dict[str, float]]], frames: list[int]) -> dict[str, Any]:
    """Fused against each camera on the frames that camera answered (the same frames)."""
    fused = errors[SOURCES_FUSED]
    out: dict[str, Any] = {}
    for cam in (s for s in errors if s != SOURCES_FUSED):
        both = [i for i in frames if i in errors[cam] and i in fused]
        block = _means({cam: errors[cam], SOURCES_FUSED: fused}, both)
        block["count"] = len(both)
        out[cam] = block
    return out


def _block(errors: dict[str, dict[int, dict[str, float]]], frames: list[int]) -> dict[str, Any]:
    """Means per source over its own frames, over the common frames, and paired per camera.

    `fused_mje_below_best_camera` compares like with like: the best camera is the one with the
    lowest MJE on the frames it answered, and the fused MJE is taken on those same frames
    (`paired`). The plain means above it average each source over its own frames, and the
    fused result answers on more frames than any camera (the union of their hands).
    """
    block = _means(errors, frames)
    common = [i for i in frames if all(i in by_frame for by_frame in errors.values())]
    block["common_frames"] = _means(errors, common)
    block["common_frames"]["count"] = len(common)
    block["paired"] = _paired(errors, frames)
    cams = [c for c, b in block["paired"].items() if b["mje_mm"][c] is not None]
    best = min(cams, key=lambda c: block["paired"][c]["mje_mm"][c], default=None)
    verdict = None
    if best is not None and block["paired"][best]["mje_mm"][SOURCES_FUSED] is not None:
        pair = block["paired"][best]["mje_mm"]
        verdict = bool(pair[SOURCES_FUSED] < pair[best])
    block["best_camera"] = best
    block["fused_mje_below_best_camera"] = verdict
    block["fused_mje_below_every_camera"] = bool(cams) and all(
        block["paired"][c]["mje_mm"][SOURCES_FUSED] is not None
        and block["paired"][c]["mje_mm"][SOURCES_FUSED] < block["paired"][c]["mje_mm"][c]
        for c in cams
    )
    return block


def fusion_summary(
    errors: dict[str, dict[int, dict[str, float]]],
    frames_sent: int,
    frames_fused: int,
    occluded: list[int],
    threshold: float,
) -> dict[str, Any]:
    """The summary's `fusion` block (see `homae_ros.demo.multicam`)."""
    block = {"frames_sent": frames_sent, "frames_fused": frames_fused}
    block.update(_block(errors, list(range(frames_sent))))
    block["occluded"] = {
        "rule": f"one camera's hand_visible < {threshold} while another's >= {threshold}",
        "count": len(occluded),
        **_block(errors, occluded),
    }
    return block


def _draw_skeleton(img: np.ndarray, uv: np.ndarray, color: tuple, width: int) -> None:
    import cv2

    from homae_model.hand.constants import SKELETON_EDGES

    for a, b in SKELETON_EDGES:
        pa, pb = uv[a], uv[b]
        if np.isfinite(pa).all() and np.isfinite(pb).all():
            cv2.line(
                img, tuple(int(v) for v in pa), tuple(int(v) for v in pb), color, width, cv2.LINE_AA
            )


def _project(points_world: np.ndarray, T: np.ndarray, K: np.ndarray) -> np.ndarray:
    p = transform_points(invert(T), points_world)
    z = np.where(p[:, 2:3] > 1e-3, p[:, 2:3], np.nan)
    return (p[:, :2] / z) * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]


def write_overlay(
    path: Path,
    mc: Any,
    sources: dict[str, Any],
    estimates: dict[int, dict[str, Any]],
    frames: list[int],
    scale: int = 2,
) -> Path:
    """Write the overlay picture: rows = frames, columns = cameras.

    Each view shows the ground truth (white), the camera's own estimate (red) and the fused
    hand and object axes (green), projected with that camera's extrinsics and intrinsics.
    """
    import cv2

    rows = []
    for i in frames:
        cols = []
        joints_gt = _world_gt(sources[mc.cameras[0]][i], mc.T_world_cam[mc.cameras[0]])[0]
        for c in mc.cameras:
            sample = sources[c][i]
            T, K = mc.T_world_cam[c], sample.K
            img = cv2.resize(
                np.ascontiguousarray(sample.image[..., ::-1]),
                None,
                fx=scale,
                fy=scale,
                interpolation=cv2.INTER_LINEAR,
            )
            Ks = np.diag([scale, scale, 1.0]) @ K
            _draw_skeleton(img, _project(joints_gt, T, Ks), (255, 255, 255), 1)
            own = estimates.get(i, {}).get(c, {})
            if "joints" in own:
                _draw_skeleton(img, _project(own["joints"], T, Ks), (40, 40, 230), 1)
            fused = estimates.get(i, {}).get(SOURCES_FUSED, {})
            if "joints" in fused:
                _draw_skeleton(img, _project(fused["joints"], T, Ks), (60, 220, 60), 2)
            if "R" in fused:
                axes = fused["t"] + 0.05 * fused["R"].T
                uv = _project(np.vstack([fused["t"], axes]), T, Ks)
                for k, color in enumerate(((40, 40, 230), (60, 220, 60), (230, 80, 40))):
                    if np.isfinite(uv[[0, k + 1]]).all():
                        cv2.line(
                            img,
                            tuple(int(v) for v in uv[0]),
                            tuple(int(v) for v in uv[k + 1]),
                            color,
                            2,
                            cv2.LINE_AA,
                        )
            text = f"{c} frame {i} hand visible {sample.hand_visible:.2f}"
            cv2.putText(
                img, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA
            )
            cols.append(img)
        rows.append(np.hstack(cols))
    legend = np.zeros((24, rows[0].shape[1], 3), np.uint8)
    cv2.putText(
        legend,
        "white: ground truth   red: this camera's node   green: fused (world)",
        (6, 17),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    cv2.imwrite(str(path), np.vstack([*rows, legend]))
    return path
