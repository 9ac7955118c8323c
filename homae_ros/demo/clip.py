"""`make demo`: the whole system on the bundled default, no downloads, no camera.

1. `homae-synth --sequence` makes a hand-object clip (approach, grasp, lift) with camera_info
   (in a subprocess: the renderer's GL driver and the model's libraries do not share a process);
2. the real `homae_node` starts as its own process (bundled synthetic-trained HOMAE and detector
   weights, the project's MANO-format hand, config/homae.yaml);
3. a synthetic camera node plays the clip over loopback at its frame rate and records what the
   node publishes (results, /tf child frames, /diagnostics); then it plays the clip twice more
   one frame at a time (each frame sent once the previous result is back, so every frame is
   estimated), first as configured, then after setting `smoothing.enabled := true` on the
   running node;
4. `demo_out/` gets summary.json (frames, drops, latency, MJE and ADD-S against the clip's
   ground truth of the first play; `tracking`: identity switches, object name changes, TF
   child frames, jitter and MJE raw vs filtered), overlay pictures, a 3D plot and a rosbag2
   (MCAP) of inputs and outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from homae_ros.messages.stamps import stamp_ns

if TYPE_CHECKING:
    from homae_ros.messages.intrinsics import CameraInfoFields

REPO = Path(__file__).resolve().parents[2]  # homae_ros/demo/clip.py -> the repository
DEFAULT_OUT = REPO / "demo_out"
CLIP_FRAMES = 60
CLIP_FPS = 10.0
CLIP_SIZE = "320x240"
CLIP_SEED = 7
NODE_START_TIMEOUT_S = 90.0
IMAGE_TOPIC = "/demo_camera/image_raw"
INFO_TOPIC = "/demo_camera/camera_info"
RESULT_TOPIC = "/homae_node/hand_object"
MARKER_TOPIC = "/homae_node/markers"
SMOOTHING = {"smoothing.enabled": True}
"""Set on the running node before the last play (the constants are config/homae.yaml's)."""
LOCKSTEP_TIMEOUT_S = 10.0
"""Longest wait for one frame's result in the lockstep plays."""
PLAY_GAP_S = 2.0
"""Stamp gap between plays (longer than smoothing.max_gap_s: the filters restart)."""


def log(text: str) -> None:
    """Progress line on stdout."""
    print(f"[demo] {text}", flush=True)


DEMO_LOOK = ["--uniform-skin"]
"""The demo clips' hand look: one skin colour, as in the scenes the bundled model was trained on
(and the clip that weights/demo/eval_demo_clip.json and the README's demo figures describe)."""


def reusable_clip(clip: Path, frames: int, seed: int) -> bool:
    """True when `clip` holds a homae-synth clip of `frames` frames, `seed`, in the demo's look.

    The demo's look is `DEMO_LOOK`: meta.json without ``"uniform_skin": false``.
    """
    meta = clip / "meta.json"
    if not meta.is_file():
        return False
    m = json.loads(meta.read_text())
    return m.get("count") == frames and m.get("seed") == seed and m.get("uniform_skin", True)


def make_clip(out: Path) -> Path:
    """Generate (or reuse) the demo clip; returns its folder."""
    clip = out / "clip"
    if reusable_clip(clip, CLIP_FRAMES, CLIP_SEED):
        log(f"reusing the clip in {clip}")
        return clip
    log(f"generating a {CLIP_FRAMES}-frame hand-object clip (homae-synth --sequence)")
    cmd = [sys.executable, "-m", "homae_model.cli.synth", "--out", str(clip), "--sequence"]
    cmd += ["--frames", str(CLIP_FRAMES), "--fps", str(CLIP_FPS), "--size", CLIP_SIZE]
    cmd += ["--seed", str(CLIP_SEED), "--quiet", *DEMO_LOOK]
    subprocess.run(cmd, check=True)
    return clip


def node_command(params_file: Path, extra: list[str]) -> list[str]:
    """The installed homae_node with the demo's remappings."""
    prefix = os.environ.get("AMENT_PREFIX_PATH", "").split(":")
    exe = next(
        (Path(p) / "lib" / "homae_ros" / "homae_node" for p in prefix
         if (Path(p) / "lib" / "homae_ros" / "homae_node").is_file()),
        None,
    )  # fmt: skip
    if exe is None:
        raise FileNotFoundError(
            "homae_node is not installed: run `make setup` (colcon build) and source "
            "install/setup.bash, or use `make demo`"
        )
    cmd = [sys.executable, str(exe), "--ros-args", "--params-file", str(params_file)]
    cmd += ["-r", f"image:={IMAGE_TOPIC}", "-r", f"camera_info:={INFO_TOPIC}"]
    return cmd + extra


@dataclass
class Recording:
    """What the demo camera sent and what came back."""

    sent: dict[int, float] = field(default_factory=dict)  # stamp ns -> send time (play 1)
    results: list[tuple[float, Any]] = field(default_factory=list)  # (receive time, msg)
    raw: list[tuple[str, str, int, bytes]] = field(default_factory=list)  # topic, type, ns, cdr
    raw_sent: dict[int, float] = field(default_factory=dict)  # the same for play 2 (lockstep)
    raw_results: list[tuple[float, Any]] = field(default_factory=list)
    filtered_sent: dict[int, float] = field(default_factory=dict)  # play 3 (smoothing on)
    filtered_results: list[tuple[float, Any]] = field(default_factory=list)
    tf_children: set[str] = field(default_factory=set)
    diagnostics: dict[str, float] = field(default_factory=dict)  # the latest values
    smoothing: dict[str, Any] = field(default_factory=dict)


def play_clip(clip: Path, node_proc: subprocess.Popen) -> tuple[Recording, Any]:
    """Publish the clip at its frame rate and record the node's outputs."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.parameter_client import AsyncParameterClient
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header
    from tf2_msgs.msg import TFMessage
    from visualization_msgs.msg import MarkerArray

    from homae_model.data.synthetic import SyntheticSource
    from homae_ros.messages.conversions import rgb_to_image
    from homae_ros.msg import HandObjectResult

    source = SyntheticSource(clip)
    info_yaml = _load_camera_info(clip)
    rec = Recording()
    rclpy.init()
    node = rclpy.create_node("demo_camera")
    image_pub = node.create_publisher(Image, IMAGE_TOPIC, qos_profile_sensor_data)
    info_pub = node.create_publisher(CameraInfo, INFO_TOPIC, qos_profile_sensor_data)
    out_qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)

    phase = {"name": "live"}
    by_phase = {"live": rec.results, "raw": rec.raw_results, "filtered": rec.filtered_results}

    def record(topic: str, type_name: str):
        def cb(msg: Any) -> None:
            now = time.monotonic()
            rec.raw.append((topic, type_name, time.time_ns(), bytes(serialize_message(msg))))
            if topic == RESULT_TOPIC:
                by_phase[phase["name"]].append((now, msg))

        return cb

    def on_diagnostics(msg: Any) -> None:
        for status in msg.status:
            if status.name.startswith("homae_node"):
                rec.diagnostics = {kv.key: float(kv.value) for kv in status.values}

    node.create_subscription(
        TFMessage, "/tf", lambda m: rec.tf_children.update(t.child_frame_id for t in m.transforms),
        QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE),
    )  # fmt: skip
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, out_qos)

    node.create_subscription(
        HandObjectResult, RESULT_TOPIC, record(RESULT_TOPIC, "homae_ros/msg/HandObjectResult"),
        out_qos,
    )  # fmt: skip
    node.create_subscription(
        MarkerArray, MARKER_TOPIC, record(MARKER_TOPIC, "visualization_msgs/msg/MarkerArray"),
        out_qos,
    )  # fmt: skip
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        log("waiting for homae_node to load its model and subscribe")
        deadline = time.monotonic() + NODE_START_TIMEOUT_S
        while image_pub.get_subscription_count() == 0 or not node.count_publishers(RESULT_TOPIC):
            if node_proc.poll() is not None:
                raise RuntimeError(f"homae_node exited with code {node_proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("homae_node did not come up in time")
            executor.spin_once(timeout_sec=0.1)
        base = time.time_ns()

        def play(sent: dict[int, float], results: list, base_ns: int, lockstep: bool) -> None:
            how = "one frame at a time" if lockstep else f"at {CLIP_FPS:g} fps"
            log(f"playing {len(source)} frames {how}")
            t0 = time.monotonic()
            for i in range(len(source)):
                target = t0 + i / CLIP_FPS
                while time.monotonic() < target and not lockstep:
                    executor.spin_once(timeout_sec=max(0.0, min(0.01, target - time.monotonic())))
                sample = source[i]
                sent_ns = base_ns + int(i * 1e9 / CLIP_FPS)
                header = Header(frame_id=info_yaml.frame_id or "demo_camera_optical_frame")
                header.stamp.sec, header.stamp.nanosec = divmod(sent_ns, 1_000_000_000)
                img = rgb_to_image(sample.image, header, "rgb8")
                info = _camera_info_msg(info_yaml, header)
                sent[sent_ns] = time.monotonic()
                info_pub.publish(info)
                image_pub.publish(img)
                rec.raw.append(
                    (INFO_TOPIC, "sensor_msgs/msg/CameraInfo", sent_ns,
                     bytes(serialize_message(info)))
                )  # fmt: skip
                rec.raw.append(
                    (IMAGE_TOPIC, "sensor_msgs/msg/Image", sent_ns, bytes(serialize_message(img)))
                )
                deadline = time.monotonic() + LOCKSTEP_TIMEOUT_S
                while lockstep and time.monotonic() < deadline:  # wait for this frame's result
                    executor.spin_once(timeout_sec=0.02)
                    if results and stamp_ns(results[-1][1].header) == sent_ns:
                        break
            # Let the last frames come back.
            end = time.monotonic() + 5.0
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.05)
                if results and stamp_ns(results[-1][1].header) == max(sent):
                    break

        play(rec.sent, rec.results, base, lockstep=False)
        # The temporal comparison needs every frame: two more plays, each frame sent once the
        # previous result is back (stamps keep the clip's frame rate), first as configured
        # (smoothing off), then with smoothing switched on in the running node.
        gap_ns = int((len(source) / CLIP_FPS + PLAY_GAP_S) * 1e9)
        phase["name"] = "raw"
        play(rec.raw_sent, rec.raw_results, base + gap_ns, lockstep=True)
        log("setting " + ", ".join(f"{k} := {v}" for k, v in SMOOTHING.items()))
        client = AsyncParameterClient(node, "homae_node")
        if not client.wait_for_services(timeout_sec=10.0):
            raise RuntimeError("homae_node's parameter services did not come up")
        future = client.set_parameters([Parameter(k, value=v) for k, v in SMOOTHING.items()])
        executor.spin_until_future_complete(future, timeout_sec=10.0)
        if not future.done() or not all(r.successful for r in future.result().results):
            raise RuntimeError(f"setting {SMOOTHING} on homae_node failed: {future.result()}")
        names = ["smoothing.min_cutoff_hz", "smoothing.beta", "smoothing.d_cutoff_hz"]
        got = client.get_parameters(names)
        executor.spin_until_future_complete(got, timeout_sec=10.0)
        rec.smoothing = dict(SMOOTHING)
        if got.done():
            rec.smoothing.update(
                {k: v.double_value for k, v in zip(names, got.result().values, strict=True)}
            )
        phase["name"] = "filtered"
        play(rec.filtered_sent, rec.filtered_results, base + 2 * gap_ns, lockstep=True)
        end = time.monotonic() + 2.5  # one more /diagnostics period
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return rec, source


def _load_camera_info(clip: Path) -> CameraInfoFields:
    import yaml

    from homae_ros.messages.intrinsics import parse_camera_info

    path = clip / "camera_info.yaml"
    return parse_camera_info(yaml.safe_load(path.read_text()), str(path))


def _camera_info_msg(fields: CameraInfoFields, header: Any) -> Any:
    from sensor_msgs.msg import CameraInfo

    intr = fields.intrinsics
    info = CameraInfo(width=int(intr.width or 0), height=int(intr.height or 0))
    info.header = header
    info.distortion_model = fields.distortion_model
    info.k = [float(v) for v in intr.K.ravel()]
    info.d = [float(v) for v in fields.d]
    info.r = [float(v) for v in fields.r]
    info.p = [float(v) for v in fields.p]
    return info


def evaluate(
    rec: Recording, source: Any
) -> tuple[dict[str, Any], list[tuple[int, Any]], dict[int, dict[str, float]]]:
    """Per-frame accuracy against the clip's ground truth.

    Returns:
        (summary, matches, per-frame {"MJE", "ADD-S"} in mm by frame index).
    """
    from homae_model.metrics.hand import mje
    from homae_model.metrics.objects import ObjectPose, add_s
    from homae_model.objects.library import ObjectLibrary
    from homae_ros.messages.build import hand_from_msg, object_from_msg

    library = ObjectLibrary.procedural()
    index_of = {ns: i for i, ns in enumerate(sorted(rec.sent))}
    mjes, addss, e2e, matches = [], [], [], []
    processed = 0
    per_frame: dict[int, dict[str, float]] = {}
    for received, msg in rec.results:
        ns = stamp_ns(msg.header)
        if ns not in index_of:
            continue
        i = index_of[ns]
        processed += 1
        e2e.append(1e3 * (received - rec.sent[ns]))
        if not msg.hands:
            continue
        gt = source[i]
        matches.append((i, msg))
        hand = hand_from_msg(msg.hands[0])
        mjes.append(float(mje(hand.joints, gt.hand_joints)))
        per_frame[i] = {"MJE": mjes[-1]}
        if msg.objects and gt.obj_name in library:
            obj = object_from_msg(msg.objects[0])
            points = library.get(gt.obj_name).vertices
            pred = ObjectPose.create(obj.R, obj.t)
            true = ObjectPose.create(gt.obj_rot, gt.obj_trans)
            addss.append(float(add_s(pred, true, points)))
            per_frame[i]["ADD-S"] = addss[-1]
    diag = rec.diagnostics  # the node's own telemetry (both plays), from /diagnostics
    summary = {
        "frames_sent": len(rec.sent),
        "frames_processed": processed,
        "frames_with_hand": len(matches),
        "frames_dropped": int(diag.get("frames_dropped", 0)),
        "latency_ms": {
            "median": diag.get("latency_ms_median"),
            "max": diag.get("latency_ms_max"),
        },
        "end_to_end_ms": _stats(e2e),
        "mje_mm": float(np.mean(mjes)) if mjes else None,
        "adds_mm": float(np.mean(addss)) if addss else None,
        "tracking": _tracking(rec, source),
    }
    return summary, matches, per_frame


def _tracking(rec: Recording, source: Any) -> dict[str, Any]:
    from homae_ros.demo.temporal import play_series, tracking_summary

    raw = play_series([m for _, m in rec.raw_results], sorted(rec.raw_sent))
    filtered = play_series([m for _, m in rec.filtered_results], sorted(rec.filtered_sent))
    gt = [source[i].hand_joints for i in range(len(source))]
    return tracking_summary(raw, filtered, gt, rec.tf_children, rec.smoothing)


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p95": None}
    arr = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(arr)), "p95": float(np.percentile(arr, 95))}


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    parser = argparse.ArgumentParser(prog="homae-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--checkpoint", default="", help="HOMAE checkpoint (default: bundled)")
    parser.add_argument(
        "--detector", default="", choices=("", "torchvision", "track", "roi"),
        help="detector backend (default: config/homae.yaml's)",
    )  # fmt: skip
    parser.add_argument(
        "--params-file", type=Path, default=REPO / "config" / "homae.yaml",
        help="node parameters (default config/homae.yaml)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()
    clip = make_clip(out)
    env = {**os.environ, "ROS_LOG_DIR": str(out / "ros_log")}
    extra = ["-p", f"device:={args.device}"]
    if args.checkpoint:
        extra += ["-p", f"checkpoint:={Path(args.checkpoint).resolve()}"]
    if args.detector:
        extra += ["-p", f"detector.backend:={args.detector}"]
    if args.detector == "roi":  # the whole image as the crop, the clip's object
        extra += ["-p", f"objects.allowed:=['{_clip_object(clip)}']"]
    cmd = node_command(args.params_file, extra)
    log("starting homae_node: " + " ".join(cmd[1:3]) + " ...")
    node_log = open(out / "node.log", "w")  # closed below, after the node exits
    proc = subprocess.Popen(cmd, env=env, stdout=node_log, stderr=subprocess.STDOUT)
    try:
        rec, source = play_clip(clip, proc)
    except Exception as err:
        proc.terminate()
        node_log.close()
        tail = (out / "node.log").read_text()[-2000:]
        log(f"FAILED: {err}\n--- homae_node log (tail) ---\n{tail}")
        return 1
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    node_log.close()
    from homae_model.bundled import demo_checkpoint
    from homae_ros.demo.outputs import write_outputs
    from homae_ros.demo.report import report_comparison

    summary, matches, per_frame = evaluate(rec, source)
    summary["device"] = _node_device(out / "node.log", args.device)
    weights = Path(args.checkpoint) if args.checkpoint else demo_checkpoint()
    summary["report"] = report_comparison(per_frame, weights, clip)
    summary["wall_time_s"] = round(time.monotonic() - t_start, 1)
    files = write_outputs(out, rec, source, matches, summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    log(
        f"processed {summary['frames_processed']}/{summary['frames_sent']} frames "
        f"(dropped {summary['frames_dropped']}), latency median "
        f"{_fmt(summary['latency_ms']['median'])} ms, MJE {_fmt(summary['mje_mm'])} mm, "
        f"ADD-S {_fmt(summary['adds_mm'])} mm on {summary['device']}"
    )
    cmp = summary["report"]
    if cmp["status"] == "compared":
        log(
            f"the model's evaluation report, same {cmp['frames_compared']} frames: MJE "
            f"{_fmt(cmp['report_mje_mm'])} mm (node {_fmt(cmp['node_mje_mm'])}, gap "
            f"{_fmt(cmp['mje_gap_mm'])} mm); {cmp['file']}"
        )
    else:
        log(f"no comparison with the evaluation report: {cmp['status']}")
    tr = summary["tracking"]
    log(
        f"tracking: {tr['hand_id_switches']} hand id switches, {tr['object_name_changes']} "
        f"object name changes, TF child frames {tr['tf_child_frames']}; jitter raw "
        f"{_fmt(tr['jitter_mm']['raw'])} -> filtered {_fmt(tr['jitter_mm']['filtered'])} mm, "
        f"MJE raw {_fmt(tr['mje_mm']['raw'])} -> filtered {_fmt(tr['mje_mm']['filtered'])} mm"
    )
    log(f"wrote {out / 'summary.json'}")
    for f in files:
        log(f"wrote {f}")
    return 0 if summary["frames_processed"] > 0 else 1


def _clip_object(clip: Path) -> str:
    from homae_model.data.synthetic import SyntheticSource

    return SyntheticSource(clip)[0].obj_name


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _node_device(node_log: Path, requested: str) -> str:
    for line in node_log.read_text().splitlines():
        if "homae_node started: device " in line:
            return line.split("homae_node started: device ")[1].split()[0]
    return requested


if __name__ == "__main__":
    raise SystemExit(main())
