"""DexYCB reader: the dataset's own folder layout -> RawSample.

Layout (as released):

    <root>/<subject>/<sequence>/meta.yml              ycb_ids, ycb_grasp_ind, mano_sides,
                                                      mano_calib, num_frames
    <root>/<subject>/<sequence>/<serial>/color_NNNNNN.jpg
    <root>/<subject>/<sequence>/<serial>/labels_NNNNNN.npz
        seg (480, 640) uint8 (0 background, 255 hand, else the YCB class id), pose_y
        (n_obj, 3, 4) object-to-camera [R | t] (m), pose_m (1, 51) MANO: 3 global + 45 PCA
        coefficients + 3 translation (m), joint_3d (1, 21, 3) m, joint_2d (1, 21, 2) px
        (all -1 when the frame has no hand annotation)
    <root>/calibration/intrinsics/<serial>_640x480.yml color: fx, fy, ppx, ppy
    <root>/calibration/mano_<calib>/mano.yml           betas (10)
    <root>/models/<ycb name>/textured_simple.obj

Splits follow the DexYCB toolkit (`dex_ycb_toolkit/dex_ycb.py`), setup "s0" (seen subjects,
views and objects): train = all 10 subjects, sequences whose index i (0..99, sorted) has
i % 5 != 4; val = subjects 1-2, i % 5 == 4; test = subjects 3-10, i % 5 == 4; all 8 cameras and
every frame. `hands="right"` keeps right-hand sequences only (the setting of HOISDF / HFL-Net),
"both" keeps left hands too (the pipeline mirrors them). Frames without a hand label are
reported by `scan` ("no hand annotation"), never silently used.

MANO: DexYCB stores 45 PCA coefficients of MANO's `hands_components` with
`flat_hand_mean=False` (the toolkit's manopth layer, use_pca=True, ncomps=45). The project's
flat-mean full pose is `[global (3), hands_mean + coeffs @ hands_components]`, read from the
user's (converted) MANO files `MANO_RIGHT.pkl` / `MANO_LEFT.pkl` in `mano_dir`. If only the
right file exists, the left components are its mirror (y and z of every joint negated), which
is how MANO's left model relates to the right one. `joint_3d` is already in the project joint
order (manopth joints reordered to wrist, thumb, index, middle, ring, pinky).
"""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from homae_model.data.schema import RawSample
from homae_model.data.transforms import mirror_axis_angle

SUBJECTS: tuple[str, ...] = (
    "20200709-subject-01",
    "20200813-subject-02",
    "20200820-subject-03",
    "20200903-subject-04",
    "20200908-subject-05",
    "20200918-subject-06",
    "20200928-subject-07",
    "20201002-subject-08",
    "20201015-subject-09",
    "20201022-subject-10",
)
SERIALS: tuple[str, ...] = (
    "836212060125",
    "839512060362",
    "840412060917",
    "841412060263",
    "932122060857",
    "932122060861",
    "932122061900",
    "932122062010",
)
YCB_CLASSES: dict[int, str] = {
    1: "002_master_chef_can",
    2: "003_cracker_box",
    3: "004_sugar_box",
    4: "005_tomato_soup_can",
    5: "006_mustard_bottle",
    6: "007_tuna_fish_can",
    7: "008_pudding_box",
    8: "009_gelatin_box",
    9: "010_potted_meat_can",
    10: "011_banana",
    11: "019_pitcher_base",
    12: "021_bleach_cleanser",
    13: "024_bowl",
    14: "025_mug",
    15: "035_power_drill",
    16: "036_wood_block",
    17: "037_scissors",
    18: "040_large_marker",
    19: "051_large_clamp",
    20: "052_extra_large_clamp",
    21: "061_foam_brick",
}
SEG_HAND: int = 255
"""Hand label in DexYCB's `seg` images (objects carry their YCB class id)."""

# (subject indices, sequence selector) per (setup, split); all serials.
_S0_SPLITS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "train": (tuple(range(10)), tuple(i for i in range(100) if i % 5 != 4)),
    "val": ((0, 1), tuple(i for i in range(100) if i % 5 == 4)),
    "test": (tuple(range(2, 10)), tuple(i for i in range(100) if i % 5 == 4)),
}


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"DexYCB file not found: {path}")
    with open(path) as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping")
    return data


def load_mano_pca(mano_dir: str | Path, side: str) -> tuple[np.ndarray, np.ndarray]:
    """MANO's pose PCA basis for one side, from the user's (converted) MANO pickle.

    Args:
        mano_dir: a folder with MANO_RIGHT.pkl (and MANO_LEFT.pkl), or the MANO_RIGHT.pkl file.
        side: "right" or "left".

    Returns:
        `(hands_components (45, 45), hands_mean (45,))`, rows of the first are components.
    """
    mano_dir = Path(mano_dir)
    folder = mano_dir.parent if mano_dir.is_file() else mano_dir
    path = folder / f"MANO_{side.upper()}.pkl"
    mirror = False
    if not path.is_file() and side == "left":
        path, mirror = folder / "MANO_RIGHT.pkl", True
    if not path.is_file():
        raise FileNotFoundError(f"MANO model file not found: {path}")
    try:
        with open(path, "rb") as f:
            model = pickle.load(f, encoding="latin1")
        comps = np.asarray(model["hands_components"], dtype=np.float64)
        mean = np.asarray(model["hands_mean"], dtype=np.float64).reshape(45)
    except (pickle.UnpicklingError, EOFError, KeyError, ModuleNotFoundError) as err:
        raise ValueError(f"{path}: not a usable MANO pickle ({err!r}); convert it first") from err
    if comps.shape != (45, 45):
        raise ValueError(f"{path}: hands_components has shape {comps.shape}, expected (45, 45)")
    if mirror:
        comps = mirror_axis_angle(comps.reshape(45, 15, 3)).reshape(45, 45)
        mean = mirror_axis_angle(mean.reshape(15, 3)).reshape(45)
    return comps, mean


def pca_to_flat_pose(pose_m: np.ndarray, comps: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """DexYCB `pose_m[:48]` (global + 45 PCA coefficients) -> the project's flat-mean 48 pose."""
    pose_m = np.asarray(pose_m, dtype=np.float64).reshape(-1)
    return np.concatenate([pose_m[:3], mean + pose_m[3:48] @ comps])


@dataclass(frozen=True)
class _Sequence:
    name: str  # "<subject>/<sequence>"
    side: str
    ycb_ids: tuple[int, ...]
    grasp_ind: int
    betas: np.ndarray
    num_frames: int


class DexYCBSource:
    """DexYCB samples of one split as RawSamples.

    Args:
        root: the DexYCB folder (`DEX_YCB_DIR`).
        split: "train", "val" or "test".
        setup: "s0" (the split the papers use).
        hands: "right" (right-hand sequences only) or "both".
        mano_dir: folder with the converted MANO_RIGHT.pkl / MANO_LEFT.pkl (for the PCA basis).
        objects: optional ObjectLibrary for object corners; default: the models in root/models.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "test",
        setup: str = "s0",
        hands: str = "right",
        mano_dir: str | Path | None = None,
        objects=None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"DexYCB root folder not found: {self.root}")
        if setup != "s0":
            raise ValueError(f"setup {setup!r} is not supported; valid: ['s0']")
        if split not in _S0_SPLITS:
            raise ValueError(f"split {split!r} is not valid; valid: {sorted(_S0_SPLITS)}")
        if hands not in ("right", "both"):
            raise ValueError(f"hands {hands!r} is not valid; valid: ['right', 'both']")
        if mano_dir is None:
            raise ValueError(
                "mano_dir is required: the folder holding the converted MANO_RIGHT.pkl"
            )
        self.split, self.setup, self.hands = split, setup, hands
        self.mano_dir = Path(mano_dir)
        self._objects = objects
        self._corners: dict[str, np.ndarray] = {}
        self._pca: dict[str, tuple[np.ndarray, np.ndarray]] = {}

        subjects, seq_ind = _S0_SPLITS[split]
        self.intrinsics = {s: self._read_intrinsics(s) for s in SERIALS}
        self.sequences: list[_Sequence] = []
        index: list[tuple[int, int, int]] = []
        for subject_i in subjects:
            subject_dir = self.root / SUBJECTS[subject_i]
            if not subject_dir.is_dir():
                raise FileNotFoundError(f"DexYCB subject folder not found: {subject_dir}")
            names = sorted(p.name for p in subject_dir.iterdir() if p.is_dir())
            if len(names) != 100:
                raise ValueError(f"{subject_dir}: expected 100 sequences, found {len(names)}")
            for i in seq_ind:
                seq = self._read_sequence(f"{SUBJECTS[subject_i]}/{names[i]}")
                if hands == "right" and seq.side != "right":
                    continue
                self.sequences.append(seq)
                s = len(self.sequences) - 1
                index += [(s, c, f) for c in range(len(SERIALS)) for f in range(seq.num_frames)]
        self.index = np.asarray(index, dtype=np.int64).reshape(-1, 3)

    # ------------------------------------------------------------------ metadata

    def _read_intrinsics(self, serial: str) -> np.ndarray:
        path = self.root / "calibration" / "intrinsics" / f"{serial}_640x480.yml"
        data = _read_yaml(path)
        try:
            c = data["color"]
            K = np.array([[c["fx"], 0, c["ppx"]], [0, c["fy"], c["ppy"]], [0, 0, 1]], np.float64)
        except (KeyError, TypeError) as err:
            raise ValueError(f"{path}: missing color fx/fy/ppx/ppy ({err!r})") from err
        return K

    def _read_sequence(self, name: str) -> _Sequence:
        path = self.root / name / "meta.yml"
        meta = _read_yaml(path)
        try:
            side = str(meta["mano_sides"][0])
            calib = meta["mano_calib"][0]
            seq = _Sequence(
                name=name,
                side=side,
                ycb_ids=tuple(int(i) for i in meta["ycb_ids"]),
                grasp_ind=int(meta["ycb_grasp_ind"]),
                betas=np.asarray(
                    _read_yaml(self.root / "calibration" / f"mano_{calib}" / "mano.yml")["betas"],
                    dtype=np.float64,
                ),
                num_frames=int(meta["num_frames"]),
            )
        except (KeyError, IndexError, TypeError) as err:
            raise ValueError(f"{path}: missing or malformed field ({err!r})") from err
        if side not in ("right", "left"):
            raise ValueError(f"{path}: mano_sides[0] is {side!r}, expected 'right' or 'left'")
        if seq.betas.shape != (10,):
            raise ValueError(
                f"mano.yml of {path}: betas has shape {seq.betas.shape}, expected (10,)"
            )
        return seq

    def pca_basis(self, side: str) -> tuple[np.ndarray, np.ndarray]:
        """Cached MANO PCA basis for a side."""
        if side not in self._pca:
            self._pca[side] = load_mano_pca(self.mano_dir, side)
        return self._pca[side]

    def corners(self, name: str) -> np.ndarray:
        """(8, 3) object-frame bbox corners of a YCB object (from the library or the OBJ file)."""
        if name not in self._corners:
            if self._objects is None:
                from homae_model.objects.library import ObjectLibrary

                self._corners[name] = (
                    ObjectLibrary.from_ycb(self.root / "models", [name]).get(name).corners
                )
            else:
                self._corners[name] = self._objects.get(name).corners
        return self._corners[name]

    # ------------------------------------------------------------------ samples

    def __len__(self) -> int:
        return len(self.index)

    def paths(self, index: int) -> tuple[Path, Path]:
        """`(color_file, label_file)` of a sample."""
        s, c, f = self.index[index]
        folder = self.root / self.sequences[s].name / SERIALS[c]
        return folder / f"color_{f:06d}.jpg", folder / f"labels_{f:06d}.npz"

    def __getitem__(self, index: int) -> RawSample:
        return self.load(index, image=True)

    def load(self, index: int, image: bool = True) -> RawSample:
        """Read one sample.

        Args:
            index: sample index.
            image: False reads the labels only (the image is an empty (0, 0, 3) array).

        Raises:
            FileNotFoundError: naming a missing image or label file.
            ValueError: naming the file for a truncated/unreadable file, missing keys, a frame
                without a hand label, NaN labels or an unknown YCB id.
        """
        if not 0 <= index < len(self.index):
            raise IndexError(f"sample index {index} out of range [0, {len(self.index)})")
        s, c, _ = (int(x) for x in self.index[index])
        seq = self.sequences[s]
        color_file, label_file = self.paths(index)
        source = str(label_file)
        if not label_file.is_file():
            raise FileNotFoundError(f"DexYCB label file not found: {label_file}")
        try:
            with np.load(label_file) as npz:
                labels = {
                    k: np.asarray(npz[k])
                    for k in ("seg", "pose_y", "pose_m", "joint_3d", "joint_2d")
                }
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f"{label_file}: unreadable or truncated label file ({err!r})") from err

        for key, value in labels.items():
            if key != "seg" and not np.all(np.isfinite(value)):
                raise ValueError(f"{label_file}: field {key!r} contains NaN or inf values")
        joint_3d = labels["joint_3d"].reshape(21, 3).astype(np.float64)
        joint_2d = labels["joint_2d"].reshape(21, 2).astype(np.float64)
        if np.all(joint_3d == -1):
            raise ValueError(f"{label_file}: no hand annotation in this frame (joint_3d == -1)")
        ycb_id = seq.ycb_ids[seq.grasp_ind]
        if ycb_id not in YCB_CLASSES:
            raise ValueError(f"{label_file}: unknown YCB id {ycb_id}; valid: {sorted(YCB_CLASSES)}")
        obj_name = YCB_CLASSES[ycb_id]
        pose_y = labels["pose_y"].astype(np.float64)
        if pose_y.ndim != 3 or pose_y.shape[1:] != (3, 4) or seq.grasp_ind >= len(pose_y):
            raise ValueError(
                f"{label_file}: pose_y has shape {pose_y.shape}, expected (n_obj, 3, 4)"
            )
        obj_R, obj_t = pose_y[seq.grasp_ind, :, :3], pose_y[seq.grasp_ind, :, 3]
        pose_m = labels["pose_m"].reshape(-1).astype(np.float64)
        if pose_m.shape != (51,):
            raise ValueError(f"{label_file}: pose_m has {pose_m.size} values, expected 51")
        comps, mean = self.pca_basis(seq.side)
        K = self.intrinsics[SERIALS[c]]

        corners = self.corners(obj_name) @ obj_R.T + obj_t
        uv = corners @ K.T
        uv = uv[:, :2] / uv[:, 2:]

        seg = labels["seg"]
        masks = np.zeros(seg.shape, np.uint8)
        masks[(seg > 0) & (seg != SEG_HAND)] = 3
        masks[seg == ycb_id] = 2
        masks[seg == SEG_HAND] = 1

        if image:
            if not color_file.is_file():
                raise FileNotFoundError(f"DexYCB image not found: {color_file}")
            bgr = cv2.imread(str(color_file), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f"{color_file}: unreadable or truncated image")
            rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        else:
            rgb = np.zeros((0, 0, 3), np.uint8)
            masks = None

        sample = RawSample(
            image=rgb,
            K=K.copy(),
            side=seq.side,
            mano_pose=pca_to_flat_pose(pose_m[:48], comps, mean),
            mano_shape=seq.betas.copy(),
            mano_transl=pose_m[48:51].copy(),
            hand_joints=joint_3d,
            hand_joints_2d=joint_2d,
            obj_name=obj_name,
            obj_rot=Rotation.from_matrix(obj_R).as_rotvec(),
            obj_trans=obj_t.copy(),
            hand_box=np.concatenate([joint_2d.min(0), joint_2d.max(0)]),
            obj_box=np.concatenate([uv.min(0), uv.max(0)]),
            masks=masks,
            source=source,
        )
        return sample.validate(check_image=image)
