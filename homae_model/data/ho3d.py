"""HO3D (v2) reader: the dataset's own folder layout -> RawSample (train) / HO3DEvalSample.

Layout (as released):

    <root>/train.txt, <root>/evaluation.txt          lines "<sequence>/<frame>"
    <root>/<split>/<seq>/rgb/<frame>.png             640 x 480 RGB
    <root>/<split>/<seq>/meta/<frame>.pkl            annotations (below)
    <root>/<split>/<seq>/seg/<frame>.jpg             optional: hand red, object blue (any size)

Train annotations: handPose (48) full axis-angle MANO pose with MANO's flat hand mean (HO3D's
own tools load MANO with flat_hand_mean=True and set `fullpose = handPose`), i.e. already the
project convention; handBeta (10); handTrans (3); handJoints3D (21, 3) in MANO's joint order
(wrist, index1-3, middle1-3, pinky1-3, ring1-3, thumb1-3) followed by the fingertips (thumb,
index, middle, ring, pinky); camMat (3, 3); objRot (3,) axis-angle; objTrans (3); objName;
objCorners3D (8, 3). Evaluation annotations carry only handJoints3D = the root joint (3,),
handBoundingBox (4,) plus camMat and the object fields.

HO3D's 3D quantities are in OpenGL camera coordinates (y up, z backward); everything is
converted to OpenCV (x right, y down, z forward) with `GL_TO_CV = diag(1, -1, -1)`, a rotation:
points `X -> GL_TO_CV @ X`, object `R -> GL_TO_CV @ R`, `t -> GL_TO_CV @ t`, MANO global
orientation `R_g -> GL_TO_CV @ R_g` and translation `t -> GL_TO_CV @ (root + t) - root`, where
`root = handJoints3D[wrist] - handTrans` is the shape's rest-pose root joint (MANO rotates about
it; see `transforms.rotate_mano`).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from homae_model.data.schema import RawSample
from homae_model.data.transforms import rotate_mano
from homae_model.hand.constants import MANO_TO_PROJECT

GL_TO_CV: np.ndarray = np.diag([1.0, -1.0, -1.0])
"""OpenGL -> OpenCV camera coordinates (a 180 degree rotation about x)."""

HO3D_TO_PROJECT: tuple[int, ...] = tuple(MANO_TO_PROJECT)
"""`project_joints = ho3d_joints[HO3D_TO_PROJECT]`: HO3D stores MANO's 16 joints + 5 tips."""

SEG_THRESHOLD: int = 200
"""A seg pixel is hand where red > threshold and object where blue > threshold."""

SPLITS: tuple[str, ...] = ("train", "evaluation")


@dataclass
class HO3DEvalSample:
    """An HO3D evaluation frame: no hand pose labels, only the root joint and the hand box.

    Attributes:
        image: (H, W, 3) uint8 RGB (empty (0, 0, 3) when loaded without the image).
        K: (3, 3) intrinsics.
        root_joint: (3,) wrist position, OpenCV camera frame, metres.
        hand_box: (4,) hand box, full-image pixels.
        obj_name: YCB object name.
        obj_rot: (3,) object axis-angle (OpenCV camera frame).
        obj_trans: (3,) object translation, metres.
        obj_box: (4,) box of the projected object corners, pixels.
        source: the annotation file.
    """

    image: np.ndarray
    K: np.ndarray
    root_joint: np.ndarray
    hand_box: np.ndarray
    obj_name: str
    obj_rot: np.ndarray
    obj_trans: np.ndarray
    obj_box: np.ndarray
    source: str

    def validate(self, check_image: bool = True) -> HO3DEvalSample:
        """Check shapes and finiteness; raises ValueError naming `source` and the field."""
        for name, shape in (
            ("K", (3, 3)),
            ("root_joint", (3,)),
            ("hand_box", (4,)),
            ("obj_box", (4,)),
        ):
            value = np.asarray(getattr(self, name))
            if value.shape != shape or not np.all(np.isfinite(value)):
                raise ValueError(
                    f"sample {self.source!r}: field {name!r} must be finite with shape {shape}"
                )
        if check_image and (self.image.ndim != 3 or self.image.size == 0):
            raise ValueError(f"sample {self.source!r}: field 'image' is empty")
        return self


def _project(K: np.ndarray, X: np.ndarray) -> np.ndarray:
    uv = X @ K.T
    return uv[:, :2] / uv[:, 2:]


def _box(uv: np.ndarray) -> np.ndarray:
    return np.concatenate([uv.min(axis=0), uv.max(axis=0)])


def _field(meta: dict, key: str, shape: tuple[int, ...], path: Path) -> np.ndarray:
    if key not in meta or meta[key] is None:
        raise ValueError(f"{path}: annotation {key!r} is missing (frame not annotated?)")
    try:
        value = np.asarray(meta[key], dtype=np.float64).reshape(shape)
    except ValueError as err:
        raise ValueError(
            f"{path}: annotation {key!r} has {np.size(meta[key])} values, expected shape {shape}"
        ) from err
    if not np.all(np.isfinite(value)):
        raise ValueError(f"{path}: annotation {key!r} contains NaN or inf values")
    return value


class HO3DSource:
    """HO3D v2 frames of one split.

    Args:
        root: the HO3D folder (holding train/, evaluation/, train.txt, evaluation.txt).
        split: "train" (RawSample with full labels) or "evaluation" (HO3DEvalSample).
    """

    def __init__(self, root: str | Path, split: str = "train") -> None:
        self.root = Path(root)
        if split not in SPLITS:
            raise ValueError(f"split {split!r} is not valid; valid: {list(SPLITS)}")
        self.split = split
        list_file = self.root / f"{split}.txt"
        if not list_file.is_file():
            raise FileNotFoundError(f"HO3D list file not found: {list_file}")
        names = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
        for line in names:
            if line.count("/") != 1:
                raise ValueError(f"{list_file}: line {line!r} is not '<sequence>/<frame>'")
        self.names = names

    def __len__(self) -> int:
        return len(self.names)

    def paths(self, index: int) -> tuple[Path, Path, Path]:
        """`(rgb, meta, seg)` files of a frame."""
        seq, frame = self.names[index].split("/")
        folder = self.root / self.split / seq
        return (
            folder / "rgb" / f"{frame}.png",
            folder / "meta" / f"{frame}.pkl",
            folder / "seg" / f"{frame}.jpg",
        )

    def __getitem__(self, index: int) -> RawSample | HO3DEvalSample:
        return self.load(index, image=True)

    def _read_meta(self, path: Path) -> dict:
        if not path.is_file():
            raise FileNotFoundError(f"HO3D annotation file not found: {path}")
        try:
            with open(path, "rb") as f:
                meta = pickle.load(f, encoding="latin1")
        except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError) as err:
            raise ValueError(f"{path}: unreadable or truncated annotation file ({err!r})") from err
        if not isinstance(meta, dict):
            raise ValueError(f"{path}: expected a dict of annotations, got {type(meta).__name__}")
        return meta

    def _read_image(self, path: Path) -> np.ndarray:
        if not path.is_file():
            raise FileNotFoundError(f"HO3D image not found: {path}")
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{path}: unreadable or truncated image")
        return np.ascontiguousarray(bgr[:, :, ::-1])

    def _read_masks(self, path: Path, size: tuple[int, int]) -> np.ndarray | None:
        if not path.is_file():
            return None
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{path}: unreadable or truncated segmentation image")
        bgr = cv2.resize(bgr, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
        masks = np.zeros(size, np.uint8)
        masks[bgr[:, :, 0] > SEG_THRESHOLD] = 2  # blue: object
        masks[bgr[:, :, 2] > SEG_THRESHOLD] = 1  # red: hand
        return masks

    def load(self, index: int, image: bool = True) -> RawSample | HO3DEvalSample:
        """Read one frame, converted to OpenCV coordinates and the project joint order.

        Args:
            index: frame index in the split's list.
            image: False reads the annotations only (empty image, no masks).

        Raises:
            FileNotFoundError: naming a missing image or annotation file.
            ValueError: naming the file for a truncated file, a missing/NaN annotation.
        """
        if not 0 <= index < len(self.names):
            raise IndexError(f"frame index {index} out of range [0, {len(self.names)})")
        rgb_path, meta_path, seg_path = self.paths(index)
        meta = self._read_meta(meta_path)
        K = _field(meta, "camMat", (3, 3), meta_path)
        obj_name = meta.get("objName")
        if not isinstance(obj_name, str) or not obj_name:
            raise ValueError(f"{meta_path}: annotation 'objName' is missing")
        obj_R = GL_TO_CV @ Rotation.from_rotvec(_field(meta, "objRot", (3,), meta_path)).as_matrix()
        obj_t = GL_TO_CV @ _field(meta, "objTrans", (3,), meta_path)
        corners = _field(meta, "objCorners3D", (8, 3), meta_path) @ GL_TO_CV.T
        obj_box = _box(_project(K, corners))
        img = self._read_image(rgb_path) if image else np.zeros((0, 0, 3), np.uint8)
        source = str(meta_path)

        if self.split == "evaluation":
            return HO3DEvalSample(
                image=img,
                K=K,
                root_joint=GL_TO_CV @ _field(meta, "handJoints3D", (3,), meta_path),
                hand_box=_field(meta, "handBoundingBox", (4,), meta_path),
                obj_name=obj_name,
                obj_rot=Rotation.from_matrix(obj_R).as_rotvec(),
                obj_trans=obj_t,
                obj_box=obj_box,
                source=source,
            ).validate(check_image=image)

        joints_gl = _field(meta, "handJoints3D", (21, 3), meta_path)
        trans_gl = _field(meta, "handTrans", (3,), meta_path)
        pose, transl = rotate_mano(
            _field(meta, "handPose", (48,), meta_path),
            trans_gl,
            joints_gl[0] - trans_gl,
            GL_TO_CV,
        )
        joints = (joints_gl @ GL_TO_CV.T)[list(HO3D_TO_PROJECT)]
        uv = _project(K, joints)
        return RawSample(
            image=img,
            K=K,
            side="right",
            mano_pose=pose,
            mano_shape=_field(meta, "handBeta", (10,), meta_path),
            mano_transl=transl,
            hand_joints=joints,
            hand_joints_2d=uv,
            obj_name=obj_name,
            obj_rot=Rotation.from_matrix(obj_R).as_rotvec(),
            obj_trans=obj_t,
            hand_box=_box(uv),
            obj_box=obj_box,
            masks=self._read_masks(seg_path, img.shape[:2]) if image else None,
            source=source,
        ).validate(check_image=image)
