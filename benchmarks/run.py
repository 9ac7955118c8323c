"""`make bench`: speed and memory of HOMAE inference, the node and training, side by side.

Writes benchmarks/results.json and benchmarks/results.md. All timings of one run share the
machine state: stages that are compared (Predictor vs encoder, dense vs coarse-to-fine, node vs
Predictor, batch 4 vs 4 x batch 1) are timed round-robin in the same loop. Medians of
`--repeats` calls after one warm-up; min/max as the spread. Weights: the paper config with
random weights, its two SDF heads fitted to one scene's ground-truth SDF (benchmarks/scene.py)
so that coarse-to-fine sampling can prune as it does for a trained model, and its anchor head
aimed at the scene's hand root (the Predictor still runs GT-free).

Usage: ``python -m benchmarks.run [--device cpu|cuda] [--repeats 3] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.node_bench import peak_rss_mb
from benchmarks.onnx_bench import equivalence, int8_predictor, onnx_predictor
from benchmarks.scene import aim_anchor_head, crop_inputs, fit_sdf_heads, make_scene
from benchmarks.stages import Timing, interleaved, measure, model_stages, ros_stages
from homae_model.config import HomaeConfig, load_config
from homae_model.geometry.voxels import coarse_to_fine_select, dense_select
from homae_model.inference import Predictor
from homae_model.model import HomaeModel

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GOALS = {
    "predictor_over_encoder": 2.5,
    "sampling_coarse_over_dense": 0.10,
    "node_over_predictor": 1.15,
    "batch4_over_4x_batch1": 2.5 / 4.0,
    "onnxruntime_over_torch": 0.75,
}


def _paper_config() -> HomaeConfig:
    cfg = load_config(REPO / "config" / "model" / "paper.yaml")
    cfg.model.inference.sampling = "coarse_to_fine"
    return cfg


def machine_info(device: torch.device, threads: int) -> dict[str, Any]:
    """What ran the benchmark."""
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "load_average_1m_at_start": os.getloadavg()[0],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
        "time_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def point_keys(points: torch.Tensor) -> set[tuple[int, ...]]:
    """Voxel centres as integer keys (0.1 mm) for overlap counting."""
    return {tuple(x) for x in (points * 1e4).round().long().tolist()}


def sampling_comparison(
    model: HomaeModel, scene: Any, device: torch.device, repeats: int
) -> dict[str, Any]:
    """Dense 64^3 (HOISDF) vs coarse-to-fine for both branches: cost, overlap, pose change."""
    ci = crop_inputs(scene, model, device)
    inf = model.cfg.model.inference
    pts_cfg = model.cfg.model.points
    with torch.inference_mode():
        enc = model.encode(ci.image)
        anchor = model.predict_anchor(enc, ci.K, ci.hand_box, ci.obj_box).anchor
        fns = {br: model.sdf_fn(enc, ci.K, anchor, br) for br in ("hand", "obj")}
        common = {"res": inf.voxel_res, "sdf_scale": model.sdf_scale, "chunk": inf.chunk_points}
        ks = {"hand": pts_cfg.num_hand, "obj": pts_cfg.num_obj}
        boxes = {"hand": ci.hand_box, "obj": ci.obj_box}

        def run(mode: str) -> dict[str, Any]:
            out = {}
            for br in ("hand", "obj"):
                if mode == "dense":
                    out[br] = dense_select(fns[br], anchor, ci.K, boxes[br], ks[br], **common)
                else:
                    out[br] = coarse_to_fine_select(
                        fns[br],
                        anchor,
                        ci.K,
                        boxes[br],
                        ks[br],
                        coarse_res=inf.coarse_res,
                        margin=inf.refine_margin,
                        **common,
                    )
            return out

        times = interleaved(
            {"dense": lambda: run("dense"), "coarse_to_fine": lambda: run("c2f")},
            max(1, min(repeats, 2)),
            device,
        )
        dense, c2f = run("dense"), run("c2f")
        result: dict[str, Any] = {
            "dense": times["dense"].as_dict(),
            "coarse_to_fine": times["coarse_to_fine"].as_dict(),
        }
        poses = {}
        for name, sel in (("dense", dense), ("coarse_to_fine", c2f)):
            hand = model.sdf(enc, ci.K, sel["hand"].points, anchor, "hand")
            obj = model.sdf(enc, ci.K, sel["obj"].points, anchor, "obj")
            hl, ol = model.heads(hand, obj)
            mesh = model.hand_mesh(hl[-1], anchor)
            poses[name] = (mesh.joints[0], ol[-1].trans[0], ol[-1].rotmat[0])
        for br in ("hand", "obj"):
            d, c = dense[br], c2f[br]
            result[br] = {
                "k": ks[br],
                "dense_evals": d.num_evals,
                "coarse_to_fine_evals": c.num_evals,
                "evals_ratio": c.num_evals / max(d.num_evals, 1),
                "point_overlap": len(point_keys(d.points[0]) & point_keys(c.points[0])) / ks[br],
                "dense_max_abs_sdf_m": float(d.sdf.abs().max()),
            }
        (jd, td, rd), (jc, tc, rc) = poses["dense"], poses["coarse_to_fine"]
        cos = float(((rd.T @ rc).trace() - 1.0) / 2.0)
        result["pose_difference"] = {
            "hand_joints_mean_mm": float(1e3 * (jd - jc).norm(dim=-1).mean()),
            "obj_trans_mm": float(1e3 * (td - tc).norm()),
            "obj_rot_deg": float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))),
        }
    return result


def detector_timing(scene: Any, device: torch.device, repeats: int) -> Timing | str:
    """The project's torchvision detector (random weights) on the full image."""
    try:
        from homae_model.detector.infer import Detector
        from homae_model.detector.model import build_detector

        det = Detector.from_model(
            build_detector(class_names=("hand", "006_mustard_bottle")), device, 0.0
        )
    except Exception as exc:
        return f"detector unavailable: {exc}"
    with torch.inference_mode():
        return measure(lambda: det.detect(scene.image), repeats, 1, device)


def training_throughput(
    name: str,
    device: torch.device,
    steps: int = 3,
    batch_size: int = 2,
    amp: torch.dtype | None = None,
) -> dict[str, Any]:
    """Samples/s of forward + loss + backward + Adam step on synthetic batches.

    `amp`: run forward and loss under `torch.autocast` with this dtype (float16 adds a
    gradient scaler); None: fp32.
    """
    from homae_model.losses import total_loss

    cfg = load_config(REPO / "config" / "model" / f"{name}.yaml")
    torch.manual_seed(0)
    model = HomaeModel(cfg).to(device).train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    s = cfg.model.encoder.img_size
    b = batch_size
    nh, no = cfg.data.num_hand_points, cfg.data.num_obj_points
    root = torch.tensor([0.0, 0.0, 0.5], device=device)
    K = torch.tensor([[s * 1.2, 0, (s - 1) / 2], [0, s * 1.2, (s - 1) / 2], [0, 0, 1.0]])
    batch = {
        "image": torch.rand(b, 3, s, s, device=device),
        "K": K.to(device).expand(b, 3, 3).contiguous(),
        "hand_joints": root + 0.03 * torch.randn(b, 21, 3, device=device),
        "hand_verts": root + 0.03 * torch.randn(b, 778, 3, device=device),
        "mano_pose": 0.1 * torch.randn(b, 48, device=device),
        "mano_shape": torch.zeros(b, 10, device=device),
        "obj_rot": 0.5 * torch.randn(b, 3, device=device),
        "obj_trans": (root + 0.05).expand(b, 3).contiguous(),
        "obj_id": torch.zeros(b, dtype=torch.long, device=device),
        "obj_corners": root + 0.05 * torch.randn(b, 8, 3, device=device),
        "hand_box": torch.tensor([[s * 0.3, s * 0.3, s * 0.6, s * 0.6]] * b, device=device),
        "obj_box": torch.tensor([[s * 0.5, s * 0.4, s * 0.8, s * 0.7]] * b, device=device),
        "hand_points": root + 0.05 * torch.randn(b, nh, 3, device=device),
        "hand_sdf": 0.01 * torch.randn(b, nh, device=device),
        "obj_points": root + 0.05 * torch.randn(b, no, 3, device=device),
        "obj_sdf": 0.01 * torch.randn(b, no, device=device),
        "anchor": root.expand(b, 3).contiguous(),
        "hand_visible": torch.ones(b, device=device),
        "obj_visible": torch.ones(b, device=device),
    }

    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)

    def step() -> None:
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            out = model(batch)
            loss, _ = total_loss(out, batch, cfg.loss)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    t = measure(step, steps, 1, device)
    return {
        "config": name,
        "precision": "fp32" if amp is None else f"autocast {str(amp).replace('torch.', '')}",
        "batch_size": b,
        "step": t.as_dict(),
        "samples_per_s": round(1e3 * b / t.median_ms, 3),
    }


def node_vs_predictor(model: HomaeModel, scene: Any, repeats: int, threads: int) -> dict[str, Any]:
    """Run benchmarks.node_bench in a subprocess on a checkpoint of `model`."""
    from homae_model.checkpoint import save_checkpoint
    from homae_model.geometry.crop import union_crop_box

    with tempfile.TemporaryDirectory(prefix="homae_bench_") as tmp:
        tmpd = Path(tmp)
        save_checkpoint(tmpd / "ckpt", model, model.cfg)
        np.save(tmpd / "image.npy", scene.image)
        np.save(tmpd / "K.npy", scene.K)
        # the roi backend's pair (roi, roi) gives the same crop as the scene's union box
        box = union_crop_box(scene.hand_box, scene.obj_box, 1.0)
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.node_bench",
            str(tmpd / "ckpt"),
            str(tmpd / "image.npy"),
            str(tmpd / "K.npy"),
            json.dumps(box.tolist()),
            str(repeats),
            str(threads),
        ]
        try:
            proc = subprocess.run(
                cmd, cwd=REPO, capture_output=True, text=True, timeout=240, check=False
            )
        except subprocess.TimeoutExpired:
            return {"error": "node benchmark timed out after 240 s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-800:]
        return {"error": f"node benchmark failed (rc {proc.returncode}): {tail}"}
    return json.loads(lines[-1])


def _ratio_entry(value: float | None, goal: float | None, note: str = "") -> dict[str, Any]:
    entry: dict[str, Any] = {"value": None if value is None else round(value, 4)}
    if goal is not None and value is not None:
        entry["goal"] = goal
        entry["met"] = bool(value <= goal)
        if value > goal:
            entry["missed_by"] = f"{value / goal:.2f}x the goal ({value:.3f} vs <= {goal:.3f})"
    if note:
        entry["note"] = note
    return entry


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run every measurement and write the results files."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per measurement")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--fit-steps", type=int, default=150, help="Adam steps per SDF head")
    ap.add_argument("--skip-node", action="store_true", help="no ROS node measurement")
    ap.add_argument("--skip-train", action="store_true", help="no training throughput")
    ap.add_argument("--out", default=str(HERE / "results.json"), help="results JSON path")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    res: dict[str, Any] = {"machine": machine_info(device, args.threads)}
    res["setup"] = {
        "config": "config/model/paper.yaml, sampling=coarse_to_fine (voxel_res 64, coarse_res 16)",
        "weights": "random (seed 0); SDF heads fitted to one scene's GT SDF; anchor head aimed",
        "image": "640x480, one hand-object pair, crop 224x224, batch 1",
        "repeats": args.repeats,
        "warmup": 1,
    }
    print(f"[bench] device={device} threads={args.threads} repeats={args.repeats}", flush=True)

    cfg = _paper_config()
    torch.manual_seed(0)
    model = HomaeModel(cfg).to(device).eval()
    scene = make_scene(model)
    t0 = time.perf_counter()
    fit_err = fit_sdf_heads(model, scene, device, steps=args.fit_steps)
    aim_anchor_head(model, scene)
    model.eval()
    res["setup"]["sdf_fit"] = {
        "steps": args.fit_steps,
        "final_l1_m": fit_err,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(f"[bench] SDF heads fitted in {time.perf_counter() - t0:.0f}s: {fit_err}", flush=True)
    predictor = Predictor(model, cfg, device)
    pair = (scene.hand_box, scene.obj_box)
    onnx_tmp = tempfile.TemporaryDirectory(prefix="homae_bench_onnx_")
    ort_predictor, onnx_info = onnx_predictor(predictor, Path(onnx_tmp.name), args.threads)
    print(f"[bench] exported to ONNX in {onnx_info['export_seconds']}s", flush=True)
    int8_pred, int8_info = int8_predictor(predictor, Path(onnx_tmp.name), args.threads)

    # 1. stages
    stages = {k: v.as_dict() for k, v in model_stages(model, scene, device, args.repeats).items()}
    det = detector_timing(scene, device, args.repeats)
    stages["detector"] = det.as_dict() if isinstance(det, Timing) else {"unavailable": det}
    pred = predictor.predict(scene.image, scene.K, [pair])[0]
    ros = ros_stages(scene, pred, model.mano.faces.cpu().numpy(), args.repeats)
    stages.update(
        {k: (v.as_dict() if isinstance(v, Timing) else {"unavailable": v}) for k, v in ros.items()}
    )
    res["stages_ms"] = stages
    print("[bench] stages done", flush=True)

    # 2. ratios measured side by side
    with torch.inference_mode():
        ci = crop_inputs(scene, model, device)
        pairs4 = [pair] * 4
        side = interleaved(
            {
                "encoder": lambda: model.encoder(ci.image),
                "predictor": lambda: predictor.predict(scene.image, scene.K, [pair]),
                "batch4": lambda: predictor.predict(scene.image, scene.K, pairs4),
                "predictor_onnxruntime": lambda: ort_predictor.predict(
                    scene.image, scene.K, [pair]
                ),
                "predictor_onnxruntime_int8": lambda: int8_pred.predict(
                    scene.image, scene.K, [pair]
                ),
            },
            args.repeats,
            device,
        )
    enc_ms = side["encoder"].median_ms
    pred_ms = side["predictor"].median_ms
    res["side_by_side_ms"] = {k: v.as_dict() for k, v in side.items()}
    shifted = (scene.hand_box + 4.0, scene.obj_box - 3.0)
    onnx_info["equivalence"] = equivalence(
        predictor, ort_predictor, scene.image, scene.K, [pair, shifted]
    )
    int8_info["equivalence"] = equivalence(
        predictor, int8_pred, scene.image, scene.K, [pair, shifted]
    )
    onnx_info["int8"] = int8_info
    res["onnxruntime"] = onnx_info
    onnx_tmp.cleanup()
    sampling_ms = stages["point_sampling"]["median_ms"]
    samp = sampling_comparison(model, scene, device, args.repeats)
    res["sampling"] = samp
    print("[bench] sampling comparison done", flush=True)
    c2f_over_dense = samp["coarse_to_fine"]["median_ms"] / samp["dense"]["median_ms"]
    overlap = min(samp["hand"]["point_overlap"], samp["obj"]["point_overlap"])

    node = (
        {"skipped": True}
        if args.skip_node
        else node_vs_predictor(model, scene, args.repeats, args.threads)
    )
    res["node"] = node
    print(f"[bench] node done: {str(node)[:200]}", flush=True)

    ratios: dict[str, Any] = {
        "predictor_over_encoder": _ratio_entry(pred_ms / enc_ms, GOALS["predictor_over_encoder"]),
        "sampling_over_encoder": _ratio_entry(
            sampling_ms / stages["encoder"]["median_ms"],
            None,
            "both branches, coarse-to-fine, stage table figures",
        ),
        "sampling_coarse_over_dense": _ratio_entry(
            c2f_over_dense,
            GOALS["sampling_coarse_over_dense"],
            "time, both branches; evaluation counts under sampling.*",
        ),
        "sampling_point_overlap": _ratio_entry(overlap, None, "min over branches; goal >= 0.95"),
        "node_over_predictor": _ratio_entry(
            node["node_median_ms"] / node["predictor_median_ms"]
            if "node_median_ms" in node
            else None,
            GOALS["node_over_predictor"],
            "publish -> result received, loopback",
        ),
        "batch4_over_4x_batch1": _ratio_entry(
            side["batch4"].median_ms / (4 * pred_ms),
            GOALS["batch4_over_4x_batch1"],
            "goal: batch of 4 <= 2.5 x single",
        ),
        "onnxruntime_over_torch": _ratio_entry(
            side["predictor_onnxruntime"].median_ms / pred_ms,
            GOALS["onnxruntime_over_torch"],
            "whole Predictor.predict, onnxruntime (CPU provider, exported graphs) / torch, "
            "same loop, same image and pair",
        ),
        "onnxruntime_int8_over_torch": _ratio_entry(
            side["predictor_onnxruntime_int8"].median_ms / pred_ms,
            None,  # no goal: not equivalent, so not a way to meet onnxruntime_over_torch's
            "the non-default int8 option (int8 weights of the ViT blocks' and the heads' linear "
            "layers): NOT equivalent to torch, see onnxruntime.int8.equivalence; the default "
            "(fp32, equivalent) is onnxruntime_over_torch, the figure the goal is about",
        ),
    }
    ratios["batch4_over_4x_batch1"]["gpu_goal"] = True
    ratios["predictor_over_encoder"]["note"] = (
        "median whole Predictor.predict (crop to poses, 1 pair) / median encoder, same loop; "
        "stage shares under stages_over_encoder"
    )
    ratios["batch4_over_4x_batch1"]["note"] += (
        "; on 1 CPU thread every stage is compute-bound, so 4 crops cost about 4x one crop "
        "(batching saves only per-call overhead): this goal needs a GPU"
    )
    enc_stage = stages["encoder"]["median_ms"]
    res["stages_over_encoder"] = {
        k: round(v["median_ms"] / enc_stage, 3) for k, v in stages.items() if "median_ms" in v
    }
    ratios["sampling_point_overlap"]["met"] = bool(
        overlap >= 0.95 or samp["pose_difference"]["hand_joints_mean_mm"] < 1.0
    )
    res["ratios"] = ratios

    # 3. memory
    mem: dict[str, Any] = {
        "bench_process_peak_rss_mb": peak_rss_mb(),
        "node_process_peak_rss_mb": node.get("peak_rss_mb"),
    }
    if device.type == "cuda":
        mem["gpu_peak_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        mem["gpu_peak_allocated_mb"] = "no GPU in this run (pending)"
    res["memory"] = mem

    # 4. training
    train: dict[str, Any] = {}
    if not args.skip_train:
        for name in ("tiny", "small"):
            train[name] = training_throughput(name, torch.device("cpu"))
        if device.type == "cuda":
            train["paper"] = training_throughput("paper", device, steps=5, batch_size=8)
        else:
            train["paper"] = "GPU only (pending: no GPU in this run)"
    res["training"] = train
    res["total_seconds"] = round(time.perf_counter() - t_start, 1)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    from benchmarks.report import markdown

    out.with_suffix(".md").write_text(markdown(res))
    print(f"[bench] wrote {out} and {out.with_suffix('.md')} in {res['total_seconds']}s")
    return res


if __name__ == "__main__":
    main()
