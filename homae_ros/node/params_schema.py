"""The declaration of every homae_node parameter: `ParamSpec` and the `PARAMETERS` table.

Pure data (no ROS needed, e.g. for scripts/gen_param_table.py). Validation, declaration on a
node and run-time changes are in `homae_ros.node.params`, which re-exports these names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homae_model.estimation.settings import (
    DEFAULT_SETTINGS,
    DETECTOR_BACKENDS,
    RUNTIME_PROVIDERS,
    RUNTIMES,
)

__all__ = ["IMAGE_TRANSPORTS", "PARAMETERS", "ParamSpec"]

IMAGE_TRANSPORTS: tuple[str, ...] = ("raw", "compressed")
"""Values of `image_transport`: sensor_msgs/Image on `image`, or CompressedImage on
`image/compressed` (image_transport's naming)."""


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter.

    Attributes:
        name: ROS parameter name (dots for groups, e.g. "detector.backend").
        type: one of "string", "double", "integer", "bool", "string_array", "double_array".
        default: the default value (the YAML file repeats it; a check keeps them equal).
        description: one line for the descriptor, the README table and `ros2 param describe`.
        choices: allowed values of a string enum (validated; listed in errors).
        min_value, max_value: inclusive range of a number (sent as a descriptor range).
        read_only: cannot change after start (needs a restart: model, QoS, sync).
        length: required length of an array (None = any).
    """

    name: str
    type: str
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    read_only: bool = False
    length: int | None = None

    @property
    def field(self) -> str:
        """Attribute name in `NodeParams` (dots -> underscores)."""
        return self.name.replace(".", "_")

    def constraints(self) -> str:
        """Human-readable constraints (descriptor `additional_constraints`, docs)."""
        parts = []
        if self.choices:
            parts.append("one of: " + ", ".join(self.choices))
        if self.min_value is not None or self.max_value is not None:
            parts.append(f"range [{self.min_value}, {self.max_value}]")
        if self.length is not None:
            parts.append(f"exactly {self.length} values")
        return "; ".join(parts)

    def descriptor(self, dynamic_typing: bool = False) -> Any:
        """The rcl_interfaces/ParameterDescriptor of this parameter.

        Args:
            dynamic_typing: let rclpy accept any type (the node checks types itself, with a
                clearer message than rclpy's).
        """
        from rcl_interfaces.msg import (
            FloatingPointRange,
            IntegerRange,
            ParameterDescriptor,
            ParameterType,
        )

        type_ids = {
            "string": ParameterType.PARAMETER_STRING,
            "double": ParameterType.PARAMETER_DOUBLE,
            "integer": ParameterType.PARAMETER_INTEGER,
            "bool": ParameterType.PARAMETER_BOOL,
            "string_array": ParameterType.PARAMETER_STRING_ARRAY,
            "double_array": ParameterType.PARAMETER_DOUBLE_ARRAY,
        }
        d = ParameterDescriptor(
            name=self.name,
            type=type_ids[self.type],
            description=self.description,
            additional_constraints=self.constraints(),
            read_only=self.read_only,
            dynamic_typing=dynamic_typing,
        )
        if self.min_value is not None and self.max_value is not None:
            if self.type == "double":
                d.floating_point_range = [
                    FloatingPointRange(
                        from_value=float(self.min_value), to_value=float(self.max_value), step=0.0
                    )
                ]
            elif self.type == "integer":
                d.integer_range = [
                    IntegerRange(
                        from_value=int(self.min_value), to_value=int(self.max_value), step=1
                    )
                ]
        return d


_S, _D, _I, _B = "string", "double", "integer", "bool"
_E = DEFAULT_SETTINGS  # the estimation defaults shared with homae-bag, homae-infer, homae-eval

PARAMETERS: tuple[ParamSpec, ...] = (
    # Input
    ParamSpec("qos", _S, "sensor_data",
              "QoS of the image/camera_info subscriptions: sensor_data = best effort, depth 1 "
              "(what camera drivers publish); reliable = reliable, depth 1.",
              choices=("sensor_data", "reliable"), read_only=True),
    ParamSpec("sync", _S, "approximate",
              "How image and camera_info are paired: exact stamps, approximate (within "
              "sync_slop_s), or latest_camera_info (use the newest camera_info received).",
              choices=("exact", "approximate", "latest_camera_info"), read_only=True),
    ParamSpec("sync_slop_s", _D, 0.02,
              "Approximate sync: largest stamp difference between image and camera_info (s).",
              min_value=0.0, max_value=1.0, read_only=True),
    ParamSpec("image_transport", _S, "raw",
              "Image input: raw = sensor_msgs/Image on `image`; compressed = "
              "sensor_msgs/CompressedImage (JPEG/PNG, decoded with OpenCV) on "
              "`<image>/compressed`, image_transport's naming (remap `image`, not the "
              "compressed topic).",
              choices=IMAGE_TRANSPORTS, read_only=True),
    ParamSpec("undistort", _B, True,
              "Correct lens distortion before estimation (plumb_bob, rational_polynomial, "
              "equidistant): the image is resampled into the pinhole camera of P (or K when P "
              "is zero), maps cached per camera_info; false = use the image as it is (for "
              "rectified input such as image_rect)."),
    # Model
    ParamSpec("device", _S, _E.device,
              "Inference device: auto (cuda if available, else cpu), cuda, cuda:N (GPU N) "
              "or cpu.",
              choices=("auto", "cuda", "cpu"), read_only=True),
    ParamSpec("checkpoint", _S, "",
              "HOMAE checkpoint (folder or .safetensors file); empty = bundled demo weights.",
              read_only=True),
    ParamSpec("mano_model_path", _S, "",
              "Converted MANO_RIGHT.pkl (or a folder holding mano/MANO_RIGHT.pkl); empty = "
              "bundled synthetic hand.", read_only=True),
    ParamSpec("object_library", _S, "",
              "YCB models folder (<name>/textured_simple.obj); empty = procedural stand-ins.",
              read_only=True),
    ParamSpec("runtime", _S, _E.runtime,
              "What runs the network: torch (PyTorch eager) or onnxruntime (the graphs "
              "homae-export writes; same crop, voxel search and outputs).",
              choices=RUNTIMES, read_only=True),
    ParamSpec("runtime_provider", _S, _E.runtime_provider,
              "onnxruntime execution provider with runtime onnxruntime: cpu, cuda or tensorrt "
              "(the last two need the onnxruntime-gpu package).",
              choices=RUNTIME_PROVIDERS, read_only=True),
    ParamSpec("onnx_dir", _S, "",
              "Folder written by homae-export for this checkpoint (runtime onnxruntime); empty "
              "= export once into the cache ($HOMAE_ONNX_CACHE or ~/.cache/homae_ros/onnx).",
              read_only=True),
    ParamSpec("torch_threads", _I, 0,
              "CPU threads of torch's intra-op pool, set before the model loads; 0 = auto "
              "(all cores but one, at least 1: a core stays free for the executor and the "
              "camera callbacks).", min_value=0, max_value=256, read_only=True),
    ParamSpec("max_batch_pairs", _I, _E.max_pairs,
              "Hand-object pairs per image run through the model as one batch (more are "
              "dropped, highest scores kept).", min_value=1, max_value=64),
    # Detector
    ParamSpec("detector.backend", _S, _E.detector_backend,
              "Box source: torchvision (detector network), track (follow the previous boxes), "
              "roi (one fixed region, detector.roi).",
              choices=DETECTOR_BACKENDS, read_only=True),
    ParamSpec("detector.weights", _S, "",
              "Detector weights file; empty = bundled demo detector.", read_only=True),
    ParamSpec("detector.side_net", _S, "",
              "Hand-side (left/right) network file from homae-train-sides, run on every hand "
              "box; empty = none: a left/right detector's class gives the side, a "
              "single-class detector's hands are taken as right.", read_only=True),
    ParamSpec("detector.score_threshold", _D, _E.score_threshold,
              "Hand and object detections below this score do not pair (weaker object "
              "candidates may still name the object a detected hand holds).",
              min_value=0.0, max_value=1.0),
    ParamSpec("detector.max_detections", _I, _E.max_detections,
              "Most detections kept per image (highest scores).", min_value=1, max_value=100),
    ParamSpec("detector.roi", "double_array", [0.0, 0.0, 0.0, 0.0],
              "Region for backend roi: x_min, y_min, x_max, y_max (pixels); all zero = the "
              "whole image.", length=4),
    ParamSpec("objects.allowed", "string_array", [""],
              "Object library names to report; [\"\"] (or empty) = all objects.",),
    ParamSpec("min_hand_score", _D, _E.min_hand_score,
              "Hands below this score are not reported.", min_value=0.0, max_value=1.0),
    # Tracking and smoothing
    ParamSpec("tracking.min_iou", _D, 0.3,
              "A detection continues a track when its box overlaps the track's last box by "
              "this IoU (or is within tracking.max_distance_m).", min_value=0.0, max_value=1.0),
    ParamSpec("tracking.max_distance_m", _D, 0.1,
              "A detection continues a track when its 3D position (wrist, object origin) is "
              "this close to the track's last one (m).", min_value=0.001, max_value=10.0),
    ParamSpec("tracking.max_misses", _I, 5,
              "Frames a hand or object may be missing and keep its track id; one more ends the "
              "track (its TF frame stops, its markers are deleted).",
              min_value=0, max_value=1000),
    ParamSpec("tracking.name_frames", _I, 5,
              "An object's name is the score-weighted vote over its track's first this many "
              "detections, then kept while it is tracked (its TF frame keeps its name).",
              min_value=1, max_value=1000),
    ParamSpec("smoothing.enabled", _B, False,
              "Filter joints, hand mesh, wrist and object poses over time (One-Euro, per track; "
              "restarted on a new track or a time jump); a hand whose orientation was refit to "
              "2D keypoints first takes the near fit closest to its track's last orientation."),
    ParamSpec("smoothing.min_cutoff_hz", _D, 1.0,
              "One-Euro cutoff at rest (Hz): lower = smoother and more lag at low speed.",
              min_value=0.01, max_value=100.0),
    ParamSpec("smoothing.beta", _D, 10.0,
              "One-Euro cutoff increase per m/s of speed: higher = less lag when moving fast.",
              min_value=0.0, max_value=1000.0),
    ParamSpec("smoothing.d_cutoff_hz", _D, 1.0,
              "One-Euro cutoff of the speed estimate (Hz).", min_value=0.01, max_value=100.0),
    ParamSpec("smoothing.max_gap_s", _D, 0.5,
              "A stamp step larger than this (or a repeated stamp) restarts the filters; a "
              "stamp going backwards also ends every track (s).",
              min_value=0.001, max_value=60.0),
    # Output
    ParamSpec("frame_prefix", _S, "homae",
              "TF child frames are <frame_prefix>/<object_name> and "
              "<frame_prefix>/hand_right, with _<track id> appended while another track holds "
              "the name (no leading slash).",
              read_only=True),
    ParamSpec("target_frame", _S, "",
              "Frame to express results in (TF looked up at the image stamp); empty = the "
              "image's own frame.", read_only=True),
    ParamSpec("tf_timeout_s", _D, 0.05,
              "Longest wait for the target_frame transform at the image stamp (s).",
              min_value=0.0, max_value=5.0),
    ParamSpec("publish_tf", _B, True, "Broadcast object poses on /tf."),
    ParamSpec("publish_markers", _B, True, "Publish RViz markers on ~/markers."),
    ParamSpec("markers.hand_mesh", _B, True, "Markers: hand mesh (TRIANGLE_LIST)."),
    ParamSpec("markers.skeleton", _B, True, "Markers: hand skeleton (LINE_LIST + SPHERE_LIST)."),
    ParamSpec("markers.object_mesh", _B, True, "Markers: object mesh (TRIANGLE_LIST) and axes."),
    ParamSpec("debug_image", _B, True,
              "Publish ~/debug_image (boxes and projected joints); drawn only while someone "
              "subscribes."),
    ParamSpec("diagnostics_period_s", _D, 1.0,
              "Period of /diagnostics updates (rates, drops, latency) (s).",
              min_value=0.1, max_value=60.0),
    ParamSpec("diagnostics_window_s", _D, 10.0,
              "/diagnostics is WARN while a frame was skipped within this many recent seconds "
              "(the counters stay cumulative) (s).", min_value=0.1, max_value=3600.0),
    ParamSpec("log_throttle_s", _D, 5.0,
              "Smallest interval between two repeated warnings of the same kind (s).",
              min_value=0.0, max_value=3600.0),
)  # fmt: skip
"""The single declaration of every node parameter."""
