"""Data pipeline throughput: loading + crop/augmentation + MANO + on-the-fly SDF sampling.

Measures (CPU, numbers written as JSON to stdout and to --out if given; nothing is asserted):
  1. per-stage times of `SamplePipeline` on one core (crop/augment, MANO, hand SDF, object SDF),
  2. samples/s of the whole pipeline in the main process,
  3. samples/s through a DataLoader with `--workers` workers (collated as homae-train does,
     `pack_collate`), and the time of one tiny training step (HomaeModel with
     config/model/tiny.yaml, forward + backward) on a batch, to see whether the workers keep
     up with training.

Source: a synthetic set written by `homae-synth` (--synthetic DIR), or, by default, in-memory
samples posed with the bundled hand so the script runs without any data set.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_data.py --samples 40 --workers 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from homae_model.config import DataConfig, HomaeConfig, load_config  # noqa: E402
from homae_model.data import pipeline as pipeline_mod  # noqa: E402
from homae_model.data.collate import pack_collate  # noqa: E402
from homae_model.data.dataset import HandObjectDataset, worker_init_fn  # noqa: E402
from homae_model.data.pipeline import SamplePipeline  # noqa: E402
from homae_model.data.schema import RawSample  # noqa: E402
from homae_model.objects.library import ObjectLibrary  # noqa: E402


class MemorySource:
    """Random right-hand samples with a library object, built once in memory (640x480)."""

    def __init__(self, pipeline: SamplePipeline, n: int, seed: int = 0) -> None:
        self.samples = [self._make(pipeline, np.random.default_rng((seed, i))) for i in range(n)]

    @staticmethod
    def _make(pipeline: SamplePipeline, rng: np.random.Generator) -> RawSample:
        K = np.array([[610.0, 0, 320], [0, 610.0, 240], [0, 0, 1]])
        pose = np.concatenate([rng.normal(0, 0.8, 3), rng.normal(0, 0.2, 45)])
        shape = rng.normal(0, 0.5, 10)
        transl = np.array([0.0, 0.0, 0.55]) + rng.normal(0, 0.03, 3)
        with torch.no_grad():
            out = pipeline.mano(
                torch.tensor(pose, dtype=torch.float32)[None],
                torch.tensor(shape, dtype=torch.float32)[None],
                torch.tensor(transl, dtype=torch.float32)[None],
            )
        joints = out.joints[0].double().numpy()
        verts = out.vertices[0].double().numpy()
        name = pipeline.objects.names[int(rng.integers(len(pipeline.objects.names)))]
        obj_rot = Rotation.random(random_state=int(rng.integers(1 << 31))).as_rotvec()
        obj_trans = joints[9] + rng.normal(0, 0.03, 3)
        corners = pipeline.objects.get(name).corners
        corners = corners @ Rotation.from_rotvec(obj_rot).as_matrix().T + obj_trans

        def proj(X: np.ndarray) -> np.ndarray:
            uv = X @ K.T
            return uv[:, :2] / uv[:, 2:]

        vuv, cuv = proj(verts), proj(corners)
        return RawSample(
            image=rng.integers(0, 255, (480, 640, 3), dtype=np.uint8),
            K=K,
            side="right",
            mano_pose=pose,
            mano_shape=shape,
            mano_transl=transl,
            hand_joints=joints,
            hand_joints_2d=proj(joints),
            obj_name=name,
            obj_rot=obj_rot,
            obj_trans=obj_trans,
            hand_box=np.concatenate([vuv.min(0), vuv.max(0)]),
            obj_box=np.concatenate([cuv.min(0), cuv.max(0)]),
            source="memory",
        )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> RawSample:
        return self.samples[i]


def stage_times(pipe: SamplePipeline, source, n: int) -> dict[str, float]:
    """Mean ms per stage, by timing the stage functions the pipeline calls."""
    timers: dict[str, float] = {"crop_augment": 0.0, "photometric": 0.0, "mano": 0.0, "sdf": 0.0}
    originals = {
        "crop_image": pipeline_mod.crop_image,
        "photometric": pipeline_mod.photometric,
        "mesh_sdf": pipeline_mod.mesh_sdf,
    }

    def timed(fn, key):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timers[key] += time.perf_counter() - t0

        return wrapper

    pipeline_mod.crop_image = timed(originals["crop_image"], "crop_augment")
    pipeline_mod.photometric = timed(originals["photometric"], "photometric")
    pipeline_mod.mesh_sdf = timed(originals["mesh_sdf"], "sdf")
    mano_forward = pipe.mano.forward
    pipe.mano.forward = timed(mano_forward, "mano")
    try:
        t0 = time.perf_counter()
        for i in range(n):
            pipe(source[i % len(source)], np.random.default_rng(i))
        total = time.perf_counter() - t0
    finally:
        pipeline_mod.crop_image = originals["crop_image"]
        pipeline_mod.photometric = originals["photometric"]
        pipeline_mod.mesh_sdf = originals["mesh_sdf"]
        pipe.mano.forward = mano_forward
    out = {f"{k}_ms": 1000.0 * v / n for k, v in timers.items()}
    out["total_ms"] = 1000.0 * total / n
    out["other_ms"] = out["total_ms"] - sum(out[f"{k}_ms"] for k in timers)
    out["samples_per_s"] = n / total
    return out


def tiny_step(cfg: HomaeConfig, batch: dict[str, torch.Tensor], repeats: int) -> float | None:
    """Seconds per forward+backward of the tiny model on `batch` (None if it cannot run)."""
    try:
        from homae_model.losses import total_loss
        from homae_model.model import HomaeModel
    except ImportError as err:
        print(f"tiny training step skipped: {err}", file=sys.stderr)
        return None
    model = HomaeModel(cfg).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        out = model(batch)
        loss, _ = total_loss(out, batch, cfg.loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.mean(times[1:]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--synthetic", type=Path, help="a homae-synth output folder")
    parser.add_argument("--samples", type=int, default=40, help="samples to time per measurement")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--config", type=Path, default=REPO / "config/model/tiny.yaml")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--mano", type=Path, help="MANO-format hand file (default: the config's)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    model_cfg = load_config(args.config) if args.config.is_file() else HomaeConfig()
    if args.mano is not None:
        model_cfg.mano.model_path = str(args.mano.resolve())
    data_cfg = DataConfig(**{**vars(model_cfg.data)})
    points = model_cfg.model.points
    objects = ObjectLibrary.procedural()
    pipe = SamplePipeline(
        data_cfg,
        model_cfg.mano.resolved_path(),
        objects,
        train=True,
        num_hand_points=points.num_hand,
        num_obj_points=points.num_obj,
    )
    if args.synthetic is not None:
        from homae_model.data.synthetic import SyntheticSource

        source = SyntheticSource(args.synthetic, load_masks=False)  # as homae-train reads it
    else:
        source = MemorySource(pipe, min(args.samples, 16))

    results: dict[str, object] = {
        "source": str(args.synthetic or "memory (640x480)"),
        "image_size": data_cfg.image_size,
        "num_hand_points": pipe.num_hand_points,
        "num_obj_points": pipe.num_obj_points,
        "torch_threads": torch.get_num_threads(),
    }
    results["main_process"] = stage_times(pipe, source, args.samples)

    dataset = HandObjectDataset(source, pipe, seed=0)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=args.batch,
        shuffle=True,
        num_workers=args.workers,
        worker_init_fn=worker_init_fn,
        persistent_workers=args.workers > 0,
        collate_fn=pack_collate,  # as homae-train collates
    )
    batches, seen = [], 0
    iterator = iter(loader)
    first = next(iterator).unpack()  # worker start-up excluded
    t0 = time.perf_counter()
    while seen < args.samples:
        try:
            batch = next(iterator).unpack()
        except StopIteration:
            iterator = iter(loader)
            continue
        seen += len(batch["image"])
        batches.append(batch)
    loader_time = time.perf_counter() - t0
    results["dataloader"] = {
        "workers": args.workers,
        "batch": args.batch,
        "samples_per_s": seen / loader_time,
        "seconds_per_batch": loader_time / max(1, len(batches)),
    }
    step = tiny_step(model_cfg, first, repeats=3)
    if step is not None:
        per_batch = results["dataloader"]["seconds_per_batch"]
        results["tiny_train_step"] = {
            "seconds_per_step": step,
            "workers_keep_up": bool(per_batch <= step),
            "loader_to_step_ratio": per_batch / step,
        }
    text = json.dumps(results, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
