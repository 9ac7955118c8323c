"""Stamp grouping rules (homae_model.fusion.sync), with an injected clock."""

from __future__ import annotations

import pytest

from homae_model.fusion.sync import StampGrouper

MS = 1_000_000


def grouper(**kw) -> StampGrouper:
    args = {"slop_ns": 5 * MS, "max_wait_s": 0.2, "stale_after_s": 1.0}
    args.update(kw)
    return StampGrouper(["a", "b"], **args)


def test_complete_group_leaves_at_once():
    g = grouper()
    assert g.add("a", 100 * MS, "a0", now=0.0)
    assert g.pop_ready(0.0) == []  # b has not been heard of: waits until the deadline
    assert g.add("b", 102 * MS, "b0", now=0.01)
    (group,) = g.pop_ready(0.01)
    assert group.stamp_ns == 100 * MS and group.items == {"a": "a0", "b": "b0"}


def test_silent_camera_delays_only_until_the_deadline_then_stops_being_waited_for():
    g = grouper()
    g.add("a", 0, "a0", now=0.0)
    g.add("b", 0, "b0", now=0.0)
    assert len(g.pop_ready(0.0)) == 1
    # b goes silent: a's next group leaves at its deadline with a alone.
    g.add("a", 100 * MS, "a1", now=0.1)
    assert g.pop_ready(0.2) == []
    (group,) = g.pop_ready(0.31)
    assert list(group.items) == ["a"]
    # After stale_after_s without b, a's groups leave at once.
    g.add("a", 1200 * MS, "a2", now=1.2)
    assert g.active(1.2) == ["a"]
    assert [list(x.items) for x in g.pop_ready(1.2)] == [["a"]]


def test_late_result_is_refused_and_counted():
    g = grouper()
    g.add("a", 100 * MS, "a0", now=0.0)
    g.add("b", 50 * MS, "b-old", now=0.0)
    out = g.pop_ready(0.5)
    assert [x.stamp_ns for x in out] == [50 * MS, 100 * MS]  # stamp order
    assert not g.add("b", 100 * MS, "b0", now=0.6)
    assert not g.add("b", 90 * MS, "b1", now=0.6)
    assert g.late == {"a": 0, "b": 2}
    assert g.add("b", 200 * MS, "b2", now=0.7)


def test_newer_ready_group_flushes_older_ones_and_pending_is_bounded():
    g = grouper(max_pending=2)
    for i in range(4):
        g.add("a", i * 100 * MS, f"a{i}", now=0.0)
    assert g.pending == 4
    out = g.pop_ready(0.0)  # nothing complete (b unknown, not active) and no deadline passed
    assert [x.stamp_ns for x in out] == [0, 100 * MS]
    assert g.pending == 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="unique"):
        StampGrouper(["a", "a"], 0, 0.1, 1.0)
    with pytest.raises(KeyError, match="unknown camera 'c'"):
        grouper().add("c", 0, None, now=0.0)
