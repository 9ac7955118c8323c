"""One synthetic hand-object clip seen by several calibrated cameras (`homae-synth --cameras N`).

The scene lives in a world frame (z up, origin at the hand-object pair's centre at grasp time):
the hand approaches the object along its palm normal, closes its fingers and lifts the object
12 cm (the same phases as `SceneGenerator.generate_sequence`). N cameras at 0.45-0.6 m look at
the pair from azimuths spaced by 360° / max(N, 4) and elevations of 15-40°, each with its own
random intrinsics; every camera renders the same frames (same light, skin and background
colours, same stamps). With `occlude=True` camera 1 stands behind the object as seen from the
hand, so the object hides the hand from it but not from camera 0.

On-disk layout::

    DIR/meta.json           {"format": "homae-synth-multicam", "version": 1, "cameras": [...],
                             "world_frame": "world", "count": F, "fps": ..., "seed": S,
                             "occluded_camera": "cam1" | null}
    DIR/extrinsics.yaml     optical frames -> world (`homae_model.fusion.calibration` layout)
    DIR/camK/               a homae-synth clip (`synthetic` format) rendered by camera K, with
                            camera-frame labels; camK/camera_info.yaml is a ROS calibration file
                            (camera_calibration_parsers layout)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from homae_model.data.grasp import GraspSampler, HandGrasp
from homae_model.data.synth_scene import (
    SceneGenerator,
    SynthConfig,
    SynthSample,
    _single_thread,
    _smoothstep,
)
from homae_model.data.synth_writer import _prepare, _write_meta, save_sample
from homae_model.data.synthetic import SPLIT_CODES
from homae_model.fusion.calibration import calibration_yaml, load_calibration
from homae_model.fusion.frames import invert, look_at
from homae_model.objects.library import ObjectLibrary

MULTICAM_FORMAT = "homae-synth-multicam"
MULTICAM_VERSION = 1
WORLD_FRAME = "world"
CALIBRATION_FILE = "extrinsics.yaml"
MAX_CAMERAS = 8


def camera_name(k: int) -> str:
    """Folder / camera name of camera k."""
    return f"cam{k}"


def optical_frame(k: int) -> str:
    """Optical frame id of camera k."""
    return f"cam{k}_color_optical_frame"


@dataclass
class MultiCamClip:
    """A generated multi-camera clip.

    Attributes:
        frames: per camera, the clip's frames (camera-frame labels).
        K: per camera, (3, 3) intrinsics.
        T_world_cam: per camera, (4, 4) optical frame -> world.
        occluded_camera: index of the camera placed behind the object, or None.
    """

    frames: list[list[SynthSample]]
    K: list[np.ndarray]
    T_world_cam: list[np.ndarray]
    occluded_camera: int | None


class MultiCameraGenerator(SceneGenerator):
    """`SceneGenerator` that renders one world-frame clip from several cameras."""

    def _hand_to_world(self, grasp: HandGrasp, yaw: float) -> tuple[np.ndarray, np.ndarray]:
        """(R, T) hand frame -> world: fingers horizontal at `yaw`, thumb side up, pair at 0."""
        up = np.array([0.0, 0.0, 1.0])
        a = np.array([np.cos(yaw), np.sin(yaw), 0.0])
        lat = np.cross(grasp.finger_dir, grasp.palm_normal)
        hand_basis = np.stack([lat, grasp.finger_dir, grasp.palm_normal], axis=1)
        R = np.stack([up, a, np.cross(up, a)], axis=1) @ hand_basis.T
        centre = 0.5 * (grasp.vertices.mean(axis=0) + grasp.obj_t)
        return R, -R @ centre

    def _cameras(
        self,
        grasp: HandGrasp,
        R: np.ndarray,
        T: np.ndarray,
        num_cameras: int,
        occlude: bool,
        rng: np.random.Generator,
    ) -> list[np.ndarray]:
        """T_world_cam of each camera (see the module docstring)."""
        target = np.array([0.0, 0.0, 0.06])  # midway through the lift
        spacing = 2 * np.pi / max(num_cameras, 4)
        azimuth0 = rng.uniform(0, 2 * np.pi)
        if occlude:  # camera 1 looks from the object towards the hand
            seen_from = (R @ grasp.obj_t + T) - (R @ grasp.vertices.mean(axis=0) + T)
            azimuth0 = np.arctan2(seen_from[1], seen_from[0]) - spacing
        poses = []
        for k in range(num_cameras):
            azimuth = azimuth0 + k * spacing + rng.normal(0.0, np.radians(4))
            elevation = np.radians(
                rng.uniform(5, 15) if occlude and k == 1 else rng.uniform(15, 40)
            )
            dist = rng.uniform(0.45, 0.6)
            centre = target + dist * np.array(
                [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                 np.sin(elevation)]
            )  # fmt: skip
            poses.append(look_at(centre, target))
        return poses

    def generate_multicam(
        self,
        seed: int,
        num_cameras: int,
        num_frames: int = 60,
        fps: float = 15.0,
        occlude: bool = False,
    ) -> MultiCamClip:
        """Render the clip from `num_cameras` cameras (deterministic in `seed`).

        Args:
            seed: clip seed.
            num_cameras: 1..MAX_CAMERAS.
            num_frames: frames per camera (stamps i / fps, shared by all cameras).
            fps: frame rate.
            occlude: put camera 1 behind the object (needs num_cameras >= 2).

        Raises:
            ValueError: a camera count out of range, or occlude with one camera.
        """
        if not 1 <= num_cameras <= MAX_CAMERAS:
            raise ValueError(f"--cameras must be in 1..{MAX_CAMERAS}, got {num_cameras}")
        if occlude and num_cameras < 2:
            raise ValueError("an occluded view needs at least 2 cameras (--cameras 2)")
        seq = np.random.SeedSequence([int(seed), SPLIT_CODES["sequence"], 1000 + num_cameras])
        rng_grasp, rng_view, rng_look, rng_noise = (np.random.default_rng(s) for s in seq.spawn(4))
        with _single_thread():
            name = self.library.names[int(rng_grasp.integers(len(self.library)))]
            self._object_parts(name)
            grasp = GraspSampler(self.mano).sample(
                self.library.get(name), self._sdf[name], rng_grasp
            )
            R, T = self._hand_to_world(grasp, rng_view.uniform(0, 2 * np.pi))
            poses = self._cameras(grasp, R, T, num_cameras, occlude, rng_view)
            Ks = [self.sample_camera(rng_view) for _ in range(num_cameras)]
            look = self._appearance(rng_look)
            up = np.array([0.0, 0.0, 1.0])
            back = -R @ grasp.palm_normal * 0.12 + up * 0.03
            frames: list[list[SynthSample]] = [[] for _ in range(num_cameras)]
            for i in range(num_frames):
                f = i / max(num_frames - 1, 1)
                a = 1.0 - _smoothstep(0.0, 0.4, f)
                b = _smoothstep(0.3, 0.6, f)
                lift = up * 0.12 * _smoothstep(0.6, 1.0, f)
                local = grasp.open_pose + (grasp.pose - grasp.open_pose) * b
                for k, (T_wc, K) in enumerate(zip(poses, Ks, strict=True)):
                    T_cw = invert(T_wc)
                    R_c = T_cw[:3, :3] @ R  # hand frame -> camera k
                    T_hand = T_cw[:3, :3] @ (T + back * a + lift) + T_cw[:3, 3]
                    T_obj = T_cw[:3, :3] @ (R @ grasp.obj_t + T + lift) + T_cw[:3, 3]
                    pose, transl = self._global_params(grasp, local, R_c, T_hand)
                    frames[k].append(
                        self._compose(
                            pose, grasp.shape, transl, name, R_c @ grasp.obj_R, T_obj, K, look,
                            [], rng_noise, f"synthetic:multicam:seed{seed}:{camera_name(k)}:{i}",
                            i / fps,
                        )
                    )  # fmt: skip
        return MultiCamClip(frames, Ks, poses, 1 if occlude else None)


def calibration_file_yaml(K: np.ndarray, width: int, height: int, name: str) -> str:
    """A ROS camera calibration file (camera_calibration_parsers layout), undistorted."""
    k = [float(v) for v in np.asarray(K, dtype=np.float64).ravel()]
    data = {
        "image_width": int(width),
        "image_height": int(height),
        "camera_name": name,
        "camera_matrix": {"rows": 3, "cols": 3, "data": k},
        "distortion_model": "plumb_bob",
        "distortion_coefficients": {"rows": 1, "cols": 5, "data": [0.0] * 5},
        "rectification_matrix": {"rows": 3, "cols": 3, "data": np.eye(3).ravel().tolist()},
        "projection_matrix": {
            "rows": 3, "cols": 4,
            "data": np.hstack([np.reshape(k, (3, 3)), np.zeros((3, 1))]).ravel().tolist(),
        },
    }  # fmt: skip
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)


def write_multicam_sequence(
    out: str | Path,
    seed: int,
    num_cameras: int,
    num_frames: int = 60,
    fps: float = 15.0,
    config: SynthConfig | None = None,
    library: ObjectLibrary | None = None,
    mano_path: str | Path | None = None,
    occlude: bool = False,
) -> Path:
    """Generate and write a multi-camera clip (layout in the module docstring).

    Returns:
        the output folder.
    """
    config = config or SynthConfig()
    library = library or ObjectLibrary.procedural()
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    clip = MultiCameraGenerator(config, library, mano_path).generate_multicam(
        seed, num_cameras, num_frames, fps, occlude
    )
    stamps = [round(i / fps, 9) for i in range(num_frames)]
    cameras = {}
    for k in range(num_cameras):
        cam_root = _prepare(root / camera_name(k))
        for i, frame in enumerate(clip.frames[k]):
            save_sample(cam_root, i, frame, config.save_depth)
        (cam_root / "camera_info.yaml").write_text(
            calibration_file_yaml(clip.K[k], config.width, config.height, camera_name(k)),
            encoding="utf-8",
        )
        _write_meta(cam_root, num_frames, seed, "test", config, library, fps=fps, timestamps=stamps)
        cameras[camera_name(k)] = (
            optical_frame(k),
            clip.T_world_cam[k],
            f"{camera_name(k)}/camera_info.yaml",
        )
    (root / CALIBRATION_FILE).write_text(calibration_yaml(WORLD_FRAME, cameras), encoding="utf-8")
    meta = {
        "format": MULTICAM_FORMAT,
        "version": MULTICAM_VERSION,
        "cameras": list(cameras),
        "world_frame": WORLD_FRAME,
        "count": num_frames,
        "fps": fps,
        "seed": seed,
        "occluded_camera": None if clip.occluded_camera is None else camera_name(1),
    }
    if not config.uniform_skin:  # absent: one skin colour (as in the sets made before the key)
        meta["uniform_skin"] = False
    (root / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return root


@dataclass(frozen=True)
class MultiCamSet:
    """A written multi-camera clip, opened: its meta, per-camera folders and extrinsics."""

    root: Path
    meta: dict
    cameras: list[str]
    camera_dirs: dict[str, Path]
    frame_ids: dict[str, str]
    T_world_cam: dict[str, np.ndarray]


def open_multicam(root: str | Path) -> MultiCamSet:
    """Open a folder written by `write_multicam_sequence`.

    Raises:
        FileNotFoundError: meta.json, extrinsics.yaml or a camera folder missing (named).
        ValueError: another format, or a camera without a transform to the world.
    """
    root = Path(root)
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"multi-camera clip has no meta.json: {meta_path}")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != MULTICAM_FORMAT:
        raise ValueError(f"{meta_path}: expected format {MULTICAM_FORMAT!r}, got "
                         f"{meta.get('format')!r}")  # fmt: skip
    calib = load_calibration(root / CALIBRATION_FILE)
    dirs, frames, transforms = {}, {}, {}
    for name in meta["cameras"]:
        entry = calib.cameras.get(name)
        if entry is None:
            raise ValueError(f"{calib.source}: no entry for camera {name!r} under 'cameras'")
        dirs[name] = root / name
        if not dirs[name].is_dir():
            raise FileNotFoundError(f"camera folder missing: {dirs[name]}")
        frames[name] = entry["frame_id"]
        transforms[name] = calib.transform(entry["frame_id"])
    return MultiCamSet(root, meta, list(meta["cameras"]), dirs, frames, transforms)


__all__ = [
    "CALIBRATION_FILE",
    "MultiCamClip",
    "MultiCamSet",
    "MultiCameraGenerator",
    "open_multicam",
    "write_multicam_sequence",
]
