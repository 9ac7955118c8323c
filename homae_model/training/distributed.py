"""Process-group setup for `torchrun` and a data order that can resume mid-epoch.

`torchrun --nproc_per_node N -m homae_model.cli.train ...` sets RANK / WORLD_SIZE / LOCAL_RANK /
MASTER_ADDR / MASTER_PORT; `init_distributed` reads them and starts NCCL (CUDA) or gloo (CPU).
Without those variables training runs as a single process (world size 1).

The data order of an epoch comes from `torch.utils.data.DistributedSampler` (seeded by the
training seed, `set_epoch(epoch)` every epoch, also with one process), and `ResumableSampler`
skips the samples of the batches already consumed, so a resumed run continues with exactly the
batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler, Sampler


@dataclass
class DistInfo:
    """This process's place in the job.

    Attributes:
        rank: global rank (0 writes logs and checkpoints).
        world_size: number of processes.
        local_rank: rank on this machine (selects the CUDA device).
        device: the torch device this process trains on.
        backend: "nccl", "gloo" or "none" (single process).
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str

    @property
    def is_main(self) -> bool:
        """True on rank 0."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when a process group is running."""
        return self.backend != "none"


def init_distributed(device: str | None = None) -> DistInfo:
    """Start the process group when launched by torchrun, else describe a single process.

    Args:
        device: "cpu", "cuda" or None (CUDA when available).

    Returns:
        DistInfo; with CUDA the process uses GPU `local_rank`.

    Raises:
        ValueError: an unknown device name, or "cuda" without a CUDA device.
    """
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"--device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but no CUDA device is available")
    use_cuda = torch.cuda.is_available() if device is None else device == "cuda"
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size <= 1:
        return DistInfo(0, 1, 0, dev, "none")
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistInfo(rank, world_size, local_rank, dev, backend)


def cleanup_distributed(info: DistInfo) -> None:
    """Destroy the process group started by `init_distributed` (no-op for one process)."""
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def any_rank_true(flag: bool, info: DistInfo) -> bool:
    """True when `flag` is true on at least one rank (all ranks must call it)."""
    if not info.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def mean_over_ranks(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Average scalar logs over ranks (all ranks must call it with the same keys)."""
    if not info.distributed or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    t /= info.world_size
    return dict(zip(keys, t.tolist(), strict=True))


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """All ranks' `obj` on every rank (a one-element list without a process group)."""
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op for one process)."""
    if info.distributed:
        dist.barrier()


class ResumableSampler(Sampler[int]):
    """A DistributedSampler whose epoch can start after the first `skip` samples of this rank.

    Args:
        length: dataset length.
        info: this process's rank / world size.
        seed: the training seed (the permutation of epoch e depends on (seed, e) only).
        shuffle: shuffle each epoch (training) or keep the order.
        drop_last: drop the tail that does not divide evenly over the ranks.
    """

    def __init__(
        self, length: int, info: DistInfo, seed: int, shuffle: bool = True, drop_last: bool = True
    ) -> None:
        self.base = DistributedSampler(
            range(length),
            num_replicas=info.world_size,
            rank=info.rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last and length >= info.world_size,
        )
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select the epoch's permutation and skip its first `skip` samples (resume)."""
        self.base.set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        indices = list(self.base)
        return iter(indices[self.skip :])

    def __len__(self) -> int:
        return max(0, len(self.base) - self.skip)

    @property
    def full_length(self) -> int:
        """Samples of this rank in a whole epoch."""
        return len(self.base)
