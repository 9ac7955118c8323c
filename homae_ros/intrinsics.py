"""Camera intrinsics from a YAML file, for the offline tools (`homae-infer`); no ROS needed.

Accepted layouts (one mapping at the top level):

- ROS camera calibration file (camera_calibration / camera_info_manager):
  `camera_matrix: {rows: 3, cols: 3, data: [9 values]}`, optional `image_width`, `image_height`;
- a CameraInfo message as YAML (`ros2 topic echo --once .../camera_info > K.yaml`):
  `k: [9 values]` (or `K:`), optional `width`, `height`;
- plain pinhole values: `fx`, `fy`, `cx`, `cy` (optional `width`, `height`).

K is (3, 3) float64, pixels, OpenCV convention (pixel centres at integer coordinates).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from homae_model.geometry.camera import validate_intrinsics

__all__ = ["Intrinsics", "load_intrinsics", "parse_intrinsics"]


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics and the image size they are for.

    Attributes:
        K: (3, 3) float64 intrinsics, pixels.
        width: image width in pixels the calibration is for, or None when not given.
        height: image height in pixels, or None.
        source: where they came from (file path), for error messages.
    """

    K: np.ndarray
    width: int | None = None
    height: int | None = None
    source: str = ""

    def for_image(self, width: int, height: int) -> np.ndarray:
        """K for an image of `width` x `height` pixels.

        Raises:
            ValueError: the file gives another image size (names the file and both sizes).
        """
        if self.width and self.height and (self.width, self.height) != (width, height):
            raise ValueError(
                f"intrinsics {self.source} are for {self.width}x{self.height} px images but the "
                f"image is {width}x{height} px (resized? calibrate or scale K for this size)"
            )
        return self.K.copy()


def _numbers(value: Any, n: int, what: str, source: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source}: '{what}' must hold {n} numbers, got {value!r}") from err
    if arr.size != n:
        raise ValueError(f"{source}: '{what}' must hold {n} numbers, got {arr.size}")
    return arr


def _size(data: dict[str, Any], source: str) -> tuple[int | None, int | None]:
    w = data.get("image_width", data.get("width"))
    h = data.get("image_height", data.get("height"))
    if w is None or h is None or (int(w) == 0 and int(h) == 0):
        return None, None
    if int(w) <= 0 or int(h) <= 0:
        raise ValueError(f"{source}: image size must be positive, got {w}x{h}")
    return int(w), int(h)


def parse_intrinsics(data: Any, source: str = "<intrinsics>") -> Intrinsics:
    """Intrinsics from an already-loaded YAML document (see the module docstring).

    Args:
        data: the parsed YAML (a mapping).
        source: file name used in error messages.

    Raises:
        ValueError: none of the layouts matches, or K is unusable (names `source`).
    """
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a YAML mapping, got {type(data).__name__}")
    if "camera_matrix" in data:
        cm = data["camera_matrix"]
        values = cm.get("data") if isinstance(cm, dict) else cm
        K = _numbers(values, 9, "camera_matrix.data", source).reshape(3, 3)
    elif "k" in data or "K" in data:
        key = "k" if "k" in data else "K"
        K = _numbers(data[key], 9, key, source).reshape(3, 3)
    elif all(k in data for k in ("fx", "fy", "cx", "cy")):
        fx, fy, cx, cy = _numbers([data[k] for k in ("fx", "fy", "cx", "cy")], 4, "fx..cy", source)
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    else:
        raise ValueError(
            f"{source}: no intrinsics found; expected 'camera_matrix: {{data: [9 values]}}', "
            f"'k: [9 values]' or 'fx', 'fy', 'cx', 'cy' (keys present: {sorted(data)})"
        )
    try:
        validate_intrinsics(K, name=source)
    except ValueError as err:
        raise ValueError(f"intrinsics {err}") from err
    width, height = _size(data, source)
    return Intrinsics(K, width, height, source)


def load_intrinsics(path: str | Path) -> Intrinsics:
    """Read intrinsics from a YAML file (see the module docstring).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not YAML, or no usable intrinsics in it (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"intrinsics file {path} does not exist")
    try:
        # `ros2 topic echo` ends its message with '---': take the first document.
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err})") from err
    return parse_intrinsics(docs[0] if docs else None, str(path))
