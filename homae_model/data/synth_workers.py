"""Generate synthetic samples in worker processes: one scene generator (and GL context) each.

Every sample draws from its own seed, so the files do not depend on the worker count; torch and
OpenCV run on one thread in each worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import torch

from homae_model.data.synth_scene import SceneGenerator, SynthConfig, SynthSample
from homae_model.objects.library import ObjectLibrary

SaveSample = Callable[[Path, int, SynthSample, bool], None]
"""Writes one sample: (set folder, index, sample, save depth) -> files."""

_WORKER: dict[str, object] = {}


def _init_worker(
    config: SynthConfig, library: ObjectLibrary, mano_path: Path | None, save: SaveSample
) -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    _WORKER["gen"] = SceneGenerator(config, library, mano_path)
    _WORKER["save"] = save


def _work(job: tuple[Path, int, int, str]) -> int:
    root, index, seed, split = job
    gen = _WORKER["gen"]
    save = _WORKER["save"]
    assert isinstance(gen, SceneGenerator) and callable(save)
    save(root, index, gen.generate(index, seed, split), gen.config.save_depth)
    return index


def generate_samples(
    root: Path,
    indices: list[int],
    seed: int,
    split: str,
    config: SynthConfig,
    library: ObjectLibrary,
    save: SaveSample,
    workers: int = 1,
    mano_path: Path | None = None,
) -> Iterator[int]:
    """Generate and save samples `indices` of (seed, split) into `root`, in `workers` processes.

    Args:
        root: the set's folder (rgb/, mask/, ann/ exist).
        indices: sample indices to write.
        seed: data set seed.
        split: split name mixed into each sample's seed.
        config: scene settings.
        library: objects to grasp.
        save: writes one sample's files (a module-level function: workers are spawned).
        workers: processes (spawned, each with its own GL context); 1 runs in this process.
        mano_path: MANO-format hand model; None the bundled one.

    Yields:
        each index once its files are written (in completion order).
    """
    jobs = [(root, i, seed, split) for i in indices]
    if workers <= 1:
        _init_worker(config, library, mano_path, save)
        try:
            for job in jobs:
                yield _work(job)
        finally:
            _WORKER.clear()
        return
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    chunk = max(1, min(16, len(jobs) // workers // 4))
    with ctx.Pool(workers, _init_worker, (config, library, mano_path, save)) as pool:
        yield from pool.imap_unordered(_work, jobs, chunksize=chunk)
