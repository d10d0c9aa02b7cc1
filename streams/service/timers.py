"""The service's periodic work: the checkpoint (write state, then commit),
the summaries flush, and the watchlist refresh. :func:`attach` registers
them with the Faust app."""

from __future__ import annotations

import asyncio
import math

import faust
import structlog

from detectors.watchlist import Watchlist
from streams.errors import ProducerStalled
from streams.kafka.consumer import (
    acked_offsets,
    checkpoint_before_every_commit,
    committed_offset,
    read_offset,
)
from streams.kafka.offsets import CommitWatch
from streams.response.indicators import read_watchlist
from streams.service.checkpoint import Checkpointer
from streams.service.metrics import Metrics
from streams.service.outputs import SummaryOutbox
from streams.settings import Settings

log = structlog.get_logger("distillwatch.worker")


class Checkpoint:
    """One checkpoint: the commit (wrapped so it writes the state first),
    counted, and each events partition's commit progress watched."""

    def __init__(self, app: faust.App, settings: Settings, checkpointer: Checkpointer,
                 metrics: Metrics) -> None:
        self.app = app
        self.settings = settings
        self.checkpointer = checkpointer
        self.metrics = metrics
        self.commit_watch = CommitWatch(
            after=max(1, math.ceil(settings.commit_stall_s / settings.checkpoint_interval_s)))

    async def run(self) -> None:
        # the commit wrapper (installed on assignment, and here for a commit
        # before any assignment) writes the state first
        checkpoint_before_every_commit(self.app.consumer, self.checkpointer)
        try:
            committed = await self.app.consumer.commit()
        except ProducerStalled as exc:
            self.metrics.commits_skipped += 1
            log.warning("commit_skipped", reason=str(exc))
            return
        finally:
            self.watch_commits()
        if committed:
            self.metrics.commits += 1

    def watch_commits(self) -> None:
        consumer = self.app.consumer
        for tp in consumer.assignment():
            if tp.topic != self.settings.events_topic:
                continue
            committed = committed_offset(consumer, tp)
            read = read_offset(consumer, tp)
            if self.commit_watch.observe(tp.partition, committed, read):
                acked = acked_offsets(consumer, tp)
                log.warning(
                    "commit_stalled", partition=tp.partition, committed=committed, read=read,
                    stalled_s=self.settings.commit_stall_s, acked_head=acked[:5],
                    acked=len(acked),
                )


class WatchlistRefresh:
    """Re-read the compacted watchlist topic now and every
    ``watchlist_refresh_s``; the swap happens between two events (the
    agents and this task share one event loop)."""

    def __init__(self, settings: Settings, watchlist: Watchlist, metrics: Metrics) -> None:
        self.settings = settings
        self.watchlist = watchlist
        self.metrics = metrics
        #: (entries read, usable) of the last read logged
        self.last: tuple[int, int] | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                records = await loop.run_in_executor(None, read_watchlist, self.settings)
            except Exception as exc:  # noqa: BLE001 - keep the previous entries
                log.warning("watchlist_read_failed", error=f"{type(exc).__name__}: {exc}")
            else:
                usable = self.watchlist.load(records)  # no await inside: atomic for the agents
                self.metrics.watchlist_entries = self.watchlist.size
                if (len(records), usable) != self.last:
                    log.info("watchlist_loaded", entries=len(records), usable=usable)
                    self.last = (len(records), usable)
            await asyncio.sleep(self.settings.watchlist_refresh_s)


def attach(app: faust.App, settings: Settings, checkpoint: Checkpoint,
           watchlist: WatchlistRefresh, summaries: SummaryOutbox | None) -> None:
    """Register the timers and the watchlist task with ``app``."""
    app.timer(interval=settings.checkpoint_interval_s, name="checkpoint_timer")(checkpoint.run)
    app.task(watchlist.run)
    if summaries is not None:
        outbox = summaries

        async def summary_flush_timer() -> None:
            outbox.flush()

        app.timer(interval=settings.summary_flush_interval_s,
                  name="summary_flush_timer")(summary_flush_timer)
