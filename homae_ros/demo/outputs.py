"""What `make demo` leaves in demo_out/: overlays, a video, a 3D plot and a rosbag2 (MCAP).

Everything is drawn from what the node PUBLISHED (the recorded HandObjectResult messages),
next to the clip's ground truth, so the pictures show what a subscriber would get.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

SHEET_TILES = 8
GT_COLOR = (255, 255, 255)


def _mano_layer():
    from homae_model.hand import BUNDLED_MODEL_PATH
    from homae_model.hand.mano import ManoLayer

    return ManoLayer(BUNDLED_MODEL_PATH)


def _hand_vertices(layer: Any, hand: Any) -> np.ndarray:
    """Mesh from the published MANO parameters, placed so its wrist is the published wrist."""
    import torch

    with torch.no_grad():
        out = layer(
            torch.as_tensor(hand.mano_pose, dtype=torch.float32)[None],
            torch.as_tensor(hand.mano_shape, dtype=torch.float32)[None],
            None,
        )
    verts = out.vertices[0].double().numpy()
    return verts - out.joints[0, 0].double().numpy() + hand.joints[0]


def render_frame(sample: Any, msg: Any, layer: Any, library: Any) -> np.ndarray:
    """The clip frame with the published estimate (mesh, skeleton, object) and GT skeleton."""
    from homae_model.render.overlay import (
        draw_axes,
        draw_box,
        draw_hand_object,
        draw_mesh,
        draw_skeleton,
    )
    from homae_ros.messages.build import hand_from_msg, object_from_msg

    img = np.array(sample.image, copy=True)
    K = sample.K
    draw_skeleton(img, sample.hand_joints, K, GT_COLOR)
    for i, hand_msg in enumerate(msg.hands):
        hand = hand_from_msg(hand_msg)
        obj = object_from_msg(msg.objects[i]) if i < len(msg.objects) else None
        if obj is not None and obj.name in library:
            mesh = library.get(obj.name)
            draw_mesh(img, mesh.vertices @ obj.R.T + obj.t, mesh.faces, K, (90, 140, 255), 0.35)
            draw_box(img, obj.box, (60, 120, 255))
        draw_box(img, hand.box, (60, 220, 60))
        draw_hand_object(
            img, K, hand.joints, _hand_vertices(layer, hand), layer.faces.numpy(),
            obj.R if obj is not None else None, obj.t if obj is not None else None,
        )  # fmt: skip
    gt_R = cv2.Rodrigues(np.asarray(sample.obj_rot, dtype=np.float64))[0]
    draw_axes(img, gt_R, sample.obj_trans, K, 0.03)
    return img


def _label(img: np.ndarray, text: str) -> np.ndarray:
    out = np.array(img, copy=True)
    cv2.putText(out, text, (5, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def write_sheet(path: Path, frames: Sequence[np.ndarray], cols: int = 4) -> Path:
    """A grid of RGB frames as one PNG."""
    h, w = frames[0].shape[:2]
    rows = (len(frames) + cols - 1) // cols
    sheet = np.zeros((rows * h, cols * w, 3), np.uint8)
    for k, f in enumerate(frames):
        r, c = divmod(k, cols)
        sheet[r * h : (r + 1) * h, c * w : (c + 1) * w] = f
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return path


def write_video(path: Path, frames: Sequence[np.ndarray], fps: float) -> Path | None:
    """MP4 (mp4v) of RGB frames; None when OpenCV has no writer for it."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        return None
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_3d_plot(path: Path, sample: Any, msg: Any, library: Any) -> Path:
    """Published hand skeleton and object box vs ground truth in 3D (camera frame, cm)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from homae_model.hand.constants import SKELETON_EDGES
    from homae_ros.messages.build import hand_from_msg, object_from_msg

    fig = plt.figure(figsize=(7, 6))
    ax = fig.add_subplot(projection="3d")
    gt_R = cv2.Rodrigues(np.asarray(sample.obj_rot, dtype=np.float64))[0]

    def skeleton(joints: np.ndarray, color: str, label: str) -> None:
        j = joints * 100.0
        for a, b in SKELETON_EDGES:
            ax.plot(*zip(j[a], j[b], strict=True), color=color, lw=2)
        ax.scatter(*j.T, color=color, s=10, label=label)

    def box(R: np.ndarray, t: np.ndarray, corners: np.ndarray, color: str, label: str) -> None:
        c = (corners @ R.T + t) * 100.0
        for a in range(8):
            for b in range(a + 1, 8):
                if bin(a ^ b).count("1") == 1:  # corners differing in one axis share an edge
                    ax.plot(*zip(c[a], c[b], strict=True), color=color, lw=1)
        ax.scatter([], [], [], color=color, label=label)

    skeleton(np.asarray(sample.hand_joints), "green", "hand, ground truth")
    if msg.hands:
        skeleton(hand_from_msg(msg.hands[0]).joints, "red", "hand, published")
    if sample.obj_name in library:
        corners = library.get(sample.obj_name).corners
        box(gt_R, np.asarray(sample.obj_trans), corners, "green", "object, ground truth")
        if msg.objects:
            obj = object_from_msg(msg.objects[0])
            box(obj.R, obj.t, corners, "red", "object, published")
    ax.set_xlabel("x (cm)")
    ax.set_ylabel("y (cm)")
    ax.set_zlabel("z (cm, depth)")
    ax.view_init(elev=-60, azim=-90)  # looking along the camera's z axis, y down
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("one demo frame, camera frame")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_bag(path: Path, raw: Sequence[tuple[str, str, int, bytes]]) -> Path:
    """Write recorded (topic, type, time ns, CDR bytes) as a rosbag2 MCAP folder."""
    import shutil

    from rosbags.rosbag2 import StoragePlugin, Writer

    from homae_ros.tools.bag_types import make_typestore

    store = make_typestore()
    if path.exists():
        shutil.rmtree(path)
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connections: dict[str, Any] = {}
        for topic, msgtype, t_ns, data in sorted(raw, key=lambda r: r[2]):
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(connections[topic], t_ns, data)
    return path


def write_outputs(
    out: Path, rec: Any, source: Any, matches: Sequence[tuple[int, Any]], summary: dict
) -> list[Path]:
    """Write every picture and the bag; returns the files written."""
    from homae_model.objects.library import ObjectLibrary

    files: list[Path] = []
    library = ObjectLibrary.procedural()
    files.append(write_bag(out / "demo_bag", rec.raw))
    if not matches:
        return files
    layer = _mano_layer()
    rendered = [
        _label(render_frame(source[i], msg, layer, library), f"frame {i}") for i, msg in matches
    ]
    picks = np.linspace(0, len(rendered) - 1, min(SHEET_TILES, len(rendered))).round().astype(int)
    files.append(write_sheet(out / "overlay_sheet.png", [rendered[k] for k in picks]))
    video = write_video(out / "overlay.mp4", rendered, fps=max(1.0, len(rendered) / 6.0))
    if video is not None:
        files.append(video)
    middle_i, middle_msg = matches[len(matches) // 2]
    files.append(write_3d_plot(out / "frame_3d.png", source[middle_i], middle_msg, library))
    return files
