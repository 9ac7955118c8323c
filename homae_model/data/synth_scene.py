"""The synthetic scene generator: a right (or left) hand grasping a library object, rendered.

`SceneGenerator.generate(index, seed, split)` draws the grasp (`grasp.py`), a random pinhole
camera, light, skin tone, background and optional occluders from the sample's own seed
(`synthetic.sample_seed`) and renders RGB, instance masks and depth with the GL renderer (the
hand's skin has a lighter palm and pale nails, `hand_appearance`);
`generate_sequence` makes a fixed-camera approach-grasp-lift clip. The on-disk format the
writer (`synth_writer`) stores it in is described in `homae_model.data.synthetic`.

Left hands (`SynthConfig.left_fraction`): a left-hand sample is the right-hand scene of the
same seed mirrored in the camera frame (x -> -x, `homae_model.geometry.mirror`): the hand is
the left MANO model (`ManoLayer(side="left")`: the mirrored right model, or MANO_LEFT.pkl
beside the right file) with the mirrored pose, the object is the real (not mirrored) mesh
posed so that it fills the mirrored object (through its symmetry plane, `_mirror_object`;
exact for the procedural objects), occluders are mirrored; the scene is rendered anew and
labelled ``side: left``. Right-hand samples are unchanged by the option (same seeds, bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from homae_model.data.grasp import GraspSampler, HandGrasp, SurfaceSDF
from homae_model.data.hand_appearance import HandRegions, hand_vertex_colors, layer_regions
from homae_model.data.schema import RawSample
from homae_model.data.synthetic import sample_seed
from homae_model.geometry.camera import project_points
from homae_model.geometry.mirror import MIRROR, mirror_points, symmetry_reflection
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
        left_fraction: probability that a sample is a left hand (0 = right hands only,
            1 = left hands only); drawn from the sample's own seed.
        uniform_skin: one skin colour for the whole hand (the look before the palm / nail
            appearance, `hand_appearance`); the other draws are unchanged.
    """

    width: int = 256
    height: int = 256
    focal_range: tuple[float, float] = (500.0, 700.0)
    depth_range: tuple[float, float] = (0.35, 0.8)
    centre_jitter: float = 0.12
    distractor_prob: float = 0.4
    noise_std: float = 3.0
    save_depth: bool = False
    left_fraction: float = 0.0
    uniform_skin: bool = False


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
    palm_contrast: float = 1.0


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
        self._mano_left: torch.nn.Module | None = None
        if not 0.0 <= self.config.left_fraction <= 1.0:
            raise ValueError(f"left_fraction must be in [0, 1], got {self.config.left_fraction}")
        self._renderer: GLRenderer | None = None
        self._sdf: dict[str, SurfaceSDF] = {}
        self._parts: dict[str, tuple[np.ndarray, ...]] = {}
        self._hand_regions: dict[str, HandRegions] = {}
        self._symmetry: dict[str, np.ndarray] = {}

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

    def hand_layer(self, side: str = "right") -> torch.nn.Module:
        """The MANO layer of a side (the left one is built from `mano_path` on first use)."""
        if side == "right":
            return self.mano
        if self._mano_left is None:
            from homae_model.hand.mano import ManoLayer

            self._mano_left = ManoLayer(str(self.mano_path), side="left")
            self._mano_left.eval()
        return self._mano_left

    @property
    def renderer(self) -> GLRenderer:
        """The GL renderer (EGL context created on first use, in this process)."""
        if self._renderer is None:
            self._renderer = GLRenderer(self.config.width, self.config.height)
        return self._renderer

    def _regions(self, side: str) -> HandRegions:
        """Palm / nail vertex weights of a side's hand model (`data.hand_appearance`)."""
        if side not in self._hand_regions:
            self._hand_regions[side] = layer_regions(self.hand_layer(side))
        return self._hand_regions[side]

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
            # drawn last (the draws above are unchanged) and always (uniform_skin changes no draw)
            palm_contrast=rng.uniform(0.6, 1.0) * (not cfg.uniform_skin),
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
        self, pose: np.ndarray, shape: np.ndarray, transl: np.ndarray, side: str = "right"
    ) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            out = self.hand_layer(side)(
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
        side: str = "right",
    ) -> SynthSample:
        """Render one frame and assemble its labels (`side`: which MANO layer and label)."""
        cfg = self.config
        verts, joints = self._mano_camera(pose, shape, transl, side)
        faces = np.asarray(self.hand_layer(side).faces, dtype=np.int64)
        hand = RenderMesh(
            verts,
            faces,
            look.skin,
            INSTANCE_HAND,
            vertex_colors=hand_vertex_colors(
                look.skin, self._regions(side), look.skin_noise, look.palm_contrast
            ),
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
            side=side,
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

    def _grasp_and_camera(
        self, rng_grasp: np.random.Generator, rng_view: np.random.Generator
    ) -> tuple[str, Any, HandGrasp, np.ndarray]:
        """Draw the object, the hand's grasp of it and the camera intrinsics.

        Returns:
            (object name, its library mesh, the grasp in the object frame, K (3, 3)).
        """
        name = self.library.names[int(rng_grasp.integers(len(self.library)))]
        self._object_parts(name)
        mesh = self.library.get(name)
        grasp = GraspSampler(self.mano).sample(mesh, self._sdf[name], rng_grasp)
        return name, mesh, grasp, self.sample_camera(rng_view)

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
        seq = sample_seed(seed, split, index)
        # a sixth child for the side: the first five (and so right-hand samples) are unchanged
        rng_grasp, rng_view, rng_look, rng_occ, rng_noise, rng_side = (
            np.random.default_rng(s) for s in seq.spawn(6)
        )
        frac = self.config.left_fraction
        side = "left" if frac >= 1.0 or (frac > 0.0 and rng_side.random() < frac) else "right"
        with _single_thread():
            name, mesh, grasp, K = self._grasp_and_camera(rng_grasp, rng_view)
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
            obj_R, obj_t = R @ grasp.obj_R, R @ grasp.obj_t + T
            if side == "left":
                pose, transl = self._mirror_hand(pose, grasp.shape, transl)
                obj_R, obj_t = self._mirror_object(name, obj_R, obj_t)
                occluders = [_mirror_mesh(m) for m in occluders]
            return self._compose(
                pose,
                grasp.shape,
                transl,
                name,
                obj_R,
                obj_t,
                K,
                look,
                occluders,
                rng_noise,
                f"synthetic:{split}:seed{seed}:{index}",
                side=side,
            )

    def _mirror_hand(
        self, pose: np.ndarray, shape: np.ndarray, transl: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Left-hand MANO (pose, transl) of the mirror image of a right hand (camera frame).

        The pose is `mano.mirror_pose(pose)`; the translation puts the left wrist joint on the
        mirrored right wrist: ``M (transl + J0_right(shape)) - J0_left(shape)`` (equal to
        ``M transl`` when the left model is the mirrored right one).
        """
        from homae_model.hand.mano import mirror_pose

        zero = np.zeros(48)
        j0_right = self._mano_camera(zero, shape, np.zeros(3), "right")[1][0]
        j0_left = self._mano_camera(zero, shape, np.zeros(3), "left")[1][0]
        return mirror_pose(pose), mirror_points(transl + j0_right) - j0_left

    def _mirror_object(
        self, name: str, obj_R: np.ndarray, obj_t: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pose of the real object mesh that fills the mirror image of the posed object.

        ``M (R X + t) = (M R S)(S X) + M t`` with S the reflection of the object's symmetry
        plane (`geometry.mirror.symmetry_reflection`): S X is the mesh again when the mesh is
        symmetric about that plane, so (M R S, M t) poses the real object. Returns (R', t').
        """
        if name not in self._symmetry:
            self._symmetry[name] = symmetry_reflection(self.library.get(name).vertices)[0]
        return MIRROR @ obj_R @ self._symmetry[name], mirror_points(obj_t)

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
        seq = sample_seed(seed, "sequence", 0)
        rng_grasp, rng_view, rng_look, rng_noise = (np.random.default_rng(s) for s in seq.spawn(4))
        with _single_thread():
            name, _, grasp, K = self._grasp_and_camera(rng_grasp, rng_view)
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


def _mirror_mesh(mesh: RenderMesh) -> RenderMesh:
    """A camera-frame mesh mirrored x -> -x (normals mirrored, face winding reversed)."""
    normals = None if mesh.normals is None else mirror_points(mesh.normals)
    return replace(
        mesh,
        vertices=mirror_points(mesh.vertices),
        faces=np.ascontiguousarray(np.asarray(mesh.faces)[:, ::-1]),
        normals=normals,
    )


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
