"""MANO through `smplx`: the hand layer every part of the project uses.

`ManoLayer(model_path, side)` wraps `smplx.MANO` (no PCA: 45 pose values, flat hand mean) and
returns `ManoOutput(vertices (B, 778, 3), joints (B, 21, 3))` in metres, joints in the project
order (`constants.JOINT_NAMES`): MANO's 16 joints plus 5 fingertip vertices, reordered with
`constants.MANO_TO_PROJECT`. Fingertips come from the model file's ``fingertip_ids`` (the
project's synthetic hand stores them), else, for real MANO, from the label convention named by
``fingertips`` (`constants.FINGERTIP_CONVENTIONS`): "manopth" (the default; DexYCB's labels:
right 745, 317, 444, 556, 673, the official left file 445 for the middle tip) or "ho3d" (HO3D's
labels: 744, 333, 444, 555, 672). `ManoLayer.set_fingertips` changes it on a built layer (e.g.
a trained model's, when it is evaluated on HO3D); the ids are a buffer that checkpoints do not
store.

Model files are read with `homae_model.hand.convert.load_mano_pickle` (safe: no code can run,
and the official chumpy pickles load too) and handed to `smplx.MANO` as its ``data_struct``:
smplx then builds its buffers and runs its own LBS exactly as from a file. This also removes
smplx's requirement that the file be named ``MANO_RIGHT.pkl`` (any name works; a folder is
searched for ``MANO_{SIDE}.pkl`` and ``mano/MANO_{SIDE}.pkl``).

Left hands: `side="left"` loads ``MANO_LEFT.pkl`` beside the right file when it exists (with
the known sign fix of the official left file's x shape directions), else mirrors the right
model: x -> -x on the template, shape and pose correctives, reversed face winding. A left pose
is then the mirror of a right pose: axis-angle (x, y, z) -> (x, -y, -z) per joint
(`mirror_pose`), and ``left(mirror_pose(p), b, mirror_points(t)) == mirror_points(right(p, b, t))``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
import smplx
import torch
from smplx.utils import Struct
from torch import nn

from homae_model.hand.constants import (
    DEFAULT_FINGERTIP_CONVENTION,
    FINGERTIP_CONVENTIONS,
    MANO_TO_PROJECT,
    NUM_BETAS,
    NUM_JOINTS,
    NUM_VERTICES,
    POSE_DIM,
)
from homae_model.hand.convert import load_mano_pickle, validate_mano_dict
from homae_model.hand.wrist import close_wrist, wrist_boundary_loop

__all__ = [
    "ManoLayer",
    "ManoOutput",
    "close_wrist",
    "fingertip_ids",
    "flexion_axes",
    "load_mano_dict",
    "mirror_mano_dict",
    "mirror_points",
    "mirror_pose",
    "resolve_model_file",
    "wrist_boundary_loop",
]

SIDES = ("right", "left")
_MIRROR = np.array([-1.0, 1.0, 1.0])


@dataclass
class ManoOutput:
    """Posed MANO hand.

    Attributes:
        vertices: (B, 778, 3) mesh vertices, metres (camera frame when a camera-frame `transl`
            and global orientation were given).
        joints: (B, 21, 3) joints in the project order (wrist, thumb, index, middle, ring,
            pinky; tips are mesh vertices), same frame and units.
    """

    vertices: torch.Tensor
    joints: torch.Tensor


def resolve_model_file(model_path: str | Path, side: str = "right") -> Path:
    """The MANO file for a side: the path itself, or ``MANO_{SIDE}.pkl`` in a folder.

    Args:
        model_path: a .pkl file or a folder holding ``MANO_{SIDE}.pkl`` or
            ``mano/MANO_{SIDE}.pkl``.
        side: "right" or "left" (only used for folders).

    Returns:
        The file path.

    Raises:
        FileNotFoundError: nothing found (names the paths tried).
    """
    path = Path(model_path).expanduser()
    if path.is_dir():
        name = f"MANO_{side.upper()}.pkl"
        tried = [path / name, path / "mano" / name]
        for cand in tried:
            if cand.is_file():
                return cand
        raise FileNotFoundError(f"no MANO model in folder {path}: tried {[str(t) for t in tried]}")
    if not path.is_file():
        raise FileNotFoundError(f"MANO model file not found: {path}")
    return path


def load_mano_dict(path: str | Path) -> dict[str, Any]:
    """Load and check a MANO model file (plain numpy or the official chumpy pickle).

    Args:
        path: model file, or a folder (its right-hand model is used).

    Returns:
        dict with the keys `smplx.MANO` needs (float64 arrays, int64 faces, sparse csc
        J_regressor) plus any extra keys of the file (e.g. ``fingertip_ids``).

    Raises:
        FileNotFoundError: the file is missing. MissingKeyError / ValueError: a key is missing
            or has the wrong shape (named with the file).
    """
    file = resolve_model_file(path, "right")
    return validate_mano_dict(load_mano_pickle(file), file)


def mirror_pose(pose: Any) -> Any:
    """Mirror axis-angle poses across the x = 0 plane: (x, y, z) -> (x, -y, -z) per joint.

    Args:
        pose: (..., 3k) numpy array or torch tensor (e.g. (B, 48) MANO poses).

    Returns:
        Same type and shape.
    """
    if pose.shape[-1] % 3:
        raise ValueError(f"pose: last dimension must be a multiple of 3, got {tuple(pose.shape)}")
    shaped = pose.reshape(*pose.shape[:-1], -1, 3)
    if isinstance(pose, torch.Tensor):
        sign = torch.tensor([1.0, -1.0, -1.0], dtype=pose.dtype, device=pose.device)
    else:
        sign = np.array([1.0, -1.0, -1.0])
    return (shaped * sign).reshape(pose.shape)


def mirror_points(points: Any) -> Any:
    """Mirror points (or translations) across the x = 0 plane: x -> -x.

    Args:
        points: (..., 3) numpy array or torch tensor.

    Returns:
        Same type and shape.
    """
    if points.shape[-1] != 3:
        raise ValueError(f"points: expected shape (..., 3), got {tuple(points.shape)}")
    if isinstance(points, torch.Tensor):
        return points * torch.tensor(_MIRROR, dtype=points.dtype, device=points.device)
    return points * _MIRROR


def mirror_mano_dict(model: dict[str, Any]) -> dict[str, Any]:
    """Left-hand model from a right-hand one (or back): the mirror image across x = 0.

    Template, J and shape directions get x -> -x; faces are reversed (outward winding kept);
    pose correctives are mirrored so that a mirrored pose gives the mirrored mesh
    (entry (a, b) of R - I changes sign with m_a m_b, the offset's x with m_x); PCA components
    and the mean pose are mirrored like poses. Vertex and joint ids are unchanged.
    """
    out = dict(model)
    m = _MIRROR
    out["v_template"] = np.asarray(model["v_template"]) * m
    out["f"] = np.asarray(model["f"])[:, ::-1].copy()
    out["shapedirs"] = np.asarray(model["shapedirs"]) * m[None, :, None]
    sign_ab = np.outer(m, m).reshape(9)  # (R - I) entries, row-major
    sign_pose = np.tile(sign_ab, 15)
    out["posedirs"] = np.asarray(model["posedirs"]) * m[None, :, None] * sign_pose[None, None]
    if "J" in model:
        out["J"] = np.asarray(model["J"]) * m
    pose_sign = np.tile([1.0, -1.0, -1.0], 15)
    out["hands_components"] = np.asarray(model["hands_components"]) * pose_sign
    out["hands_mean"] = np.asarray(model["hands_mean"]) * pose_sign
    return out


def flexion_axes(joints: np.ndarray, side: str = "right") -> np.ndarray:
    """Unit flexion axis of each of the 15 finger joints, from a hand's MANO-order joints.

    A positive rotation about the axis (axis-angle ``angle * axis`` in the pose vector, whose
    frame is the rest pose's) bends the bone after the joint toward the palm. Works for real
    MANO and the synthetic hand (for either, the fingers' axis is close to +z for the right
    hand at rest).

    Args:
        joints: (16, 3) joints in MANO order, rest pose (e.g. `J` of a model file).
        side: "right" or "left" (the palm normal flips with handedness).

    Returns:
        (15, 3) unit axes for MANO joints 1..15.
    """
    from homae_model.hand.constants import MANO_PARENTS

    j = np.asarray(joints, dtype=np.float64)
    if j.shape != (16, 3):
        raise ValueError(f"joints: expected shape (16, 3), got {j.shape}")
    forward = j[4] - j[0]  # wrist -> middle MCP
    radial = j[1] - j[7]  # pinky MCP -> index MCP (toward the thumb)
    palmar = -np.cross(forward, radial) * (1.0 if side == "right" else -1.0)
    palmar /= np.linalg.norm(palmar)
    children = {p: c for c, p in enumerate(MANO_PARENTS) if p > 0}
    axes = np.zeros((15, 3))
    for k in range(1, 16):
        bone = j[children[k]] - j[k] if k in children else j[k] - j[MANO_PARENTS[k]]
        axis = np.cross(bone, palmar)
        axes[k - 1] = axis / np.linalg.norm(axis)
    return axes


def _fix_official_left(left: dict[str, Any], right_file: Path | None) -> dict[str, Any]:
    """Flip the x shape directions of an official MANO_LEFT.pkl when they have the wrong sign.

    The official left file's x shape directions equal the right hand's instead of being their
    mirror image (a known issue); this is detected by comparison with the right file.
    """
    if right_file is None or not right_file.is_file():
        return left
    right = load_mano_dict(right_file)
    l_x, r_x = left["shapedirs"][:, 0, :], right["shapedirs"][:, 0, :]
    if np.abs(l_x - r_x).sum() < np.abs(l_x + r_x).sum():
        left = dict(left)
        left["shapedirs"] = left["shapedirs"].copy()
        left["shapedirs"][:, 0, :] *= -1.0
    return left


def _swap_side_name(name: str) -> str:
    """MANO_LEFT.pkl <-> MANO_RIGHT.pkl (case kept, either direction)."""
    if "LEFT" in name or "left" in name:
        return name.replace("LEFT", "RIGHT").replace("left", "right")
    return name.replace("RIGHT", "LEFT").replace("right", "left")


def _load_side(model_path: str | Path, side: str) -> tuple[dict[str, Any], Path, str]:
    """(model dict for `side`, file read, how it was obtained: 'file' or 'mirrored')."""
    path = Path(model_path).expanduser()
    if side == "right":
        file = resolve_model_file(path, "right")
        if "LEFT" in file.name.upper():
            raise ValueError(f"side='right' but the model file is a left hand: {file}")
        return load_mano_dict(file), file, "file"
    if path.is_dir():
        try:
            left_file = resolve_model_file(path, "left")
        except FileNotFoundError:
            left_file = None
        right_file = resolve_model_file(path, "right") if left_file is None else None
        if left_file is not None:
            other = left_file.with_name(_swap_side_name(left_file.name))
            return _fix_official_left(load_mano_dict(left_file), other), left_file, "file"
    else:
        file = resolve_model_file(path, "left")
        if "LEFT" in file.name.upper():
            other = file.with_name(_swap_side_name(file.name))
            return _fix_official_left(load_mano_dict(file), other), file, "file"
        sibling = file.with_name(_swap_side_name(file.name))
        if sibling != file and sibling.is_file():
            return _fix_official_left(load_mano_dict(sibling), file), sibling, "file"
        right_file = file
    return mirror_mano_dict(load_mano_dict(right_file)), right_file, "mirrored"


def fingertip_ids(
    fingertips: str | Sequence[int] | None,
    side: str = "right",
    origin: str = "file",
    file_ids: Sequence[int] | None = None,
) -> tuple[tuple[int, ...], str]:
    """The 5 tip vertex ids (thumb, index, middle, ring, pinky) a hand layer uses.

    Args:
        fingertips: a convention of `constants.FINGERTIP_CONVENTIONS` ("manopth", "ho3d"),
            None (the default convention), or 5 explicit vertex ids.
        side: "right" or "left".
        origin: "file" (the side's own model file) or "mirrored" (a left hand mirrored from the
            right file: its vertex ids are the right hand's).
        file_ids: the model file's own ``fingertip_ids`` (the project's synthetic hand), or None
            (real MANO). They win over a named convention, whose ids refer to MANO's mesh.

    Returns:
        (ids, what they are: "model file", a convention name, or "explicit").

    Raises:
        ValueError: unknown convention, or ids that are not 5 vertex ids < 778.
    """
    if fingertips is not None and not isinstance(fingertips, str):
        ids, source = tuple(int(i) for i in np.asarray(fingertips).reshape(-1)), "explicit"
    elif file_ids is not None:
        ids, source = tuple(int(i) for i in np.asarray(file_ids).reshape(-1)), "model file"
    else:
        name = DEFAULT_FINGERTIP_CONVENTION if fingertips is None else fingertips
        if name not in FINGERTIP_CONVENTIONS:
            raise ValueError(
                f"unknown fingertip convention {name!r}; valid: {sorted(FINGERTIP_CONVENTIONS)}"
            )
        key = "left" if side == "left" and origin == "file" else "right"
        ids, source = FINGERTIP_CONVENTIONS[name][key], name
    if len(ids) != 5 or min(ids) < 0 or max(ids) >= NUM_VERTICES:
        raise ValueError(f"fingertip ids must be 5 vertex ids < {NUM_VERTICES}, got {ids}")
    return ids, source


class ManoLayer(nn.Module):
    """MANO hand layer (smplx underneath): pose, shape, translation -> mesh and 21 joints.

    Args:
        model_path: MANO file (any name) or a folder with ``MANO_RIGHT.pkl`` (and optionally
            ``MANO_LEFT.pkl``), or ``mano/MANO_*.pkl``. The bundled synthetic hand is
            ``homae_model/assets/hand/MANO_RIGHT.pkl``.
        side: "right" or "left" (see the module docstring for how left models are obtained).
        dtype: float dtype of the model buffers (inputs are cast to it).
        fingertips: label convention of the tip joints ("manopth", "ho3d"; None: "manopth") or
            5 explicit vertex ids; see `fingertip_ids` (a model file's own ids win over a
            convention name).

    Attributes:
        side: "right" or "left".
        model_file: the file read.
        origin: "file" (read as is) or "mirrored" (left hand mirrored from the right file).
        fingertip_ids: (5,) int64 buffer, tip vertices (thumb, index, middle, ring, pinky).
        fingertip_source: "model file", "manopth", "ho3d" or "explicit".
    """

    def __init__(
        self,
        model_path: str | Path,
        side: str = "right",
        dtype: torch.dtype = torch.float32,
        fingertips: str | Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, got {side!r}")
        data, file, origin = _load_side(model_path, side)
        self.side = side
        self.model_file = file
        self.origin = origin
        self._file_tips: tuple[int, ...] | None = None
        if "fingertip_ids" in data:
            self._file_tips = tuple(
                int(i) for i in np.asarray(data["fingertip_ids"], dtype=np.int64).reshape(-1)
            )
        try:
            tips, self.fingertip_source = fingertip_ids(fingertips, side, origin, self._file_tips)
        except ValueError as err:
            raise ValueError(f"{file}: {err}") from err
        data = {k: v for k, v in data.items() if k != "fingertip_ids"}
        if scipy.sparse.issparse(data["J_regressor"]):
            data["J_regressor"] = data["J_regressor"].tocsc()
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a shape-count warning
            self.mano = smplx.MANO(
                str(file),
                data_struct=Struct(**data),
                is_rhand=side == "right",
                use_pca=False,
                num_pca_comps=45,
                flat_hand_mean=True,
                create_global_orient=False,
                create_hand_pose=False,
                create_betas=False,
                create_transl=False,
                create_body_pose=False,
                num_betas=NUM_BETAS,
                dtype=dtype,
            )
        self.register_buffer("fingertip_ids", torch.as_tensor(tips, dtype=torch.long))
        self.register_buffer("_order", torch.as_tensor(MANO_TO_PROJECT, dtype=torch.long))

    def set_fingertips(self, fingertips: str | Sequence[int] | None) -> str:
        """Use another fingertip convention (or 5 explicit ids) from now on.

        Args:
            fingertips: as the constructor's ``fingertips``.

        Returns:
            What the ids now are ("model file", a convention name or "explicit").

        Raises:
            ValueError: unknown convention or bad ids.
        """
        tips, source = fingertip_ids(fingertips, self.side, self.origin, self._file_tips)
        self.fingertip_ids.copy_(torch.as_tensor(tips, dtype=torch.long))
        self.fingertip_source = source
        return source

    @property
    def faces(self) -> torch.Tensor:
        """(1538, 3) int64 triangle vertex ids, outward winding (buffer on the layer's device)."""
        return self.mano.faces_tensor

    @property
    def num_vertices(self) -> int:
        """Number of mesh vertices (778)."""
        return int(self.mano.v_template.shape[0])

    def forward(
        self,
        pose: torch.Tensor,
        shape: torch.Tensor | None = None,
        transl: torch.Tensor | None = None,
    ) -> ManoOutput:
        """Pose the hand.

        Args:
            pose: (B, 48) axis-angle, global orientation first then 15 joints in MANO order
                (flat-hand mean, no PCA).
            shape: (B, 10) betas, or None for the mean shape.
            transl: (B, 3) translation added to every vertex and joint (metres), or None.

        Returns:
            `ManoOutput` with vertices (B, 778, 3) and joints (B, 21, 3), project order.

        Raises:
            ValueError: a parameter has the wrong shape (named).
        """
        ref = self.mano.shapedirs
        if pose.ndim != 2 or pose.shape[1] != POSE_DIM:
            raise ValueError(f"pose: expected shape (B, {POSE_DIM}), got {tuple(pose.shape)}")
        b = pose.shape[0]
        pose = pose.to(device=ref.device, dtype=ref.dtype)
        if shape is None:
            shape = torch.zeros(b, NUM_BETAS, device=ref.device, dtype=ref.dtype)
        if tuple(shape.shape) != (b, NUM_BETAS):
            raise ValueError(f"shape: expected shape ({b}, {NUM_BETAS}), got {tuple(shape.shape)}")
        shape = shape.to(device=ref.device, dtype=ref.dtype)
        if transl is not None:
            if tuple(transl.shape) != (b, 3):
                raise ValueError(f"transl: expected shape ({b}, 3), got {tuple(transl.shape)}")
            transl = transl.to(device=ref.device, dtype=ref.dtype)
        out = self.mano(betas=shape, global_orient=pose[:, :3], hand_pose=pose[:, 3:],
                        transl=transl)  # fmt: skip
        verts = out.vertices
        joints = torch.cat([out.joints, verts[:, self.fingertip_ids]], dim=1)
        joints = joints[:, self._order]
        assert joints.shape[1] == NUM_JOINTS
        return ManoOutput(vertices=verts, joints=joints)
