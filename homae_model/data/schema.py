"""The raw sample every data source yields: a full image, its intrinsics and the labels.

`RawSample` is the one record passed from a data source (synthetic, DexYCB, HO3D) to the
sample pipeline (`homae_model.data.pipeline.SamplePipeline`), which crops and augments it.
All 3D labels are in the full-image camera optical frame (x right, y down, z forward), metres;
all 2D labels and boxes are in full-image pixels (pixel centres at integer coordinates).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HAND_SIDES: tuple[str, ...] = ("right", "left")
"""Valid values of `RawSample.side`."""

MASK_LABELS: dict[str, int] = {"background": 0, "hand": 1, "object": 2, "distractor": 3}
"""Values of `RawSample.masks`."""

_ARRAY_SHAPES: dict[str, tuple[int, ...]] = {
    "K": (3, 3),
    "mano_pose": (48,),
    "mano_shape": (10,),
    "mano_transl": (3,),
    "hand_joints": (21, 3),
    "hand_joints_2d": (21, 2),
    "obj_rot": (3,),
    "obj_trans": (3,),
    "hand_box": (4,),
    "obj_box": (4,),
}


@dataclass
class RawSample:
    """One full-image sample with its labels, before cropping.

    Attributes:
        image: (H, W, 3) uint8 RGB image.
        K: (3, 3) float64 full-image pinhole intrinsics (fx, fy > 0).
        side: "right" or "left" hand.
        mano_pose: (48,) axis-angle, global orientation first, then 15 joints in MANO's
            internal order, full (no PCA), flat hand mean.
        mano_shape: (10,) MANO shape coefficients.
        mano_transl: (3,) MANO translation such that `ManoLayer(pose, shape, transl)` gives the
            camera-frame mesh (metres).
        hand_joints: (21, 3) camera-frame joints in metres, project joint order.
        hand_joints_2d: (21, 2) full-image pixel coordinates of the joints.
        obj_name: object library name, e.g. "006_mustard_bottle".
        obj_rot: (3,) axis-angle, `X_cam = R(obj_rot) @ X_obj + obj_trans`.
        obj_trans: (3,) object translation in metres, camera frame.
        hand_box: (4,) hand box `(x_min, y_min, x_max, y_max)` in full-image pixels.
        obj_box: (4,) object box in full-image pixels.
        hand_visible: visible fraction of the hand in [0, 1] (1.0 when unknown).
        obj_visible: visible fraction of the object in [0, 1] (1.0 when unknown).
        masks: (H, W) uint8 label image (0 background, 1 hand, 2 object, 3 distractor) or None.
        source: the file (or file + frame) the sample came from, used in error messages.
    """

    image: np.ndarray
    K: np.ndarray
    side: str
    mano_pose: np.ndarray
    mano_shape: np.ndarray
    mano_transl: np.ndarray
    hand_joints: np.ndarray
    hand_joints_2d: np.ndarray
    obj_name: str
    obj_rot: np.ndarray
    obj_trans: np.ndarray
    hand_box: np.ndarray
    obj_box: np.ndarray
    hand_visible: float = 1.0
    obj_visible: float = 1.0
    masks: np.ndarray | None = None
    source: str = "<unknown>"

    def validate(self, check_image: bool = True) -> RawSample:
        """Check shapes, dtypes, finiteness and value ranges of every field.

        Args:
            check_image: also check the image (and mask) arrays; label-only scans of a data set
                may pass False when the image was not loaded.

        Returns:
            self, so that `sample = RawSample(...).validate()` reads naturally.

        Raises:
            ValueError: naming `source` and the offending field, for a wrong shape or dtype,
                NaN/inf values, an unknown side, a non-positive focal length, an empty object
                name, a visibility outside [0, 1] or a degenerate box.
        """
        where = f"sample {self.source!r}"
        if self.side not in HAND_SIDES:
            raise ValueError(
                f"{where}: field 'side' is {self.side!r}, expected one of {HAND_SIDES}"
            )
        if not isinstance(self.obj_name, str) or not self.obj_name:
            raise ValueError(f"{where}: field 'obj_name' must be a non-empty string")
        for name, shape in _ARRAY_SHAPES.items():
            value = np.asarray(getattr(self, name))
            if value.shape != shape:
                raise ValueError(
                    f"{where}: field {name!r} has shape {value.shape}, expected {shape}"
                )
            if not np.issubdtype(value.dtype, np.number):
                raise ValueError(f"{where}: field {name!r} has non-numeric dtype {value.dtype}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{where}: field {name!r} contains NaN or inf values")
        K = np.asarray(self.K)
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise ValueError(
                f"{where}: field 'K' has non-positive focal length {K[0, 0]}, {K[1, 1]}"
            )
        for name in ("hand_box", "obj_box"):
            box = np.asarray(getattr(self, name))
            if box[2] < box[0] or box[3] < box[1]:
                raise ValueError(
                    f"{where}: field {name!r} = {box.tolist()} has x_max < x_min or y_max < y_min"
                )
        for name in ("hand_visible", "obj_visible"):
            value = float(getattr(self, name))
            if not np.isfinite(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{where}: field {name!r} = {value} is outside [0, 1]")
        if check_image:
            image = np.asarray(self.image)
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(
                    f"{where}: field 'image' has shape {image.shape} dtype {image.dtype}, "
                    "expected (H, W, 3) uint8"
                )
            if image.shape[0] == 0 or image.shape[1] == 0:
                raise ValueError(f"{where}: field 'image' is empty, shape {image.shape}")
            if self.masks is not None:
                masks = np.asarray(self.masks)
                if masks.shape != image.shape[:2]:
                    raise ValueError(
                        f"{where}: field 'masks' has shape {masks.shape}, "
                        f"expected {image.shape[:2]} (the image's H, W)"
                    )
        return self
