"""Synthetic hand-object images: scene generator, on-disk writer and reader.

A sample is a right MANO hand grasping (or touching) one library object (`grasp.py`), seen by
a random pinhole camera at 0.35-0.8 m, with random light, skin tone, procedural background and
optional distractor occluders between the camera and the pair; rendered with the GL renderer
(`homae_model.render.gl`). Sample `i` of split `s` with seed `S` draws all its randomness from
`numpy.random.default_rng(SeedSequence([S, code(s), i]))`, so shards can be generated in
parallel and a sample never depends on another one.

On-disk format (version 1; see docs/data_format.md)::

    DIR/meta.json           {"format": "homae-synth", "version": 1, "count": N,
                             "image_size": [W, H], "object_names": [...], "seed": S,
                             "split": "train", "splits": {"train": [0, N]},
                             "sequence": false, "fps": null, "timestamps": null,
                             "has_depth": false}
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
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from homae_model.data.grasp import GraspSampler, HandGrasp, SurfaceSDF
from homae_model.data.schema import RawSample
from homae_model.geometry.camera import project_points
from homae_model.objects.library import ObjectLibrary
from homae_model.objects.procedural import box, icosphere, split_creases
from homae_model.render.gl import (
    INSTANCE_DISTRACTOR,
    INSTANCE_HAND,
    INSTANCE_OBJECT,
    GLRenderer,
    Light,
    RenderMesh,
    random_background,
)

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


def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator of one sample (independent of every other sample)."""
    if split not in SPLIT_CODES:
        raise ValueError(f"unknown split {split!r}; valid: {sorted(SPLIT_CODES)}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), SPLIT_CODES[split], index]))


# ------------------------------------------------------------------ deterministic npz


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an uncompressed .npz whose bytes depend only on the arrays (fixed zip dates)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


_LOCAL_HEADER = 30
"""Size of a zip local file header before its name and extra field."""


_NPY_MAGIC = b"\x93NUMPY"
_NPY_HEADER = re.compile(
    r"^\{'descr': '([<>|=][a-zA-Z]\d*)', 'fortran_order': (True|False), "
    r"'shape': \(((?:\d+, ?)*\d*)\), \}\s*$"
)


def _parse_npy(data: bytes) -> np.ndarray | None:
    """Parse a plain-dtype .npy held in memory without `ast`.

    The header is the slow part of `np.lib.format.read_array` for small arrays. Returns None
    for anything it does not recognise (the caller then uses numpy's reader, which also gives
    numpy's errors).
    """
    if data[:6] != _NPY_MAGIC or data[6] not in (1, 2, 3):
        return None
    if data[6] == 1:
        hlen, start = int.from_bytes(data[8:10], "little"), 10
    else:
        hlen, start = int.from_bytes(data[8:12], "little"), 12
    match = _NPY_HEADER.match(data[start : start + hlen].decode("latin1"))
    if match is None:
        return None
    dtype = np.dtype(match.group(1))
    if dtype.hasobject:
        return None
    shape = tuple(int(x) for x in match.group(3).replace(" ", "").split(",") if x)
    count = int(np.prod(shape, dtype=np.int64))
    offset = start + hlen
    if offset + count * dtype.itemsize > len(data):
        raise EOFError(f"array data ends early ({len(data) - offset} bytes for shape {shape})")
    order = "F" if match.group(2) == "True" else "C"
    out = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return out.reshape(shape, order=order).copy()


def _stored_member(buf: bytes, info: zipfile.ZipInfo) -> bytes:
    """The bytes of an uncompressed zip member, sliced from the archive held in memory."""
    off = info.header_offset
    if buf[off : off + 4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header for {info.filename}")
    start = off + _LOCAL_HEADER + int.from_bytes(buf[off + 26 : off + 28], "little")
    start += int.from_bytes(buf[off + 28 : off + 30], "little")
    if start + info.file_size > len(buf):
        raise EOFError(f"member {info.filename} runs past the end of the file")
    return buf[start : start + info.file_size]


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Read an .npz fully; errors name the file (missing, truncated or corrupt).

    The file is read once into memory and its (uncompressed, as `write_npz` writes them)
    members are sliced out and their .npy headers parsed with a regular expression, several
    times faster than `np.load` member by member; compressed members and unusual headers go
    through zipfile and numpy's reader.
    """
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    try:
        buf = path.read_bytes()
        out = {}
        with zipfile.ZipFile(io.BytesIO(buf)) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                if info.compress_type == zipfile.ZIP_STORED:
                    data = _stored_member(buf, info)
                    array = _parse_npy(data)
                    if array is None:
                        array = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
                else:
                    array = np.lib.format.read_array(zf.open(info), allow_pickle=False)
                out[info.filename[:-4]] = array
        return out
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise ValueError(f"annotation file {path} is truncated or corrupt: {err}") from err


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


# ------------------------------------------------------------------ generator

DEFAULT_MANO_PATH = Path(__file__).resolve().parents[1] / "assets" / "hand" / "MANO_RIGHT.pkl"
"""The project's bundled MANO-format hand (see MANOConfig.model_path)."""

SKIN_TONES = np.array(
    [
        [0.96, 0.80, 0.69],
        [0.92, 0.74, 0.62],
        [0.85, 0.64, 0.52],
        [0.76, 0.56, 0.43],
        [0.64, 0.45, 0.33],
        [0.52, 0.36, 0.26],
        [0.40, 0.27, 0.19],
        [0.30, 0.20, 0.14],
    ]
)
"""RGB skin tones in [0, 1], light to dark."""


@dataclass
class SynthConfig:
    """Scene randomisation of the synthetic generator.

    Attributes:
        width: image width W (px).
        height: image height H (px).
        focal_range: focal length range (px) for a 640 x 480 image; scaled by
            min(W / 640, H / 480) for other sizes.
        depth_range: distance (m) of the hand-object pair centre from the camera.
        centre_jitter: pair centre offset from the image centre, fraction of W and H.
        distractor_prob: probability of 1-2 occluders between camera and pair.
        noise_std: largest std of the additive Gaussian pixel noise (8-bit levels).
        save_depth: store the depth map (float32 m) in the npz files.
    """

    width: int = 256
    height: int = 256
    focal_range: tuple[float, float] = (500.0, 700.0)
    depth_range: tuple[float, float] = (0.35, 0.8)
    centre_jitter: float = 0.12
    distractor_prob: float = 0.4
    noise_std: float = 3.0
    save_depth: bool = False


@dataclass
class SynthSample:
    """One generated sample.

    Attributes:
        raw: the RawSample (with masks); `source` names the generator and index.
        depth: (H, W) float32 camera-frame depth, metres, 0 on background.
        hand_vertices: (778, 3) camera-frame hand mesh, metres.
        num_distractors: occluders in the image.
        stamp: time of the frame in seconds (sequences), else 0.
    """

    raw: RawSample
    depth: np.ndarray
    hand_vertices: np.ndarray
    num_distractors: int = 0
    stamp: float = 0.0


@dataclass
class _Look:
    """Per-sample appearance: colours, light, background, sensor noise."""

    skin: np.ndarray
    skin_noise: np.ndarray
    obj_gain: float
    light: Light
    background: np.ndarray
    noise_std: float


def _project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(N, 3) camera-frame points -> (N, 2) pixels (see geometry.camera.project_points)."""
    return project_points(points, K)


def _box(uv: np.ndarray, width: int, height: int) -> np.ndarray:
    """Tight box of projected points clipped to the image, (4,) float64."""
    lo = np.clip(uv.min(axis=0), 0.0, [width - 1.0, height - 1.0])
    hi = np.clip(uv.max(axis=0), 0.0, [width - 1.0, height - 1.0])
    return np.array([lo[0], lo[1], hi[0], hi[1]], dtype=np.float64)


class SceneGenerator:
    """Generates synthetic samples (and sequences) of a right hand grasping an object.

    Args:
        config: scene randomisation and image size.
        library: objects to grasp; default `ObjectLibrary.procedural()`.
        mano_path: MANO-format model file; default the bundled synthetic hand.
        mano: an already built ManoLayer (overrides `mano_path`).
    """

    def __init__(
        self,
        config: SynthConfig | None = None,
        library: ObjectLibrary | None = None,
        mano_path: str | Path | None = None,
        mano: torch.nn.Module | None = None,
    ) -> None:
        self.config = config or SynthConfig()
        self.library = library or ObjectLibrary.procedural()
        self.mano_path = Path(mano_path) if mano_path else DEFAULT_MANO_PATH
        self._mano = mano
        self._renderer: GLRenderer | None = None
        self._sdf: dict[str, SurfaceSDF] = {}
        self._parts: dict[str, tuple[np.ndarray, ...]] = {}

    @property
    def mano(self) -> torch.nn.Module:
        """The MANO layer (built on first use)."""
        if self._mano is None:
            from homae_model.hand.mano import ManoLayer

            if not self.mano_path.is_file():
                raise FileNotFoundError(f"MANO model file not found: {self.mano_path}")
            self._mano = ManoLayer(str(self.mano_path))
            self._mano.eval()
        return self._mano

    @property
    def renderer(self) -> GLRenderer:
        """The GL renderer (EGL context created on first use, in this process)."""
        if self._renderer is None:
            self._renderer = GLRenderer(self.config.width, self.config.height)
        return self._renderer

    def _object_parts(self, name: str) -> tuple[np.ndarray, ...]:
        if name not in self._parts:
            mesh = self.library.get(name)
            self._parts[name] = split_creases(mesh.vertices, mesh.faces, 40.0, mesh.vertex_colors)
            self._sdf[name] = SurfaceSDF(mesh)
        return self._parts[name]

    def sample_camera(self, rng: np.random.Generator) -> np.ndarray:
        """Random intrinsics K (3, 3) for the configured image size."""
        cfg = self.config
        scale = min(cfg.width / 640.0, cfg.height / 480.0)
        f = rng.uniform(*cfg.focal_range) * scale
        cx = (cfg.width - 1) / 2.0 + rng.normal(0.0, 0.015 * cfg.width)
        cy = (cfg.height - 1) / 2.0 + rng.normal(0.0, 0.015 * cfg.height)
        return np.array([[f, 0.0, cx], [0.0, f * rng.uniform(0.995, 1.005), cy], [0, 0, 1.0]])

    def _appearance(self, rng: np.random.Generator) -> _Look:
        cfg = self.config
        tone = rng.uniform(0, len(SKIN_TONES) - 1)
        lo = int(np.floor(tone))
        skin = SKIN_TONES[lo] + (tone - lo) * (SKIN_TONES[min(lo + 1, 7)] - SKIN_TONES[lo])
        skin = np.clip(skin * rng.uniform(0.9, 1.08) + rng.normal(0, 0.02, 3), 0, 1)
        direction = np.array([rng.uniform(-1, 1), rng.uniform(-1, 0.4), -rng.uniform(0.2, 1.0)])
        light = Light(
            direction=direction / np.linalg.norm(direction),
            ambient=rng.uniform(0.25, 0.5),
            diffuse=rng.uniform(0.5, 0.85),
            color=np.clip(1.0 + rng.normal(0, 0.05, 3), 0.85, 1.1),
        )
        return _Look(
            skin=skin,
            skin_noise=1.0 + rng.normal(0.0, 0.025, (778, 1)),
            obj_gain=rng.uniform(0.85, 1.1),
            light=light,
            background=random_background(rng, cfg.height, cfg.width),
            noise_std=rng.uniform(0.0, cfg.noise_std),
        )

    def _place(
        self, grasp: HandGrasp, obj_vertices: np.ndarray, K: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Random view (R, T): camera = R @ hand_frame + T, pair in view at depth_range."""
        cfg = self.config
        obj_pts = obj_vertices @ grasp.obj_R.T + grasp.obj_t
        centre = 0.5 * (grasp.vertices.mean(axis=0) + grasp.obj_t)
        best = None
        for _ in range(20):
            R = Rotation.random(random_state=rng).as_matrix()
            z = rng.uniform(*cfg.depth_range)
            uv = np.array(
                [
                    (cfg.width - 1) / 2 * (1 + rng.uniform(-1, 1) * 2 * cfg.centre_jitter),
                    (cfg.height - 1) / 2 * (1 + rng.uniform(-1, 1) * 2 * cfg.centre_jitter),
                    1.0,
                ]
            )
            T = z * np.linalg.solve(K, uv) - R @ centre
            score = min(
                self._inside(grasp.vertices @ R.T + T, K), self._inside(obj_pts @ R.T + T, K)
            )
            if best is None or score > best[0]:
                best = (score, R, T)
            if score >= 0.97:
                break
        assert best is not None
        return best[1], best[2]

    def _inside(self, points: np.ndarray, K: np.ndarray) -> float:
        if np.any(points[:, 2] < 0.1):
            return 0.0
        uv = _project(points, K)
        ok = (uv[:, 0] >= 0) & (uv[:, 0] <= self.config.width - 1)
        ok &= (uv[:, 1] >= 0) & (uv[:, 1] <= self.config.height - 1)
        return float(ok.mean())

    def _distractors(
        self, rng: np.random.Generator, targets: np.ndarray, count: int
    ) -> list[RenderMesh]:
        """`count` boxes/spheres on the rays to random points of the hand/object."""
        meshes = []
        for k in range(count):
            point = targets[rng.integers(len(targets))]
            frac = rng.uniform(0.45, 0.8)
            gap = (1.0 - frac) * point[2]
            size = min(rng.uniform(0.02, 0.05), 0.45 * gap)
            centre = point * frac + rng.normal(0.0, 0.3 * size, 3) * [1, 1, 0]
            R = Rotation.random(random_state=rng).as_matrix()
            color = rng.random(3) * rng.uniform(0.3, 1.0)
            if rng.random() < 0.5:  # a box with crisp edges
                v, f = box(tuple(size * rng.uniform(0.8, 2.0, 3)), 2)
                v, f, normals, _ = split_creases(v, f, 40.0)
            else:  # a smooth sphere
                v, f = icosphere(size, 2)
                normals = v / size
            meshes.append(
                RenderMesh(
                    v @ R.T + centre, f, color, INSTANCE_DISTRACTOR + k, normals=normals @ R.T,
                    specular=0.1,
                )
            )  # fmt: skip
        return meshes

    def _mano_camera(
        self, pose: np.ndarray, shape: np.ndarray, transl: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            out = self.mano(
                torch.as_tensor(pose[None], dtype=torch.float32),
                torch.as_tensor(shape[None], dtype=torch.float32),
                torch.as_tensor(transl[None], dtype=torch.float32),
            )
        return out.vertices[0].double().numpy(), out.joints[0].double().numpy()

    def _global_params(
        self, grasp: HandGrasp, pose: np.ndarray, R: np.ndarray, T: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """MANO (pose, transl) putting the hand-frame mesh at `R @ x + T` (camera frame).

        MANO rotates about the rest wrist joint J0: `x_cam = R (x - J0) + J0 + transl`.
        """
        full = pose.copy()
        full[:3] = Rotation.from_matrix(R).as_rotvec()
        j0 = grasp.joints[0]
        return full, T + R @ j0 - j0

    def _compose(
        self,
        pose: np.ndarray,
        shape: np.ndarray,
        transl: np.ndarray,
        obj_name: str,
        obj_R: np.ndarray,
        obj_t: np.ndarray,
        K: np.ndarray,
        look: _Look,
        distractors: list[RenderMesh],
        rng_noise: np.random.Generator,
        source: str,
        stamp: float = 0.0,
    ) -> SynthSample:
        """Render one frame and assemble its labels."""
        cfg = self.config
        verts, joints = self._mano_camera(pose, shape, transl)
        faces = np.asarray(self.mano.faces, dtype=np.int64)
        hand = RenderMesh(
            verts,
            faces,
            look.skin,
            INSTANCE_HAND,
            vertex_colors=np.clip(look.skin * look.skin_noise, 0, 1),
            specular=0.08,
        )
        ov, of, on, oc = self._object_parts(obj_name)
        mesh = self.library.get(obj_name)
        colors = oc if oc is not None else np.broadcast_to(mesh.color, ov.shape)
        obj = RenderMesh(
            ov @ obj_R.T + obj_t,
            of,
            mesh.color,
            INSTANCE_OBJECT,
            normals=on @ obj_R.T,
            vertex_colors=np.clip(colors * look.obj_gain, 0, 1),
            specular=0.25,
        )
        renderer = self.renderer
        full = renderer.render([hand, obj, *distractors], K, look.background, look.light)
        hand_alone = renderer.render([hand], K, read_color=False).ids
        obj_alone = renderer.render([obj], K, read_color=False).ids
        n_hand, n_obj = int((hand_alone == 1).sum()), int((obj_alone == 2).sum())
        hand_vis = float((full.ids == 1).sum()) / n_hand if n_hand else 0.0
        obj_vis = float((full.ids == 2).sum()) / n_obj if n_obj else 0.0
        image = full.rgb.astype(np.float32)
        if look.noise_std > 0:
            image += rng_noise.normal(0.0, look.noise_std, image.shape).astype(np.float32)
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        masks = np.minimum(full.ids, INSTANCE_DISTRACTOR).astype(np.uint8)
        raw = RawSample(
            image=image,
            K=K,
            side="right",
            mano_pose=pose,
            mano_shape=shape,
            mano_transl=transl,
            hand_joints=joints,
            hand_joints_2d=_project(joints, K),
            obj_name=obj_name,
            obj_rot=Rotation.from_matrix(obj_R).as_rotvec(),
            obj_trans=obj_t,
            hand_box=_box(_project(verts, K), cfg.width, cfg.height),
            obj_box=_box(_project(obj.vertices, K), cfg.width, cfg.height),
            hand_visible=min(hand_vis, 1.0),
            obj_visible=min(obj_vis, 1.0),
            masks=masks,
            source=source,
        )
        return SynthSample(raw, full.depth, verts, len(distractors), stamp)

    def generate(
        self, index: int, seed: int, split: str = "train", distractors: bool | None = None
    ) -> SynthSample:
        """Generate sample `index` of (seed, split); the result depends on nothing else.

        Args:
            index: sample index.
            seed: data set seed.
            split: "train", "val" or "test" (mixed into the seed).
            distractors: force occluders on (True) or off (False); None draws them with
                `config.distractor_prob`. Everything else is unchanged by this flag.

        Returns:
            the sample (RawSample + depth + camera-frame hand mesh).
        """
        if split not in SPLIT_CODES:
            raise ValueError(f"unknown split {split!r}; valid: {sorted(SPLIT_CODES)}")
        seq = np.random.SeedSequence([int(seed), SPLIT_CODES[split], int(index)])
        rng_grasp, rng_view, rng_look, rng_occ, rng_noise = (
            np.random.default_rng(s) for s in seq.spawn(5)
        )
        with _single_thread():
            name = self.library.names[int(rng_grasp.integers(len(self.library)))]
            self._object_parts(name)
            mesh = self.library.get(name)
            grasp = GraspSampler(self.mano).sample(mesh, self._sdf[name], rng_grasp)
            K = self.sample_camera(rng_view)
            R, T = self._place(grasp, mesh.vertices, K, rng_view)
            look = self._appearance(rng_look)
            pose, transl = self._global_params(grasp, grasp.pose, R, T)
            use_occ = rng_occ.random() < self.config.distractor_prob
            if distractors is not None:
                use_occ = distractors
            occluders = []
            if use_occ:
                targets = np.concatenate(
                    [
                        grasp.vertices @ R.T + T,
                        mesh.vertices @ (R @ grasp.obj_R).T + R @ grasp.obj_t + T,
                    ]
                )
                occluders = self._distractors(rng_occ, targets, int(rng_occ.integers(1, 3)))
            return self._compose(
                pose,
                grasp.shape,
                transl,
                name,
                R @ grasp.obj_R,
                R @ grasp.obj_t + T,
                K,
                look,
                occluders,
                rng_noise,
                f"synthetic:{split}:seed{seed}:{index}",
            )

    def generate_sequence(
        self, seed: int, num_frames: int = 60, fps: float = 15.0
    ) -> tuple[list[SynthSample], np.ndarray]:
        """A fixed-camera clip: the hand approaches, grasps and lifts the object.

        Phases over the clip time f in [0, 1]: approach (hand moves 12 cm towards the object,
        f < 0.4), closing (fingers from open to the grasp, 0.3 < f < 0.6), lift (hand and
        object rise 12 cm along the world up direction, f > 0.6); smoothstep easing.

        Returns:
            the frames (stamp = i / fps) and K (3, 3).
        """
        seq = np.random.SeedSequence([int(seed), SPLIT_CODES["sequence"], 0])
        rng_grasp, rng_view, rng_look, rng_noise = (np.random.default_rng(s) for s in seq.spawn(4))
        with _single_thread():
            name = self.library.names[int(rng_grasp.integers(len(self.library)))]
            self._object_parts(name)
            mesh = self.library.get(name)
            grasp = GraspSampler(self.mano).sample(mesh, self._sdf[name], rng_grasp)
            K = self.sample_camera(rng_view)
            pitch = np.radians(rng_view.uniform(15, 40))
            up = np.array([0.0, -np.cos(pitch), -np.sin(pitch)])
            fwd = np.array([0.0, 0.0, 1.0]) - up * up[2]
            fwd /= np.linalg.norm(fwd)
            side = np.cross(up, fwd)
            alpha = np.radians(rng_view.uniform(-60, 60)) + rng_view.choice([0.0, np.pi])
            facing = np.cos(alpha) * side + np.sin(alpha) * fwd
            lat = np.cross(grasp.finger_dir, grasp.palm_normal)
            hand_basis = np.stack([lat, grasp.finger_dir, grasp.palm_normal], axis=1)
            cam_basis = np.stack([up, np.cross(facing, up), facing], axis=1)
            R = cam_basis @ hand_basis.T
            back = -facing * 0.12 + up * 0.03
            centre = 0.5 * (grasp.vertices.mean(axis=0) + grasp.obj_t)
            z = rng_view.uniform(0.45, 0.6)
            T = z * np.linalg.solve(
                K, [(self.config.width - 1) / 2, (self.config.height - 1) / 2, 1]
            )
            T = T - R @ centre - 0.5 * back - up * 0.06
            look = self._appearance(rng_look)
            frames = []
            for i in range(num_frames):
                f = i / max(num_frames - 1, 1)
                a = 1.0 - _smoothstep(0.0, 0.4, f)
                b = _smoothstep(0.3, 0.6, f)
                lift = up * 0.12 * _smoothstep(0.6, 1.0, f)
                local = grasp.open_pose + (grasp.pose - grasp.open_pose) * b
                pose, transl = self._global_params(grasp, local, R, T + back * a + lift)
                frames.append(
                    self._compose(
                        pose,
                        grasp.shape,
                        transl,
                        name,
                        R @ grasp.obj_R,
                        R @ grasp.obj_t + T + lift,
                        K,
                        look,
                        [],
                        rng_noise,
                        f"synthetic:sequence:seed{seed}:{i}",
                        i / fps,
                    )
                )
        return frames, K


def _smoothstep(lo: float, hi: float, x: float) -> float:
    t = min(max((x - lo) / (hi - lo), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


class _single_thread:
    """Run torch on one thread inside the block (results independent of the worker count)."""

    def __enter__(self) -> None:
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self._threads)


# ------------------------------------------------------------------ writer


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


_WORKER: dict[str, object] = {}


def _init_worker(config: SynthConfig, library: ObjectLibrary, mano_path: Path | None) -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    _WORKER["gen"] = SceneGenerator(config, library, mano_path)


def _work(job: tuple[Path, int, int, str]) -> int:
    root, index, seed, split = job
    gen = _WORKER["gen"]
    assert isinstance(gen, SceneGenerator)
    save_sample(root, index, gen.generate(index, seed, split), gen.config.save_depth)
    return index


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
    """Generate `num` samples into `out` (format in this module's docstring).

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
    jobs = [(root, i, seed, split) for i in range(num)]
    bar = tqdm(total=num, desc=f"homae-synth {split}", unit="img", disable=not progress)
    if workers <= 1:
        _init_worker(config, library, Path(mano_path) if mano_path else None)
        for job in jobs:
            _work(job)
            bar.update()
        _WORKER.clear()
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        with ctx.Pool(
            workers, _init_worker, (config, library, Path(mano_path) if mano_path else None)
        ) as pool:
            for _ in pool.imap_unordered(
                _work, jobs, chunksize=max(1, min(16, num // workers // 4))
            ):
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
    }
    (root / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
