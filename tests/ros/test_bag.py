"""homae-bag: a rosbags-written input bag -> results bag (no rclpy needed), tiny model, roi."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.serde import SerdeError

from homae_ros.tools import bag_types
from homae_ros.tools.bag import BagOptions, StampIndex, main, process_bag

W, H = 160, 120
IMAGE = "/cam/image_raw"
INFO = "/cam/camera_info"
OBJECT = "006_mustard_bottle"
CHILDREN = {f"homae/{OBJECT}", "homae/hand_right"}


@pytest.fixture(scope="module")
def store():
    return bag_types.make_typestore()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from tests.ros.nodeutil import tiny_checkpoint

    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def estimator(checkpoint):
    from homae_model.estimation.detection import DetectionConfig
    from homae_model.estimation.estimator import FrameEstimator

    return FrameEstimator.load(
        checkpoint=str(checkpoint),
        device="cpu",
        backend="roi",
        detection=DetectionConfig(roi_object=OBJECT),
    )


# ------------------------------------------------------------------------------ bag writing
def _header(store, t: float):
    T = store.types
    sec = int(t)
    stamp = T["builtin_interfaces/msg/Time"](sec=sec, nanosec=round((t - sec) * 1e9))
    return T["std_msgs/msg/Header"](stamp=stamp, frame_id="cam_optical")


def _info(store, t: float):
    T, f = store.types, 300.0
    return T["sensor_msgs/msg/CameraInfo"](
        header=_header(store, t),
        height=H,
        width=W,
        distortion_model="plumb_bob",
        d=np.zeros(5),
        k=np.array([f, 0, (W - 1) / 2, 0, f, (H - 1) / 2, 0, 0, 1.0]),
        r=np.eye(3).ravel(),
        p=np.zeros(12),
        binning_x=0,
        binning_y=0,
        roi=T["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        ),
    )


def _rgb(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)


def _image(store, t: float, seed: int, encoding: str = "rgb8", data=None):
    return store.types["sensor_msgs/msg/Image"](
        header=_header(store, t),
        height=H,
        width=W,
        encoding=encoding,
        is_bigendian=0,
        step=W * 3,
        data=_rgb(seed).reshape(-1) if data is None else data,
    )


def _ns(t: float) -> int:
    return round(t * 1e9)


def write_bag(
    path: Path, store, frames: list[dict], infos: list[float], tf_at: float | None = None
) -> None:
    """frames: {"t", "log", "kind": good|truncated|encoding|corrupt|jpeg}; infos: stamps;
    tf_at: also one robot TF message on /tf at that time."""
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        if tf_at is not None:
            T = store.types
            robot = T["geometry_msgs/msg/TransformStamped"](
                header=_header(store, tf_at), child_frame_id="base",
                transform=T["geometry_msgs/msg/Transform"](
                    translation=T["geometry_msgs/msg/Vector3"](x=1.0, y=0.0, z=0.0),
                    rotation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
                ),
            )  # fmt: skip
            tf = T["tf2_msgs/msg/TFMessage"](transforms=[robot])
            ct = w.add_connection("/tf", "tf2_msgs/msg/TFMessage", typestore=store)
            w.write(ct, _ns(tf_at), store.serialize_cdr(tf, "tf2_msgs/msg/TFMessage"))
        ci = w.add_connection(IMAGE, "sensor_msgs/msg/Image", typestore=store)
        cj = w.add_connection(
            "/cam/image/compressed", "sensor_msgs/msg/CompressedImage", typestore=store
        )
        cc = (
            w.add_connection(INFO, "sensor_msgs/msg/CameraInfo", typestore=store) if infos else None
        )
        events = [(_ns(t) - 1000, "info", t) for t in infos] + [
            (f["log"], "image", f) for f in frames
        ]
        for log, kind, item in sorted(events, key=lambda e: e[0]):
            if kind == "info":
                w.write(
                    cc, log, store.serialize_cdr(_info(store, item), "sensor_msgs/msg/CameraInfo")
                )
                continue
            f, t = item, item["t"]
            if f["kind"] == "jpeg":
                _, jpg = cv2.imencode(".jpg", _rgb(3)[:, :, ::-1])
                msg = store.types["sensor_msgs/msg/CompressedImage"](
                    header=_header(store, t), format="jpeg", data=jpg.reshape(-1)
                )
                w.write(cj, log, store.serialize_cdr(msg, "sensor_msgs/msg/CompressedImage"))
                continue
            if f["kind"] == "truncated":
                msg = _image(store, t, 0, data=np.zeros(100, np.uint8))
            elif f["kind"] == "encoding":
                msg = _image(store, t, 0, encoding="weird8")
            else:
                msg = _image(store, t, int(t * 10))
            raw = store.serialize_cdr(msg, "sensor_msgs/msg/Image")
            w.write(ci, log, raw[:30] if f["kind"] == "corrupt" else raw)


def read_bag(path: Path, store) -> dict[str, list[tuple[int, object]]]:
    out: dict[str, list] = {}
    with Reader(path) as r:
        for conn, log, raw in r.messages():
            try:
                msg = store.deserialize_cdr(raw, conn.msgtype)
            except SerdeError:  # the corrupt input message, copied through as it was
                msg = None
            out.setdefault(conn.topic, []).append((log, msg))
    return out


# 0 good (exact camera_info), 1 good (camera_info 5 ms off: nearest), 2 truncated data,
# 3 unknown encoding, 4 corrupt CDR, 5 good (no camera_info near: latest).
FRAMES = [
    {"t": 10.0, "log": _ns(10.0) + 500, "kind": "good"},
    {"t": 10.1, "log": _ns(10.1) + 500, "kind": "good"},
    {"t": 10.2, "log": _ns(10.2) + 500, "kind": "truncated"},
    {"t": 10.3, "log": _ns(10.3) + 500, "kind": "encoding"},
    {"t": 10.4, "log": _ns(10.4) + 500, "kind": "corrupt"},
    {"t": 11.0, "log": _ns(11.0) + 500, "kind": "good"},
]
INFOS = [10.0, 10.105, 10.2, 10.3, 10.4]


@pytest.fixture(scope="module")
def in_bag(tmp_path_factory, store) -> Path:
    path = tmp_path_factory.mktemp("bags") / "in"
    write_bag(path, store, FRAMES, INFOS)
    return path


def _cdr(store, msg) -> bytes:
    return bytes(store.serialize_cdr(msg, msg.__msgtype__))


# ------------------------------------------------------------------------------ tests
def test_results_tf_markers_with_input_stamps_bad_frames_skipped(
    in_bag, tmp_path, store, estimator
):
    warnings: list[str] = []
    out = tmp_path / "out.mcap"
    opts = BagOptions(image_topic=IMAGE, progress=False, sync="approximate_or_latest")
    summary = process_bag(in_bag, out, estimator, opts, warnings.append)
    assert out.is_file()  # a single MCAP file
    good = [f for f in FRAMES if f["kind"] == "good"]
    data = read_bag(out, store)

    results = data["/homae_node/hand_object"]
    assert len(results) == len(good) == summary.processed == 3
    for (log, res), frame in zip(results, good, strict=True):
        assert log == frame["log"]  # log time = the image's log time
        sec, nsec = res.header.stamp.sec, res.header.stamp.nanosec
        assert sec * 10**9 + nsec == _ns(frame["t"])  # header stamp = the image's stamp
        assert res.header.frame_id == "cam_optical"
        assert len(res.hands) == 1 and res.objects[0].name == OBJECT
        joints = np.array([[p.x, p.y, p.z] for p in res.hands[0].joints])
        assert joints.shape == (21, 3) and np.all(np.isfinite(joints))
        assert res.hands[0].box.tolist() == [0.0, 0.0, W - 1.0, H - 1.0]
    # one hand, one object, tracked over the bag: the same ids in every result
    assert [(r.hands[0].track_id, r.objects[0].track_id) for _, r in results] == [(1, 1)] * 3

    tf = data["/tf"]
    assert [log for log, _ in tf] == [f["log"] for f in good]
    for (_, msg), frame in zip(tf, good, strict=True):
        assert {t.child_frame_id for t in msg.transforms} == CHILDREN
        assert all(
            t.header.stamp.sec * 10**9 + t.header.stamp.nanosec == _ns(frame["t"])
            for t in msg.transforms
        )
    # the hand frame sits at the wrist joint of the result
    hand_tf = next(t for t in tf[0][1].transforms if t.child_frame_id == "homae/hand_right")
    wrist = results[0][1].hands[0].joints[0]
    np.testing.assert_allclose(
        [
            hand_tf.transform.translation.x,
            hand_tf.transform.translation.y,
            hand_tf.transform.translation.z,
        ],
        [wrist.x, wrist.y, wrist.z],
        atol=1e-6,
    )

    marks = data["/homae_node/markers"]
    assert [log for log, _ in marks] == [f["log"] for f in good]
    first = marks[0][1].markers
    assert first[0].action == 3  # DELETEALL
    hand_mesh = next(m for m in first if m.ns == "hand_mesh")
    assert len(hand_mesh.points) == 1538 * 3
    assert {m.ns for m in first} >= {"hand_skeleton", "object_mesh", "object_axes"}

    # inputs copied through unchanged, with their log times
    assert [log for log, _ in data[IMAGE]] == [f["log"] for f in FRAMES]
    assert len(data[INFO]) == len(INFOS) and summary.copied == len(FRAMES) + len(INFOS)

    # bad frames: reported with topic + index, skipped
    reasons = {(s.topic, s.index): s.reason for s in summary.skipped}
    assert reasons == {
        (IMAGE, 2): "truncated_data",
        (IMAGE, 3): "unknown_encoding",
        (IMAGE, 4): "corrupt_message",
    }
    for index in (2, 3, 4):
        assert any(IMAGE in w and f"#{index}" in w for w in warnings), warnings
    assert summary.sync == {"exact": 1, "nearest": 1, "latest": 1}
    text = summary.format()
    assert "processed 3" in text and "truncated_data" in text and "corrupt_message" in text


def test_missing_camera_info_topic_is_a_clear_error(tmp_path, store, capsys, checkpoint):
    path = tmp_path / "no_info"
    write_bag(path, store, FRAMES[:2], infos=[])
    out = tmp_path / "out.mcap"
    rc = main(
        [
            "--in",
            str(path),
            "--out",
            str(out),
            "--checkpoint",
            str(checkpoint),
            "--detector",
            "roi",
            "--object",
            OBJECT,
            "--device",
            "cpu",
            "--image-topic",
            IMAGE,
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1 and not out.exists()
    assert "no camera_info topic" in err and INFO in err and IMAGE in err
    rc = main(
        [
            "--in",
            str(path),
            "--out",
            str(out),
            "--camera-info-topic",
            "/other/info",
            "--detector",
            "roi",
            "--object",
            OBJECT,
            "--image-topic",
            IMAGE,
        ]
    )
    assert rc == 1 and "/other/info is not in the bag" in capsys.readouterr().err


def test_cli_compressed_topic_folder_output_and_no_overwrite(tmp_path, store, checkpoint, capsys):
    path = tmp_path / "jpeg"
    # 4.0: before any camera_info and 1 s from the only one -> skipped (no_camera_info)
    frames = [{"t": t, "log": _ns(t), "kind": "jpeg"} for t in (4.0, 5.0)]
    write_bag(path, store, frames, infos=[5.0], tf_at=4.5)
    out = tmp_path / "out_dir"
    argv = [
        "--in",
        str(path),
        "--out",
        str(out),
        "--checkpoint",
        str(checkpoint),
        "--roi",
        "20",
        "10",
        "140",
        "110",
        "--object",
        OBJECT,
        "--device",
        "cpu",
        "--image-topic",
        "/cam/image/compressed",
        "--no-progress",
        "--debug-image",
    ]
    assert main(argv) == 0
    assert "skipped (no_matching_camera_info): 1 (message index 0)" in capsys.readouterr().out
    assert (out / "metadata.yaml").is_file()  # a rosbag2 folder
    data = read_bag(out, store)
    ((_, res),) = data["/homae_node/hand_object"]
    assert res.header.stamp.sec == 5
    # the input /tf is copied and the results' TF goes to the same topic, in log-time order
    assert [log for log, _ in data["/tf"]] == [_ns(4.5), _ns(5.0)]
    assert data["/tf"][0][1].transforms[0].child_frame_id == "base"
    assert {t.child_frame_id for t in data["/tf"][1][1].transforms} == CHILDREN
    with Reader(out) as r:
        assert len([c for c in r.connections if c.topic == "/tf"]) == 1
    assert res.hands[0].box.tolist() == [20.0, 10.0, 140.0, 110.0]
    ((_, dbg),) = data["/homae_node/debug_image"]
    assert (dbg.height, dbg.width, dbg.encoding) == (H, W, "rgb8")
    assert main(argv) == 1 and "exists" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0


def test_standins_give_the_same_messages_as_real_classes(
    in_bag, tmp_path, store, estimator, monkeypatch
):
    opts = BagOptions(image_topic=IMAGE, progress=False, copy_input=False)
    estimator.reset()
    process_bag(in_bag, tmp_path / "a.mcap", estimator, opts, lambda _: None)
    before = {k: sys.modules.get(k) for k in ("geometry_msgs.msg", "homae_ros.msg")}
    monkeypatch.setattr(bag_types, "_importable", lambda _name: False)  # no ROS at all
    estimator.reset()
    process_bag(in_bag, tmp_path / "b.mcap", estimator, opts, lambda _: None)
    assert {k: sys.modules.get(k) for k in before} == before  # sys.modules restored
    a, b = read_bag(tmp_path / "a.mcap", store), read_bag(tmp_path / "b.mcap", store)
    assert set(a) == set(b) == {"/homae_node/hand_object", "/tf", "/homae_node/markers"}
    for (_, ra), (_, rb) in zip(
        a["/homae_node/hand_object"], b["/homae_node/hand_object"], strict=True
    ):
        assert _cdr(store, ra) == _cdr(store, rb)
    for key in ("/tf", "/homae_node/markers"):
        assert [_cdr(store, m) for _, m in a[key]] == [_cdr(store, m) for _, m in b[key]], key


def test_stamp_index_exact_nearest_latest():
    idx = StampIndex([(100, 100, "a"), (200, 210, "b"), (300, 290, "c")], tolerance_ns=15)
    assert idx.match(200, 500) == ("b", "exact")
    assert idx.match(290, 500) == ("c", "nearest")
    assert idx.match(250, 250) == ("b", "latest")  # 50 ns off both: latest logged before
    assert idx.match(50, 99) is None  # nothing logged yet, nothing near
    assert idx.match(250, 250, "approximate") is None  # the node's rule drops it
    assert idx.match(290, 500, "exact") is None and idx.match(300, 0, "exact") == ("c", "exact")
    assert idx.match(100, 250, "latest_camera_info") == ("b", "latest")  # whatever the stamp
    assert idx.nearest_offset_ns(250) == -50 and idx.nearest_offset_ns(310) == -10
    with pytest.raises(ValueError, match="sync rule 'bogus'"):
        idx.match(100, 100, "bogus")
    assert len(StampIndex([], 10)) == 0


def test_bag_pairs_by_the_nodes_rule_and_names_loose_pairs(in_bag, tmp_path, estimator):
    """StampIndex and the node's StampPairer pair the same stamps; a loose pair is named."""
    from homae_ros.messages.stamps import StampPairer

    class Msg:
        def __init__(self, t: int) -> None:
            self.header = type("H", (), {"stamp": type("S", (), {"sec": 0, "nanosec": t})()})()

    infos = [100, 180, 260, 400]
    index = StampIndex([(t, t, t) for t in infos], tolerance_ns=30)
    for image in (100, 150, 175, 230, 300, 390, 500):
        pairs: list = []
        pairer = StampPairer(30e-9, lambda img, info, pairs=pairs: pairs.append(info))
        for t in infos:
            pairer.add_info(Msg(t))
        pairer.add_image(Msg(image))
        live = pairs[0].header.stamp.nanosec if pairs else None
        got = index.match(image, image)
        offline = got[0] if got is not None and got[1] != "latest" else None
        assert live == offline, image

    # the node's rule (default): message 5 has no camera_info within the slop and is skipped
    warnings: list[str] = []
    opts = BagOptions(image_topic=IMAGE, progress=False)
    summary = process_bag(in_bag, tmp_path / "node_rule.mcap", estimator, opts, warnings.append)
    assert [(s.index, s.reason) for s in summary.skipped if s.index == 5] == [
        (5, "no_matching_camera_info")
    ]
    assert summary.loose == [] and "latest" not in summary.sync
    assert any(f"{IMAGE} message #5" in w and "as the node would drop it" in w for w in warnings)

    warnings = []
    opts = BagOptions(image_topic=IMAGE, progress=False, sync="approximate_or_latest")
    summary = process_bag(in_bag, tmp_path / "loose.mcap", estimator, opts, warnings.append)
    assert summary.loose == [5] and summary.sync["latest"] == 1
    assert any(f"{IMAGE} message #5" in w and "paired loosely" in w for w in warnings), warnings
    assert "paired loosely" in summary.format() and "(message index 5)" in summary.format()


def test_to_rosbags_converts_and_names_bad_fields(store):
    class Obj:  # duck-typed HandPose with a wrong-sized mano_shape
        def __init__(self) -> None:
            self.side, self.score, self.pair_id = "right", 0.5, 0
            self.joints = [type("P", (), {"x": 1.0, "y": 2.0, "z": 3.0})() for _ in range(21)]
            self.mano_pose, self.mano_shape, self.box = np.zeros(48), np.zeros(9), np.arange(4.0)
            self.track_id, self.mano_transl = 1, np.zeros(3)
            self.wrist_pose = SimpleNamespace(
                position=SimpleNamespace(x=0.0, y=0.0, z=0.5),
                orientation=SimpleNamespace(x=0.0, y=0.0, z=0.0, w=1.0),
            )

    obj = Obj()
    with pytest.raises(ValueError, match="mano_shape"):
        bag_types.to_rosbags(obj, "homae_ros/msg/HandPose", store)
    obj.mano_shape = np.ones(10)
    msg = bag_types.to_rosbags(obj, "homae_ros/msg/HandPose", store)
    assert msg.mano_shape.dtype == np.float32 and msg.joints[20].z == 3.0
    back = store.deserialize_cdr(store.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)
    assert back.box.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_standin_defaults_match_rclpy_defaults(store):
    """Every message of the packages the builders use defaults like its rclpy class."""
    import importlib

    pytest.importorskip("geometry_msgs.msg", reason="no rclpy message packages to compare with")
    checked = 0
    for msgtype in sorted(store.types):
        pkg, kind, name = msgtype.split("/")
        if kind != "msg" or pkg not in ("std_msgs", "geometry_msgs", "visualization_msgs"):
            continue
        real = getattr(importlib.import_module(f"{pkg}.msg"), name)()
        standin = bag_types._standin_class(store, msgtype, {})()
        assert _cdr(store, bag_types.to_rosbags(real, msgtype, store)) == _cdr(
            store, bag_types.to_rosbags(standin, msgtype, store)
        ), msgtype
        checked += 1
    assert checked > 40


def test_raw_mcap_file_input_copies_with_hashed_definitions(in_bag, tmp_path, store, estimator):
    raw_file = next(in_bag.glob("*.mcap"))  # a single .mcap file: no hashes stored in it
    with Reader(raw_file) as r:
        assert all(c.digest == "" for c in r.connections)
    out = tmp_path / "out"
    opts = BagOptions(image_topic=IMAGE, progress=False, markers=False)
    summary = process_bag(raw_file, out, estimator, opts, lambda _: None)
    assert summary.processed == 2 and summary.copied == len(FRAMES) + len(INFOS)
    assert summary.skipped_by_reason()["no_matching_camera_info"] == 1  # the node's rule
    with Reader(out) as r:
        digests = {c.topic: (c.msgtype, c.digest) for c in r.connections}
    assert set(digests) == {IMAGE, INFO, "/cam/image/compressed", "/homae_node/hand_object", "/tf"}
    for msgtype, digest in digests.values():
        assert digest == store.hash_rihs01(msgtype)


def _estimate(seed: int = 0):
    from homae_model.detector.pairing import Detection, Pair
    from homae_model.estimation.estimator import PairEstimate
    from homae_model.inference import PairPrediction

    rng = np.random.default_rng(seed)
    box = np.array([10.0, 20.0, 90.0, 100.0])
    pred = PairPrediction(
        joints=rng.normal(size=(21, 3)) * 0.05 + [0, 0, 0.5],
        vertices=rng.normal(size=(778, 3)) * 0.05 + [0, 0, 0.5],
        mano_pose=rng.normal(size=48), mano_shape=rng.normal(size=10),
        hand_transl=np.zeros(3), obj_rot=np.zeros(3), obj_trans=np.array([0.1, 0.0, 0.6]),
        obj_rot_matrix=np.eye(3), crop_box=box, anchor=np.zeros(3), anchor_source="predicted",
        scores={"hand": 0.5},
    )  # fmt: skip
    pair = Pair(Detection("hand", 0.9, box), Detection(OBJECT, 0.8, box), 0)
    return PairEstimate(pair, pred, None)


def test_build_frame_messages_applies_the_target_transform(store):
    from homae_ros.messages.outputs import build_frame_messages

    est = _estimate()
    R = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 deg about z
    t = np.array([1.0, 2.0, 3.0])
    faces = np.array([[0, 1, 2], [2, 3, 4]])
    with bag_types.standin_messages(store, ("std_msgs", "geometry_msgs", "visualization_msgs",
                                            "builtin_interfaces", "homae_ros")):  # fmt: skip
        header = bag_types.message_class("std_msgs/msg/Header")(frame_id="base")
        out = build_frame_messages([est], header, faces, R_tf=R, t_tf=t, frame_prefix="hx")
        empty = build_frame_messages([], header, faces)
        no_markers = build_frame_messages([est], header, faces, marker_options=None)
        res = bag_types.to_rosbags(out.result, "homae_ros/msg/HandObjectResult", store)
    joints = np.array([[p.x, p.y, p.z] for p in res.hands[0].joints])
    np.testing.assert_allclose(joints, est.prediction.joints @ R.T + t, atol=1e-9)
    pos = res.objects[0].pose.position
    np.testing.assert_allclose([pos.x, pos.y, pos.z], R @ [0.1, 0.0, 0.6] + t, atol=1e-9)
    assert res.objects[0].score == pytest.approx(0.9 * 0.8 * 0.5)
    assert res.header.frame_id == "base"
    assert [tf.child_frame_id for tf in out.transforms] == [f"hx/{OBJECT}", "hx/hand_right"]
    assert all(tf.header.frame_id == "base" for tf in out.transforms)
    # The hand frame is the wrist: MANO's global orientation, turned into the target frame;
    # the message's mano_pose[:3], wrist pose and MANO translation are in that frame too.
    from scipy.spatial.transform import Rotation

    wrist_R = R @ Rotation.from_rotvec(est.prediction.mano_pose[:3]).as_matrix()
    q = out.transforms[1].transform.rotation
    np.testing.assert_allclose(
        Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix(), wrist_R, atol=1e-9
    )
    hand = res.hands[0]
    got_R = Rotation.from_rotvec(np.asarray(hand.mano_pose[:3], dtype=np.float64)).as_matrix()
    np.testing.assert_allclose(got_R, wrist_R, atol=1e-5)  # float32 in the message
    np.testing.assert_allclose(hand.mano_pose[3:], est.prediction.mano_pose[3:], rtol=1e-6)
    wp = hand.wrist_pose.position
    np.testing.assert_allclose([wp.x, wp.y, wp.z], joints[0], atol=1e-9)
    j0 = est.prediction.joints[0]  # MANO root J0 = wrist - transl, fixed by the shape
    np.testing.assert_allclose(
        hand.mano_transl, R @ j0 + t - (j0 - est.prediction.hand_transl), atol=1e-6
    )
    assert hand.track_id == 1 and res.objects[0].track_id == 1
    hand_mesh = next(m for m in out.markers.markers if m.ns == "hand_mesh")
    assert len(hand_mesh.points) == faces.size  # triangle points from the given faces
    assert len(empty.result.hands) == 0 and empty.transforms == []
    assert [m.action for m in empty.markers.markers] == [3]  # only DELETEALL
    assert no_markers.markers is None and len(no_markers.transforms) == 2
