from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from homae_model.config import DataConfig
from homae_model.data.pipeline import GRID_KEYS, TRAINING_KEYS, SamplePipeline, snap_to_grid
from homae_model.data.schema import RawSample
from homae_model.data.sdf import merge_duplicate_vertices, mesh_sdf, prepare_mesh
from homae_model.data.transforms import mirror_sample
from homae_model.hand.wrist import close_wrist
from homae_model.objects.library import ObjectLibrary

REPO = Path(__file__).resolve().parents[2]
MANO_PATH = REPO / "homae_model/assets/hand/MANO_RIGHT.pkl"
OBJECT = "003_cracker_box"
K_FULL = np.array([[600.0, 0.0, 160.0], [0.0, 600.0, 120.0], [0.0, 0.0, 1.0]])
CFG = DataConfig(image_size=64, num_hand_points=120, num_obj_points=60, rot_prob=1.0)


def project(K, X):
    uv = X @ K.T
    return uv[:, :2] / uv[:, 2:]


@pytest.fixture(scope="module")
def objects() -> ObjectLibrary:
    return ObjectLibrary.procedural([OBJECT, "006_mustard_bottle"])


@pytest.fixture(scope="module")
def pipelines(objects):
    if not MANO_PATH.is_file():
        pytest.fail(f"bundled hand model missing: {MANO_PATH}")
    return SamplePipeline(CFG, MANO_PATH, objects, train=True), SamplePipeline(
        CFG, MANO_PATH, objects, train=False
    )


def make_raw(pipeline: SamplePipeline, seed: int = 0) -> RawSample:
    rng = np.random.default_rng(seed)
    pose = np.concatenate([rng.normal(0, 0.6, 3), rng.normal(0, 0.2, 45)])
    shape = rng.normal(0, 0.5, 10)
    transl = np.array([0.02, -0.01, 0.5])
    with torch.no_grad():
        out = pipeline.mano(
            torch.tensor(pose, dtype=torch.float32)[None],
            torch.tensor(shape, dtype=torch.float32)[None],
            torch.tensor(transl, dtype=torch.float32)[None],
        )
    joints = out.joints[0].double().numpy()
    verts = out.vertices[0].double().numpy()
    obj_rot = rng.normal(0, 1, 3)
    obj_trans = joints[0] + np.array([0.05, 0.02, 0.05])
    corners = (
        pipeline.objects.get(OBJECT).corners @ Rotation.from_rotvec(obj_rot).as_matrix().T
        + obj_trans
    )
    uv = project(K_FULL, joints)
    cuv = project(K_FULL, corners)
    vuv = project(K_FULL, verts)
    return RawSample(
        image=rng.integers(0, 255, (240, 320, 3), dtype=np.uint8),
        K=K_FULL.copy(),
        side="right",
        mano_pose=pose,
        mano_shape=shape,
        mano_transl=transl,
        hand_joints=joints,
        hand_joints_2d=uv,
        obj_name=OBJECT,
        obj_rot=obj_rot,
        obj_trans=obj_trans,
        hand_box=np.concatenate([vuv.min(0), vuv.max(0)]),
        obj_box=np.concatenate([cuv.min(0), cuv.max(0)]),
        hand_visible=0.7,
        source=f"test/{seed}",
    ).validate()


def box_sdf(p, half):
    q = np.abs(p) - half
    return np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(axis=1), 0.0)


def test_training_dict_has_exactly_the_designed_keys_shapes_and_dtypes(pipelines):
    train, _ = pipelines
    d = train(make_raw(train), np.random.default_rng(0))
    assert tuple(d) == TRAINING_KEYS
    S, Nh, No = 64, 120, 60
    shapes = {
        "image": (3, S, S), "K": (3, 3), "hand_joints": (21, 3), "hand_verts": (778, 3),
        "mano_pose": (48,), "mano_shape": (10,), "obj_rot": (3,), "obj_trans": (3,), "obj_id": (),
        "obj_corners": (8, 3), "hand_box": (4,), "obj_box": (4,), "hand_points": (Nh, 3),
        "hand_sdf": (Nh,), "obj_points": (No, 3), "obj_sdf": (No,), "anchor": (3,),
        "hand_visible": (), "obj_visible": (), "obj_model_points": (256, 3),
    }  # fmt: skip
    for key, shape in shapes.items():
        assert tuple(d[key].shape) == shape, key
        assert d[key].dtype == (torch.int64 if key == "obj_id" else torch.float32), key
    assert 0.0 <= float(d["image"].min()) and float(d["image"].max()) <= 1.0
    assert int(d["obj_id"]) == train.objects.index(OBJECT)
    torch.testing.assert_close(d["anchor"], d["hand_joints"][0])
    assert float(d["hand_visible"]) == pytest.approx(0.7) and float(d["obj_visible"]) == 1.0


@pytest.mark.parametrize("seed", range(4))
def test_augmented_labels_are_consistent(pipelines, seed):
    train, _ = pipelines
    raw = make_raw(train, seed)
    d = train(raw, np.random.default_rng(100 + seed))
    K = d["K"].double().numpy()
    joints = d["hand_joints"].double().numpy()
    verts = d["hand_verts"].double().numpy()
    # 2D: crop K projection of the crop-frame joints vs the crop's view of the 2D labels
    box = d["hand_box"].numpy()
    vuv = project(K, verts)
    assert np.all(vuv >= box[:2] - 0.5) and np.all(vuv <= box[2:] + 0.5)
    # rotation preserved distances between joints and the mesh
    np.testing.assert_allclose(
        np.linalg.norm(joints - joints[0], axis=1),
        np.linalg.norm(raw.hand_joints - raw.hand_joints[0], axis=1),
        atol=1e-5,
    )
    # MANO: the dict's pose/shape reproduce the dict's mesh and joints up to the root position
    with torch.no_grad():
        out = train.mano(d["mano_pose"][None], d["mano_shape"][None], None)
    offset = joints[0] - out.joints[0, 0].double().numpy()
    np.testing.assert_allclose(out.vertices[0].double().numpy() + offset, verts, atol=2e-5)
    np.testing.assert_allclose(out.joints[0].double().numpy() + offset, joints, atol=2e-5)
    # object: corners and SDF agree with the pose (box object: analytic SDF in its frame)
    R = Rotation.from_rotvec(d["obj_rot"].double().numpy()).as_matrix()
    t = d["obj_trans"].double().numpy()
    mesh = train.objects.get(OBJECT)
    np.testing.assert_allclose(mesh.corners @ R.T + t, d["obj_corners"].double().numpy(), atol=1e-5)
    local = (d["obj_points"].double().numpy() - t) @ R
    half = 0.5 * (mesh.vertices.max(0) - mesh.vertices.min(0))
    np.testing.assert_allclose(
        d["obj_sdf"].double().numpy(), np.clip(box_sdf(local, half), -0.05, 0.05), atol=1e-5
    )
    # hand SDF: clamped, mostly near the surface, joints lie inside the mesh
    hand_sdf = d["hand_sdf"].numpy()
    assert np.abs(hand_sdf).max() <= 0.05 + 1e-7
    assert np.median(np.abs(hand_sdf[:108])) < 0.01
    assert np.all(np.abs(d["hand_points"][108:].numpy() - joints[0]) <= 1 / 3.1 + 1e-6)
    # the wrist-capped hand is watertight (exact pseudo-normal sign) and holds its joints
    closed = prepare_mesh(*close_wrist(verts, train._faces))
    assert closed.edge_normals is not None
    # no two hand vertices coincide, so the pipeline may skip the welding search
    _, remap = merge_duplicate_vertices(closed.vertices)
    np.testing.assert_array_equal(remap, np.arange(len(closed.vertices)))
    unwelded = prepare_mesh(*close_wrist(verts, train._faces), merge_duplicates=False)
    np.testing.assert_array_equal(unwelded.faces, closed.faces)
    inner = [1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19]
    assert np.all(mesh_sdf(joints[inner], closed) < 0)
    # points are in the crop frame: most near-surface points project inside the crop
    pts = project(K, d["hand_points"].double().numpy())
    assert np.mean((pts > -10) & (pts < 74)) > 0.9


def test_projection_lands_on_transformed_2d_joints(pipelines):
    train, _ = pipelines
    raw = make_raw(train, 7)
    for seed in range(5):
        rng = np.random.default_rng(seed)
        d = train(raw, rng)
        # the crop's affine is not in the dict; rebuild it from the same draws
        from homae_model.data.transforms import jitter_box, sample_augmentation
        from homae_model.geometry.crop import crop_camera, transform_points_2d, union_crop_box

        rng = np.random.default_rng(seed)
        params = sample_augmentation(CFG, rng)
        box = jitter_box(union_crop_box(raw.hand_box, raw.obj_box, CFG.crop_scale), params)
        K_crop, affine, _ = crop_camera(raw.K, box, CFG.image_size, params.rotation_deg)
        torch.testing.assert_close(d["K"], torch.tensor(K_crop, dtype=torch.float32))
        uv2d = transform_points_2d(affine, raw.hand_joints_2d)
        assert np.abs(project(K_crop, d["hand_joints"].double().numpy()) - uv2d).max() < 0.5


def test_evaluation_mode_keeps_the_camera_frame_and_is_deterministic(pipelines):
    train, test = pipelines
    raw = make_raw(test, 3)
    d = test(raw, np.random.default_rng(0))
    np.testing.assert_allclose(d["hand_joints"].double().numpy(), raw.hand_joints, atol=1e-6)
    np.testing.assert_allclose(d["obj_trans"].double().numpy(), raw.obj_trans, atol=1e-6)
    np.testing.assert_allclose(d["K"][0, 0].item(), d["K"][1, 1].item())
    a = train(raw, np.random.default_rng(5))
    b = train(raw, np.random.default_rng(5))
    for key in TRAINING_KEYS:
        torch.testing.assert_close(a[key], b[key])


def test_left_hand_is_mirrored_to_the_right(pipelines):
    _, test = pipelines
    raw = make_raw(test, 4)
    # a left sample whose mirror image is `raw` (mirroring is an involution)
    left = replace(mirror_sample(replace(raw, side="left")), side="left")
    d_left = test(left, np.random.default_rng(0))
    d_right = test(raw, np.random.default_rng(0))
    for key in (
        "image",
        "K",
        "hand_joints",
        "hand_verts",
        "mano_pose",
        "obj_corners",
        "hand_box",
        "obj_box",
    ):
        torch.testing.assert_close(d_left[key], d_right[key], atol=1e-4, rtol=1e-5)
    # the box object is symmetric, so its mirrored model is the same box: analytic SDF check
    R = Rotation.from_rotvec(d_left["obj_rot"].double().numpy()).as_matrix()
    local = (d_left["obj_points"].double().numpy() - d_left["obj_trans"].double().numpy()) @ R
    mesh = test.objects.get(OBJECT)
    half = 0.5 * (mesh.vertices.max(0) - mesh.vertices.min(0))
    want = np.clip(box_sdf(local, half), -0.05, 0.05)
    np.testing.assert_allclose(d_left["obj_sdf"].double().numpy(), want, atol=1e-5)
    # model points: the same subset of the model's vertices for every sample, x-mirrored left
    verts = {tuple(v) for v in np.round(mesh.vertices, 6)}
    right_pts = d_right["obj_model_points"].double().numpy()
    assert all(tuple(v) in verts for v in np.round(right_pts, 6))
    again = test(make_raw(test, 5), np.random.default_rng(1))["obj_model_points"]
    torch.testing.assert_close(again, d_right["obj_model_points"])
    np.testing.assert_allclose(
        d_left["obj_model_points"].double().numpy(), right_pts * [-1.0, 1.0, 1.0], atol=1e-6
    )


def test_bad_samples_name_their_source(pipelines):
    _, test = pipelines
    raw = make_raw(test, 5)
    with pytest.raises(ValueError, match=r"test/5.*unknown object"):
        test(replace(raw, obj_name="999_nothing"), np.random.default_rng(0))
    bad = replace(raw, mano_pose=np.full(48, np.nan))
    with pytest.raises(ValueError, match=r"test/5.*mano_pose"):
        test(bad, np.random.default_rng(0))


def _in_box(K, pts, box):
    uv = project(K, pts)
    return (uv[:, 0] >= box[0]) & (uv[:, 0] <= box[2]) & (uv[:, 1] >= box[1]) & (uv[:, 1] <= box[3])


@pytest.mark.parametrize("fraction", [0.0, 0.4])
def test_frustum_samples_supervise_the_sdf_where_the_voxel_search_looks(objects, fraction):
    # The voxel search ranks the grid voxels that project inside the hand box; the SDF must be
    # taught there away from the surface too, so that |SDF| grows along the camera ray.
    cfg = replace(CFG, frustum_fraction=fraction, rot_prob=0.0)
    pipe = SamplePipeline(cfg, MANO_PATH, objects, train=False)
    d = pipe(make_raw(pipe, 3), np.random.default_rng(0))
    K = d["K"].double().numpy()
    pts, sdf = d["hand_points"].double().numpy(), d["hand_sdf"].numpy()
    off_surface_in_box = _in_box(K, pts, d["hand_box"].numpy()) & (np.abs(sdf) > 0.01)
    n = len(pts)
    if fraction == 0.0:
        assert off_surface_in_box.sum() < 0.05 * n  # the old sampler: almost nothing there
    else:
        assert off_surface_in_box.sum() > 0.25 * n
        inside = pts[-round(fraction * n) :]
        assert np.all(
            _in_box(K, inside, d["hand_box"].numpy() + np.array([-1e-6, -1e-6, 1e-6, 1e-6]))
        )
        assert np.all(np.abs(inside - d["anchor"].numpy()) <= 1 / 3.1 + 1e-6)
        # along the ray: deeper offsets from the surface have larger |SDF| on average
        depth_gap = np.abs(sdf[-round(fraction * n) :])
        assert depth_gap.max() > 0.03 and np.median(depth_gap) > 0.01


def test_grid_points_are_the_inference_voxels_nearest_the_surface(objects):
    cfg = replace(CFG, grid_points=True, frustum_fraction=0.3, rot_prob=0.0)
    pipe = SamplePipeline(cfg, MANO_PATH, objects, train=False, grid_res=64)
    d = pipe(make_raw(pipe, 4), np.random.default_rng(1))
    assert set(d) == set(TRAINING_KEYS) | set(GRID_KEYS)
    anchor = d["anchor"].double().numpy()
    for name, n in (("hand", 120), ("obj", 60)):
        pts = d[f"{name}_points"].double().numpy()
        assert pts.shape == (n, 3) and d[f"{name}_sdf_points"].shape == (n, 3)
        # on the cell centres of the 64^3 grid over anchor +- 1/3.1 m
        cell = 2.0 / 3.1 / 64
        idx = (pts - anchor + 1 / 3.1) / cell - 0.5
        np.testing.assert_allclose(idx, np.round(idx), atol=1e-3)
        # within a cell's half diagonal of the surface, mostly distinct
        assert np.abs(d[f"{name}_sdf"].numpy()).max() <= 0.5 * np.sqrt(3) * cell + 1e-6
        assert len(np.unique(np.round(idx), axis=0)) > 0.9 * n


def test_snap_to_grid_matches_the_voxel_grid():
    from homae_model.geometry.voxels import grid_points

    res, half, anchor = 8, 0.3, np.array([0.1, -0.05, 0.6])
    centres = grid_points(res).double().numpy() * half + anchor
    rng = np.random.default_rng(0)
    pts = centres[rng.integers(0, len(centres), 50)] + rng.uniform(-0.49, 0.49, (50, 3)) * (
        2 * half / res
    )
    snapped = snap_to_grid(pts, anchor, half, res)
    d = np.linalg.norm(snapped[:, None] - centres[None], axis=-1).min(axis=1)
    assert d.max() < 1e-9


def test_grid_ray_jitter_moves_training_points_along_their_rays_with_their_true_sdf(objects):
    cfg = replace(CFG, grid_points=True, grid_ray_jitter=0.05, rot_prob=0.0, augment=False)
    train = SamplePipeline(cfg, MANO_PATH, objects, train=True, grid_res=64)
    still = SamplePipeline(replace(cfg, grid_ray_jitter=0.0), MANO_PATH, objects, True, grid_res=64)
    evaluation = SamplePipeline(cfg, MANO_PATH, objects, train=False, grid_res=64)
    raw = make_raw(train, 4)
    moved = train(raw, np.random.default_rng(1))
    base = still(raw, np.random.default_rng(1))
    # evaluation keeps the voxels nearest the surface (the "GT-SDF points" of homae-train)
    held = evaluation(raw, np.random.default_rng(1))
    cell = 2.0 / 3.1 / 64
    assert np.abs(held["hand_sdf"].numpy()).max() <= 0.5 * np.sqrt(3) * cell + 1e-6
    anchor = moved["anchor"].double().numpy()
    for name in ("hand", "obj"):
        p1 = moved[f"{name}_points"].double().numpy()
        idx = (p1 - anchor + 1 / 3.1) / cell - 0.5
        np.testing.assert_allclose(idx, np.round(idx), atol=1e-3)  # still grid cells
        assert np.abs(base[f"{name}_sdf"].numpy()).max() <= 0.5 * np.sqrt(3) * cell + 1e-6
        # the targets follow the points: many now lie off the surface (a ray through a thin
        # hand meets its other side), none did before
        assert np.mean(np.abs(moved[f"{name}_sdf"].numpy()) > cell) > 0.1
    # the hand's points are drawn first, so point i of both is the same voxel before the move
    p0, p1 = base["hand_points"].double().numpy(), moved["hand_points"].double().numpy()
    depth_moved = np.abs(np.linalg.norm(p1, axis=1) - np.linalg.norm(p0, axis=1))
    assert np.median(depth_moved) > 0.01 and depth_moved.max() < 0.05 + 2 * cell
    # sideways no more than the snapping
    r0 = p0 / np.linalg.norm(p0, axis=1, keepdims=True)
    assert np.linalg.norm(np.cross(p1, r0), axis=1).max() < 2 * cell
    np.testing.assert_array_equal(moved["image"].numpy(), base["image"].numpy())
