"""Camera intrinsics from a YAML file, for the offline tools (`homae-infer`); no ROS needed.

Accepted layouts (one mapping at the top level):

- ROS camera calibration file (camera_calibration / camera_info_manager):
  `camera_matrix: {rows: 3, cols: 3, data: [9 values]}`, optional `image_width`, `image_height`;
- a CameraInfo message as YAML (`ros2 topic echo --once .../camera_info > K.yaml`):
  `k: [9 values]` (or `K:`), optional `width`, `height`;
- plain pinhole values: `fx`, `fy`, `cx`, `cy` (optional `width`, `height`).

`parse_camera_info` reads the rest of a CameraInfo as well (D, R, P, distortion model,
frame id), with the same keys in either spelling (`d` / `D` / `distortion_coefficients`, ...):
the demo publishes its clip's camera_info.yaml through it.

K is (3, 3) float64, pixels, OpenCV convention (pixel centres at integer coordinates).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from homae_model.geometry.camera import validate_intrinsics

__all__ = [
    "CameraInfoFields",
    "Intrinsics",
    "load_intrinsics",
    "parse_camera_info",
    "parse_intrinsics",
]


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


def _numbers(value: Any, n: int | None, what: str, source: str) -> np.ndarray:
    """`value` as a flat float64 array of `n` numbers (any count when `n` is None)."""
    want = f"{n} numbers" if n is not None else "numbers"
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source}: '{what}' must hold {want}, got {value!r}") from err
    if n is not None and arr.size != n:
        raise ValueError(f"{source}: '{what}' must hold {n} numbers, got {arr.size}")
    return arr


def _matrix(
    data: dict[str, Any], keys: tuple[str, ...], n: int | None, source: str
) -> np.ndarray | None:
    """The first of `keys` present (a list, or a calibration file's {data: [...]}), or None."""
    for key in keys:
        if key in data:
            value = data[key]
            values = value.get("data") if isinstance(value, dict) else value
            return _numbers(values, n, f"{key}.data" if isinstance(value, dict) else key, source)
    return None


def _size(data: dict[str, Any], source: str) -> tuple[int | None, int | None]:
    w = data.get("image_width", data.get("width"))
    h = data.get("image_height", data.get("height"))
    if w is None or h is None or (int(w) == 0 and int(h) == 0):
        return None, None
    if int(w) <= 0 or int(h) <= 0:
        raise ValueError(f"{source}: image size must be positive, got {w}x{h}")
    return int(w), int(h)


def _k_matrix(data: dict[str, Any], source: str) -> np.ndarray:
    """(3, 3) K from any of the accepted layouts (not validated)."""
    K = _matrix(data, ("camera_matrix", "k", "K"), 9, source)
    if K is not None:
        return K.reshape(3, 3)
    if all(k in data for k in ("fx", "fy", "cx", "cy")):
        fx, fy, cx, cy = _numbers([data[k] for k in ("fx", "fy", "cx", "cy")], 4, "fx..cy", source)
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    raise ValueError(
        f"{source}: no intrinsics found; expected 'camera_matrix: {{data: [9 values]}}', "
        f"'k: [9 values]' or 'fx', 'fy', 'cx', 'cy' (keys present: {sorted(data)})"
    )


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
    K = _k_matrix(data, source)
    try:
        validate_intrinsics(K, name=source)
    except ValueError as err:
        raise ValueError(f"intrinsics {err}") from err
    width, height = _size(data, source)
    return Intrinsics(K, width, height, source)


@dataclass(frozen=True)
class CameraInfoFields:
    """The fields of a sensor_msgs/CameraInfo read from YAML (any accepted layout).

    Attributes:
        intrinsics: K and image size (see `parse_intrinsics`).
        d: distortion coefficients (empty when not given).
        r: (9,) rectification matrix, row-major (identity when not given).
        p: (12,) projection matrix, row-major (K with a zero fourth column when not given).
        distortion_model: e.g. "plumb_bob" (the default when not given).
        frame_id: the optical frame, or "" when not given.
    """

    intrinsics: Intrinsics
    d: np.ndarray
    r: np.ndarray
    p: np.ndarray
    distortion_model: str = "plumb_bob"
    frame_id: str = ""


def parse_camera_info(data: Any, source: str = "<camera_info>") -> CameraInfoFields:
    """Every CameraInfo field an already-loaded YAML document gives (defaults for the rest).

    Raises:
        ValueError: no usable K (see `parse_intrinsics`), or a matrix with the wrong count.
    """
    intrinsics = parse_intrinsics(data, source)
    d = _matrix(data, ("d", "D", "distortion_coefficients"), None, source)
    r = _matrix(data, ("r", "R", "rectification_matrix"), 9, source)
    p = _matrix(data, ("p", "P", "projection_matrix"), 12, source)
    return CameraInfoFields(
        intrinsics=intrinsics,
        d=d if d is not None else np.zeros(0),
        r=r if r is not None else np.eye(3).ravel(),
        p=p if p is not None else np.hstack([intrinsics.K, np.zeros((3, 1))]).ravel(),
        distortion_model=str(data.get("distortion_model", "plumb_bob")),
        frame_id=str(data.get("frame_id", "")),
    )


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
