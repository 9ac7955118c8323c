"""`homae-infer`: HOMAE on images, a folder of images or a video, without ROS.

    homae-infer IMAGE_OR_VIDEO_OR_FOLDER --intrinsics K.yaml --out DIR
        [--checkpoint PATH] [--device auto|cpu|cuda] [--detector torchvision|track|roi]
        [--roi X0 Y0 X1 Y1 --object NAME]

Every frame goes through `FrameEstimator` (the node's per-frame path). Written to DIR:

- `<name>.png`: the overlay (boxes, hand mesh, skeleton, object axes; `outputs.overlay_image`);
- `<name>.json`: the frame's estimates (see `frame_record`);
- `<video stem>_overlay.mp4` for a video input (frames are `<video stem>_<index:06d>`);
- `summary.json`: frames processed, without detection, skipped (file/frame and reason).

Images of a folder are independent (tracking is reset between them); video frames are a
sequence stamped index / fps. The model and detector options come from
`homae_model.estimation.cli_args` (shared with `homae-bag`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from homae_model.estimation.cli_args import add_estimator_arguments, load_estimator
from homae_model.estimation.errors import skip_reason
from homae_model.estimation.estimator import FrameEstimator, PairEstimate
from homae_model.tracking.frame import hand_side
from homae_ros.messages.intrinsics import Intrinsics, load_intrinsics
from homae_ros.messages.outputs import overlay_image

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "InferSummary",
    "frame_record",
    "main",
    "run_infer",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


# --------------------------------------------------------------------------------------------
# Per-frame record
# --------------------------------------------------------------------------------------------
def _floats(a: Any) -> list:
    return np.round(np.asarray(a, dtype=np.float64), 6).tolist()


def frame_record(
    estimates: Sequence[PairEstimate], K: np.ndarray, image_size: tuple[int, int]
) -> dict[str, Any]:
    """The JSON-ready estimates of one frame (camera frame of the image, metres, pixels).

    Args:
        estimates: the frame's pair estimates.
        K: (3, 3) intrinsics of the image.
        image_size: (width, height) in pixels.

    Returns:
        {"image_size", "K", "pairs": [{"pair_id", "score", "crop_box", "anchor",
        "anchor_source", "scores", "hand": {"side", "score", "box", "joints" (21x3 m),
        "joints_2d" (21x2 px), "mano_pose" (48), "mano_shape" (10), "mano_transl" (3),
        "wrist_pose": {"position" (3, m), "rotation_matrix" (3x3, MANO global orientation)}},
        "object": {"name", "known", "score", "box", "rotation" (axis-angle 3),
        "rotation_matrix" (3x3), "translation" (3, m)}}]}.
    """
    from homae_model.render.overlay import project

    pairs = []
    for i, est in enumerate(estimates):
        pred, pair = est.prediction, est.pair
        uv = project(pred.joints, K)
        pairs.append(
            {
                "pair_id": i,
                "score": float(est.score),
                "crop_box": _floats(pred.crop_box),
                "anchor": _floats(pred.anchor),
                "anchor_source": pred.anchor_source,
                "scores": {k: float(v) for k, v in pred.scores.items()},
                "hand": {
                    "side": hand_side(est),
                    "score": float(pair.hand.score),
                    "box": _floats(pair.hand.box),
                    "joints": _floats(pred.joints),
                    "joints_2d": [
                        [None if not np.isfinite(v) else round(float(v), 3) for v in row]
                        for row in uv
                    ],
                    "mano_pose": _floats(pred.mano_pose),
                    "mano_shape": _floats(pred.mano_shape),
                    "mano_transl": _floats(pred.hand_transl),
                    "wrist_pose": {
                        "position": _floats(np.asarray(pred.joints)[0]),
                        "rotation_matrix": _floats(
                            Rotation.from_rotvec(np.asarray(pred.mano_pose)[:3]).as_matrix()
                        ),
                    },
                },
                "object": {
                    "name": pair.obj.label,
                    "known": est.obj_mesh is not None,
                    "score": float(pair.obj.score),
                    "box": _floats(pair.obj.box),
                    "rotation": _floats(pred.obj_rot),
                    "rotation_matrix": _floats(pred.obj_rot_matrix),
                    "translation": _floats(pred.obj_trans),
                },
            }
        )
    return {"image_size": list(image_size), "K": _floats(K), "pairs": pairs}


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------
@dataclass
class _Frame:
    name: str  # output file stem
    source: str  # file (and frame) for messages
    stamp_s: float
    rgb: np.ndarray | None
    error: str = ""


def _read_image(path: Path) -> np.ndarray | None:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _image_frames(paths: Sequence[Path]) -> Iterator[_Frame]:
    used: set[str] = set()
    for path in paths:
        name = path.stem if path.stem not in used else f"{path.stem}_{path.suffix[1:]}"
        used.add(name)
        rgb = _read_image(path)
        yield _Frame(name, str(path), 0.0, rgb, "" if rgb is not None else "unreadable image")


def _video_frames(path: Path, cap: Any, fps: float) -> Iterator[_Frame]:
    index = 0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                return
            yield _Frame(
                f"{path.stem}_{index:06d}",
                f"{path} frame {index}",
                index / fps,
                cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
            )
            index += 1
    finally:
        cap.release()


def _list_images(folder: Path) -> list[Path]:
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {folder}")
    return paths


# --------------------------------------------------------------------------------------------
# Run
# --------------------------------------------------------------------------------------------
@dataclass
class InferSummary:
    """What a run did.

    Attributes:
        frames: frames read (good or not).
        processed: frames estimated and written.
        no_detection: processed frames without any hand-object pair.
        skipped: per frame that could not be processed, {"source", "reason"} ("unreadable
            image" when it could not be read) or {"source", "reason", "detail"} with the
            `frame_errors.skip_reason` code, as the node and homae-bag count them.
        video: the overlay MP4 written, or None.
        estimate_ms: mean FrameEstimator.process time over processed frames (ms).
    """

    frames: int = 0
    processed: int = 0
    no_detection: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    video: str | None = None
    estimate_ms: float = 0.0


def _warn(text: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"homae-infer: warning: {text}", file=sys.stderr)


def run_infer(
    source: Path,
    intrinsics: Intrinsics,
    out_dir: Path,
    estimator: FrameEstimator,
    progress: bool = True,
) -> InferSummary:
    """Estimate every frame of `source` and write overlays, JSON and a summary to `out_dir`.

    Args:
        source: an image file, a video file or a folder of images.
        intrinsics: K (and the image size it is for, if known) of every frame.
        out_dir: output folder (created).
        estimator: the loaded estimator.
        progress: show a tqdm progress bar on stderr.

    Returns:
        InferSummary (also written as out_dir/summary.json).

    Raises:
        FileNotFoundError: `source` does not exist, or a folder holds no images.
        ValueError: `source` is neither an image, a video nor a folder; a video cannot be opened.
    """
    from tqdm import tqdm

    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"input {source} does not exist")
    video = None
    if source.is_dir():
        paths = _list_images(source)
        frames, total = _image_frames(paths), len(paths)
    elif source.suffix.lower() in IMAGE_SUFFIXES:
        frames, total = _image_frames([source]), 1
    elif source.suffix.lower() in VIDEO_SUFFIXES:
        cap = cv2.VideoCapture(str(source))
        if not cap.isOpened():
            raise ValueError(f"cannot open video {source} (codec not supported by OpenCV?)")
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or 30.0
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        frames = _video_frames(source, cap, fps)
        video = (out_dir / f"{source.stem}_overlay.mp4", fps)
    else:
        raise ValueError(
            f"input {source}: not a folder, image ({', '.join(IMAGE_SUFFIXES)}) or video "
            f"({', '.join(VIDEO_SUFFIXES)})"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = InferSummary()
    writer = None
    times: list[float] = []
    try:
        for frame in tqdm(frames, total=total, unit="frame", disable=not progress, file=sys.stderr):
            summary.frames += 1
            if frame.rgb is None:
                summary.skipped.append({"source": frame.source, "reason": frame.error})
                _warn(f"{frame.source}: skipped ({frame.error})")
                continue
            h, w = frame.rgb.shape[:2]
            try:
                K = intrinsics.for_image(w, h)
                if video is None:
                    estimator.reset()  # independent images: no tracking across them
                t0 = time.perf_counter()
                estimates = estimator.process(frame.rgb, K, frame.stamp_s)
                est_ms = 1e3 * (time.perf_counter() - t0)
                t1 = time.perf_counter()
                overlay = overlay_image(frame.rgb, K, estimates, estimator.hand_faces)
                draw_ms = 1e3 * (time.perf_counter() - t1)
            except Exception as err:  # one bad frame must not stop the run
                skip = skip_reason(err)
                summary.skipped.append(
                    {"source": frame.source, "reason": skip.reason, "detail": skip.detail}
                )
                _warn(f"{frame.source}: skipped ({skip.reason}): {skip.detail}")
                continue
            times.append(est_ms)
            summary.processed += 1
            summary.no_detection += int(not estimates)
            record = {"source": frame.source, "stamp_s": frame.stamp_s}
            record.update(frame_record(estimates, K, (w, h)))
            record["timings_ms"] = {"estimate": round(est_ms, 3), "draw": round(draw_ms, 3)}
            bgr = cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR)
            if not cv2.imwrite(str(out_dir / f"{frame.name}.png"), bgr):
                raise OSError(f"cannot write {out_dir / f'{frame.name}.png'}")
            (out_dir / f"{frame.name}.json").write_text(json.dumps(record))
            if video is not None:
                if writer is None:
                    fourcc = cv2.VideoWriter_fourcc(*"mp4v")
                    writer = cv2.VideoWriter(str(video[0]), fourcc, video[1], (w, h))
                    if not writer.isOpened():
                        raise OSError(f"cannot write video {video[0]} (mp4v codec missing?)")
                    summary.video = str(video[0])
                writer.write(bgr)
    finally:
        if writer is not None:
            writer.release()
    summary.estimate_ms = float(np.mean(times)) if times else 0.0
    (out_dir / "summary.json").write_text(json.dumps(summary.__dict__, indent=1))
    return summary


def build_parser() -> argparse.ArgumentParser:
    """The homae-infer argument parser."""
    p = argparse.ArgumentParser(
        prog="homae-infer",
        description="HOMAE hand-object poses for an image, a folder of images or a video "
        "(no ROS needed): overlay PNGs (+ MP4 for a video) and one JSON per frame.",
    )
    p.add_argument("input", type=Path, help="image file, folder of images or video file")
    p.add_argument(
        "--intrinsics",
        type=Path,
        required=True,
        help="K.yaml: ROS camera_info YAML (camera_matrix: {data: [9]} or k: [9]) or "
        "{fx, fy, cx, cy}",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_estimator_arguments(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; exit code 0 when at least one frame was processed, else 1."""
    args = build_parser().parse_args(argv)
    try:
        intrinsics = load_intrinsics(args.intrinsics)
        estimator = load_estimator(args)
        summary = run_infer(args.input, intrinsics, args.out, estimator, not args.no_progress)
    except (FileNotFoundError, ValueError, RuntimeError, OSError) as err:
        print(f"homae-infer: error: {err}", file=sys.stderr)
        return 1
    print(
        f"homae-infer: {summary.processed}/{summary.frames} frames processed "
        f"({summary.no_detection} without detection, {len(summary.skipped)} skipped), "
        f"mean estimate {summary.estimate_ms:.1f} ms; results in {args.out}"
        + (f", video {summary.video}" if summary.video else "")
    )
    return 0 if summary.processed else 1


if __name__ == "__main__":
    raise SystemExit(main())
