"""The frame pipeline of homae_node, shared by the plain node and the managed (lifecycle) node.

Data flow (see docs/design.md):

    image (Image, or CompressedImage on <image>/compressed) + camera_info
      (message_filters sync, or latest camera_info)
      -> LatestFrame slot (only the newest frame waits; replaced frames are counted as dropped)
      -> worker thread: conversions -> undistortion (D, P) -> FrameEstimator (detector boxes
         -> Predictor)
      -> FrameTracker (track ids, voted object names, TF child frames, optional smoothing)
      -> ~/hand_object (HandObjectResult), /tf (one sendTransform per image), ~/markers,
         ~/debug_image (only while subscribed), /diagnostics (telemetry: rates, latency,
         processed / dropped / skipped frames; level from a recent window)

`FramePipeline` is a mixin for an rclpy `Node` (or `LifecycleNode`) whose steps the two nodes
call at different times:

    _init_state(estimator)   counters, tracker, slot, live parameters
    _create_outputs()        publishers, tf broadcaster / listener          (configure)
    _start_flow()            subscriptions, diagnostics timer, worker      (activate)
    _stop_flow()             the reverse; nothing is published afterwards  (deactivate)
    _release()               the model, its device memory, the publishers  (cleanup)

Parameters not marked read-only change while the node runs (`live.LiveParams`): a change is
validated when it is set and applied by the worker before its next frame.

Nothing a camera sends can kill the node: each bad frame gets a throttled warning naming the
reason, a counter in diagnostics (`errors.<reason>`), and no output; the next good frame is
processed. The same holds for the model failing (`model_error`, `out_of_memory` after the
estimator's split retry, `non_finite_output`) and for a missing target_frame transform
(`tf_lookup_failed`). Reasons come from `frame_errors.skip_reason`, shared with the tools.

Where tf2_ros / message_filters are not installed (ROS 2 from PyPI wheels), /tf is published as
plain tf2_msgs/TFMessage and images are paired with camera_info by `StampPairer`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.duration import Duration
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from homae_model.device import resolve_device
from homae_model.estimation.detection import DetectionConfig
from homae_model.estimation.errors import OUT_OF_MEMORY, TF_LOOKUP_FAILED, FrameSkipped, skip_reason
from homae_model.estimation.estimator import FrameEstimator, empty_cuda_cache
from homae_model.tracking.frame import FrameTracker, TrackedFrame
from homae_ros.messages import build as messages
from homae_ros.messages import conversions
from homae_ros.messages.outputs import build_frame_messages, overlay_image
from homae_ros.messages.rectify import ImageRectifier
from homae_ros.messages.stamps import Frame, LatestFrame, StampPairer
from homae_ros.node.diagnostics import RecentErrors
from homae_ros.node.live import LiveParams, marker_options, tracking_settings
from homae_ros.node.params import (
    CAMERA_INFO_TOPIC,
    IMAGE_TOPIC,
    NodeParams,
    validate_parameter_change,
)
from homae_ros.node.runtime import configure_torch_threads
from homae_ros.node.tf_output import tf_broadcaster

OUTPUT_QOS_DEPTH = 10
CAMERA_INFO_STALE_S = 2.0
"""Images arriving this long without a usable camera_info trigger a warning."""


class FramePipeline:
    """Camera frames in, hand-object results out; mixed into an rclpy node (module docstring).

    The node sets `self.params` (NodeParams) before calling `_init_state`.
    """

    params: NodeParams
    estimator: FrameEstimator | None = None
    _live: LiveParams | None = None
    _worker: threading.Thread | None = None

    # ---------------------------------------------------------------- set-up steps
    def _load_estimator(self) -> FrameEstimator:
        """Resolve the device, set torch's threads and load the model from the parameters.

        Raises:
            FileNotFoundError, ValueError, RuntimeError: bad parameters or files; the message
                names the parameter.
        """
        p = self.params
        self.device = resolve_device(p.device)
        self.torch_threads = configure_torch_threads(p.torch_threads)
        det = DetectionConfig.from_params(p, device=self.device)
        return FrameEstimator.load(
            checkpoint=p.checkpoint,
            device=self.device,
            mano_model_path=p.mano_model_path,
            object_library=p.object_library,
            detection=det,
            backend=p.detector_backend,
            max_pairs=p.max_batch_pairs,
            min_hand_score=p.min_hand_score,
            runtime=p.runtime,
            runtime_provider=p.runtime_provider,
            onnx_dir=p.onnx_dir,
        )

    def _init_state(self, estimator: FrameEstimator) -> None:
        """Counters, tracker, slot and live parameters for `estimator`."""
        p = self.params
        if not hasattr(self, "device"):
            self.device = resolve_device(p.device)
            self.torch_threads = configure_torch_threads(p.torch_threads)
        self.estimator = estimator
        self._slot = LatestFrame()
        self._stats: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._recent_errors = RecentErrors()
        self._tracker = FrameTracker(tracking_settings(p))
        self._live = LiveParams(p)
        self._rectifier = ImageRectifier()
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._latencies: deque[float] = deque(maxlen=200)
        self._arrivals: deque[float] = deque(maxlen=200)
        self._done_times: deque[float] = deque(maxlen=200)
        # the callbacks and the worker append to the three deques above while a timer (another
        # executor thread) or a caller reads them for the diagnostics
        self._times_lock = threading.Lock()
        self._last_warn: dict[str, float] = {}
        self._last_image_t = 0.0
        self._last_synced_t = 0.0
        self._latest_info: CameraInfo | None = None
        self._stop = threading.Event()
        self._stop.set()  # no flow until _start_flow
        self._inputs: list[Any] = []
        self._pairer: StampPairer | None = None
        self._diag_timer = None
        self._marker_options = marker_options(p)

    def _on_set_parameters(self, parameters: list[Any]) -> Any:
        """On-set callback: `LiveParams` once configured, else per-parameter validation."""
        live = self._live
        if live is None:
            return validate_parameter_change(parameters)
        return live.on_set(parameters)

    def _create_outputs(self) -> None:
        """Publishers, the TF broadcaster and (target_frame) the TF listener.

        Raises:
            RuntimeError: target_frame is set but tf2_ros is missing (names the parameter).
        """
        p = self.params
        out_qos = QoSProfile(depth=OUTPUT_QOS_DEPTH, reliability=ReliabilityPolicy.RELIABLE)
        self.result_pub = self.create_publisher(
            messages._import_msgs().HandObjectResult, "~/hand_object", out_qos
        )
        self.marker_pub = self.create_publisher(MarkerArray, "~/markers", out_qos)
        self.debug_pub = self.create_publisher(Image, "~/debug_image", out_qos)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", out_qos)
        if getattr(self, "_tf", None) is None:  # kept across cleanup: tf2 owns its publisher
            self._tf = tf_broadcaster(self) if p.publish_tf else None
        self._tf_buffer = None
        self._tf_errors: tuple[type[BaseException], ...] = ()
        if p.target_frame:
            try:
                from tf2_ros import Buffer, TransformException, TransformListener
            except ImportError as err:
                raise RuntimeError(
                    f"parameter 'target_frame' = '{p.target_frame}' needs tf2_ros, which is not "
                    "installed (use a ROS 2 install, or leave target_frame empty)"
                ) from err
            self._tf_buffer = Buffer()
            self._tf_errors = (TransformException,)
            self._tf_listener = TransformListener(self._tf_buffer, self)

    def _start_flow(self) -> None:
        """Subscribe, start the diagnostics timer and the worker."""
        self._slot.reopen()
        self._stop.clear()
        self._subscribe()
        self._diag_timer = self.create_timer(
            self.params.diagnostics_period_s, self._publish_diagnostics
        )
        self._worker = threading.Thread(target=self._work, name="homae_worker", daemon=True)
        self._worker.start()

    def _stop_flow(self, join_timeout_s: float = 2.0) -> None:
        """Unsubscribe, stop the timer and the worker; a waiting frame is dropped."""
        self._stop.set()
        for sub in self._inputs:
            self.destroy_subscription(sub)
        self._inputs = []
        self._pairer = None
        self._sync = None
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = None
        self._slot.close()
        if self._worker is not None:
            self._worker.join(timeout=join_timeout_s)

    def _release(self) -> None:
        """Drop the model (its GPU memory with it), the publishers and the TF listener."""
        self.estimator = None
        self._live = None
        self._tracker = FrameTracker(tracking_settings(self.params))
        for name in ("result_pub", "marker_pub", "debug_pub", "diag_pub"):
            pub = getattr(self, name, None)
            if pub is not None:
                self.destroy_publisher(pub)
                setattr(self, name, None)
        listener = getattr(self, "_tf_listener", None)
        if listener is not None and hasattr(listener, "unregister"):
            listener.unregister()
        self._tf_listener = None
        self._tf_buffer = None
        empty_cuda_cache()

    # ---------------------------------------------------------------- input
    def _input_qos(self) -> QoSProfile:
        if self.params.qos == "reliable":
            return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        return qos_profile_sensor_data

    def _image_input(self) -> tuple[type, str]:
        """(message type, topic) of the image input, from `image_transport`.

        The compressed topic is `<resolved image topic>/compressed` (image_transport's naming),
        so a remap of `image` moves both.
        """
        if self.params.image_transport == "compressed":
            return CompressedImage, self.resolve_topic_name(IMAGE_TOPIC) + "/compressed"
        return Image, IMAGE_TOPIC

    def _image_topic(self) -> str:
        return self.resolve_topic_name(self._image_input()[1])

    def _sub(self, msg_type: type, topic: str, callback: Any, qos: Any) -> None:
        self._inputs.append(
            self.create_subscription(
                msg_type, topic, callback, qos, callback_group=self._input_group
            )
        )

    def _subscribe(self) -> None:
        qos = self._input_qos()
        group = self._input_group
        image_type, image_topic = self._image_input()
        if self.params.sync == "latest_camera_info":
            self._sub(CameraInfo, CAMERA_INFO_TOPIC, self._on_info, qos)
            self._sub(image_type, image_topic, self._on_image_only, qos)
            return
        try:
            import message_filters
        except ImportError:
            slop = 0.0 if self.params.sync == "exact" else self.params.sync_slop_s
            self._pairer = StampPairer(slop, self._on_frame)
            self._sub(image_type, image_topic, self._on_image_unsynced, qos)
            self._sub(CameraInfo, CAMERA_INFO_TOPIC, self._pairer.add_info, qos)
            return

        # Depth above 1 so the synchroniser can pair stamps; the slot still keeps one frame.
        sync_qos = QoSProfile(depth=5, reliability=qos.reliability)
        subs = [
            message_filters.Subscriber(
                self, image_type, image_topic, qos_profile=sync_qos, callback_group=group
            ),
            message_filters.Subscriber(
                self, CameraInfo, CAMERA_INFO_TOPIC, qos_profile=sync_qos, callback_group=group
            ),
        ]
        if self.params.sync == "exact":
            self._sync = message_filters.TimeSynchronizer(subs, 10)
        else:
            self._sync = message_filters.ApproximateTimeSynchronizer(
                subs, 10, self.params.sync_slop_s
            )
        self._sync.registerCallback(self._on_frame)
        self._inputs.extend(s.sub for s in subs)
        # Seeing images without a synchronised pair means camera_info is missing or off.
        self._sub(image_type, image_topic, self._on_any_image, qos)

    def _on_any_image(self, _msg: Any) -> None:
        self._last_image_t = time.monotonic()

    def _on_image_unsynced(self, msg: Any) -> None:
        self._last_image_t = time.monotonic()
        if self._pairer is not None:
            self._pairer.add_image(msg)

    def _on_info(self, msg: CameraInfo) -> None:
        self._latest_info = msg

    def _on_image_only(self, msg: Any) -> None:
        self._last_image_t = time.monotonic()
        if self._latest_info is None:
            self._count_error("no_camera_info", f"no camera_info yet on {self._info_topic()}")
            return
        self._on_frame(msg, self._latest_info)

    def _on_frame(self, image: Any, info: CameraInfo) -> None:
        if self._stop.is_set():
            return  # inactive: a late callback of a destroyed subscription
        now = time.monotonic()
        self._last_synced_t = now
        with self._times_lock:
            self._arrivals.append(now)
        self._stats["received"] += 1
        self._slot.put(Frame(image, info, now))

    def _info_topic(self) -> str:
        return self.resolve_topic_name(CAMERA_INFO_TOPIC)

    # ---------------------------------------------------------------- worker
    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                self._apply_changes()
                frame = self._slot.take(timeout=0.5)
                if frame is not None:
                    self._apply_changes()  # a change set while waiting counts for this frame
                if frame is None:
                    self._check_camera_info_flow()
                elif not self._stop.is_set():
                    self.handle_frame(frame)
            except Exception as err:  # pragma: no cover - last line of defence
                self._errors["internal"] += 1
                try:
                    self.get_logger().error(f"homae worker: {err!r}", throttle_duration_sec=5.0)
                except Exception:
                    pass

    def _apply_changes(self) -> None:
        """Apply parameters accepted since the last frame, all in one step."""
        live = self._live
        new = live.take() if live is not None else None
        if new is None:
            return
        old, self.params = self.params, new
        if self.estimator is not None:
            det = DetectionConfig.from_params(new, device=self.device)
            self.estimator.configure(det, new.max_batch_pairs, new.min_hand_score)
        self._tracker.configure(tracking_settings(new))
        if new.objects_allowed != old.objects_allowed:
            self._tracker.forget_labels()  # votes for names no longer allowed do not count
        self._marker_options = marker_options(new)
        if new.publish_tf and self._tf is None:
            self._tf = tf_broadcaster(self)
        if new.diagnostics_period_s != old.diagnostics_period_s and self._diag_timer is not None:
            self._diag_timer.timer_period_ns = int(new.diagnostics_period_s * 1e9)
            self._diag_timer.reset()
        self.get_logger().info("parameters changed; in effect from this frame on")

    def handle_frame(self, frame: Frame) -> bool:
        """Process one frame; never raises (failures are counted and logged, throttled).

        Returns:
            True when results were published, False when the frame was skipped.
        """
        try:
            self._process(frame)
            return True
        except Exception as err:  # a bad frame must never stop the node
            skip = skip_reason(err)
            self._count_error(skip.reason, f"frame skipped ({skip.reason}): {skip}")
            if skip.reason == OUT_OF_MEMORY:
                empty_cuda_cache()
        return False

    def _check_camera_info_flow(self) -> None:
        now = time.monotonic()
        if now - self._last_image_t < 1.0 and now - self._last_synced_t > CAMERA_INFO_STALE_S:
            self._warn(
                "camera_info_stale",
                f"images arrive on {self._image_topic()} but no camera_info "
                f"matches them on {self._info_topic()} for {CAMERA_INFO_STALE_S:.0f} s: no "
                "results (check the camera_info topic, or set sync:=latest_camera_info)",
            )

    def frame_input(self, image: Any, info: CameraInfo) -> tuple[np.ndarray, np.ndarray]:
        """The RGB image and K the estimator sees: decoded, checked and (undistort) undistorted.

        Args:
            image: sensor_msgs/Image or CompressedImage.
            info: its sensor_msgs/CameraInfo.

        Returns:
            ((H, W, 3) uint8 RGB, (3, 3) float64 K of that image).

        Raises:
            ConversionError: bad image or camera_info (see `conversions`).
        """
        if isinstance(image, CompressedImage):
            rgb = conversions.compressed_to_rgb(image)
        else:
            rgb = conversions.image_to_rgb(image)
        K = conversions.check_camera_info(info, rgb.shape)
        if self.params.undistort:
            rgb, K = self._rectifier.rectify(rgb, info, K)
        return rgb, K

    def _process(self, frame: Frame) -> None:
        rgb, K = self.frame_input(frame.image, frame.info)
        header = frame.image.header
        stamp_s = header.stamp.sec + 1e-9 * header.stamp.nanosec
        estimator = self.estimator
        if estimator is None:
            return  # released (cleanup) while this frame waited
        estimates = estimator.process(rgb, K, stamp_s)
        if not estimates:
            self._stats["no_detection"] += 1
            self._warn("no_detection", "no hand-object pair detected")
        R_tf, t_tf, out_header = self._target_transform(header)
        tracked = self._tracker.update(estimates, stamp_s)
        if tracked.reset:
            self._stats[f"tracking_reset.{tracked.reset}"] += 1
        if self._stop.is_set():
            return  # deactivated while the model ran: no output while inactive
        self._publish(frame, header, out_header, tracked, R_tf, t_tf, rgb, K)

    def _target_transform(self, header: Any) -> tuple[np.ndarray, np.ndarray, Any]:
        """R, t from the image frame to target_frame at the image stamp (identity if none)."""
        if self._tf_buffer is None:
            return np.eye(3), np.zeros(3), header
        try:
            tf = self._tf_buffer.lookup_transform(
                self.params.target_frame,
                header.frame_id,
                Time.from_msg(header.stamp),
                timeout=Duration(seconds=self.params.tf_timeout_s),
            )
        except self._tf_errors as err:
            raise FrameSkipped(
                TF_LOOKUP_FAILED,
                f"no transform {header.frame_id} -> {self.params.target_frame} at the image "
                f"stamp: {err}",
            ) from err
        q = tf.transform.rotation
        tr = tf.transform.translation
        R = conversions.quaternion_to_rotation_matrix(np.array([q.x, q.y, q.z, q.w]))
        out = type(header)()
        out.stamp = header.stamp
        out.frame_id = self.params.target_frame
        return R, np.array([tr.x, tr.y, tr.z]), out

    def _publish(
        self,
        frame: Frame,
        in_header: Any,
        header: Any,
        tracked: TrackedFrame,
        R_tf: np.ndarray,
        t_tf: np.ndarray,
        rgb: np.ndarray,
        K: np.ndarray,
    ) -> None:
        p = self.params
        self._stats["processed"] += 1
        out = build_frame_messages(
            tracked,
            header,
            self.estimator.hand_faces,
            R_tf=R_tf,
            t_tf=t_tf,
            frame_prefix=p.frame_prefix,
            marker_options=self._marker_options if p.publish_markers else None,
        )
        self.result_pub.publish(out.result)
        if p.publish_tf and self._tf is not None and out.transforms:
            self._tf.sendTransform(out.transforms)
        if out.markers is not None:
            self.marker_pub.publish(out.markers)
        if p.debug_image and self.debug_pub.get_subscription_count() > 0:
            estimates = [tp.estimate for tp in tracked.pairs]
            overlay = overlay_image(rgb, K, estimates, self.estimator.hand_faces)
            self.debug_pub.publish(conversions.rgb_to_image(overlay, in_header, "rgb8"))
        done = time.monotonic()
        with self._times_lock:
            self._latencies.append(1e3 * (done - frame.received))
            self._done_times.append(done)

    # ---------------------------------------------------------------- logging, diagnostics
    def _warn(self, key: str, text: str) -> None:
        now = time.monotonic()
        if now - self._last_warn.get(key, -1e9) >= self.params.log_throttle_s:
            self._last_warn[key] = now
            self.get_logger().warning(text)

    def _count_error(self, reason: str, text: str) -> None:
        self._errors[reason] += 1
        self._recent_errors.add(time.monotonic(), reason)
        self._warn(reason, text)

    @staticmethod
    def _rate(times: tuple[float, ...], window_s: float = 5.0) -> float:
        now = time.monotonic()
        recent = [t for t in times if now - t <= window_s]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)

    def diagnostics(self) -> dict[str, float]:
        """Current counters and rates (also published on /diagnostics)."""
        with self._times_lock:  # snapshots: iterating a deque another thread appends to raises
            lat = sorted(self._latencies)
            arrivals, done = tuple(self._arrivals), tuple(self._done_times)
        values = {
            "input_rate_hz": self._rate(arrivals),
            "processed_rate_hz": self._rate(done),
            "frames_received": float(self._stats["received"]),
            "frames_processed": float(self._stats["processed"]),
            "frames_dropped": float(self._slot.dropped),
            "frames_skipped": float(sum(self._errors.values())),
            "frames_without_detection": float(self._stats["no_detection"]),
            "tracks_hands": float(len(self._tracker.hands.tracks)),
            "tracks_objects": float(len(self._tracker.objects.tracks)),
            "torch_threads": float(self.torch_threads),
            "latency_ms_median": float(np.median(lat)) if lat else 0.0,
            "latency_ms_max": float(lat[-1]) if lat else 0.0,
        }
        for reason, n in sorted(self._errors.items()):
            values[f"errors.{reason}"] = float(n)
        return values

    def diagnostic_level(self) -> tuple[bytes, str]:
        """The /diagnostics (level, message).

        WARN while a frame was skipped within the last `diagnostics_window_s`, else OK.
        """
        window = self.params.diagnostics_window_s
        recent = self._recent_errors.recent(time.monotonic(), window)
        if recent:
            listed = ", ".join(f"{k} x{n}" for k, n in sorted(recent.items()))
            return DiagnosticStatus.WARN, f"frames skipped in the last {window:g} s: {listed}"
        return DiagnosticStatus.OK, "ok"

    def _publish_diagnostics(self) -> None:
        if self.diag_pub is None:
            return
        values = self.diagnostics()
        status = DiagnosticStatus(name=f"{self.get_name()}: HOMAE", hardware_id=self.device)
        level, message = self.diagnostic_level()
        status.level = level
        status.message = message
        status.values = [KeyValue(key=k, value=f"{v:.3f}") for k, v in values.items()]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(msg)
