"""Synthetic data throughput: samples per second of `write_dataset` (a script, not a test).

Usage::

    .venv/bin/python benchmarks/bench_synth.py --num 200 --size 256x256 --workers 2

Prints the rate and the time projected for 10k samples and appends a JSON line to
benchmarks/out/bench_synth.jsonl. Also times the stages of one sample (grasp, render) on a
single process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from homae_model.cli.synth import parse_size
from homae_model.data.synth_scene import SceneGenerator, SynthConfig
from homae_model.data.synth_writer import write_dataset

OUT = Path(__file__).resolve().parent / "out" / "bench_synth.jsonl"


def stage_times(config: SynthConfig, n: int = 20) -> dict[str, float]:
    """Mean ms per sample of generate() (in memory, no file writes) on this process, warm."""
    gen = SceneGenerator(config)
    gen.generate(0, seed=123)  # warm-up: GL context, MANO
    for name in gen.library.names:  # per-object render parts and SDF grids
        gen._object_parts(name)
    start = time.perf_counter()
    for i in range(1, n + 1):
        gen.generate(i, seed=123)
    return {"generate_ms": 1e3 * (time.perf_counter() - start) / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num", type=int, default=200)
    parser.add_argument("--size", type=parse_size, default=(256, 256))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    config = SynthConfig(width=args.size[0], height=args.size[1])
    stages = stage_times(config)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_dataset(tmp, args.num, seed=0, config=config, workers=args.workers, progress=False)
        elapsed = time.perf_counter() - start
    rate = args.num / elapsed
    result = {
        "num": args.num,
        "size": list(args.size),
        "workers": args.workers,
        "seconds": round(elapsed, 2),
        "samples_per_s": round(rate, 2),
        "projected_10k_min": round(10000 / rate / 60, 1),
        "single_process_generate_ms": round(stages["generate_ms"], 1),
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "numpy": np.__version__,
    }
    print(json.dumps(result))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
