"""Torch Dataset over any sample source, deterministic per (seed, epoch, index), with a label scan.

A *source* is any object with `__len__` and `__getitem__(i) -> RawSample` (SyntheticSource,
DexYCBSource, HO3DSource). Sources may also offer `load(i, image=False) -> RawSample` to read the
labels without decoding the image (the image is then an empty (0, 0, 3) array); `scan` uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from homae_model.data.schema import RawSample

if TYPE_CHECKING:
    from homae_model.objects.library import ObjectLibrary


class SampleSource(Protocol):
    """What a data source provides."""

    def __len__(self) -> int:
        """Number of samples."""
        ...

    def __getitem__(self, index: int) -> RawSample:
        """The full sample `index` (image and labels)."""
        ...


@dataclass
class ScanReport:
    """Result of `scan`.

    Attributes:
        good: indices whose labels loaded and validated.
        bad: `(index, source, reason)` for every sample that failed.
    """

    good: list[int] = field(default_factory=list)
    bad: list[tuple[int, str, str]] = field(default_factory=list)

    def summary(self, max_lines: int = 10) -> str:
        """Human-readable summary listing the first `max_lines` bad samples."""
        lines = [f"{len(self.good)} good, {len(self.bad)} bad samples"]
        lines += [f"  [{i}] {src}: {why}" for i, src, why in self.bad[:max_lines]]
        if len(self.bad) > max_lines:
            lines.append(f"  ... and {len(self.bad) - max_lines} more")
        return "\n".join(lines)


def _load_labels(source: Any, index: int) -> RawSample:
    load = getattr(source, "load", None)
    if callable(load):
        return load(index, image=False)
    return source[index]


def scan(source: SampleSource, objects: ObjectLibrary | None = None) -> ScanReport:
    """Load every sample's labels, validate them and report the bad ones.

    Args:
        source: the data source.
        objects: if given, samples whose object is not in the library are bad too.

    Returns:
        ScanReport with good indices and `(index, source, reason)` for the bad ones.
    """
    report = ScanReport()
    for index in range(len(source)):
        where = f"index {index}"
        try:
            raw = _load_labels(source, index)
            where = raw.source
            raw.validate(check_image=raw.image.size > 0)
            if objects is not None and raw.obj_name not in objects:
                raise ValueError(f"unknown object {raw.obj_name!r}")
        except (OSError, ValueError, KeyError, EOFError, IndexError) as err:
            report.bad.append((index, getattr(err, "filename", None) or where, str(err)))
            continue
        report.good.append(index)
    return report


def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker setup: one torch thread per worker (the pipeline is numpy-bound)."""
    del worker_id
    torch.set_num_threads(1)


class HandObjectDataset(Dataset):
    """Samples of a source passed through a SamplePipeline.

    Randomness comes only from `numpy.random.default_rng((seed, epoch, index))`, so a resumed run
    (same seed, `set_epoch(e)`) sees exactly the same crops, augmentations and SDF points, in any
    worker. Bad samples are never silently skipped: pass `indices` (e.g. `scan(...).good`) to
    leave out the samples a scan reported; an error while loading a sample is raised with the
    index and source.

    Args:
        source: the data source.
        pipeline: callable `(RawSample, rng) -> dict` (a SamplePipeline).
        seed: base seed.
        indices: the source indices to use (default: all).

    Raises:
        ValueError: the dataset would be empty.
    """

    def __init__(
        self,
        source: SampleSource,
        pipeline: Callable[[RawSample, np.random.Generator], dict[str, torch.Tensor]],
        seed: int = 0,
        indices: Sequence[int] | None = None,
    ) -> None:
        self.source = source
        self.pipeline = pipeline
        self.seed = int(seed)
        self.epoch = 0
        self.indices = list(range(len(source))) if indices is None else [int(i) for i in indices]
        if not self.indices:
            name = getattr(source, "root", None) or type(source).__name__
            raise ValueError(
                f"dataset from {name} is empty: no (good) samples to train or evaluate on"
            )

    @classmethod
    def scanned(
        cls,
        source: SampleSource,
        pipeline: Callable[[RawSample, np.random.Generator], dict[str, torch.Tensor]],
        seed: int = 0,
        objects: ObjectLibrary | None = None,
    ) -> tuple[HandObjectDataset, ScanReport]:
        """Scan the source, then build a dataset over the good samples only."""
        report = scan(source, objects)
        if not report.good:
            raise ValueError(f"no usable samples in the source: {report.summary()}")
        return cls(source, pipeline, seed, report.good), report

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random draws `__getitem__` uses."""
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        """The generator of item `index` (position in this dataset) in the current epoch."""
        return np.random.default_rng((self.seed, self.epoch, int(index)))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        source_index = self.indices[index]
        try:
            raw = self.source[source_index]
            return self.pipeline(raw, self.rng(index))
        except (OSError, ValueError, KeyError, EOFError) as err:
            err.add_note(f"while loading dataset item {index} (source index {source_index})")
            raise
