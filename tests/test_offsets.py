"""streams.kafka.offsets: Faust's commit-offset rule with each offset counted once."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest
from faust.transport.consumer import Consumer
from hypothesis import given
from hypothesis import strategies as st
from intervaltree import IntervalTree

from streams.kafka.offsets import install, new_offset

TP = ("events", 0)


def _consumer(acked: list[int], gap: list[tuple[int, int]], committed: int | None):
    tree = IntervalTree()
    for begin, end in gap:
        tree.addi(begin, end)
    tree.merge_overlaps()
    return SimpleNamespace(
        _acked=defaultdict(list, {TP: list(acked)}),
        _acked_index=defaultdict(set, {TP: set(acked)}),
        _gap=defaultdict(IntervalTree, {TP: tree}),
        _committed_offset=defaultdict(lambda: None, {TP: committed}),
    )


def _commit_all(fn, consumer) -> list[int]:
    """Commit repeatedly, as the checkpoint timer does, until nothing moves."""
    out = []
    while (offset := fn(consumer, TP)) is not None:
        if out and offset <= out[-1]:
            break
        consumer._committed_offset[TP] = offset
        out.append(offset)
    return out


def test_offsets_processed_before_the_recovery_seek_do_not_stall_commits():
    # committed 680 at the restart; 680..1499 processed before Faust's seek,
    # then a prefetched 1500 arrives after it and records 681..1500 as a gap
    consumer = _consumer(list(range(680, 1500)) + list(range(1500, 2040)),
                         [(681, 1501)], committed=680)
    faust = _consumer(list(range(680, 2040)), [(681, 1501)], committed=680)
    # Faust's own rule: the duplicates break the run right after the head
    assert Consumer._new_offset(faust, TP) == 682
    assert new_offset(consumer, TP) == 2040
    assert consumer._acked[TP] == [] and consumer._acked_index[TP] == set()


def test_a_real_hole_still_holds_the_commit():
    # (Faust lets the head skip exactly one offset, the committed one itself,
    # for a transaction marker there; kept as is)
    consumer = _consumer([5, 6, 7, 10, 11], [], committed=5)
    assert new_offset(consumer, TP) == 8
    consumer._committed_offset[TP] = 8
    assert new_offset(consumer, TP) is None  # 8 and 9 are not done
    consumer._acked[TP].extend([8, 9])
    assert new_offset(consumer, TP) == 12


@given(done=st.sets(st.integers(0, 300), min_size=1, max_size=200),
       gaps=st.lists(st.tuples(st.integers(1, 300), st.integers(1, 40)), max_size=4),
       dupes=st.lists(st.integers(0, 300), max_size=50))
def test_duplicates_never_change_the_commits_and_holes_hold_them(done, gaps, dupes):
    """Each commit from ``p`` to ``o`` covers only offsets acked or in a gap
    (``p`` itself excepted: Faust's one-offset head tolerance); duplicate acks
    change nothing."""
    gap_pairs = [(b, b + n) for b, n in gaps]
    covered = set(done) | {o for b, e in gap_pairs for o in range(b, e)}
    start = min(done)
    plain = _commit_all(new_offset, _consumer(sorted(done), gap_pairs, committed=start))
    duped = _commit_all(new_offset, _consumer(sorted(done) + [d for d in dupes if d in done],
                                              gap_pairs, committed=start))
    assert plain == duped
    previous = start
    for offset in plain:
        assert all(o in covered for o in range(previous + 1, offset)), (previous, offset)
        previous = offset


def test_install_replaces_the_consumers_rule_once():
    consumer = _consumer([1, 2, 3], [], committed=1)
    install(consumer)
    install(consumer)
    assert consumer._new_offset(TP) == 4


def test_commit_watch_reports_a_stall_once_and_clears_when_commits_move():
    from streams.kafka.offsets import CommitWatch

    watch = CommitWatch(after=2)
    # idle: nothing read past the commit, never a stall
    assert not any(watch.observe(0, committed=10, read=9) for _ in range(10))
    assert watch.stalled() == []
    # reading on while the commit stays put: reported once
    seen = [watch.observe(0, committed=10, read=40) for _ in range(6)]
    assert seen.count(True) == 1 and watch.stalled() == [0]
    # another partition is independent; a revoked partition is forgotten
    assert watch.observe(1, committed=5, read=50) is False
    watch.forget([0])
    assert watch.stalled() == []
    with pytest.raises(ValueError, match="after must be >= 1"):
        CommitWatch(after=0)
