"""The prepared GPU check (`benchmarks/gpu_check.sh`): one command, results_gpu.json.

Sections (each records its own result or the reason it was skipped, and its seconds):

- ``tests``: the CUDA tests, ``pytest -m gpu`` (the suite's marker for tests that need a GPU).
- ``bench``: ``python -m benchmarks.run --device cuda`` (what `make bench` measures, on CUDA),
  written to benchmarks/out/results_cuda.json; its ratios and stages are copied here.
- ``frame``: ms per frame of the whole Predictor (crop to poses) for the paper and small
  configs, batch 1 and 4, and the peak GPU memory of each; goals: paper batch 1 <= 15 ms,
  batch 4 <= 2.5 x batch 1.
- ``onnx``: the onnxruntime CUDA provider (and TensorRT where installed) against torch on
  CUDA, same frame: ms per frame and the pose difference. Skipped with the reason when the
  installed onnxruntime has no CUDA provider (`make setup` installs the CPU wheel; the GPU one
  is the `onnxruntime-gpu` package).
- ``train``: the paper config's training samples/s (forward, loss, backward, Adam) on synthetic
  batches made on the fly, fp32 and with mixed precision (autocast bf16, or fp16 with a grad
  scaler where bf16 is unsupported).
- ``oom``: a real CUDA out-of-memory error (an allocation larger than the card) inside the
  Predictor of a `FrameEstimator` on 4 pairs: the estimator must retry once in two halves,
  return the 4 estimates in order, and the allocator must give the memory back.

``--dry-run`` runs the Python parts on the CPU with the tiny config and minimal sizes (no
pytest run, no bench subprocess) to check the script itself on a machine without a GPU; it
writes benchmarks/out/gpu_check_dry_run.json unless ``--out`` says otherwise. Without
``--dry-run`` and without CUDA it exits with status 2 and a message.

Usage: ``python -m benchmarks.gpu_check [--dry-run] [--sections a,b] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SECTIONS = ("tests", "bench", "frame", "onnx", "train", "oom")
GPU_GOALS = {"paper_ms_per_frame": 15.0, "batch4_over_batch1": 2.5}
NO_CUDA = (
    "gpu_check: no CUDA device (torch.cuda.is_available() is False); this check needs one GPU. "
    "Run it on a GPU machine after `make setup` (or with .offline/ from "
    "scripts/offline_bundle.sh), or pass --dry-run to check the script on the CPU."
)


def _timed(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one section; errors are recorded, not raised (the other sections still run)."""
    t0 = time.perf_counter()
    try:
        out = fn()
    except Exception as exc:  # a failed section is a result, reported with its reason
        out = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _run(cmd: list[str], timeout: float) -> dict[str, Any]:
    """Run a command from the repository root; rc and the output's tail."""
    try:
        proc = subprocess.run(
            cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"rc": None, "error": f"timed out after {timeout:.0f} s: {' '.join(cmd)}"}
    return {"rc": proc.returncode, "tail": (proc.stdout + proc.stderr)[-1500:]}


def section_tests(dry: bool) -> dict[str, Any]:
    """``pytest -m gpu`` (collection only in a dry run).

    Without ROS 2 (a GPU machine that has only PyTorch and the offline wheels) the ROS test
    modules cannot be imported, so only tests/model, where the CUDA tests are, is collected.
    """
    import importlib.util

    where = "tests" if importlib.util.find_spec("rclpy") is not None else "tests/model"
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", where]
    if dry:
        cmd.append("--collect-only")
    out = _run(cmd, 240)
    lines = [ln for ln in out.get("tail", "").splitlines() if ln.strip()]
    out["summary"] = lines[-1] if lines else ""
    out["passed"] = out.get("rc") == 0
    out["collected_from"] = where
    return out


def section_bench(dry: bool) -> dict[str, Any]:
    """`make bench`'s measurements with ``--device cuda``."""
    if dry:
        return {"skipped": "dry run (the bench subprocess runs on CUDA only)"}
    path = HERE / "out" / "results_cuda.json"
    cmd = [sys.executable, "-m", "benchmarks.run", "--device", "cuda", "--repeats", "5"]
    out = _run([*cmd, "--out", str(path)], 300)
    if out.get("rc") == 0 and path.exists():
        res = json.loads(path.read_text())
        out["results_file"] = str(path.relative_to(REPO))
        for key in ("ratios", "stages_ms", "side_by_side_ms", "memory", "training", "machine"):
            out[key] = res.get(key)
    return out


def _bench_model(name: str, device: torch.device, fit_steps: int) -> tuple[Any, Any]:
    """A model of config `name` with SDF heads fitted to the benchmark scene (as `make bench`)."""
    from benchmarks.scene import aim_anchor_head, fit_sdf_heads, make_scene
    from homae_model.config import load_config
    from homae_model.model import HomaeModel

    cfg = load_config(REPO / "config" / "model" / f"{name}.yaml")
    cfg.model.inference.sampling = "coarse_to_fine"
    torch.manual_seed(0)
    model = HomaeModel(cfg).to(device).eval()
    scene = make_scene(model)
    fit_sdf_heads(model, scene, device, steps=fit_steps)
    aim_anchor_head(model, scene)
    return model.eval(), scene


def _frame_row(name: str, device: torch.device, fit: int, reps: int) -> dict[str, Any]:
    """One config's whole-Predictor times (batch 1 and 4) and peak GPU memory."""
    from benchmarks.stages import measure
    from homae_model.inference import Predictor

    model, scene = _bench_model(name, device, fit)
    pred = Predictor(model, model.cfg, device)
    pair = (scene.hand_box, scene.obj_box)
    row: dict[str, Any] = {}
    for b in (1, 4):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        pairs = [pair] * b
        t = measure(lambda p=pairs: pred.predict(scene.image, scene.K, p), reps, 2, device)
        row[f"batch{b}"] = t.as_dict()
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device) / 2**20
            row[f"batch{b}"]["peak_gpu_mb"] = round(peak, 1)
    ratio = row["batch4"]["median_ms"] / row["batch1"]["median_ms"]
    goal = GPU_GOALS["batch4_over_batch1"]
    row["batch4_over_batch1"] = {"value": round(ratio, 3), "goal": goal, "met": ratio <= goal}
    if name == "paper":
        ms, goal = row["batch1"]["median_ms"], GPU_GOALS["paper_ms_per_frame"]
        row["ms_per_frame_goal"] = {"value": ms, "goal": goal, "met": ms <= goal}
    return row


def section_frame(device: torch.device, configs: tuple[str, ...], fit: int, reps: int) -> dict:
    """Whole-Predictor ms per frame, batch 1 and 4, and peak GPU memory, per config."""
    out: dict[str, Any] = {name: _frame_row(name, device, fit, reps) for name in configs}
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def section_onnx(device: torch.device, name: str, fit: int, reps: int) -> dict[str, Any]:
    """onnxruntime CUDA (and TensorRT) provider vs torch on `device`, same frame."""
    import onnxruntime as ort

    from benchmarks.onnx_bench import equivalence
    from benchmarks.stages import measure
    from homae_model.export.onnx_export import export_model
    from homae_model.export.runtime import OnnxStages
    from homae_model.inference import Predictor

    available = list(ort.get_available_providers())
    wanted = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
    if device.type != "cuda":  # dry run: the CPU provider exercises the same code
        wanted = {"cpu": "CPUExecutionProvider"}
    out: dict[str, Any] = {"onnxruntime": ort.__version__, "available_providers": available}
    todo = {k: v for k, v in wanted.items() if v in available}
    for k, v in wanted.items():
        if v not in available:
            out[k] = {
                "skipped": f"{v} not in this onnxruntime ({available}); install onnxruntime-gpu "
                "(not part of `make setup`) to measure it"
            }
    if not todo:
        return out
    model, scene = _bench_model(name, device, fit)
    torch_pred = Predictor(model, model.cfg, device)
    pair = (scene.hand_box, scene.obj_box)
    frame = lambda p: p.predict(scene.image, scene.K, [pair])  # noqa: E731
    out["torch"] = measure(lambda: frame(torch_pred), reps, 2, device).as_dict()
    with tempfile.TemporaryDirectory(prefix="homae_gpu_onnx_") as tmp:
        export_model(model, model.cfg, Path(tmp))
        for k in todo:
            try:
                ort_pred = Predictor(model, model.cfg, device, OnnxStages(Path(tmp), k))
                row = measure(lambda p=ort_pred: frame(p), reps, 2, device).as_dict()
                row["over_torch"] = round(row["median_ms"] / out["torch"]["median_ms"], 3)
                row["equivalence"] = equivalence(torch_pred, ort_pred, scene.image, scene.K, [pair])
                out[k] = row
            except Exception as exc:
                out[k] = {"error": f"{type(exc).__name__}: {exc}"[:1000]}
    return out


def section_train(device: torch.device, name: str, batch: int, steps: int) -> dict[str, Any]:
    """Training samples/s of config `name`, fp32 and mixed precision."""
    from benchmarks.run import training_throughput

    out: dict[str, Any] = {"fp32": training_throughput(name, device, steps, batch)}
    if device.type == "cuda":
        amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        amp = torch.bfloat16  # dry run: CPU autocast supports bf16
    out["mixed"] = training_throughput(name, device, steps, batch, amp=amp)
    fp32, mixed = out["fp32"]["samples_per_s"], out["mixed"]["samples_per_s"]
    out["mixed_over_fp32_throughput"] = round(mixed / fp32, 3) if fp32 else None
    return out


def section_oom(device: torch.device, name: str) -> dict[str, Any]:
    """A real CUDA out-of-memory error in the Predictor: retried once, split in halves."""
    from homae_model.estimation.estimator import FrameEstimator
    from homae_model.inference import Predictor

    model, scene = _bench_model(name, device, 2)
    pred = Predictor(model, model.cfg, device)
    calls: list[int] = []
    real_predict = pred.predict

    def predict(image: np.ndarray, K: np.ndarray, pairs: Any, anchors: Any = None) -> Any:
        calls.append(len(pairs))
        if len(pairs) > 2:
            if device.type == "cuda":  # more than any card holds: the allocator's real error
                total = torch.cuda.get_device_properties(device).total_memory
                torch.empty(2 * total, dtype=torch.uint8, device=device)
            else:
                raise torch.OutOfMemoryError("dry run: CUDA out of memory (simulated on CPU)")
        return real_predict(image, K, pairs, anchors)

    pred.predict = predict  # type: ignore[method-assign]
    est = FrameEstimator.__new__(FrameEstimator)
    est.predictor = pred
    boxes = [
        (scene.hand_box + 2.0 * i, scene.obj_box + 2.0 * i) for i in range(4)
    ]  # 4 distinct pairs
    pairs = [_Pair(h, o) for h, o in boxes]
    before = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    preds = est.predict_pairs(scene.image, scene.K, pairs)
    after = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    direct = real_predict(scene.image, scene.K, boxes)
    diff = max(float(np.abs(a.joints - b.joints).max()) for a, b in zip(preds, direct, strict=True))
    ok = calls == [4, 2, 2] and len(preds) == 4 and diff < 1e-4
    return {
        "calls": calls,
        "estimates": len(preds),
        "max_joint_diff_vs_one_batch_m": diff,
        "allocated_mb_before_after": [round(before / 2**20, 1), round(after / 2**20, 1)],
        "passed": bool(ok),
    }


class _Pair:
    """The two attributes `FrameEstimator.predict_pairs` reads of a detection pair."""

    def __init__(self, hand_box: np.ndarray, obj_box: np.ndarray) -> None:
        from types import SimpleNamespace

        self.hand = SimpleNamespace(box=hand_box, side=None)  # side unknown: right
        self.obj = SimpleNamespace(box=obj_box)


def main(argv: list[str] | None = None) -> int:
    """Run the sections; write the JSON; return the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny config, minimal sizes")
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset")
    ap.add_argument("--out", default=None, help="results JSON path")
    args = ap.parse_args(argv)
    sections = [s for s in args.sections.split(",") if s]
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        ap.error(f"unknown sections {bad}; valid: {', '.join(SECTIONS)}")
    if not args.dry_run and not torch.cuda.is_available():
        print(NO_CUDA, file=sys.stderr)
        return 2
    threads = torch.get_num_threads()
    torch.set_num_threads(min(4, os.cpu_count() or 1))
    try:
        return _check(args.dry_run, sections, args.out)
    finally:
        torch.set_num_threads(threads)  # main() may run inside another process (the tests)


def _check(dry: bool, sections: list[str], out_arg: str | None) -> int:
    """Run `sections` and write the JSON (see `main`)."""
    device = torch.device("cpu" if dry else "cuda")
    default = HERE / ("out/gpu_check_dry_run.json" if dry else "results_gpu.json")
    out_path = Path(out_arg) if out_arg else default
    big = "tiny" if dry else "paper"
    fit, reps = (2, 1) if dry else (150, 10)
    res: dict[str, Any] = {
        "dry_run": dry,
        "device": torch.cuda.get_device_name(device) if not dry else "cpu (dry run)",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "goals": GPU_GOALS,
    }
    t0 = time.perf_counter()
    runs: dict[str, Callable[[], dict[str, Any]]] = {
        "tests": lambda: section_tests(dry),
        "bench": lambda: section_bench(dry),
        "frame": lambda: section_frame(device, (big,) if dry else ("paper", "small"), fit, reps),
        "onnx": lambda: section_onnx(device, big, fit, reps),
        "train": lambda: section_train(device, big, 2 if dry else 8, 1 if dry else 5),
        "oom": lambda: section_oom(device, big),
    }
    for name in sections:
        print(f"[gpu_check] {name} ...", flush=True)
        res[name] = _timed(runs[name])
        print(f"[gpu_check] {name}: {json.dumps(res[name])[:300]}", flush=True)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        res["total_seconds"] = round(time.perf_counter() - t0, 1)
        out_path.write_text(json.dumps(res, indent=2, default=str) + "\n")  # after each section
    print(f"[gpu_check] wrote {out_path} in {res['total_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
