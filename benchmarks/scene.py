"""A fixed hand-object scene for the benchmark and an SDF fitted to it (no weights needed).

An untrained HOMAE predicts an almost flat SDF, so coarse-to-fine sampling has nothing to prune
and its cost would say nothing about a trained model. When no trained checkpoint exists
(`weights/demo/` empty) the benchmark fits the model's two SDF heads for a few hundred Adam
steps to the ground-truth signed distances of this one scene (image features frozen: the
encoder runs once). The fitted field is not a good hand model, but it has the property that
matters for sampling cost: a zero level set near the true surfaces and |SDF| growing away
from them.

The scene: the project's MANO-format hand (slightly flexed) with its root 0.5 m in front of a
640x480 camera, and a procedural mustard bottle beside it. Boxes are the projected mesh
bounds; the image is a smooth random texture (its content does not change any timing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from homae_model.data.sdf import mesh_sdf, prepare_mesh, sample_sdf_points
from homae_model.geometry.crop import crop_image, transform_box, union_crop_box
from homae_model.hand.wrist import close_wrist
from homae_model.model import HomaeModel
from homae_model.objects.library import ObjectLibrary

IMAGE_HW = (480, 640)
FOCAL_PX = 600.0
HAND_ROOT = (0.0, 0.02, 0.5)  # m, camera frame
OBJECT_NAME = "006_mustard_bottle"
OBJECT_OFFSET = (0.07, 0.0, 0.03)  # m, object origin relative to the hand root


@dataclass
class Scene:
    """One full image with its labels (camera frame, metres).

    Attributes:
        image: (H,W,3) uint8 RGB.
        K: (3,3) float64 intrinsics.
        hand_box: (4,) xyxy pixels of the projected hand mesh.
        obj_box: (4,) xyxy pixels of the projected object mesh.
        anchor: (3,) GT hand root (the voxel-grid centre used for timing).
        hand_verts: (V,3) closed hand mesh vertices; hand_faces (F,3).
        obj_verts: (V,3) posed object vertices; obj_faces (F,3).
    """

    image: np.ndarray
    K: np.ndarray
    hand_box: np.ndarray
    obj_box: np.ndarray
    anchor: np.ndarray
    hand_verts: np.ndarray
    hand_faces: np.ndarray
    obj_verts: np.ndarray
    obj_faces: np.ndarray


def _project_box(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    uv = points @ K.T
    uv = uv[:, :2] / uv[:, 2:3]
    return np.array([*uv.min(axis=0), *uv.max(axis=0)], dtype=np.float64)


def make_scene(model: HomaeModel, seed: int = 0) -> Scene:
    """Build the benchmark scene with the model's own MANO layer."""
    rng = np.random.default_rng(seed)
    h, w = IMAGE_HW
    K = np.array([[FOCAL_PX, 0, (w - 1) / 2], [0, FOCAL_PX, (h - 1) / 2], [0, 0, 1.0]])
    pose = torch.zeros(1, 48)
    pose[0, :3] = torch.tensor([0.3, -0.4, 0.2])
    pose[0, 3:] = torch.from_numpy(rng.normal(0.0, 0.15, 45)).float()
    with torch.no_grad():
        out = model.mano(pose.to(model.mano.faces.device), None, None)
    verts = out.vertices[0].cpu().double().numpy()
    root = out.joints[0, 0].cpu().double().numpy()
    verts = verts - root + np.asarray(HAND_ROOT)
    faces = model.mano.faces.cpu().numpy().astype(np.int64)
    hv, hf = close_wrist(verts, faces)
    mesh = ObjectLibrary.procedural([OBJECT_NAME]).get(OBJECT_NAME)
    ov = mesh.vertices + np.asarray(HAND_ROOT) + np.asarray(OBJECT_OFFSET)
    small = rng.integers(0, 256, (h // 16, w // 16, 3)).astype(np.float32)
    image = np.kron(small, np.ones((16, 16, 1), np.float32)).astype(np.uint8)
    return Scene(
        image=image,
        K=K,
        hand_box=_project_box(hv, K),
        obj_box=_project_box(ov, K),
        anchor=np.asarray(HAND_ROOT, dtype=np.float64),
        hand_verts=hv,
        hand_faces=hf,
        obj_verts=ov,
        obj_faces=mesh.faces.astype(np.int64),
    )


@dataclass
class CropInputs:
    """The scene as the Predictor feeds the model (batch of one crop)."""

    image: torch.Tensor  # (1,3,S,S) float in [0,1]
    K: torch.Tensor  # (1,3,3) crop intrinsics
    hand_box: torch.Tensor  # (1,4) crop pixels
    obj_box: torch.Tensor  # (1,4)
    anchor: torch.Tensor  # (1,3)


def crop_inputs(scene: Scene, model: HomaeModel, device: torch.device) -> CropInputs:
    """Crop the scene exactly as `Predictor.predict` does."""
    s = model.cfg.model.encoder.img_size
    box = union_crop_box(scene.hand_box, scene.obj_box, model.cfg.data.crop_scale)
    crop = crop_image(scene.image, scene.K, box, s)

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x)[None], dtype=torch.float32, device=device)

    img = torch.from_numpy(crop.image[None]).to(device).permute(0, 3, 1, 2).float() / 255.0
    return CropInputs(
        image=img,
        K=t(crop.K),
        hand_box=t(transform_box(crop.affine, scene.hand_box)),
        obj_box=t(transform_box(crop.affine, scene.obj_box)),
        anchor=t(scene.anchor),
    )


def fit_sdf_heads(
    model: HomaeModel,
    scene: Scene,
    device: torch.device,
    steps: int = 200,
    batch: int = 1024,
    seed: int = 0,
) -> dict[str, float]:
    """Fit both SDF heads to the scene's GT signed distances (encoder frozen, run once).

    Returns:
        Final mean absolute error per branch, metres (on the last batch).
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    inputs = crop_inputs(scene, model, device)
    clamp = model.cfg.loss.sdf_clamp_m
    model.eval()
    with torch.no_grad():
        enc = model.encode(inputs.image)
    errors = {}
    for branch, verts, faces in (
        ("hand", scene.hand_verts, scene.hand_faces),
        ("obj", scene.obj_verts, scene.obj_faces),
    ):
        mesh = prepare_mesh(verts, faces)
        pts, sdf = sample_sdf_points(
            mesh, 16 * batch, scene.anchor, rng, 0.01, 0.3, clamp, 1.0 / model.sdf_scale
        )
        # a sprinkle of grid-like far points keeps the far field from collapsing to zero
        far = scene.anchor + rng.uniform(-0.3, 0.3, (4 * batch, 3))
        pts = np.concatenate([pts, far])
        sdf = np.concatenate([sdf, np.clip(mesh_sdf(far, mesh), -clamp, clamp)])
        p_all = torch.as_tensor(pts, dtype=torch.float32, device=device)
        s_all = torch.as_tensor(sdf, dtype=torch.float32, device=device)
        head = model.sdf_hand if branch == "hand" else model.sdf_obj
        opt = torch.optim.Adam(head.parameters(), lr=1e-3)
        fn = model.sdf_fn(enc, inputs.K, inputs.anchor, branch)
        loss = torch.zeros(())
        for _ in range(steps):
            idx = torch.randint(0, p_all.shape[0], (batch,), device=device)
            pred = fn(p_all[idx][None])[0]
            loss = (pred - s_all[idx]).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        errors[branch] = float(loss.detach())
    model.eval()
    return errors


def analytic_sphere_sdf(centre: torch.Tensor, radius: float):
    """(B,M,3) -> (B,M) exact SDF of a sphere per image (centre (B,3), metres), for counts."""

    def fn(points: torch.Tensor) -> torch.Tensor:
        return (points - centre[:, None, :]).norm(dim=-1) - radius

    return fn


def aim_anchor_head(model: HomaeModel, scene: Scene) -> None:
    """Make the (untrained) anchor head predict the scene's hand root for the scene's crop.

    The last layer's weights are zeroed and its bias set to the root's (du, dv, d), so the
    Predictor runs GT-free (its own anchor) yet centres the grid where the fitted SDF lives.
    """
    ci = crop_inputs(scene, model, torch.device("cpu"))
    K = ci.K[0].double()
    s = float(model.cfg.model.encoder.img_size)
    root = torch.as_tensor(scene.anchor, dtype=torch.float64)
    uvw = K @ root
    u, v = float(uvw[0] / uvw[2]), float(uvw[1] / uvw[2])
    centre = (s - 1.0) / 2.0
    head = model.anchor_head
    d = float(np.log(root[2]) - np.log(float(K[0, 0]) * head.ref_size_m / s))
    last = head.mlp[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([(u - centre) / s, (v - centre) / s, d]))
