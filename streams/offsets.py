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
the end, ``tests/test_reliability_commit_advance.py``). Faust issue #559
reports the same duplicates.

:func:`install` replaces ``_new_offset`` on the worker's consumer with
:func:`new_offset`, which is Faust's rule with each offset counted once.
"""

from __future__ import annotations

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


def _runs(numbers: list[int]) -> Any:
    for _, group in groupby(enumerate(numbers), lambda pair: pair[1] - pair[0]):
        yield [n for _, n in group]


def install(consumer: Any) -> None:
    """Use :func:`new_offset` on this Faust consumer; idempotent."""
    if getattr(consumer, "_dw_new_offset", False):
        return
    consumer._new_offset = partial(new_offset, consumer)
    consumer._dw_new_offset = True
