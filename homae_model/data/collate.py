"""Batches of training dicts held in one buffer per dtype, for cheap DataLoader transfer.

PyTorch's default collation gives every key of the training dict its own shared-memory
segment; a worker then creates, and the main process maps, about twenty segments per batch.
On the 2-core build machine that cost about 4 ms per batch of 8 tiny samples, a tenth of a
tiny training step (benchmarks/bench_data.py). `pack_collate` stacks the samples into one
contiguous buffer per dtype instead (float32, int64), so a batch crosses the process boundary
as two segments, is pinned in two calls and reaches a GPU in two copies; `PackedBatch.unpack`
gives back the dict of `(B, ...)` tensors, each a contiguous view into its buffer.

    loader = DataLoader(dataset, batch_size=8, num_workers=2, collate_fn=pack_collate)
    for packed in loader:
        batch = packed.to(device).unpack()  # {key: (B, ...) tensor}
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.utils.data import get_worker_info


@dataclass(frozen=True)
class _Slot:
    """Where one key lives: its buffer (dtype), element offset and per-batch shape."""

    key: str
    dtype: torch.dtype
    offset: int
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


class PackedBatch:
    """A collated batch: one flat buffer per dtype plus the layout of its keys.

    Args:
        buffers: dtype -> 1-D tensor holding every key of that dtype, key after key.
        slots: the layout, in the training dict's key order.
    """

    def __init__(self, buffers: dict[torch.dtype, torch.Tensor], slots: tuple[_Slot, ...]):
        self.buffers = buffers
        self.slots = slots

    def __len__(self) -> int:
        """The batch size B."""
        return self.slots[0].shape[0] if self.slots else 0

    def keys(self) -> list[str]:
        """The keys of the unpacked dict, in order."""
        return [s.key for s in self.slots]

    def unpack(self) -> dict[str, torch.Tensor]:
        """The batch as `{key: (B, ...) tensor}`; contiguous views into the buffers."""
        out = {}
        for s in self.slots:
            flat = self.buffers[s.dtype][s.offset : s.offset + s.numel]
            out[s.key] = flat.view(s.shape)
        return out

    def to(self, device: torch.device | str, non_blocking: bool = False) -> PackedBatch:
        """The same batch on `device`: one copy per buffer."""
        moved = {d: b.to(device, non_blocking=non_blocking) for d, b in self.buffers.items()}
        return PackedBatch(moved, self.slots)

    def pin_memory(self) -> PackedBatch:
        """Page-locked copy (called by DataLoader's pin-memory thread)."""
        return PackedBatch({d: b.pin_memory() for d, b in self.buffers.items()}, self.slots)


def pack_collate(samples: list[dict[str, torch.Tensor]]) -> PackedBatch:
    """DataLoader `collate_fn`: stack training dicts into one buffer per dtype.

    Every sample must have the same keys with tensors of the same shape and dtype per key,
    as `SamplePipeline` produces. In a DataLoader worker the buffers are allocated in shared
    memory directly (as the default collation does per key).

    Args:
        samples: B dicts `{key: tensor}`.

    Returns:
        The PackedBatch; `unpack()` equals `torch.utils.data.default_collate(samples)`.

    Raises:
        ValueError: an empty list, a value that is not a tensor, or samples whose keys,
            shapes or dtypes differ (naming the key and the sample position).
    """
    if not samples:
        raise ValueError("pack_collate needs at least one sample")
    first = samples[0]
    batch = len(samples)
    slots: list[_Slot] = []
    sizes: dict[torch.dtype, int] = {}
    for key, value in first.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(
                f"pack_collate: key {key!r} holds {type(value).__name__}, not a tensor"
            )
        slot = _Slot(key, value.dtype, sizes.get(value.dtype, 0), (batch, *value.shape))
        sizes[value.dtype] = slot.offset + slot.numel
        slots.append(slot)
    in_worker = get_worker_info() is not None
    buffers = {}
    for dtype, size in sizes.items():
        buf = torch.empty(size, dtype=dtype)
        buffers[dtype] = buf.share_memory_() if in_worker else buf
    for i, sample in enumerate(samples):
        if sample.keys() != first.keys():
            raise ValueError(
                f"pack_collate: sample {i} has keys {sorted(sample)}, sample 0 {sorted(first)}"
            )
    for slot in slots:
        values = [sample[slot.key] for sample in samples]
        for i, v in enumerate(values):
            if v.shape != slot.shape[1:] or v.dtype != slot.dtype:
                raise ValueError(
                    f"pack_collate: key {slot.key!r} of sample {i} is {tuple(v.shape)} "
                    f"{v.dtype}, sample 0 has {slot.shape[1:]} {slot.dtype}"
                )
        out = buffers[slot.dtype][slot.offset : slot.offset + slot.numel].view(slot.shape)
        torch.stack(values, out=out)
    return PackedBatch(buffers, tuple(slots))
