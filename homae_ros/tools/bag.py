"""`homae-bag`: run HOMAE over a rosbag2 recording and write a results bag (no rclpy needed).

    homae-bag --in IN.mcap --out OUT.mcap [--image-topic T] [--camera-info-topic C]
        [--checkpoint PATH] [--device auto|cpu|cuda] [--detector torchvision|track|roi] ...

Reads and writes with the `rosbags` library (a rosbag2 folder or a single .mcap/.db3 file in;
a single .mcap file out when --out ends in .mcap, else a rosbag2 folder). Every image goes
through `FrameEstimator` exactly like in homae_node, and the node's outputs are written with the
image's header stamp and the image's log time:

- `/homae_node/hand_object` homae_ros/msg/HandObjectResult (one per good image),
- `/tf` tf2_msgs/msg/TFMessage (object and hand frames; shared with an input /tf topic),
- `/homae_node/markers` visualization_msgs/msg/MarkerArray,
- optionally `/homae_node/debug_image` (sensor_msgs/msg/Image overlay),

and every input topic is copied through unchanged (input topics named like an output topic,
other than /tf, are dropped). Camera info is paired with each image by the node's rule,
`--sync` as the node's `sync` parameter (`homae_ros.messages.stamps.StampIndex`): approximate
(default: the nearest header stamp within --sync-tolerance, the node's `sync_slop_s`), exact,
or latest_camera_info (the latest logged before the image). An image the rule pairs with no
camera_info is skipped, as the node drops it, with a warning naming it and the nearest
camera_info's offset. `--sync approximate_or_latest` pairs such an image loosely with the latest
camera_info logged before it instead: a warning names it and the summary counts it. A frame that
cannot be processed (corrupt message, unknown encoding, no camera info, ...) gets a warning
naming the topic and its message index on that topic, and is skipped; the summary at the end
counts frames processed and skipped by reason.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer, WriterError
from rosbags.typesys.store import Typestore

from homae_model.estimation.errors import FrameSkipped, skip_reason
from homae_model.estimation.estimator import FrameEstimator
from homae_model.tracking.frame import FrameTracker
from homae_ros.messages import conversions, markers
from homae_ros.messages.outputs import (
    DEFAULT_FRAME_PREFIX,
    FrameMessages,
    build_frame_messages,
    overlay_image,
)
from homae_ros.messages.stamps import SYNC_RULES, StampIndex
from homae_ros.tools.bag_input import (
    check_bag,
    decode_image,
    read_camera_infos,
    resolve_topics,
    stamp_ns,
)
from homae_ros.tools.bag_types import BagWriter, make_typestore, message_class, standin_messages

__all__ = [
    "BagOptions",
    "BagSummary",
    "SkippedFrame",
    "StampIndex",
    "check_bag",
    "main",
    "process_bag",
]

IMAGE_TYPE = "sensor_msgs/msg/Image"
RESULT_TYPE = "homae_ros/msg/HandObjectResult"
MARKERS_TYPE = "visualization_msgs/msg/MarkerArray"
_MESSAGE_PACKAGES = (
    "builtin_interfaces",
    "std_msgs",
    "geometry_msgs",
    "sensor_msgs",
    "visualization_msgs",
    "homae_ros",
)


@dataclass
class BagOptions:
    """What to read and write (topic names are absolute).

    Attributes:
        image_topic: sensor_msgs/Image or CompressedImage topic; "" = the bag's only one.
        camera_info_topic: CameraInfo topic; "" = `<image topic's namespace>/camera_info`,
            else the bag's only CameraInfo topic.
        sync_tolerance_s: largest |image stamp - camera_info stamp| for a nearest match (s).
        sync: pairing rule, one of `stamps.SYNC_RULES` (the node's `sync` modes, or
            "approximate_or_latest").
        result_topic, markers_topic, tf_topic, debug_image_topic: output topics.
        frame_prefix: TF child frame prefix.
        markers: write the MarkerArray; hand_mesh: include the hand mesh in it.
        debug_image: also write the overlay image.
        copy_input: copy the input topics to the output bag.
        progress: tqdm progress bar on stderr.
    """

    image_topic: str = ""
    camera_info_topic: str = ""
    sync_tolerance_s: float = 0.02
    sync: str = "approximate"
    result_topic: str = "/homae_node/hand_object"
    markers_topic: str = "/homae_node/markers"
    tf_topic: str = "/tf"
    debug_image_topic: str = "/homae_node/debug_image"
    frame_prefix: str = DEFAULT_FRAME_PREFIX
    markers: bool = True
    hand_mesh: bool = True
    debug_image: bool = False
    copy_input: bool = True
    progress: bool = True


@dataclass(frozen=True)
class SkippedFrame:
    """A message that produced no result: topic, 0-based index on that topic, reason code."""

    topic: str
    index: int
    log_time_ns: int
    reason: str
    detail: str


@dataclass
class BagSummary:
    """What `process_bag` did (printed by `format`).

    Attributes:
        image_topic, camera_info_topic: the topics read.
        frames, processed, no_detection: image counts.
        skipped: the images that gave no result, with reasons.
        sync: how each processed image got its camera_info: {"exact" | "nearest" | "latest": n}.
        loose: message indices of the images paired loosely ("latest": no camera_info within
            the sync tolerance).
        copied: input messages copied; seconds: wall time.
    """

    image_topic: str = ""
    camera_info_topic: str = ""
    frames: int = 0
    processed: int = 0
    no_detection: int = 0
    skipped: list[SkippedFrame] = field(default_factory=list)
    sync: Counter = field(default_factory=Counter)
    loose: list[int] = field(default_factory=list)
    copied: int = 0
    seconds: float = 0.0

    def skipped_by_reason(self) -> dict[str, int]:
        """{reason: count} of skipped frames."""
        return dict(Counter(s.reason for s in self.skipped))

    def format(self) -> str:
        """A human-readable multi-line summary."""
        lines = [
            f"images on {self.image_topic}: {self.frames}, processed {self.processed} "
            f"({self.no_detection} without detection), skipped {len(self.skipped)}",
            f"camera_info from {self.camera_info_topic}: "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.sync.items())) or "none matched"),
        ]
        if self.loose:
            shown = ", ".join(map(str, self.loose[:10])) + (", ..." if len(self.loose) > 10 else "")
            lines.append(
                f"  paired loosely (latest camera_info, none within the sync tolerance): "
                f"{len(self.loose)} (message index {shown})"
            )
        for reason, n in sorted(self.skipped_by_reason().items()):
            idx = [s.index for s in self.skipped if s.reason == reason]
            shown = ", ".join(map(str, idx[:10])) + (", ..." if len(idx) > 10 else "")
            lines.append(f"  skipped ({reason}): {n} (message index {shown})")
        lines.append(f"input messages copied: {self.copied}; {self.seconds:.1f} s")
        return "\n".join(lines)


def _default_warn(text: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"homae-bag: warning: {text}", file=sys.stderr)


def _output_dir(out: Path) -> Path:
    return out.with_name(out.name + ".partial") if out.suffix == ".mcap" else out


def process_bag(
    input_path: str | Path,
    output_path: str | Path,
    estimator: FrameEstimator,
    options: BagOptions | None = None,
    warn: Callable[[str], None] = _default_warn,
) -> BagSummary:
    """Run `estimator` over every image of a bag and write the results bag.

    Args:
        input_path: rosbag2 folder, or a .mcap / .db3 file.
        output_path: a .mcap file (single file) or a folder for a rosbag2 bag; must not exist.
        estimator: the loaded per-frame estimator.
        options: topics and outputs.
        warn: receives one line per problem (skipped frame, topic not copied).

    Returns:
        BagSummary.

    Raises:
        FileNotFoundError: the input does not exist.
        FileExistsError: the output exists.
        ValueError: the image or camera_info topic is missing (names it, lists the bag's).
    """
    options = options or BagOptions()
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.exists():
        raise FileNotFoundError(f"input bag {input_path} does not exist")
    if output_path.exists():
        raise FileExistsError(f"output {output_path} exists (remove it or use --overwrite)")
    t_start = time.monotonic()
    store = make_typestore()
    summary = BagSummary()
    with Reader(input_path) as reader:
        image_topic, info_topic = resolve_topics(
            reader, options.image_topic, options.camera_info_topic
        )
        summary.image_topic, summary.camera_info_topic = image_topic, info_topic
        infos = read_camera_infos(reader, info_topic, store, options.sync_tolerance_s, warn)
        work_dir = _output_dir(output_path)
        if work_dir.exists():
            shutil.rmtree(work_dir)
        with (
            standin_messages(store, _MESSAGE_PACKAGES),
            Writer(work_dir, version=9, storage_plugin=StoragePlugin.MCAP) as writer,
        ):
            out = BagWriter(writer, store)
            if options.copy_input:
                skip = {options.result_topic, options.markers_topic, options.debug_image_topic}
                out.copy_connections(reader.connections, skip, warn)
            _run(reader, out, estimator, infos, options, summary, warn)
    if work_dir != output_path:
        (work_dir / f"{work_dir.name}.mcap").rename(output_path)
        shutil.rmtree(work_dir)
    summary.seconds = time.monotonic() - t_start
    return summary


@dataclass
class _Frame:
    """One processed image: what was computed from it and how camera_info was matched."""

    rgb: np.ndarray
    K: np.ndarray
    header: Any
    estimates: list
    messages: FrameMessages
    sync: str
    info_offset_ns: int


def _process(
    store: Typestore,
    msgtype: str,
    raw: bytes,
    log_ns: int,
    estimator: FrameEstimator,
    infos: StampIndex,
    options: BagOptions,
    summary: BagSummary,
    tracker: FrameTracker,
) -> _Frame:
    """Decode, match camera_info, estimate and build the messages of one image message.

    Raises:
        FrameSkipped: the frame gives no result (reason code + detail; `skip_reason`).
    """
    try:
        msg = store.deserialize_cdr(raw, msgtype)
    except Exception as err:
        raise FrameSkipped("corrupt_message", repr(err)) from err
    try:
        rgb = decode_image(msg, msgtype)
        stamp = stamp_ns(msg.header)
        matched = infos.match(stamp, log_ns, options.sync)
        if matched is None:
            offset = infos.nearest_offset_ns(stamp)
            if offset is None or options.sync == "latest_camera_info":
                raise FrameSkipped(
                    "no_camera_info",
                    f"no camera_info on {summary.camera_info_topic} at or before this image",
                )
            within = "" if options.sync == "exact" else f" within {options.sync_tolerance_s} s"
            raise FrameSkipped(
                "no_matching_camera_info",
                f"no camera_info on {summary.camera_info_topic} stamped{within} of the image "
                f"(--sync {options.sync}; the nearest is {offset * 1e-9:+.3f} s away), as the "
                "node would drop it",
            )
        K = conversions.check_camera_info(matched[0], rgb.shape)
        estimates = estimator.process(rgb, K, stamp * 1e-9)
        header = message_class("std_msgs/msg/Header")(
            stamp=message_class("builtin_interfaces/msg/Time")(
                sec=int(msg.header.stamp.sec), nanosec=int(msg.header.stamp.nanosec)
            ),
            frame_id=str(msg.header.frame_id),
        )
        options_m = markers.MarkerOptions(hand_mesh=options.hand_mesh) if options.markers else None
        built = build_frame_messages(
            tracker.update(estimates, stamp * 1e-9),
            header,
            estimator.hand_faces,
            frame_prefix=options.frame_prefix,
            marker_options=options_m,
        )
    except FrameSkipped:
        raise
    except Exception as err:  # one bad frame must not stop the bag
        raise skip_reason(err) from err
    offset = stamp_ns(matched[0].header) - stamp
    return _Frame(rgb, K, header, estimates, built, matched[1], offset)


def _run(
    reader: Reader,
    out: BagWriter,
    estimator: FrameEstimator,
    infos: StampIndex,
    options: BagOptions,
    summary: BagSummary,
    warn: Callable[[str], None],
) -> None:
    from tqdm import tqdm

    topic, index = summary.image_topic, -1
    tracker = FrameTracker()  # track ids and TF child frames as the node names them
    messages = reader.messages()
    bar = tqdm(
        messages,
        total=reader.message_count,
        unit="msg",
        disable=not options.progress,
        file=sys.stderr,
    )
    for conn, log_ns, raw in bar:
        summary.copied += out.write_raw(conn.id, log_ns, raw)
        if conn.topic != topic:
            continue
        index += 1
        summary.frames += 1
        try:
            f = _process(
                out.store, conn.msgtype, raw, log_ns, estimator, infos, options, summary, tracker
            )
        except FrameSkipped as skip:
            summary.skipped.append(SkippedFrame(topic, index, log_ns, skip.reason, skip.detail))
            warn(
                f"{topic} message #{index} (log time {log_ns * 1e-9:.3f} s): skipped "
                f"({skip.reason}): {skip.detail}"
            )
            continue
        summary.sync[f.sync] += 1
        if f.sync == "latest" and options.sync == "approximate_or_latest":
            summary.loose.append(index)
            warn(
                f"{topic} message #{index} (log time {log_ns * 1e-9:.3f} s): paired loosely with "
                f"the latest camera_info logged before it ({f.info_offset_ns * 1e-9:+.3f} s from "
                f"the image stamp; none within --sync-tolerance {options.sync_tolerance_s} s)"
            )
        summary.processed += 1
        summary.no_detection += int(not f.estimates)
        out.write(options.result_topic, RESULT_TYPE, f.messages.result, log_ns)
        if f.messages.transforms:
            out.write_tf(options.tf_topic, f.messages.transforms, log_ns)
        if f.messages.markers is not None:
            out.write(options.markers_topic, MARKERS_TYPE, f.messages.markers, log_ns)
        if options.debug_image:
            img = overlay_image(f.rgb, f.K, f.estimates, estimator.hand_faces)
            image = conversions.rgb_to_image(img, f.header, "rgb8")
            out.write(options.debug_image_topic, IMAGE_TYPE, image, log_ns)


def build_parser() -> argparse.ArgumentParser:
    """The homae-bag argument parser."""
    from homae_model.estimation.cli_args import add_estimator_arguments

    p = argparse.ArgumentParser(
        prog="homae-bag",
        description="Run HOMAE over a rosbag2 recording and write a bag with the input topics "
        "plus results, TF and markers (stamped like the input images). No ROS needed.",
    )
    p.add_argument(
        "--in",
        dest="input",
        type=Path,
        required=True,
        help="input rosbag2 folder or .mcap/.db3 file",
    )
    p.add_argument(
        "--out", type=Path, required=True, help="output .mcap file, or a folder for a rosbag2 bag"
    )
    p.add_argument("--image-topic", default="", help="default: the bag's only image topic")
    p.add_argument("--camera-info-topic", default="", help="default: <image namespace>/camera_info")
    p.add_argument(
        "--sync-tolerance",
        type=float,
        default=0.02,
        help="largest image/camera_info stamp difference for a nearest match (s)",
    )
    p.add_argument(
        "--sync",
        choices=SYNC_RULES,
        default="approximate",
        help="image/camera_info pairing, as the node's `sync` parameter (approximate, exact, "
        "latest_camera_info); approximate_or_latest pairs an image with no camera_info within "
        "the tolerance with the latest one logged before it, and names it (default: approximate)",
    )
    p.add_argument("--frame-prefix", default=DEFAULT_FRAME_PREFIX, help="TF child frame prefix")
    p.add_argument("--no-markers", action="store_true", help="do not write markers")
    p.add_argument("--no-hand-mesh", action="store_true", help="markers without the hand mesh")
    p.add_argument("--debug-image", action="store_true", help="also write overlay images")
    p.add_argument("--no-copy", action="store_true", help="do not copy the input topics")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_estimator_arguments(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: 0 on success (frames may have been skipped), 1 on errors."""
    from homae_model.estimation.cli_args import load_estimator

    args = build_parser().parse_args(argv)
    options = BagOptions(
        image_topic=args.image_topic,
        camera_info_topic=args.camera_info_topic,
        sync_tolerance_s=args.sync_tolerance,
        sync=args.sync,
        frame_prefix=args.frame_prefix,
        markers=not args.no_markers,
        hand_mesh=not args.no_hand_mesh,
        debug_image=args.debug_image,
        copy_input=not args.no_copy,
        progress=not args.no_progress,
    )
    try:
        if args.overwrite and args.out.exists() and args.out.resolve() != args.input.resolve():
            shutil.rmtree(args.out) if args.out.is_dir() else args.out.unlink()
        # topic errors first, before the (slow) model load
        check_bag(args.input, args.image_topic, args.camera_info_topic)
        estimator = load_estimator(args)
        summary = process_bag(args.input, args.out, estimator, options)
    except (FileNotFoundError, ValueError, RuntimeError, OSError, ReaderError, WriterError) as err:
        print(f"homae-bag: error: {err}", file=sys.stderr)
        return 1
    print(f"homae-bag: wrote {args.out}\n{summary.format()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
