"""Training output for people: preview images and `RunLogger` (tqdm, TensorBoard, previews).

Each tile is one crop (upscaled), with the GT hand skeleton and object axes in green / RGB-light
and the predicted ones in red / RGB-dark, projected with the crop intrinsics (crop camera frame).
Drawn with OpenCV; no display needed.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch

PREVIEW_TILE_PX = 224
"""Side of one preview tile in pixels (crops are upscaled to it)."""
PREVIEW_MAX_SAMPLES = 4
"""Samples of a batch shown in one preview."""
AXIS_LENGTH_M = 0.05
"""Length of the drawn object axes (metres)."""

_GT_COLOR = (40, 220, 40)  # BGR
_PRED_COLOR = (40, 40, 230)
_AXES_GT = ((90, 90, 255), (90, 255, 90), (255, 150, 90))  # x, y, z (BGR), light
_AXES_PRED = ((0, 0, 160), (0, 140, 0), (160, 60, 0))  # dark


def _project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(N, 3) camera-frame points -> (N, 2) pixels (points behind the camera -> NaN)."""
    z = points[:, 2:3]
    uv = (points @ K.T)[:, :2] / np.where(np.abs(z) < 1e-9, np.nan, z)
    uv[z[:, 0] <= 1e-6] = np.nan
    return uv


def _draw_skeleton(img: np.ndarray, uv: np.ndarray, color: tuple[int, int, int]) -> None:
    from homae_model.hand.constants import SKELETON_EDGES

    for a, b in SKELETON_EDGES:
        pa, pb = uv[a], uv[b]
        if np.all(np.isfinite(pa)) and np.all(np.isfinite(pb)):
            cv2.line(img, _pt(pa), _pt(pb), color, 1, cv2.LINE_AA)
    for p in uv:
        if np.all(np.isfinite(p)):
            cv2.circle(img, _pt(p), 2, color, -1, cv2.LINE_AA)


def _draw_axes(
    img: np.ndarray,
    rotvec: np.ndarray,
    trans: np.ndarray,
    K: np.ndarray,
    colors: tuple[tuple[int, int, int], ...],
) -> None:
    R, _ = cv2.Rodrigues(np.asarray(rotvec, dtype=np.float64).reshape(3, 1))
    pts = np.vstack([np.zeros(3), np.eye(3) * AXIS_LENGTH_M]) @ R.T + trans
    uv = _project(pts, K)
    if not np.all(np.isfinite(uv[0])):
        return
    for i in range(3):
        if np.all(np.isfinite(uv[i + 1])):
            cv2.line(img, _pt(uv[0]), _pt(uv[i + 1]), colors[i], 2, cv2.LINE_AA)


def _pt(p: np.ndarray) -> tuple[int, int]:
    q = np.clip(p, -1e4, 1e4)
    return round(float(q[0])), round(float(q[1]))


def render_preview(
    images: torch.Tensor,
    K: torch.Tensor,
    gt_joints: torch.Tensor,
    pred_joints: torch.Tensor,
    gt_obj: tuple[torch.Tensor, torch.Tensor],
    pred_obj: tuple[torch.Tensor, torch.Tensor],
    max_samples: int = PREVIEW_MAX_SAMPLES,
) -> np.ndarray:
    """Tile predictions vs GT of the first samples of a batch.

    Args:
        images: (B, 3, S, S) float crops in [0, 1].
        K: (B, 3, 3) crop intrinsics.
        gt_joints: (B, 21, 3) GT joints, crop camera frame, metres.
        pred_joints: (B, 21, 3) predicted joints, same frame.
        gt_obj: (obj_rot (B, 3) axis-angle, obj_trans (B, 3) metres), GT.
        pred_obj: the predicted (obj_rot, obj_trans).
        max_samples: number of tiles.

    Returns:
        (T, n * T, 3) uint8 BGR image, T = PREVIEW_TILE_PX.
    """
    n = min(max_samples, images.shape[0])
    tiles = []
    for i in range(n):
        img = images[i].detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
        img = cv2.cvtColor((img * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
        s = PREVIEW_TILE_PX / img.shape[0]
        img = cv2.resize(img, (PREVIEW_TILE_PX, PREVIEW_TILE_PX), interpolation=cv2.INTER_LINEAR)
        Ki = K[i].detach().double().cpu().numpy().copy()
        # Pixel centres at integers: scaling by s maps u -> s * (u + 0.5) - 0.5.
        Ki[:2, :] *= s
        Ki[:2, 2] += 0.5 * s - 0.5
        for joints, color in ((gt_joints, _GT_COLOR), (pred_joints, _PRED_COLOR)):
            uv = _project(joints[i].detach().double().cpu().numpy(), Ki)
            _draw_skeleton(img, uv, color)
        for (rot, trans), colors in ((gt_obj, _AXES_GT), (pred_obj, _AXES_PRED)):
            _draw_axes(
                img,
                rot[i].detach().double().cpu().numpy(),
                trans[i].detach().double().cpu().numpy(),
                Ki,
                colors,
            )
        tiles.append(img)
    return np.concatenate(tiles, axis=1)


def write_png(path: str | Path, image_bgr: np.ndarray) -> Path:
    """Write a PNG atomically (temp file + os.replace).

    Raises:
        OSError: the image could not be encoded or written (names the path).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", image_bgr)
    if not ok:
        raise OSError(f"could not encode PNG for {path}")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(buf.tobytes())
    os.replace(tmp, path)
    return path


class RunLogger:
    """Rank 0's progress output: tqdm bar (loss, samples/s), TensorBoard scalars, previews.

    Args:
        run_dir: the run folder (writes run_dir/tb and run_dir/previews).
        total_steps: steps of the whole run (bar length).
        initial_step: steps already done (resume).
        samples_seen: samples already consumed (for the samples/s rate).
        log_every: steps between TensorBoard scalars.
        preview_every: steps between preview PNGs (0: off).
        show_bar: display the bar.
    """

    def __init__(
        self,
        run_dir: Path,
        total_steps: int,
        initial_step: int,
        samples_seen: int,
        log_every: int,
        preview_every: int,
        show_bar: bool,
    ) -> None:
        import time

        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        self.run_dir = Path(run_dir)
        self.writer = SummaryWriter(str(self.run_dir / "tb"))
        self.bar = tqdm(
            total=total_steps,
            initial=min(initial_step, total_steps),
            desc="train",
            unit="step",
            disable=not show_bar,
            dynamic_ncols=True,
        )
        self.total_steps = total_steps
        self.log_every = max(1, log_every)
        self.preview_every = preview_every
        self._clock = time.perf_counter
        self._mark = (self._clock(), samples_seen)

    def step(
        self,
        step: int,
        samples_seen: int,
        loss: float,
        terms: dict[str, float],
        lr: float,
        out: object,
        batch: dict[str, torch.Tensor],
    ) -> None:
        """Record one optimiser step (`out` is the HomaeOutput of the batch)."""
        now = self._clock()
        t_last, samples_last = self._mark
        rate = (samples_seen - samples_last) / max(now - t_last, 1e-9)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.4g}", samples_s=f"{rate:.1f}")
        if step % self.log_every == 0 or step == self.total_steps:
            self.writer.add_scalar("loss/total", loss, step)
            for name, value in terms.items():
                self.writer.add_scalar(f"loss/{name}", value, step)
            self.writer.add_scalar("lr", lr, step)
            self.writer.add_scalar("samples_per_s", rate, step)
            self._mark = (now, samples_seen)
        if self.preview_every and step % self.preview_every == 0:
            image = render_preview(
                batch["image"],
                batch["K"],
                batch["hand_joints"],
                out.joints,  # type: ignore[attr-defined]
                (batch["obj_rot"], batch["obj_trans"]),
                (out.obj_rot, out.obj_trans),  # type: ignore[attr-defined]
            )
            write_png(self.run_dir / "previews" / f"step_{step:08d}.png", image)

    def scalar(self, tag: str, value: float, step: int) -> None:
        """One extra TensorBoard scalar (e.g. the validation loss)."""
        self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        """Close the bar and flush TensorBoard."""
        self.bar.close()
        self.writer.flush()
        self.writer.close()
