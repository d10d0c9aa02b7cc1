"""What a checkpoint writes: the hot state changed since the last one, of each
stage this worker runs, as changelog records of its table.

:class:`StateTables` is the ``collect`` and ``send`` of
:class:`~streams.service.checkpoint.Checkpointer`; ``streams.service.app``
declares the tables (``account-state``, ``cluster-state``, ``campaign-state``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import faust
from faust.types import TableT

from streams.service.checkpoint import Record
from streams.service.metrics import Metrics
from streams.service.outputs import SummaryOutbox


class Stage(Protocol):
    """A stage processor: ``checkpoint()`` hands over its changed keys."""

    def checkpoint(self) -> list[tuple[int, bytes, bytes | None]]: ...


class StateTables:
    """The stages and their tables, in the order a checkpoint writes them
    (accounts, clusters, campaigns)."""

    def __init__(self, app: faust.App, metrics: Metrics,
                 summaries: SummaryOutbox | None) -> None:
        self.app = app
        self.metrics = metrics
        self.summaries = summaries
        self.stages: list[tuple[Stage, TableT[Any, Any], str]] = []

    def add(self, stage: Stage, table: TableT[Any, Any]) -> None:
        self.stages.append((stage, table, table.changelog_topic.get_topic_name()))

    def collect(self) -> list[Record]:
        """The hot state changed since the last checkpoint, as changelog
        records, applied to the local table copies as well.

        Buffered summaries are handed to the producer first: they derive from
        events the coming commit covers, and a crash after it must not lose
        them (the commit's flush sends them)."""
        if self.summaries is not None:
            self.summaries.flush()
        records: list[Record] = []
        for stage, table, changelog in self.stages:
            records.extend(apply(stage.checkpoint(), table, changelog))
        self.metrics.checkpoints += len(records)
        return records

    async def send(self, topic: str, partition: int, key: bytes,
                   value: bytes | None) -> Any:
        # straight to the Kafka client (Faust's transport producer), not
        # through table.send_changelog: see streams.service.checkpoint
        return await self.app.producer.send(topic, key, value, partition, None, None)


def apply(changed: Iterable[tuple[int, bytes, bytes | None]], table: TableT[Any, Any],
          changelog: str) -> list[Record]:
    """Write ``changed`` into the local copy of ``table``; its changelog records."""
    data = table.data
    records: list[Record] = []
    for partition, key, value in changed:
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
        records.append((changelog, partition, key, value))
    return records
