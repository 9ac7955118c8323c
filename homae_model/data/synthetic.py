"""The synthetic hand-object set: its on-disk format and its reader (`SyntheticSource`).

A sample is a right (or, with `SynthConfig.left_fraction`, left) MANO hand grasping (or
touching) one library object (`grasp.py`), seen by a random pinhole camera at 0.35-0.8 m,
with random light, skin tone, procedural background and optional distractor occluders
between the camera and the pair; rendered with the GL renderer (`homae_model.render.gl`).
Sample `i` of split `s` with seed `S` draws all its randomness from
`numpy.random.default_rng(SeedSequence([S, code(s), i]))`, so shards can be generated in
parallel and a sample never depends on another one.

On-disk format (version 1; see docs/data_format.md)::

    DIR/meta.json           {"format": "homae-synth", "version": 1, "count": N,
                             "image_size": [W, H], "object_names": [...], "seed": S,
                             "split": "train", "splits": {"train": [0, N]},
                             "sequence": false, "fps": null, "timestamps": null,
                             "has_depth": false, "left_fraction": 0.0}
    DIR/rgb/NNNNNN.png      RGB image (8-bit, 3 channels)
    DIR/mask/NNNNNN.png     8-bit labels: 0 background, 1 hand, 2 object, 3 distractor
    DIR/ann/NNNNNN.npz      K (3,3) float64, side, mano_pose (48,), mano_shape (10,),
                            mano_transl (3,), hand_joints (21,3), hand_joints_2d (21,2),
                            obj_name, obj_rot (3,), obj_trans (3,), hand_box (4,),
                            obj_box (4,), hand_visible, obj_visible, num_distractors,
                            stamp (s, sequences only), depth (H,W) float32 m (optional)
    DIR/camera_info.yaml    sequences only: ROS CameraInfo fields (width, height, K, D, ...)

Visible fractions are `visible pixels / pixels of the part rendered alone` (two extra id-only
renders). Boxes are the tight boxes of the projected mesh vertices, clipped to the image.

Modules around it: `synth_scene` (the scene generator), `synth_writer` (writes a set or a clip
in this format, in parallel workers through `synth_workers`), `npz` (the annotation files).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from homae_model.data.npz import read_npz
from homae_model.data.schema import RawSample
from homae_model.objects.library import ObjectLibrary

FORMAT_NAME = "homae-synth"
FORMAT_VERSION = 1
SPLIT_CODES: dict[str, int] = {"train": 0, "val": 1, "test": 2, "sequence": 3}
"""Split name -> code mixed into every sample's seed."""

ANN_ARRAYS: tuple[str, ...] = (
    "K",
    "mano_pose",
    "mano_shape",
    "mano_transl",
    "hand_joints",
    "hand_joints_2d",
    "obj_rot",
    "obj_trans",
    "hand_box",
    "obj_box",
)
"""Array fields of RawSample stored in each ann/NNNNNN.npz."""

CAMERA_FRAME = "camera_color_optical_frame"
"""frame_id written to a clip's camera_info.yaml (REP-103 optical frame)."""


def sample_name(index: int) -> str:
    """File stem of sample `index` (six digits)."""
    return f"{index:06d}"


def sample_seed(seed: int, split: str, index: int) -> np.random.SeedSequence:
    """The seed sequence of one sample: (set seed, split code, index), independent of others.

    Raises:
        ValueError: unknown split (the valid ones are listed).
    """
    if split not in SPLIT_CODES:
        raise ValueError(f"unknown split {split!r}; valid: {sorted(SPLIT_CODES)}")
    return np.random.SeedSequence([int(seed), SPLIT_CODES[split], int(index)])


def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator of one sample (independent of every other sample)."""
    return np.random.default_rng(sample_seed(seed, split, index))


# ------------------------------------------------------------------ reader


@dataclass
class SyntheticSequenceInfo:
    """Timing of a `--sequence` set: fps and per-frame timestamps (s)."""

    fps: float
    timestamps: list[float]


class SyntheticSource:
    """Reads a set written by `homae-synth` (`write_dataset`) as RawSamples.

    Args:
        root: the set's folder (holding meta.json).
        library: object library to check names against; default: the names in meta.json.
        load_masks: also read mask/NNNNNN.png into `RawSample.masks`.

    Raises:
        FileNotFoundError: naming meta.json when it is missing.
        ValueError: naming meta.json when it is malformed or of another format/version.
    """

    def __init__(
        self, root: str | Path, library: ObjectLibrary | None = None, load_masks: bool = True
    ) -> None:
        self.root = Path(root)
        meta_path = self.root / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"synthetic set has no meta.json: {meta_path}")
        try:
            self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
            count = int(self.meta["count"])
            names = list(self.meta["object_names"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"malformed {meta_path}: {err}") from err
        if self.meta.get("format") != FORMAT_NAME or self.meta.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"{meta_path}: expected format {FORMAT_NAME!r} version {FORMAT_VERSION}, got "
                f"{self.meta.get('format')!r} version {self.meta.get('version')!r}"
            )
        self.count = count
        self.object_names = names if library is None else list(library.names)
        self.load_masks = load_masks
        self.sequence = (
            SyntheticSequenceInfo(float(self.meta["fps"]), list(self.meta["timestamps"]))
            if self.meta.get("sequence")
            else None
        )

    def __len__(self) -> int:
        return self.count

    def paths(self, index: int) -> tuple[Path, Path, Path]:
        """(rgb, mask, ann) paths of sample `index`."""
        stem = sample_name(index)
        return (
            self.root / "rgb" / f"{stem}.png",
            self.root / "mask" / f"{stem}.png",
            self.root / "ann" / f"{stem}.npz",
        )

    def annotation(self, index: int) -> dict[str, np.ndarray]:
        """The raw arrays of ann/NNNNNN.npz (includes `depth` when the set has it)."""
        return read_npz(self.paths(index)[2])

    def __getitem__(self, index: int) -> RawSample:
        """Sample `index` as a validated RawSample; `source` is its annotation file.

        Raises:
            IndexError: index out of range.
            FileNotFoundError: naming the missing image, mask or annotation file.
            ValueError: naming the file for a truncated npz, a NaN/invalid label or an
                unknown object name.
        """
        if not -self.count <= index < self.count:
            raise IndexError(f"index {index} out of range for {self.count} samples in {self.root}")
        index %= self.count
        rgb_path, mask_path, ann_path = self.paths(index)
        ann = read_npz(ann_path)
        missing = [k for k in (*ANN_ARRAYS, "obj_name") if k not in ann]
        if missing:
            raise ValueError(f"annotation file {ann_path} lacks fields {missing}")
        obj_name = str(ann["obj_name"])
        if obj_name not in self.object_names:
            raise ValueError(
                f"annotation file {ann_path}: unknown object name {obj_name!r}; "
                f"valid names: {', '.join(self.object_names)}"
            )
        image = cv2.imread(str(rgb_path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"image missing or unreadable: {rgb_path}")
        masks = None
        if self.load_masks:
            masks = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
            if masks is None:
                raise FileNotFoundError(f"mask missing or unreadable: {mask_path}")
        sample = RawSample(
            image=np.ascontiguousarray(image[..., ::-1]),
            side=str(ann.get("side", "right")),
            obj_name=obj_name,
            hand_visible=float(ann.get("hand_visible", 1.0)),
            obj_visible=float(ann.get("obj_visible", 1.0)),
            masks=masks,
            source=str(ann_path),
            **{k: np.asarray(ann[k], dtype=np.float64) for k in ANN_ARRAYS},
        )
        return sample.validate()
