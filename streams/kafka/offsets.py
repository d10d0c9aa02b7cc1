"""Which offset a commit may advance to: Faust's rule, without its duplicate bug.

Faust (``faust.transport.consumer.Consumer._new_offset``) keeps a list of
acknowledged offsets per partition and a tree of "gaps" (offsets the fetcher
skipped, counted as done). At commit time it adds the gap's offsets to the
list and commits up to the end of the first run of consecutive numbers.

After a restart, a worker can process part of a partition before Faust's
recovery seeks it back to the committed offset; the next fetched message then
looks like a jump, and the offsets it already processed are recorded as a
gap as well. They enter the list twice, the run of consecutive numbers breaks
at the first duplicate, and each commit advances that partition by one offset
(seen with ``kill -9`` during a burst: 3 of 4 partitions stuck ~1,000 behind
the end, ``tests/reliability/test_reliability_commit_advance.py``). Faust issue #559
reports the same duplicates.

:func:`install` replaces ``_new_offset`` on the worker's consumer with
:func:`new_offset`, which is Faust's rule with each offset counted once.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from itertools import groupby
from typing import Any


def new_offset(consumer: Any, tp: Any) -> int | None:
    """The offset to commit for ``tp`` (next to read), or None to leave it."""
    acked: list[int] = consumer._acked[tp]
    if not acked:
        return None
    max_offset = max(acked)
    gap = consumer._gap[tp]
    if gap:
        # as Faust: gap offsets up to the highest acked one count as done
        entries = sorted(gap.overlap(0, max_offset), key=lambda e: e.begin)
        if entries:
            added: list[int] = []
            for entry in entries:
                added.extend(range(entry.begin, entry.end))
            acked.extend(added)
            gap.chop(0, max(added[-1], max_offset + 1))
    # the fix: an offset acked and also covered by a gap counts once
    acked[:] = sorted(set(acked))
    committed = consumer._committed_offset[tp]
    if committed and acked[0] - committed > 1:
        # the next offsets to commit are not done yet (as Faust, one missing
        # offset at the head is let through: a transaction marker there is
        # never delivered)
        return None
    run = next(_runs(acked))
    del acked[: len(run)]
    consumer._acked_index[tp].difference_update(run)
    return run[-1] + 1


def _runs(numbers: list[int]) -> Iterator[list[int]]:
    for _, group in groupby(enumerate(numbers), lambda pair: pair[1] - pair[0]):
        yield [n for _, n in group]


def install(consumer: Any) -> None:
    """Use :func:`new_offset` on this Faust consumer; idempotent."""
    if getattr(consumer, "_dw_new_offset", False):
        return
    consumer._new_offset = partial(new_offset, consumer)
    consumer._dw_new_offset = True


class CommitWatch:
    """Tells when a partition's commits have stopped although the worker reads
    past them: the symptom of an offset that Faust never counts as acked (the
    bug above, or one like it). The worker logs ``commit_stalled`` and exports
    the count, so an operator sees it before the next restart re-processes a
    long tail.

    ``observe`` is called once per partition after each checkpoint's commit.

    >>> watch = CommitWatch(after=3)
    >>> [watch.observe(0, committed=100, read=150) for _ in range(5)]
    [False, False, False, True, False]
    >>> watch.stalled()
    [0]
    >>> watch.observe(0, committed=160, read=170)
    False
    >>> watch.stalled()
    []
    """

    def __init__(self, after: int) -> None:
        if after < 1:
            raise ValueError(f"after must be >= 1 checkpoint, got {after!r}")
        self.after = after
        self._last: dict[int, int | None] = {}
        self._still: dict[int, int] = {}

    def observe(self, partition: int, committed: int | None, read: int | None) -> bool:
        """True exactly once per stall: when ``committed`` has stayed put for
        ``after`` checkpoints in a row while messages past it were read."""
        behind = read is not None and (committed is None or read >= committed)
        if committed != self._last.get(partition) or not behind:
            self._last[partition] = committed
            self._still[partition] = 0
            return False
        self._still[partition] = self._still.get(partition, 0) + 1
        return self._still[partition] == self.after

    def stalled(self) -> list[int]:
        return sorted(p for p, n in self._still.items() if n >= self.after)

    def forget(self, partitions: Any) -> None:
        for partition in partitions:
            self._last.pop(partition, None)
            self._still.pop(partition, None)
