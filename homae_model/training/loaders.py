"""The data side of training: the training loader (resumable, packed batches), validation.

`build_train_data` opens the training folder (any layout `data.sources` reads), scans it into a
`HandObjectDataset` and wraps it in a `ResumableSampler` and a `DataLoader` whose items carry
their dataset position (`index`, for error messages: `describe_samples`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from homae_model.config import HomaeConfig
from homae_model.data.collate import PackedBatch, pack_collate
from homae_model.data.sources import OpenedSource, open_source
from homae_model.training import distributed as ddp


class _Indexed(Dataset):
    """Adds the dataset position `index` to every training dict (for error messages)."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = dict(self.dataset[i])
        item["index"] = torch.tensor(i, dtype=torch.int64)
        return item


def describe_samples(dataset: Any, indices: list[int]) -> list[str]:
    """`source` strings of dataset positions (labels only where the source allows it)."""
    out = []
    for i in indices:
        try:
            src_index = dataset.indices[i]
            load = getattr(dataset.source, "load", None)
            raw = load(src_index, image=False) if callable(load) else dataset.source[src_index]
            out.append(f"#{i} {raw.source}")
        except Exception as exc:  # best effort inside an error message
            out.append(f"#{i} <source unavailable: {exc}>")
    return out


def to_device(
    batch: PackedBatch | dict[str, torch.Tensor], device: torch.device
) -> dict[str, torch.Tensor]:
    """The batch dict on `device`; a PackedBatch moves as one copy per buffer."""
    nb = device.type == "cuda"
    if isinstance(batch, PackedBatch):
        return batch.to(device, non_blocking=nb).unpack()
    return {k: v.to(device, non_blocking=nb) for k, v in batch.items()}


@dataclass
class TrainData:
    """What `build_train_data` builds.

    Attributes:
        opened: the opened training source.
        pipeline: the training `SamplePipeline` (augmentation on).
        dataset: the scanned `HandObjectDataset`.
        sampler: this process's `ResumableSampler`.
        loader: the `DataLoader` (items with `index`, packed batches).
        drop_last: whether incomplete batches are dropped (a process holds >= one batch).
        steps_per_epoch: optimiser steps per epoch.
    """

    opened: OpenedSource
    pipeline: Any
    dataset: Any
    sampler: ddp.ResumableSampler
    loader: DataLoader
    drop_last: bool
    steps_per_epoch: int


def build_train_data(
    cfg: HomaeConfig, data: Path, split: str, info: ddp.DistInfo, log: Callable[[str], None]
) -> TrainData:
    """Open and scan the training data; the sampler and loader of this process.

    Args:
        cfg: the run's config (data pipeline, batch size, seed, workers).
        data: training data folder.
        split: split to read.
        info: this process's rank / device.
        log: told what the data scan left out, if anything.

    Raises:
        FileNotFoundError / ValueError: from `open_source` (named files / layouts).
        ValueError: fewer samples than processes.
    """
    from homae_model.data.dataset import HandObjectDataset, worker_init_fn
    from homae_model.data.pipeline import SamplePipeline

    mano_path = cfg.mano.resolved_path()
    # DexYCB's PCA hand poses are expanded with the configured MANO file's components.
    opened = open_source(data, split=split, mano_dir=mano_path.parent, load_masks=False)
    pipeline = SamplePipeline(
        cfg.data,
        mano_path,
        opened.objects,
        train=True,
        cube_half_size=1.0 / cfg.model.points.sdf_scale,
        grid_res=cfg.model.inference.voxel_res,
    )
    dataset, report = HandObjectDataset.scanned(
        opened.source, pipeline, cfg.train.seed, opened.objects
    )
    if report.bad:
        log(f"data scan of {data}: {report.summary()}")
    sampler = ddp.ResumableSampler(len(dataset), info, cfg.train.seed, shuffle=True)
    per_rank = sampler.full_length
    bs = cfg.train.batch_size
    drop_last = per_rank >= bs
    if per_rank == 0:
        raise ValueError(
            f"training data {data} has {len(dataset)} samples, fewer than the "
            f"{info.world_size} processes"
        )
    loader = DataLoader(
        _Indexed(dataset),
        batch_size=bs,
        sampler=sampler,
        num_workers=cfg.train.num_workers,
        drop_last=drop_last,
        pin_memory=info.device.type == "cuda",
        worker_init_fn=worker_init_fn,
        collate_fn=pack_collate,
        generator=torch.Generator().manual_seed(cfg.train.seed),
    )
    steps = per_rank // bs if drop_last else 1
    return TrainData(opened, pipeline, dataset, sampler, loader, drop_last, steps)


def build_val_loader(cfg: HomaeConfig, val: Path) -> DataLoader:
    """The validation loader: `val` (its `val/` split when present), no augmentation.

    Raises:
        FileNotFoundError: the folder does not exist.
    """
    from homae_model.data.dataset import HandObjectDataset
    from homae_model.data.pipeline import SamplePipeline

    if not val.exists():
        raise FileNotFoundError(f"validation data folder not found: {val}")
    mano_path = cfg.mano.resolved_path()
    split = "val" if (val / "val").is_dir() else None
    opened = open_source(val, split=split, mano_dir=mano_path.parent)
    pipe = SamplePipeline(cfg.data, mano_path, opened.objects, False)
    ds, _ = HandObjectDataset.scanned(opened.source, pipe, cfg.train.seed, opened.objects)
    return DataLoader(ds, batch_size=cfg.train.batch_size, shuffle=False)
