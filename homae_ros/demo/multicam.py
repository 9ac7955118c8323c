"""`make demo-multicam`: two cameras, two homae_node instances and homae_fusion over loopback.

1. `homae-synth --cameras 2 --occlude` renders one approach-grasp-lift clip from two calibrated
   cameras; camera 1 stands behind the object, which hides the hand from it once grasped
   (in a subprocess: the renderer's GL driver and the model's libraries do not share a process);
2. two real `homae_node` processes start in the namespaces /cam0 and /cam1 (bundled weights,
   default parameters), and `homae_fusion` with the clip's extrinsics.yaml as its calibration;
3. a player node publishes both cameras' frames with the same stamp, one instant at a time
   (the next instant once both nodes answered, or after `ANSWER_TIMEOUT_S`: the counts do not
   depend on the machine's speed), and records the per-camera and fused results;
4. `demo_out_multicam/` gets summary.json (`fusion`: frames fused, MJE / ADD-S of each camera
   and of the fused result in the world frame, on all frames and on the frames where one view
   is occluded) and overlay.png (both views side by side, the fused hand and object projected
   into each).

MJE is the project's root-relative mean joint error (as in `make demo`); `abs_mje_mm` is the
mean joint error without alignment, in the world frame, where a camera's depth error shows.
A frame is *occluded* when one camera sees less than `OCCLUDED_VISIBLE` of the hand
(`hand_visible` of the clip's labels) while another sees at least that much.
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
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "demo_out_multicam"
CLIP_FRAMES = 40
CLIP_FPS = 10.0
CLIP_SIZE = "320x240"
CLIP_SEED = 7
CAMERAS = ("cam0", "cam1")
OCCLUDED_VISIBLE = 0.5
NODE_START_TIMEOUT_S = 120.0
ANSWER_TIMEOUT_S = 10.0
FUSION_MAX_WAIT_S = 2.0
"""The demo's fusion waits this long for the second camera: two CPU nodes share the machine
and answer one after the other (the node's default is 0.3 s)."""
FUSED_TOPIC = "/homae_fusion/hand_object"


def log(text: str) -> None:
    """Progress line on stdout."""
    print(f"[demo-multicam] {text}", flush=True)


def result_topic(camera: str) -> str:
    """The homae_node result topic of a camera namespace."""
    return f"/{camera}/homae_node/hand_object"


def make_clip(out: Path) -> Path:
    """Generate (or reuse) the two-camera clip; returns its folder."""
    from homae_ros.demo.clip import DEMO_LOOK, reusable_clip

    clip = out / "clip"
    if reusable_clip(clip, CLIP_FRAMES, CLIP_SEED):
        log(f"reusing the clip in {clip}")
        return clip
    log(f"generating a {CLIP_FRAMES}-frame two-camera clip (homae-synth --cameras 2 --occlude)")
    cmd = [sys.executable, "-m", "homae_model.cli.synth", "--out", str(clip), "--cameras", "2"]
    cmd += ["--occlude", "--frames", str(CLIP_FRAMES), "--fps", str(CLIP_FPS)]
    cmd += ["--size", CLIP_SIZE, "--seed", str(CLIP_SEED), "--quiet", "--no-contact-sheet"]
    cmd += DEMO_LOOK
    subprocess.run(cmd, check=True)
    return clip


def installed(executable: str) -> Path:
    """lib/homae_ros/<executable> from the sourced install space.

    Raises:
        FileNotFoundError: not installed (says how to build it).
    """
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(":"):
        path = Path(prefix) / "lib" / "homae_ros" / executable
        if prefix and path.is_file():
            return path
    raise FileNotFoundError(
        f"{executable} is not installed: run `make setup` (colcon build) and source "
        "install/setup.bash, or use `make demo-multicam`"
    )


def node_commands(clip: Path, device: str) -> dict[str, list[str]]:
    """The two homae_node commands and the homae_fusion command."""
    cmds = {}
    for cam in CAMERAS:
        cmd = [sys.executable, str(installed("homae_node")), "--ros-args", "-r", f"__ns:=/{cam}"]
        cmd += ["-r", f"image:=/{cam}/image_raw", "-r", f"camera_info:=/{cam}/camera_info"]
        cmds[cam] = [*cmd, "-p", f"device:={device}", "-p", "qos:=reliable"]
    topics = ", ".join(f"'{result_topic(c)}'" for c in CAMERAS)
    cmds["fusion"] = [
        sys.executable,
        str(installed("homae_fusion")),
        "--ros-args",
        "-p",
        f"result_topics:=[{topics}]",
        "-p",
        f"calibration_file:={clip / 'extrinsics.yaml'}",
        "-p",
        f"max_wait_s:={FUSION_MAX_WAIT_S}",
    ]
    return cmds


@dataclass
class Recording:
    """Results by frame index: per camera and fused."""

    results: dict[str, dict[int, Any]] = field(default_factory=dict)


def _camera_info(K: np.ndarray, width: int, height: int, header: Any) -> Any:
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
    info.header = header
    info.k = [float(v) for v in K.ravel()]
    info.d = [0.0] * 5
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [float(v) for v in np.hstack([K, np.zeros((3, 1))]).ravel()]
    return info


def play(mc: Any, sources: dict[str, Any], procs: list[subprocess.Popen]) -> Recording:
    """Publish both cameras' frames instant by instant and record every result."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    from homae_ros.messages.conversions import rgb_to_image
    from homae_ros.messages.stamps import stamp_ns
    from homae_ros.msg import HandObjectResult

    rec = Recording({name: {} for name in (*CAMERAS, "fused")})
    base = time.time_ns()
    index_of: dict[int, int] = {}
    rclpy.init()
    node = rclpy.create_node("demo_multicam_player")
    qos = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
    pubs = {
        c: (
            node.create_publisher(Image, f"/{c}/image_raw", qos),
            node.create_publisher(CameraInfo, f"/{c}/camera_info", qos),
        )
        for c in CAMERAS
    }

    def recorder(name: str):
        def cb(msg: Any) -> None:
            i = index_of.get(stamp_ns(msg.header))
            if i is not None:
                rec.results[name][i] = msg

        return cb

    for c in CAMERAS:
        node.create_subscription(HandObjectResult, result_topic(c), recorder(c), qos)
    node.create_subscription(HandObjectResult, FUSED_TOPIC, recorder("fused"), qos)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        log("waiting for both homae_node instances and homae_fusion")
        deadline = time.monotonic() + NODE_START_TIMEOUT_S
        while not (
            all(p[0].get_subscription_count() > 0 for p in pubs.values())
            and all(node.count_publishers(result_topic(c)) for c in CAMERAS)
            and node.count_publishers(FUSED_TOPIC)
        ):
            for p in procs:
                if p.poll() is not None:
                    raise RuntimeError(f"a node exited with code {p.returncode}: {p.args[:2]}")
            if time.monotonic() > deadline:
                raise TimeoutError("the nodes did not come up in time")
            executor.spin_once(timeout_sec=0.1)
        time.sleep(1.0)  # let the fusion node's subscriptions match too
        n = len(sources[CAMERAS[0]])
        log(f"playing {n} instants from {len(CAMERAS)} cameras")
        for i in range(n):
            ns = base + int(i * 1e9 / CLIP_FPS)
            index_of[ns] = i
            header = Header()
            header.stamp.sec, header.stamp.nanosec = divmod(ns, 1_000_000_000)
            for c in CAMERAS:
                sample = sources[c][i]
                h = Header(frame_id=mc.frame_ids[c], stamp=header.stamp)
                pubs[c][1].publish(_camera_info(sample.K, *sample.image.shape[1::-1], h))
                pubs[c][0].publish(rgb_to_image(sample.image, h, "rgb8"))
            until = time.monotonic() + ANSWER_TIMEOUT_S
            while time.monotonic() < until and not all(i in rec.results[c] for c in CAMERAS):
                executor.spin_once(timeout_sec=0.05)
        end = time.monotonic() + FUSION_MAX_WAIT_S + 3.0
        while time.monotonic() < end and (n - 1) not in rec.results["fused"]:
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return rec


def main(argv: list[str] | None = None) -> int:
    """Run the multi-camera demo; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="homae-demo-multicam", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()
    clip = make_clip(out)
    from homae_model.data.synth_multicam import open_multicam
    from homae_model.data.synthetic import SyntheticSource

    mc = open_multicam(clip)
    sources = {c: SyntheticSource(mc.camera_dirs[c]) for c in mc.cameras}
    env = {**os.environ, "ROS_LOG_DIR": str(out / "ros_log")}
    procs, logs = [], []
    for name, cmd in node_commands(clip, args.device).items():
        logs.append(open(out / f"{name}.log", "w"))  # closed below
        log(f"starting {name}: {Path(cmd[1]).name} {' '.join(cmd[2:6])} ...")
        procs.append(subprocess.Popen(cmd, env=env, stdout=logs[-1], stderr=subprocess.STDOUT))
    try:
        rec = play(mc, sources, procs)
    except Exception as err:
        log(f"FAILED: {err}")
        for p in procs:
            p.terminate()
        for f in logs:
            f.close()
        for name in (*CAMERAS, "fusion"):
            log(f"--- {name}.log (tail) ---\n{(out / f'{name}.log').read_text()[-1500:]}")
        return 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs:
            f.close()
    from homae_model.objects.library import ObjectLibrary
    from homae_ros.demo.multicam_eval import (
        frame_errors,
        fusion_summary,
        occluded_frames,
        write_overlay,
    )

    errors, estimates = frame_errors(rec.results, mc, sources, ObjectLibrary.procedural())
    occluded = occluded_frames(mc, sources, OCCLUDED_VISIBLE)
    n = len(sources[mc.cameras[0]])
    summary = {
        "clip": {
            "folder": str(clip),
            "cameras": mc.cameras,
            "frames": n,
            "seed": CLIP_SEED,
            "occluded_camera": mc.meta.get("occluded_camera"),
        },
        "fusion": fusion_summary(errors, n, len(rec.results["fused"]), occluded, OCCLUDED_VISIBLE),
        "wall_time_s": round(time.monotonic() - t_start, 1),
    }
    shown = [f for f in (n // 8, occluded[len(occluded) // 2] if occluded else n - 1)]
    overlay = write_overlay(out / "overlay.png", mc, sources, estimates, shown)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    f = summary["fusion"]
    for scope, block in (("all frames", f), ("occluded frames", f["occluded"])):
        parts = ", ".join(
            f"{s} {_fmt(block['mje_mm'][s])} / {_fmt(block['adds_mm'][s])} "
            f"({block['frames'][s]} frames)"
            for s in block["mje_mm"]
        )
        log(f"{scope}: MJE / ADD-S mm: {parts}")
        same = "; ".join(
            f"on {cam}'s {b['count']} frames: {cam} {_fmt(b['mje_mm'][cam])}, "
            f"fused {_fmt(b['mje_mm']['fused'])}"
            for cam, b in block["paired"].items()
        )
        log(
            f"{scope}, same frames: MJE mm {same}; fused below the best camera "
            f"({block['best_camera']}): {block['fused_mje_below_best_camera']}"
        )
    log(f"fused {f['frames_fused']}/{n} instants; wrote {out / 'summary.json'} and {overlay}")
    return 0 if f["frames_fused"] > 0 else 1


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    raise SystemExit(main())
