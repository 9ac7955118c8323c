"""Input side of `homae-bag`: topics of a bag, its camera_infos indexed, image decoding.

No ROS imports: bags are read with `rosbags`; messages are the typestore's dataclasses, which
`homae_ros.messages.conversions` reads by field name like rclpy messages.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import Reader
from rosbags.typesys.store import Typestore

from homae_ros.messages import conversions
from homae_ros.messages.stamps import StampIndex, stamp_ns

__all__ = [
    "COMPRESSED_TYPE",
    "IMAGE_TYPE",
    "INFO_TYPE",
    "check_bag",
    "decode_image",
    "read_camera_infos",
    "resolve_topics",
    "stamp_ns",
]

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
INFO_TYPE = "sensor_msgs/msg/CameraInfo"


def _topics_of(reader: Reader, types: tuple[str, ...]) -> list[str]:
    return sorted({c.topic for c in reader.connections if c.msgtype in types})


def resolve_topics(
    reader: Reader, image_topic: str = "", camera_info_topic: str = ""
) -> tuple[str, str]:
    """(image topic, camera_info topic) of the bag.

    Args:
        reader: the open input bag.
        image_topic: Image or CompressedImage topic; "" = the bag's only one.
        camera_info_topic: CameraInfo topic; "" = `<image namespace>/camera_info`, else the
            bag's only CameraInfo topic.

    Raises:
        ValueError: a topic is missing or ambiguous (the message lists what the bag has).
    """
    images = _topics_of(reader, (IMAGE_TYPE, COMPRESSED_TYPE))
    infos = _topics_of(reader, (INFO_TYPE,))
    everything = ", ".join(f"{t} ({i.msgtype})" for t, i in sorted(reader.topics.items()))
    image = image_topic
    if not image:
        if len(images) != 1:
            raise ValueError(
                f"--image-topic needed: the bag has {len(images)} image topics "
                f"({', '.join(images) or 'none'}); topics: {everything or 'none'}"
            )
        image = images[0]
    elif image not in images:
        raise ValueError(
            f"image topic {image} is not in the bag (image topics: {', '.join(images) or 'none'})"
        )
    info = camera_info_topic
    if info and info not in infos:
        raise ValueError(
            f"camera_info topic {info} is not in the bag (CameraInfo topics: "
            f"{', '.join(infos) or 'none'}); homae-bag needs the camera intrinsics"
        )
    if not info:
        sibling = image.rsplit("/", 1)[0] + "/camera_info"
        if sibling in infos:
            info = sibling
        elif len(infos) == 1:
            info = infos[0]
        else:
            raise ValueError(
                f"no camera_info topic for {image}: expected {sibling}; the bag has "
                f"{len(infos)} CameraInfo topics ({', '.join(infos) or 'none'}); pass "
                "--camera-info-topic (homae-bag needs the camera intrinsics)"
            )
    return image, info


def check_bag(
    input_path: str | Path, image_topic: str = "", camera_info_topic: str = ""
) -> tuple[str, str]:
    """Open the input bag and resolve its topics (fast checks before loading a model).

    Raises:
        FileNotFoundError: the input does not exist.
        ValueError: see `resolve_topics`.
    """
    input_path = Path(input_path)
    if not input_path.exists():
        raise FileNotFoundError(f"input bag {input_path} does not exist")
    with Reader(input_path) as reader:
        return resolve_topics(reader, image_topic, camera_info_topic)


def decode_image(msg: Any, msgtype: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a sensor_msgs Image or CompressedImage (typestore dataclass).

    Raises:
        homae_ros.messages.conversions.ConversionError: unknown encoding, truncated data,
            undecodable compressed data, ...
    """
    if msgtype != COMPRESSED_TYPE:
        return conversions.image_to_rgb(msg)
    return conversions.compressed_to_rgb(msg)


def read_camera_infos(
    reader: Reader, topic: str, store: Typestore, tolerance_s: float, warn: Callable[[str], None]
) -> StampIndex:
    """Index every CameraInfo on `topic`; corrupt ones are reported to `warn` and left out."""
    entries = []
    conns = [c for c in reader.connections if c.topic == topic]
    for index, (conn, log_ns, raw) in enumerate(reader.messages(connections=conns)):
        try:
            msg = store.deserialize_cdr(raw, conn.msgtype)
        except Exception as err:
            warn(f"{topic} message #{index}: corrupt CameraInfo, ignored ({err!r})")
            continue
        entries.append((stamp_ns(msg.header), log_ns, msg))
    return StampIndex(entries, round(tolerance_s * 1e9))
