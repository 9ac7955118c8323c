"""pack_collate: the same batch as PyTorch's default collation, in one buffer per dtype."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from homae_model.data.collate import PackedBatch, pack_collate


def _sample(i: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(i)
    return {
        "image": torch.rand(3, 8, 6, generator=g),
        "K": torch.rand(3, 3, generator=g),
        "obj_id": torch.tensor(i % 5, dtype=torch.int64),
        "hand_sdf": torch.rand(7, generator=g),
        "index": torch.tensor(i, dtype=torch.int64),
        "hand_visible": torch.tensor(0.25 * (i % 4)),
    }


class _Samples(Dataset):
    def __len__(self) -> int:
        return 10

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return _sample(i)


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert a[k].shape == b[k].shape, k
        assert torch.equal(a[k], b[k]), k


def test_unpack_equals_default_collate_with_two_buffers():
    samples = [_sample(i) for i in range(4)]
    packed = pack_collate(samples)
    assert len(packed) == 4
    assert set(packed.buffers) == {torch.float32, torch.int64}
    out = packed.unpack()
    _assert_same(out, default_collate(samples))
    assert all(v.is_contiguous() for v in out.values())
    # views, not copies: every float key lives in the one float32 buffer
    base = packed.buffers[torch.float32].untyped_storage().data_ptr()
    assert out["image"].untyped_storage().data_ptr() == base
    assert out["hand_sdf"].untyped_storage().data_ptr() == base


def test_dataloader_workers_send_packed_batches():
    loader = DataLoader(_Samples(), batch_size=4, num_workers=2, collate_fn=pack_collate)
    got = [b.unpack() for b in loader]
    want = list(DataLoader(_Samples(), batch_size=4, num_workers=0))
    assert [len(b["index"]) for b in got] == [4, 4, 2]
    for a, b in zip(got, want, strict=True):
        _assert_same(a, b)


def test_to_device_keeps_the_layout():
    packed = pack_collate([_sample(0), _sample(1)])
    moved = packed.to("cpu")
    assert isinstance(moved, PackedBatch)
    assert moved.keys() == packed.keys() == list(_sample(0))
    _assert_same(moved.unpack(), packed.unpack())


def test_mismatched_samples_are_named():
    a, b = _sample(0), _sample(1)
    b["hand_sdf"] = torch.zeros(8)
    with pytest.raises(ValueError, match=r"'hand_sdf' of sample 1 is \(8,\)"):
        pack_collate([a, b])
    c = _sample(2)
    del c["K"]
    with pytest.raises(ValueError, match="sample 1 has keys"):
        pack_collate([a, c])
    with pytest.raises(ValueError, match="not a tensor"):
        pack_collate([{"x": 1.0}])
    with pytest.raises(ValueError, match="at least one sample"):
        pack_collate([])
