"""Timing helpers and the per-stage measurements of one Predictor frame (batch 1).

Every stage is timed as a closure with `measure` (warm-up calls excluded, median and spread of
the repeats; CUDA is synchronised around each call). The stages are exactly the calls
`Predictor.predict` makes, one by one, plus the ROS-side conversion, messages and markers.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from benchmarks.scene import Scene, crop_inputs
from homae_model.branch_search import search_branches
from homae_model.geometry.crop import crop_image, union_crop_box
from homae_model.model import HomaeModel


@dataclass
class Timing:
    """Wall-clock statistics of repeated calls, milliseconds."""

    median_ms: float
    min_ms: float
    max_ms: float
    repeats: int

    def as_dict(self) -> dict[str, float]:
        """JSON-ready dict."""
        return {
            "median_ms": round(self.median_ms, 3),
            "min_ms": round(self.min_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "repeats": self.repeats,
        }


def measure(
    fn: Callable[[], Any], repeats: int, warmup: int = 1, device: torch.device | None = None
) -> Timing:
    """Time `fn` `repeats` times after `warmup` untimed calls."""
    cuda = device is not None and device.type == "cuda"
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize(device)
        times.append(1e3 * (time.perf_counter() - t0))
    return Timing(statistics.median(times), min(times), max(times), repeats)


def interleaved(
    fns: dict[str, Callable[[], Any]], repeats: int, device: torch.device | None = None
) -> dict[str, Timing]:
    """Time several closures round-robin (one warm-up each) so load drifts hit them alike."""
    for fn in fns.values():
        fn()
    cuda = device is not None and device.type == "cuda"
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if cuda:
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            fn()
            if cuda:
                torch.cuda.synchronize(device)
            times[name].append(1e3 * (time.perf_counter() - t0))
    return {k: Timing(statistics.median(v), min(v), max(v), repeats) for k, v in times.items()}


def model_stages(
    model: HomaeModel, scene: Scene, device: torch.device, repeats: int
) -> dict[str, Timing]:
    """Per-stage times of one crop through the network (the Predictor's calls, in order)."""
    ci = crop_inputs(scene, model, device)
    box = union_crop_box(scene.hand_box, scene.obj_box, model.cfg.data.crop_scale)
    s = model.cfg.model.encoder.img_size
    out: dict[str, Callable[[], Any]] = {}
    roi = torch.cat([ci.hand_box, ci.obj_box])  # the Predictor's F~ window (TorchStages)
    with torch.inference_mode():
        img_n = model.encoder.normalize(ci.image)
        grid, _ = model.encoder.forward_normalized(img_n)
        enc = model.encode(ci.image, roi=roi)
        window = enc.window
        anchor = model.predict_anchor(enc, ci.K, ci.hand_box, ci.obj_box).anchor
        hs = model.sample_points(enc, ci.K, anchor, ci.hand_box, "hand")
        os_ = model.sample_points(enc, ci.K, anchor, ci.obj_box, "obj")
        hand = model.sdf(enc, ci.K, hs.points, anchor, "hand")
        obj = model.sdf(enc, ci.K, os_.points, anchor, "obj")
        layers, _ = model.heads(hand, obj)

    def sdf_only() -> None:
        model._sdf_scaled(enc, ci.K, hs.points, anchor, "hand")
        model._sdf_scaled(enc, ci.K, os_.points, anchor, "obj")

    def pointnet_fusion() -> None:
        for br, pn, fu in (
            (hand, model.pointnet_hand, model.fusion_hand),
            (obj, model.pointnet_obj, model.fusion_obj),
        ):
            f3 = pn(br.pos[..., :3]) if pn is not None else None
            fu(br.tokens[..., : model.cfg.model.decoder.feat_channels], f3, br.sdf)

    out["crop"] = lambda: crop_image(scene.image, scene.K, box, s)
    out["encoder"] = lambda: model.encoder.forward_normalized(model.encoder.normalize(ci.image))
    out["decoder_fusion"] = lambda: model.multiscale(model.decoder(grid, window), window)
    out["anchor_head"] = lambda: model.predict_anchor(enc, ci.K, ci.hand_box, ci.obj_box)
    out["point_sampling"] = lambda: search_branches(  # both searches, as the Predictor
        model.cfg,
        model.sdf_fn(enc, ci.K, anchor, "hand"),
        model.sdf_fn(enc, ci.K, anchor, "obj"),
        anchor,
        ci.K,
        ci.hand_box,
        ci.obj_box,
    )
    out["sdf_heads"] = sdf_only
    out["pointnet_fusion"] = pointnet_fusion
    out["transformers_heads"] = lambda: model.heads(hand, obj, final_only=True)
    out["mano"] = lambda: model.hand_mesh(layers[-1], anchor)
    with torch.inference_mode():
        return interleaved(out, repeats, device)


def ros_stages(scene: Scene, prediction: Any, faces: np.ndarray, repeats: int) -> dict[str, Any]:
    """Image conversion, message building and markers (needs the ROS environment sourced)."""
    try:
        from std_msgs.msg import Header

        from homae_ros.messages.build import hand_pose_msg, object_pose_msg, result_msg
        from homae_ros.messages.conversions import image_to_rgb, rgb_to_image
        from homae_ros.messages.markers import HandDrawing, ObjectDrawing, build_marker_array
    except ImportError as exc:  # no ROS sourced: say so in the results
        return {"unavailable": f"ROS messages not importable ({exc}); run through `make bench`"}
    header = Header(frame_id="camera")
    msg = rgb_to_image(scene.image, header, "rgb8")
    p = prediction

    def messages() -> Any:
        hand = hand_pose_msg("right", 1.0, p.joints, p.mano_pose, p.mano_shape, p.crop_box, 0)
        obj = object_pose_msg(
            "006_mustard_bottle", 1.0, p.obj_rot_matrix, p.obj_trans, p.crop_box, 0
        )
        return result_msg(header, [hand], [obj])

    hands = [HandDrawing(0, p.joints, p.vertices, faces)]
    obj_model = scene.obj_verts - scene.obj_verts.mean(axis=0)
    objects = [
        ObjectDrawing(
            0, p.obj_rot_matrix, p.obj_trans, obj_model, scene.obj_faces, name="006_mustard_bottle"
        )
    ]
    times = interleaved(
        {
            "image_conversion": lambda: image_to_rgb(msg),
            "message_building": messages,
            "markers": lambda: build_marker_array(header, hands, objects),
        },
        repeats,
    )
    return times
