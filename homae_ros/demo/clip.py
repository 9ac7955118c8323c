"""`make demo`: the whole system on the bundled default, no downloads, no camera.

1. `homae-synth --sequence` makes a hand-object clip (approach, grasp, lift) with camera_info
   (in a subprocess: the renderer's GL driver and the model's libraries do not share a process);
2. the real `homae_node` starts as its own process (bundled synthetic-trained HOMAE and detector
   weights, the project's MANO-format hand, config/homae.yaml);
3. a synthetic camera node plays the clip over loopback at its frame rate and records what the
   node publishes;
4. `demo_out/` gets summary.json (frames, drops, latency, MJE and ADD-S against the clip's
   ground truth), overlay pictures, a 3D plot and a rosbag2 (MCAP) of inputs and outputs.
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

REPO = Path(__file__).resolve().parents[1]
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


def log(text: str) -> None:
    """Progress line on stdout."""
    print(f"[demo] {text}", flush=True)


def make_clip(out: Path) -> Path:
    """Generate (or reuse) the demo clip; returns its folder."""
    clip = out / "clip"
    meta = clip / "meta.json"
    if meta.is_file():
        m = json.loads(meta.read_text())
        if m.get("count") == CLIP_FRAMES and m.get("seed") == CLIP_SEED:
            log(f"reusing the clip in {clip}")
            return clip
    log(f"generating a {CLIP_FRAMES}-frame hand-object clip (homae-synth --sequence)")
    cmd = [sys.executable, "-m", "homae_model.cli.synth", "--out", str(clip), "--sequence"]
    cmd += ["--frames", str(CLIP_FRAMES), "--fps", str(CLIP_FPS), "--size", CLIP_SIZE]
    cmd += ["--seed", str(CLIP_SEED), "--quiet"]
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

    sent: dict[int, float] = field(default_factory=dict)  # frame index -> send time
    results: list[tuple[float, Any]] = field(default_factory=list)  # (receive time, msg)
    raw: list[tuple[str, str, int, bytes]] = field(default_factory=list)  # topic, type, ns, cdr


def play_clip(clip: Path, node_proc: subprocess.Popen) -> tuple[Recording, Any]:
    """Publish the clip at its frame rate and record the node's outputs."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header
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

    def record(topic: str, type_name: str):
        def cb(msg: Any) -> None:
            now = time.monotonic()
            rec.raw.append((topic, type_name, time.time_ns(), bytes(serialize_message(msg))))
            if topic == RESULT_TOPIC:
                rec.results.append((now, msg))

        return cb

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
        log(f"playing {len(source)} frames at {CLIP_FPS:g} fps")
        t0 = time.monotonic()
        base = time.time_ns()
        for i in range(len(source)):
            target = t0 + i / CLIP_FPS
            while time.monotonic() < target:
                executor.spin_once(timeout_sec=max(0.0, min(0.01, target - time.monotonic())))
            sample = source[i]
            sent_ns = base + int(i * 1e9 / CLIP_FPS)
            header = Header(frame_id=info_yaml.frame_id or "demo_camera_optical_frame")
            header.stamp.sec, header.stamp.nanosec = divmod(sent_ns, 1_000_000_000)
            img = rgb_to_image(sample.image, header, "rgb8")
            info = _camera_info_msg(info_yaml, header)
            rec.sent[sent_ns] = time.monotonic()
            info_pub.publish(info)
            image_pub.publish(img)
            rec.raw.append(
                (INFO_TOPIC, "sensor_msgs/msg/CameraInfo", sent_ns, bytes(serialize_message(info)))
            )
            rec.raw.append(
                (IMAGE_TOPIC, "sensor_msgs/msg/Image", sent_ns, bytes(serialize_message(img)))
            )
        # Let the last frames come back.
        end = time.monotonic() + 5.0
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
            if rec.results and stamp_ns(rec.results[-1][1].header) == max(rec.sent):
                break
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
    mjes, addss, latencies, e2e, matches = [], [], [], [], []
    per_frame: dict[int, dict[str, float]] = {}
    for received, msg in rec.results:
        ns = stamp_ns(msg.header)
        if ns not in index_of:
            continue
        i = index_of[ns]
        latencies.append(msg.latency_ms)
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
    last = rec.results[-1][1] if rec.results else None
    summary = {
        "frames_sent": len(rec.sent),
        "frames_processed": len(latencies),
        "frames_with_hand": len(matches),
        "frames_dropped": int(last.dropped_frames) if last is not None else 0,
        "latency_ms": _stats(latencies),
        "end_to_end_ms": _stats(e2e),
        "mje_mm": float(np.mean(mjes)) if mjes else None,
        "adds_mm": float(np.mean(addss)) if addss else None,
    }
    return summary, matches, per_frame


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
