"""The Faust consumer and table internals the service reads or replaces.

Faust has no public API for these, so every touch of a private attribute is
here, each with the upstream behaviour it works around (the commit-offset
rule is in :mod:`streams.kafka.offsets`, the producer flush in
:mod:`streams.kafka.flush`):

- :func:`checkpoint_before_every_commit` replaces ``consumer.commit``. Faust
  commits by itself (``Consumer.stop``, ``Agent._execute_actor`` after an agent
  error, its commit timer), through that one method, without knowing about the
  worker's hot state; the replacement writes that state first.
- :func:`read_offset`, :func:`committed_offset`, :func:`acked_offsets` read
  ``Consumer._read_offset`` (the last offset handed to an agent),
  ``_committed_offset`` and ``_acked``: the only record of what the agents
  have seen and what the next commit can cover (the consumer-lag gauge and
  the ``commit_stalled`` watch).
- :func:`table_partition` reads the memory store's ``_key_partition`` (the
  partition of each key recovered from the changelog): ``Table.data`` has no
  per-partition view.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from detectors.partitioning import partition_for


class CommitGate(Protocol):
    """What the replaced commit needs: :class:`streams.service.checkpoint.Checkpointer`."""

    async def commit(self, commit: Callable[[], Awaitable[Any]]) -> bool: ...


def checkpoint_before_every_commit(consumer: Any, gate: CommitGate) -> None:
    """Every commit, ours and the ones Faust makes by itself (when the
    consumer stops, after an agent error), writes the state it covers
    first, with the agents paused, or a SIGTERM + restart silently loses
    the events since the last checkpoint (issue 8, test_reliability_crash).
    Idempotent: the consumer is marked once wrapped."""
    if getattr(consumer, "_dw_state_first", False):
        return
    faust_commit = consumer.commit

    async def commit_after_state(*args: Any, **kwargs: Any) -> bool:
        async def run_faust_commit() -> Any:
            return await faust_commit(*args, **kwargs)

        return await gate.commit(run_faust_commit)

    consumer.commit = commit_after_state
    consumer._dw_state_first = True


def read_offset(consumer: Any, tp: Any) -> int | None:
    """The last offset of ``tp`` handed to an agent (None before the first)."""
    value: int | None = consumer._read_offset.get(tp)
    return value


def committed_offset(consumer: Any, tp: Any) -> int | None:
    """The offset of ``tp`` Faust last committed (None before the first)."""
    value: int | None = consumer._committed_offset.get(tp)
    return value


def acked_offsets(consumer: Any, tp: Any) -> list[int]:
    """The acknowledged offsets of ``tp`` the next commit may cover, sorted."""
    return sorted(consumer._acked.get(tp) or [])


def table_partition(table: Any, partition: int, partitions: int) -> list[tuple[bytes, Any]]:
    """The (key, value) pairs of one partition of a memory-store table: keys
    recovered from the changelog know their partition; keys written by this
    process are placed as the events' producers place them (murmur2)."""
    known = getattr(table.data, "_key_partition", {})
    return [(k, v) for k, v in list(table.data.items())
            if isinstance(k, bytes) and known.get(k, partition_for(k, partitions)) == partition]
