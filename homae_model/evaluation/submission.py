"""The HO3D CodaLab submission file (`pred.json`) from project-convention predictions.

HO3D's evaluation server takes joints in MANO order in the OpenGL camera frame (y and z
negated), metres; the project predicts in the OpenCV camera frame in its own joint order.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from homae_model.hand.constants import NUM_JOINTS, NUM_VERTICES
from homae_model.metrics.alignment import check_points

#: HO3D stores joints in MANO's order (wrist, index1-3, middle1-3, pinky1-3, ring1-3, thumb1-3,
#: tips thumb, index, middle, ring, pinky). ``ho3d = project[PROJECT_TO_HO3D]``.
# fmt: off
PROJECT_TO_HO3D: tuple[int, ...] = (
    0, 5, 6, 7, 9, 10, 11, 17, 18, 19, 13, 14, 15, 1, 2, 3, 4, 8, 12, 16, 20,
)
#: Inverse map: ``project = ho3d[HO3D_TO_PROJECT]`` (HO3D's ``jointsMapManoToSimple``).
HO3D_TO_PROJECT: tuple[int, ...] = (
    0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20,
)
# fmt: on
#: OpenCV camera frame -> HO3D's OpenGL frame (y and z flipped).
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0])
FALLBACK_SPLIT_BOXES = "split boxes"
FALLBACK_PREVIOUS = "previous estimate"
FALLBACK_NEXT = "next estimate"
"""What a submission frame without a detected pair was answered with (in this order)."""


def write_ho3d_submission(
    path: str | Path,
    joints_list: Sequence[np.ndarray],
    verts_list: Sequence[np.ndarray],
) -> Path:
    """Write the HO3D CodaLab ``pred.json``: ``[xyz_list, verts_list]``.

    Each entry is converted from the project convention (OpenCV camera frame, metres, project
    joint order) to HO3D's: joints reordered with :data:`PROJECT_TO_HO3D` (MANO order), y and z
    negated (OpenGL frame, the hand at negative z), metres.

    Args:
        path: output file (parents created).
        joints_list: S arrays ``(21, 3)``.
        verts_list: S arrays ``(778, 3)``.

    Returns:
        The written path.

    Raises:
        ValueError: empty or unequal lists, bad shapes / NaN (with the sample index), or a
            sample whose joints all have ``z <= 0`` (already in OpenGL coordinates?).
    """
    if len(joints_list) == 0:
        raise ValueError("joints_list is empty")
    if len(joints_list) != len(verts_list):
        raise ValueError(
            f"joints_list has {len(joints_list)} entries but verts_list has {len(verts_list)}"
        )
    order = np.asarray(PROJECT_TO_HO3D)
    xyz_out, verts_out = [], []
    for i, (joints, verts) in enumerate(zip(joints_list, verts_list, strict=True)):
        j = check_points(f"joints_list[{i}]", joints, NUM_JOINTS)
        v = check_points(f"verts_list[{i}]", verts, NUM_VERTICES)
        if j.ndim != 2 or v.ndim != 2:
            raise ValueError(f"sample {i}: expected (21, 3) and (778, 3), got {j.shape}, {v.shape}")
        if np.all(j[:, 2] <= 0.0):
            raise ValueError(
                f"sample {i}: every joint has z <= 0; inputs must be in the OpenCV camera frame "
                "(z forward), the conversion to OpenGL is done here"
            )
        xyz_out.append((j[order] @ OPENCV_TO_OPENGL).tolist())
        verts_out.append((v @ OPENCV_TO_OPENGL).tolist())
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([xyz_out, verts_out]))
    return out


def submission_name(protocol: str, first: bool, frames: int, total: int) -> str:
    """File name of a protocol's HO3D submission.

    Args:
        protocol: the protocol.
        first: whether it is the first protocol evaluated (its file is ``pred.json``).
        frames: frames answered.
        total: frames in the split.

    Returns:
        ``pred.json`` / ``pred_<protocol>.json`` when every frame is answered, else
        ``pred_partial_<N>of<TOTAL>.json`` / ``pred_<protocol>_partial_<N>of<TOTAL>.json``
        (a server rejects a partial file; the name says so).
    """
    stem = "pred" if first else f"pred_{protocol}"
    if frames < total:
        stem += f"_partial_{frames}of{total}"
    return stem + ".json"


def fill_missing(
    entries: list[Any],
    frame_ids: Sequence[str],
    protocol: str,
    warn: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Answer the frames without an estimate with the previous one (leading ones: the next).

    Args:
        entries: one estimate per frame of the split, None where there is none (filled in place).
        frame_ids: the frames' ids, for the records and warnings.
        protocol: the protocol the estimates come from.
        warn: called with a message naming each filled frame (default: a UserWarning).

    Returns:
        ``{"index", "frame", "protocol", "used"}`` for each filled frame.

    Raises:
        ValueError: no frame has an estimate (nothing to submit).
    """
    filled: list[dict[str, Any]] = []
    known = [i for i, e in enumerate(entries) if e is not None]
    if not known:
        raise ValueError(f"protocol {protocol}: no frame could be estimated; nothing to submit")
    last = None
    for i, entry in enumerate(entries):
        if entry is not None:
            last = entry
            continue
        if last is not None:
            entries[i], used = last, FALLBACK_PREVIOUS
        else:
            entries[i], used = entries[known[0]], FALLBACK_NEXT
        filled.append({"index": i, "frame": frame_ids[i], "protocol": protocol, "used": used})
        message = f"{protocol}: frame {frame_ids[i]} (index {i}) answered with the {used}"
        if warn is None:
            warnings.warn(message, UserWarning, stacklevel=2)
        else:
            warn(message)
    return filled
