"""Write synthetic sets and clips in the `homae-synth` format (`homae_model.data.synthetic`).

`write_dataset` generates a split (in worker processes, `synth_workers`), `write_sequence` a
fixed-camera clip with its camera_info.yaml; `save_sample` writes one sample's files with
deterministic bytes; `meta.json` is written last.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from homae_model.data.npz import write_npz
from homae_model.data.synth_scene import SceneGenerator, SynthConfig, SynthSample
from homae_model.data.synth_workers import generate_samples
from homae_model.data.synthetic import (
    ANN_ARRAYS,
    CAMERA_FRAME,
    FORMAT_NAME,
    FORMAT_VERSION,
    sample_name,
)
from homae_model.objects.library import ObjectLibrary


def save_sample(root: Path, index: int, sample: SynthSample, save_depth: bool = False) -> None:
    """Write rgb/, mask/ and ann/ files of one sample (deterministic bytes)."""
    raw = sample.raw
    stem = sample_name(index)
    cv2.imwrite(str(root / "rgb" / f"{stem}.png"), np.ascontiguousarray(raw.image[..., ::-1]))
    cv2.imwrite(str(root / "mask" / f"{stem}.png"), raw.masks)
    arrays = {k: np.asarray(getattr(raw, k), dtype=np.float64) for k in ANN_ARRAYS}
    arrays.update(
        obj_name=np.array(raw.obj_name),
        side=np.array(raw.side),
        hand_visible=np.array(raw.hand_visible),
        obj_visible=np.array(raw.obj_visible),
        num_distractors=np.array(sample.num_distractors),
        stamp=np.array(sample.stamp),
    )
    if save_depth:
        arrays["depth"] = sample.depth.astype(np.float32)
    write_npz(root / "ann" / f"{stem}.npz", arrays)


def camera_info_yaml(K: np.ndarray, width: int, height: int) -> str:
    """ROS sensor_msgs/CameraInfo fields of an undistorted pinhole camera, as YAML text."""
    k = [float(v) for v in np.asarray(K, dtype=np.float64).ravel()]
    p = [k[0], k[1], k[2], 0.0, k[3], k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0]

    def fmt(values: list[float]) -> str:
        return "[" + ", ".join(repr(v) for v in values) + "]"

    return (
        f"frame_id: {CAMERA_FRAME}\nwidth: {width}\nheight: {height}\n"
        "distortion_model: plumb_bob\n"
        f"D: {fmt([0.0] * 5)}\nK: {fmt(k)}\n"
        f"R: {fmt([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0])}\nP: {fmt(p)}\n"
        "binning_x: 0\nbinning_y: 0\n"
    )


def write_dataset(
    out: str | Path,
    num: int,
    seed: int,
    split: str = "train",
    config: SynthConfig | None = None,
    library: ObjectLibrary | None = None,
    workers: int = 1,
    mano_path: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Generate `num` samples into `out` (format: `homae_model.data.synthetic`).

    Args:
        out: output folder (created).
        num: number of samples.
        seed: data set seed.
        split: "train", "val" or "test".
        config: scene settings (image size etc.).
        library: objects; default the procedural stand-ins.
        workers: processes (spawned, each with its own GL context); results do not depend
            on it.
        mano_path: MANO-format hand model; default the bundled one.
        progress: show a tqdm progress bar.

    Returns:
        the output folder.
    """
    from tqdm import tqdm

    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    if split not in ("train", "val", "test"):
        raise ValueError(f"unknown split {split!r}; valid: train, val, test")
    config = config or SynthConfig()
    library = library or ObjectLibrary.procedural()
    root = _prepare(out)
    bar = tqdm(total=num, desc=f"homae-synth {split}", unit="img", disable=not progress)
    mano = Path(mano_path) if mano_path else None
    written = generate_samples(
        root, list(range(num)), seed, split, config, library, save_sample, workers, mano
    )
    for _ in written:
        bar.update()
    bar.close()
    _write_meta(root, num, seed, split, config, library)
    return root


def write_sequence(
    out: str | Path,
    seed: int,
    num_frames: int = 60,
    fps: float = 15.0,
    config: SynthConfig | None = None,
    library: ObjectLibrary | None = None,
    mano_path: str | Path | None = None,
) -> Path:
    """Write a fixed-camera approach-grasp-lift clip plus camera_info.yaml (same format)."""
    config = config or SynthConfig()
    library = library or ObjectLibrary.procedural()
    root = _prepare(out)
    gen = SceneGenerator(config, library, mano_path)
    frames, K = gen.generate_sequence(seed, num_frames, fps)
    for i, frame in enumerate(frames):
        save_sample(root, i, frame, config.save_depth)
    (root / "camera_info.yaml").write_text(
        camera_info_yaml(K, config.width, config.height), encoding="utf-8"
    )
    stamps = [round(f.stamp, 9) for f in frames]
    _write_meta(root, num_frames, seed, "test", config, library, fps=fps, timestamps=stamps)
    return root


def _prepare(out: str | Path) -> Path:
    root = Path(out)
    for sub in ("rgb", "mask", "ann"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def _write_meta(
    root: Path,
    count: int,
    seed: int,
    split: str,
    config: SynthConfig,
    library: ObjectLibrary,
    fps: float | None = None,
    timestamps: list[float] | None = None,
) -> None:
    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "count": count,
        "image_size": [config.width, config.height],
        "object_names": list(library.names),
        "seed": seed,
        "split": split,
        "splits": {split: [0, count]},
        "sequence": fps is not None,
        "fps": fps,
        "timestamps": timestamps,
        "has_depth": config.save_depth,
        "left_fraction": config.left_fraction,
    }
    if not config.uniform_skin:  # absent: one skin colour (as in the sets made before the key)
        meta["uniform_skin"] = False
    (root / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
