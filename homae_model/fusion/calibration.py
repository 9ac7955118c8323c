"""Multi-camera calibration YAML: camera optical frames -> the world frame (no ROS needed).

Layout (written by `homae-synth --cameras N`, read by the fusion node when tf2 has no
transform)::

    world_frame: world
    transforms:                     # geometry_msgs/TransformStamped fields, as
    - header: {frame_id: world}     # `ros2 topic echo /tf_static` prints them
      child_frame_id: cam0_color_optical_frame
      transform:
        translation: {x: 0.1, y: -0.5, z: 0.3}         # metres, child origin in the parent
        rotation: {x: 0.0, y: 0.0, z: 0.0, w: 1.0}     # parent <- child, unit quaternion
    cameras:                        # optional: per camera, its frame and camera_info file
      cam0: {frame_id: cam0_color_optical_frame, camera_info: cam0/camera_info.yaml}

A transform's parent may be another child frame: chains are composed up to `world_frame`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from homae_model.fusion.frames import check_extrinsics, make_transform


@dataclass(frozen=True)
class Calibration:
    """Frames known from a calibration file.

    Attributes:
        world_frame: the fixed frame.
        frames: frame id -> (4, 4) transform frame -> world_frame.
        cameras: camera name -> {"frame_id": ..., "camera_info": ...} as written.
        source: the file (for error messages).
    """

    world_frame: str
    frames: dict[str, np.ndarray]
    cameras: dict[str, dict[str, str]] = field(default_factory=dict)
    source: str = "<calibration>"

    def transform(self, frame_id: str) -> np.ndarray:
        """(4, 4) frame_id -> world_frame.

        Raises:
            KeyError: the frame is not in the file (names the file and the known frames).
        """
        if frame_id == self.world_frame:
            return np.eye(4)
        if frame_id not in self.frames:
            raise KeyError(
                f"frame {frame_id!r} is not in {self.source} (known: "
                f"{', '.join(sorted(self.frames)) or 'none'}; world frame {self.world_frame!r})"
            )
        return self.frames[frame_id].copy()


def transform_entry(parent: str, child: str, T: np.ndarray) -> dict[str, Any]:
    """One `transforms:` entry (TransformStamped fields) for T: child -> parent."""
    q = Rotation.from_matrix(T[:3, :3]).as_quat()
    t = T[:3, 3]
    return {
        "header": {"frame_id": parent},
        "child_frame_id": child,
        "transform": {
            "translation": {k: float(v) for k, v in zip("xyz", t, strict=True)},
            "rotation": {k: float(v) for k, v in zip("xyzw", q, strict=True)},
        },
    }


def calibration_yaml(world_frame: str, cameras: dict[str, tuple[str, np.ndarray, str]]) -> str:
    """The YAML text of a calibration file.

    Args:
        world_frame: the fixed frame.
        cameras: camera name -> (optical frame id, (4, 4) optical -> world, camera_info path
            relative to the file).
    """
    data = {
        "world_frame": world_frame,
        "transforms": [transform_entry(world_frame, f, T) for f, T, _ in cameras.values()],
        "cameras": {n: {"frame_id": f, "camera_info": p} for n, (f, _, p) in cameras.items()},
    }
    header = "# Camera optical frames -> world (homae_model/fusion/calibration.py).\n"
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None)


def _entry(item: Any, index: int, source: str) -> tuple[str, str, np.ndarray]:
    where = f"{source}: transforms[{index}]"
    try:
        parent = str(item["header"]["frame_id"]).lstrip("/")
        child = str(item["child_frame_id"]).lstrip("/")
        tr, rot = item["transform"]["translation"], item["transform"]["rotation"]
        t = np.array([float(tr[k]) for k in "xyz"])
        q = np.array([float(rot[k]) for k in "xyzw"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"{where}: needs header.frame_id, child_frame_id, transform.translation.{{x,y,z}} "
            f"and transform.rotation.{{x,y,z,w}} ({err!r})"
        ) from err
    norm = float(np.linalg.norm(q))
    if not np.isfinite(q).all() or abs(norm - 1.0) > 1e-3:
        raise ValueError(f"{where}: rotation must be a unit quaternion, got |q| = {norm:.4f}")
    T = make_transform(Rotation.from_quat(q / norm).as_matrix(), t)
    return parent, child, check_extrinsics(T, where)


def parse_calibration(data: Any, source: str = "<calibration>") -> Calibration:
    """Read a calibration mapping (see the module docstring).

    Raises:
        ValueError: a malformed file, a frame defined twice or a frame not connected to the
            world frame (each names the file and the entry).
    """
    if not isinstance(data, dict) or "world_frame" not in data or "transforms" not in data:
        raise ValueError(f"{source}: expected a mapping with 'world_frame' and 'transforms'")
    world = str(data["world_frame"]).lstrip("/")
    if not world:
        raise ValueError(f"{source}: 'world_frame' is empty")
    edges: dict[str, tuple[str, np.ndarray]] = {}
    for i, item in enumerate(data["transforms"] or []):
        parent, child = _entry(item, i, source)[:2]
        if child in edges or child == world:
            raise ValueError(f"{source}: transforms[{i}]: frame {child!r} is defined twice")
        edges[child] = (parent, _entry(item, i, source)[2])
    frames: dict[str, np.ndarray] = {}
    for child in edges:
        T, frame, seen = np.eye(4), child, set()
        while frame != world:
            if frame in seen or frame not in edges:
                raise ValueError(
                    f"{source}: frame {child!r} does not lead to the world frame {world!r}"
                )
            seen.add(frame)
            parent, T_edge = edges[frame]
            T, frame = T_edge @ T, parent
        frames[child] = T
    cameras = {str(k): dict(v) for k, v in (data.get("cameras") or {}).items()}
    return Calibration(world, frames, cameras, source)


def load_calibration(path: str | Path) -> Calibration:
    """Read a calibration YAML file.

    Raises:
        FileNotFoundError: naming the file.
        ValueError: naming the file and what is wrong in it.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"calibration file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{p}: not valid YAML ({err})") from err
    return parse_calibration(data, str(p))
