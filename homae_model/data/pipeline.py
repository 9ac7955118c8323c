"""RawSample -> training dict: mirror, crop (+ augmentation), posed meshes, on-the-fly SDF samples.

The training dict is exactly the table in docs/design.md. Every 3D label is expressed in the
crop frame: the full camera frame rotated by the crop's in-plane rotation (`CropResult.rot`,
the identity when not augmenting), so `K @ X / z` with the crop `K` lands on the crop pixel of
`X` (see `homae_model.geometry.crop`). Left hands are mirrored to right hands first
(`homae_model.data.transforms.mirror_sample`); the object pose of a mirrored sample refers to
the object model mirrored in its own x axis (its corners in the library's corner order).
`hand_box`/`obj_box` are the raw boxes mapped into the crop (the box around the four mapped
corners: exact without rotation, enclosing with one). The SDF samples are surface samples
jittered by N(0, surface_std), `uniform_fraction` of points uniform in the cube of half side
1 / 3.1 m around the anchor (the GT hand root) and `frustum_fraction` of points inside the
branch's box frustum over the cube's depth range (where the inference voxel search looks);
their SDFs are exact signed distances to the posed meshes (the hand capped at the wrist),
clamped to +-sdf_clamp, metres. They are `hand_points`/`obj_points` (+ `*_sdf`), or with
`grid_points` they move to `*_sdf_points`/`*_sdf_values` and `hand_points`/`obj_points` become
the inference-grid voxels nearest the GT surface (what the voxel search picks with a perfect
SDF), the points the heads should learn from. With `depth_map_cells` > 0 the dict also holds
`hand_depth_map` / `obj_depth_map` (G, G): per crop cell, the nearest surface depth minus the
hand root's (m, NaN where the mesh does not cover the cell; `homae_model.data.depth_maps`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from homae_model.data.depth_maps import surface_depth_map
from homae_model.data.schema import RawSample
from homae_model.data.sdf import SDF_SCALE, MeshSDF, mesh_sdf, prepare_mesh
from homae_model.data.transforms import (
    MIRROR,
    jitter_box,
    mirror_corners,
    mirror_mesh,
    mirror_sample,
    photometric,
    rotate_mano,
    sample_augmentation,
)
from homae_model.geometry.crop import crop_image, transform_box, union_crop_box
from homae_model.geometry.rotations import rotvec_of_matrix
from homae_model.geometry.surface import sample_surface

if TYPE_CHECKING:
    from homae_model.config import DataConfig
    from homae_model.objects.library import ObjectLibrary

TRAINING_KEYS: tuple[str, ...] = (
    "image",
    "K",
    "hand_joints",
    "hand_verts",
    "mano_pose",
    "mano_shape",
    "obj_rot",
    "obj_trans",
    "obj_id",
    "obj_corners",
    "hand_box",
    "obj_box",
    "hand_points",
    "hand_sdf",
    "obj_points",
    "obj_sdf",
    "anchor",
    "hand_visible",
    "obj_visible",
    "obj_model_points",
)
"""Keys of the training dict, in the order of docs/design.md."""
GRID_KEYS: tuple[str, ...] = (
    "hand_sdf_points",
    "hand_sdf_values",
    "obj_sdf_points",
    "obj_sdf_values",
)
"""Extra keys with `data.grid_points`: the SDF samples, apart from the heads' grid points."""
DEPTH_MAP_KEYS: tuple[str, ...] = ("hand_depth_map", "obj_depth_map")
"""Extra keys with `data.depth_map_cells` > 0: the dense relative-depth targets."""
DEPTH_MAP_SAMPLES = 4000
"""Surface samples per mesh for a depth map (about 16 per covered cell of a 16 x 16 map)."""
GRID_OVERSAMPLE = 3
"""Surface samples drawn per grid point wanted (snapping merges many into one voxel)."""


def snap_to_grid(points: np.ndarray, anchor: np.ndarray, half: float, res: int) -> np.ndarray:
    """(N,3) points -> the centres of their cells in the res^3 grid over anchor +- half (m).

    The same cells as `homae_model.geometry.voxels.grid_points` (scaled by half, moved to the
    anchor); points outside the cube go to the nearest border cell.
    """
    cell = 2.0 * half / res
    idx = np.clip(np.floor((points - anchor + half) / cell), 0, res - 1)
    return anchor + (idx + 0.5) * cell - half


def frustum_samples(
    n: int,
    anchor: np.ndarray,
    half: float,
    K: np.ndarray,
    box: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """(n,3) points that project inside `box` and lie in the cube anchor +- half (m).

    Where the inference voxel search looks (`points_in_box` of the grid around the anchor):
    a pixel uniform in the box, a depth uniform over the cube's depth range, back-projected with
    K; points outside the cube's x/y range are drawn again (a few rounds, then clipped into it).
    """
    out = np.empty((0, 3))
    if n <= 0:
        return out
    x0, y0, x1, y1 = (float(v) for v in box)
    for _ in range(FRUSTUM_ROUNDS):
        m = 2 * n
        u = rng.uniform(x0, max(x1, x0 + 1e-6), m)
        v = rng.uniform(y0, max(y1, y0 + 1e-6), m)
        z = rng.uniform(max(anchor[2] - half, 1e-3), anchor[2] + half, m)
        x = (u - K[0, 2]) * z / K[0, 0]
        y = (v - K[1, 2]) * z / K[1, 1]
        pts = np.stack([x, y, z], axis=1)
        keep = np.all(np.abs(pts - anchor) <= half, axis=1)
        out = np.concatenate([out, pts[keep]], axis=0)
        if len(out) >= n:
            return out[:n]
    fill = np.clip(pts[: n - len(out)], anchor - half, anchor + half)
    return np.concatenate([out, fill], axis=0)


FRUSTUM_ROUNDS = 4
"""Rejection rounds of `frustum_samples` before the remainder is clipped into the cube."""


def _close_wrist():
    """The hand module's wrist-capping function (mano.py or wrist.py)."""
    try:
        from homae_model.hand.mano import close_wrist  # type: ignore[attr-defined]
    except ImportError:
        from homae_model.hand.wrist import close_wrist
    return close_wrist


class ObjectSDFCache:
    """Object-frame meshes prepared for signed distances, built once per (name, mirrored)."""

    def __init__(self, objects: ObjectLibrary) -> None:
        """Cache over `objects` (the library names the meshes)."""
        self.objects = objects
        self._meshes: dict[tuple[str, bool], MeshSDF] = {}

    def get(self, name: str, mirrored: bool) -> MeshSDF:
        """The prepared mesh of `name`; mirrored (x -> -x) for left-hand samples."""
        key = (name, mirrored)
        if key not in self._meshes:
            mesh = self.objects.get(name)
            verts, faces = mesh.vertices, mesh.faces
            if mirrored:
                verts, faces = mirror_mesh(verts, faces)
            self._meshes[key] = prepare_mesh(verts, faces)
        return self._meshes[key]


OBJECT_MODEL_POINTS = 256
"""Object-frame model points per sample (`obj_model_points`, the symmetric rotation loss)."""


def model_point_subset(vertices: np.ndarray, n: int = OBJECT_MODEL_POINTS) -> np.ndarray:
    """A fixed subset of n mesh vertices (n, 3), the same on every call for the same mesh.

    Drawn without replacement (with replacement when the mesh has fewer than n) by a generator
    seeded from the vertex count, so every sample of one object carries the same points.
    """
    v = np.asarray(vertices, dtype=np.float64)
    rng = np.random.default_rng(len(v))
    return v[rng.choice(len(v), size=n, replace=len(v) < n)]


QUERY_POINT_KEYS = ("hand_points", "hand_sdf", "obj_points", "obj_sdf")
"""The heads' query points and their SDF values (left out with `sdf_samples=False`)."""


class SamplePipeline:
    """Turns a RawSample into the training dict of docs/design.md.

    Args:
        cfg: the data configuration (crop size, scale, augmentation, SDF sampling).
        mano_path: the MANO-format right-hand pickle for `ManoLayer`.
        objects: the object library (ids, meshes, corners).
        train: augment (when `cfg.augment`) if True; deterministic centre crop otherwise.
        num_hand_points: overrides `cfg.num_hand_points` (e.g. the model config's value).
        num_obj_points: overrides `cfg.num_obj_points`.
        cube_half_size: half side (m) of the cube around the anchor for uniform SDF samples;
            also the half side of the inference voxel grid.
        grid_res: cells per side of the inference voxel grid (`model.inference.voxel_res`),
            for `cfg.grid_points`.
        sdf_samples: draw the SDF / query points (`hand_points`, `hand_sdf`, ... and the grid
            points); False leaves them out, for the image-only stages (`homae-pretrain`),
            where they are most of an item's cost.
    """

    def __init__(
        self,
        cfg: DataConfig,
        mano_path: str | Path,
        objects: ObjectLibrary,
        train: bool,
        num_hand_points: int | None = None,
        num_obj_points: int | None = None,
        cube_half_size: float = 1.0 / SDF_SCALE,
        grid_res: int = 64,
        sdf_samples: bool = True,
    ) -> None:
        from homae_model.hand.mano import ManoLayer

        self.cfg = cfg
        self.objects = objects
        self.train = train
        self.num_hand_points = int(num_hand_points or cfg.num_hand_points)
        self.num_obj_points = int(num_obj_points or cfg.num_obj_points)
        self.cube_half_size = float(cube_half_size)
        self.grid_res = int(grid_res)
        self.sdf_samples = bool(sdf_samples)
        self.mano_path = str(mano_path)
        self.mano = ManoLayer(self.mano_path, side="right")
        self.mano.eval()
        self._faces = np.asarray(torch.as_tensor(self.mano.faces).cpu(), dtype=np.int64)
        self._close_wrist = _close_wrist()
        self._object_sdf = ObjectSDFCache(objects)
        self._object_points: dict[tuple[str, bool], np.ndarray] = {}

    # ------------------------------------------------------------------ helpers

    def object_mesh(self, name: str, mirrored: bool) -> MeshSDF:
        """The prepared (object-frame) mesh of an object, mirrored for left-hand samples."""
        return self._object_sdf.get(name, mirrored)

    def _model_points(self, name: str, mirrored: bool) -> np.ndarray:
        """`model_point_subset` of an object's model (object frame, metres), mirrored for left."""
        key = (name, mirrored)
        if key not in self._object_points:
            pts = model_point_subset(self.objects.get(name).vertices)
            self._object_points[key] = pts @ MIRROR if mirrored else pts
        return self._object_points[key]

    def _sdf_samples(
        self,
        mesh: MeshSDF,
        n: int,
        anchor: np.ndarray,
        rng: np.random.Generator,
        frustum: tuple[np.ndarray, np.ndarray],
        to_mesh: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Near-surface + uniform + box-frustum samples (crop frame) and clamped SDF values.

        `frustum = (K, box)` are the crop intrinsics and the branch's box (crop pixels);
        `to_mesh = (R, t)` maps mesh-frame points to the crop frame (`X = R @ x + t`); points are
        taken back to the mesh frame for the distance query.
        """
        cfg = self.cfg
        n_uniform = round(n * cfg.uniform_fraction)
        n_frustum = min(round(n * cfg.frustum_fraction), n - n_uniform)
        surface = self._surface(mesh, n - n_uniform - n_frustum, rng, to_mesh)
        surface = surface + rng.normal(0.0, cfg.surface_std, size=surface.shape)
        half = self.cube_half_size
        uniform = anchor + rng.uniform(-half, half, size=(n_uniform, 3))
        inside = frustum_samples(n_frustum, anchor, half, frustum[0], frustum[1], rng)
        points = np.concatenate([surface, uniform, inside], axis=0)
        return points, self._sdf(mesh, points, to_mesh)

    def _surface(
        self,
        mesh: MeshSDF,
        n: int,
        rng: np.random.Generator,
        to_mesh: tuple[np.ndarray, np.ndarray] | None,
    ) -> np.ndarray:
        """(n, 3) points on the mesh surface, crop frame."""
        surface = sample_surface(mesh.vertices, mesh.faces, n, rng, mesh.areas)
        return surface if to_mesh is None else surface @ to_mesh[0].T + to_mesh[1]

    def _sdf(
        self, mesh: MeshSDF, points: np.ndarray, to_mesh: tuple[np.ndarray, np.ndarray] | None
    ) -> np.ndarray:
        """Clamped signed distances (m) of crop-frame points to the mesh."""
        query = points if to_mesh is None else (points - to_mesh[1]) @ to_mesh[0]
        return np.clip(mesh_sdf(query, mesh), -self.cfg.sdf_clamp, self.cfg.sdf_clamp)

    def _grid_samples(
        self,
        mesh: MeshSDF,
        n: int,
        anchor: np.ndarray,
        rng: np.random.Generator,
        to_mesh: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The n inference-grid voxels nearest the surface (crop frame) and their SDF values.

        What the voxel search selects with a perfect SDF: surface samples are snapped to the
        centres of the grid around the anchor (`model.inference.voxel_res` cells over +-half);
        of the distinct voxels the n with the smallest |SDF| are kept (repeated cyclically in
        the rare case of fewer than n). With `data.grid_ray_jitter` (training only) each point
        then moves along its camera ray and snaps to the grid again.
        """
        surface = self._surface(mesh, GRID_OVERSAMPLE * n, rng, to_mesh)
        voxels = np.unique(
            snap_to_grid(surface, anchor, self.cube_half_size, self.grid_res), axis=0
        )
        sdf = self._sdf(mesh, voxels, to_mesh)
        order = np.argsort(np.abs(sdf), kind="stable")[:n]
        order = np.resize(rng.permutation(order), n)
        points, values = voxels[order], sdf[order]
        jitter = self.cfg.grid_ray_jitter if self.train else 0.0
        if jitter > 0:  # along the camera rays (the crop camera sits at the origin)
            rays = points / np.linalg.norm(points, axis=1, keepdims=True)
            points = points + rays * rng.uniform(-jitter, jitter, size=(n, 1))
            points = snap_to_grid(points, anchor, self.cube_half_size, self.grid_res)
            values = self._sdf(mesh, points, to_mesh)
        return points, values

    def _query_points(
        self,
        hand_mesh: MeshSDF,
        obj_mesh: MeshSDF,
        obj_pose: tuple[np.ndarray, np.ndarray],
        anchor: np.ndarray,
        K: np.ndarray,
        rng: np.random.Generator,
        boxes: tuple[np.ndarray, np.ndarray],
    ) -> dict[str, np.ndarray]:
        """The SDF samples and the heads' query points of both branches (crop frame).

        Returns `hand_points`/`hand_sdf`/`obj_points`/`obj_sdf` and, with `cfg.grid_points`,
        the separate SDF samples `*_sdf_points`/`*_sdf_values` (the query points are then the
        inference-grid voxels nearest the surface).
        """
        nh, no = self.num_hand_points, self.num_obj_points
        hand = self._sdf_samples(hand_mesh, nh, anchor, rng, (K, boxes[0]))
        obj = self._sdf_samples(obj_mesh, no, anchor, rng, (K, boxes[1]), obj_pose)
        out: dict[str, np.ndarray] = {}
        if self.cfg.grid_points:
            out = {
                "hand_sdf_points": hand[0],
                "hand_sdf_values": hand[1],
                "obj_sdf_points": obj[0],
                "obj_sdf_values": obj[1],
            }
            hand = self._grid_samples(hand_mesh, nh, anchor, rng)
            obj = self._grid_samples(obj_mesh, no, anchor, rng, obj_pose)
        out.update(hand_points=hand[0], hand_sdf=hand[1], obj_points=obj[0], obj_sdf=obj[1])
        return out

    # ------------------------------------------------------------------ main

    def __call__(self, raw: RawSample, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """Crop, augment and label one sample.

        Args:
            raw: the full-image sample (validated here).
            rng: numpy random generator; the only source of randomness.

        Returns:
            The training dict (torch tensors, float32 except `obj_id` int64).

        Raises:
            ValueError: invalid sample or unknown object name, naming `raw.source`.
        """
        raw.validate()
        if raw.obj_name not in self.objects:
            raise ValueError(
                f"sample {raw.source!r}: unknown object {raw.obj_name!r}; "
                f"the library has {list(self.objects.names)}"
            )
        mirrored = raw.side == "left"
        raw = mirror_sample(raw)
        cfg = self.cfg

        params = sample_augmentation(cfg, rng, enabled=self.train)
        box = jitter_box(union_crop_box(raw.hand_box, raw.obj_box, cfg.crop_scale), params)
        crop = crop_image(raw.image, raw.K, box, cfg.image_size, rotation_deg=params.rotation_deg)
        image = photometric(crop.image, params)
        rot = crop.rot

        # Hand: MANO mesh in the crop frame.
        shape = np.asarray(raw.mano_shape, dtype=np.float64)
        # The root joint does not depend on the pose, so one pass with the rotated global
        # orientation gives the crop-frame mesh up to the translation.
        pose, _ = rotate_mano(raw.mano_pose, raw.mano_transl, np.zeros(3), rot)
        with torch.no_grad():
            out = self.mano(
                torch.as_tensor(pose, dtype=torch.float32)[None],
                torch.as_tensor(shape, dtype=torch.float32)[None],
                None,
            )
        verts_local = out.vertices[0].double().numpy()
        root = out.joints[0, 0].double().numpy()
        pose, transl = rotate_mano(raw.mano_pose, raw.mano_transl, root, rot)
        hand_verts = verts_local + transl
        hand_joints = np.asarray(raw.hand_joints, dtype=np.float64) @ rot.T
        anchor = hand_joints[0]

        # Object pose in the crop frame.
        obj_R = rot @ Rotation.from_rotvec(np.asarray(raw.obj_rot, dtype=np.float64)).as_matrix()
        obj_t = rot @ np.asarray(raw.obj_trans, dtype=np.float64)
        obj_mesh = self.object_mesh(raw.obj_name, mirrored)
        corners = self.objects.get(raw.obj_name).corners
        if mirrored:
            corners = mirror_corners(corners)
        obj_corners = corners @ obj_R.T + obj_t

        hand_box = transform_box(crop.affine, raw.hand_box)
        obj_box = transform_box(crop.affine, raw.obj_box)
        obj_pose = (obj_R, obj_t)
        extra: dict[str, np.ndarray] = {}
        if self.sdf_samples or cfg.depth_map_cells > 0:
            verts_closed, faces_closed = self._close_wrist(hand_verts, self._faces)
            # MANO vertices are distinct (a posed hand does not weld two of them).
            hand_mesh = prepare_mesh(verts_closed, faces_closed, merge_duplicates=False)
        if self.sdf_samples:
            boxes = (hand_box, obj_box)
            extra = self._query_points(hand_mesh, obj_mesh, obj_pose, anchor, crop.K, rng, boxes)
        if cfg.depth_map_cells > 0:
            for key, mesh, to_mesh in (
                ("hand_depth_map", hand_mesh, None),
                ("obj_depth_map", obj_mesh, obj_pose),
            ):
                surface = self._surface(mesh, DEPTH_MAP_SAMPLES, rng, to_mesh)
                extra[key] = surface_depth_map(
                    surface, crop.K, cfg.image_size, cfg.depth_map_cells, anchor[2]
                )

        def f32(x: np.ndarray | float) -> torch.Tensor:
            return torch.as_tensor(np.asarray(x, dtype=np.float32))

        sample = {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
            .float()
            .div_(255.0),
            "K": f32(crop.K),
            "hand_joints": f32(hand_joints),
            "hand_verts": f32(hand_verts),
            "mano_pose": f32(pose),
            "mano_shape": f32(shape),
            "obj_rot": f32(rotvec_of_matrix(obj_R)),
            "obj_trans": f32(obj_t),
            "obj_id": torch.tensor(self.objects.index(raw.obj_name), dtype=torch.int64),
            "obj_corners": f32(obj_corners),
            "hand_box": f32(hand_box),
            "obj_box": f32(obj_box),
            **{k: f32(extra.pop(k)) for k in QUERY_POINT_KEYS if k in extra},
            "anchor": f32(anchor),
            "hand_visible": f32(raw.hand_visible),
            "obj_visible": f32(raw.obj_visible),
            "obj_model_points": f32(self._model_points(raw.obj_name, mirrored)),
        }
        sample.update({k: f32(v) for k, v in extra.items()})
        return sample
