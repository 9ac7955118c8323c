"""Hand constants (data only): joint orders, skeleton, MANO topology, fingertip vertex ids.

Two joint orders appear in this project:

- MANO's internal order (16 joints, the order of `smplx.MANO` joints and of the 48 pose values):
  wrist, index 1-3, middle 1-3, pinky 1-3, ring 1-3, thumb 1-3.
- The project order (21 joints, DexYCB / manopth order, used for every label, metric and
  output): wrist, then thumb, index, middle, ring, pinky, each as joints 1, 2, 3 and the tip.

The project order is MANO's 16 joints followed by the five fingertip vertices (thumb, index,
middle, ring, pinky), gathered with `MANO_TO_PROJECT`.

Which mesh vertex is "the fingertip" differs between datasets (`FINGERTIP_CONVENTIONS`): DexYCB
uses manopth's (745, 317, 444, 556, 673), HO3D its own (744, 333, 444, 555, 672). A model's
predicted joints must be built with the tips of the labels they are compared with
(`ManoLayer(..., fingertips=...)`, `FINGERTIP_CONVENTION_BY_LAYOUT`).
"""

from __future__ import annotations

NUM_JOINTS: int = 21
"""Joints in the project order (16 MANO joints + 5 fingertips)."""

NUM_MANO_JOINTS: int = 16
NUM_VERTICES: int = 778
NUM_FACES: int = 1538
NUM_BETAS: int = 10
POSE_DIM: int = 48
"""Axis-angle pose values: global orientation (3) then 15 joints x 3, MANO order, no PCA."""
NUM_POSE_BASIS: int = 135
"""Pose-corrective basis size: 15 joints x 9 rotation-matrix entries."""
WRIST_BOUNDARY_SIZE: int = 16
"""Vertices (and edges) of the open loop at the wrist of MANO's mesh."""

FINGER_NAMES: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")
"""Finger order of the project's joint order and of the fingertip ids."""

JOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb1",
    "thumb2",
    "thumb3",
    "thumb_tip",
    "index1",
    "index2",
    "index3",
    "index_tip",
    "middle1",
    "middle2",
    "middle3",
    "middle_tip",
    "ring1",
    "ring2",
    "ring3",
    "ring_tip",
    "pinky1",
    "pinky2",
    "pinky3",
    "pinky_tip",
)
"""The 21 joints in the project (DexYCB / manopth) order."""

MANO_JOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "index1",
    "index2",
    "index3",
    "middle1",
    "middle2",
    "middle3",
    "pinky1",
    "pinky2",
    "pinky3",
    "ring1",
    "ring2",
    "ring3",
    "thumb1",
    "thumb2",
    "thumb3",
)
"""MANO's 16 joints in its internal order."""

MANO_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)
"""Parent of each MANO joint (MANO order); -1 for the root (wrist)."""

MANO_FINGER_JOINTS: dict[str, tuple[int, int, int]] = {
    "index": (1, 2, 3),
    "middle": (4, 5, 6),
    "pinky": (7, 8, 9),
    "ring": (10, 11, 12),
    "thumb": (13, 14, 15),
}
"""MANO joint indices of each finger, proximal to distal (MCP, PIP, DIP; thumb CMC, MCP, IP)."""

MANO_TO_PROJECT: tuple[int, ...] = (
    0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20,
)  # fmt: skip
"""Indices into [16 MANO joints, 5 tips (thumb, index, middle, ring, pinky)] giving the
project order (manopth / DexYCB reorder)."""

PROJECT_PARENTS: tuple[int, ...] = (
    -1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19,
)  # fmt: skip
"""Parent of each joint in the project order; -1 for the wrist."""

SKELETON_EDGES: tuple[tuple[int, int], ...] = tuple(
    (parent, child) for child, parent in enumerate(PROJECT_PARENTS) if parent >= 0
)
"""The 20 bones as (parent, child) pairs in the project order."""

ROOT_JOINT: int = 0
"""Wrist, project order."""
MIDDLE_MCP: int = 9
"""Middle-finger MCP in the project order (ST-MJE scale reference: |j9 - j0|)."""

FINGERTIP_IDS_MANOPTH_RIGHT: tuple[int, ...] = (745, 317, 444, 556, 673)
"""Real MANO right-hand fingertip vertices (thumb, index, middle, ring, pinky) of manopth's
`ManoLayer` (manopth/manolayer.py), with which DexYCB's toolkit made its `joint_3d` labels."""
FINGERTIP_IDS_MANOPTH_LEFT: tuple[int, ...] = (745, 317, 445, 556, 673)
"""Real MANO left-hand fingertip vertices (manopth: the middle tip is 445 on the left)."""
FINGERTIP_IDS_HO3D: tuple[int, ...] = (744, 333, 444, 555, 672)
"""Real MANO fingertip vertices (thumb, index, middle, ring, pinky) of HO3D's labels: the HO3D
repository's `setup_mano.py` patches MANO's `webuser/lbs.py` to append these five vertices to
the 16 joints, for both hands; `handJoints3D` (train) and the evaluation server's joints are
built with them. Four of the five differ from manopth's by one vertex (a few millimetres)."""
FINGERTIP_IDS_SMPLX: tuple[int, ...] = (744, 320, 443, 554, 671)
"""smplx's own tip vertices (NOT used: they differ from the labels' by millimetres)."""

FINGERTIP_CONVENTIONS: dict[str, dict[str, tuple[int, ...]]] = {
    "manopth": {"right": FINGERTIP_IDS_MANOPTH_RIGHT, "left": FINGERTIP_IDS_MANOPTH_LEFT},
    "ho3d": {"right": FINGERTIP_IDS_HO3D, "left": FINGERTIP_IDS_HO3D},
}
"""Fingertip vertex ids of real MANO per label convention and side. "manopth": DexYCB (and the
project's default, also for synthetic data rendered with a real MANO file); "ho3d": HO3D v2/v3.
The manopth left ids apply to an official MANO_LEFT.pkl; a left hand mirrored from the right
file has the right hand's vertex ids (`hand.mano.ManoLayer`)."""
DEFAULT_FINGERTIP_CONVENTION: str = "manopth"
"""Convention used when none is named (DexYCB's; what every existing checkpoint assumed)."""
FINGERTIP_CONVENTION_BY_LAYOUT: dict[str, str] = {
    "synthetic": "manopth",
    "dexycb": "manopth",
    "ho3d": "ho3d",
}
"""Fingertip convention of each data layout's labels (`data.sources.LAYOUTS`). Synthetic
sets are labelled by `ManoLayer` itself, so any convention matches them; the project's synthetic
hand stores its own tip ids, which always win over a named convention (its vertex ids are not
MANO's)."""

MANO_REQUIRED_SHAPES: dict[str, tuple[int, ...]] = {
    "v_template": (NUM_VERTICES, 3),
    "f": (NUM_FACES, 3),
    "J_regressor": (NUM_MANO_JOINTS, NUM_VERTICES),
    "kintree_table": (2, NUM_MANO_JOINTS),
    "weights": (NUM_VERTICES, NUM_MANO_JOINTS),
    "posedirs": (NUM_VERTICES, 3, NUM_POSE_BASIS),
    "shapedirs": (NUM_VERTICES, 3, NUM_BETAS),
    "hands_components": (45, 45),
    "hands_mean": (45,),
}
"""Keys every MANO model file must hold (what `smplx.MANO` reads), with their shapes."""
