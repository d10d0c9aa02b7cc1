"""Replay of historic logs through the live service's detection path.

Both this and the Faust agent call :class:`detectors.runner.PartitionRunner`
(one per partition, partitions chosen by Kafka's default partitioner), so what
tuning shows is what production does.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detectors.alerts import Alert
from detectors.cluster import SummaryEmitter
from detectors.replay import Replayer
from detectors.schema import Event
from detectors.watchlist import Watchlist
from streams.replay.logfiles import ReadStats, merged_events
from streams.replay.progress import Progress
from streams.service.detection import detector_factory
from streams.service.stages import StageTimes, TimedClusterStage, TimedSummarizer

#: young-generation collection threshold while a replay runs (CPython's is 700)
REPLAY_GC_THRESHOLD = 50_000


@contextmanager
def batch_gc(threshold0: int = REPLAY_GC_THRESHOLD) -> Iterator[None]:
    """Collect the young generation less often while a replay runs.

    Replay allocates dozens of short-lived objects per event (decoded JSON,
    the event, floats) and makes almost no reference cycles, so with the
    default threshold of 700 allocations CPython's collector ran every few
    events, to free nothing. Measured on the benchmark data: one process
    40.0k → 42.8k events/s. Forked replay children inherit the setting.
    Restored on exit; the live worker keeps the default.
    """
    old = gc.get_threshold()
    gc.set_threshold(threshold0, *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


@dataclass
class ReplayResult:
    alerts: list[Alert]
    stats: ReadStats
    elapsed_s: float
    accounts: int
    #: the one-process replayer (its runners' states); None for ``jobs > 1``
    replayer: Replayer | None = field(repr=False)
    #: every account seen in the input
    seen_accounts: set[str] = field(default_factory=set, repr=False)
    #: where the time went (decode, validate, account, summaries, cluster)
    stages: StageTimes | None = field(default=None, repr=False)

    @property
    def events_per_s(self) -> float:
        return self.stats.events / max(self.elapsed_s, 1e-9)


def replay_events(
    events: Iterable[Event],
    config: Mapping[str, Any] | None = None,
    *,
    partitions: int = 8,
    sweep_interval_s: float = 60.0,
    on_event: Callable[[Event, Replayer], None] | None = None,
    progress: Progress | None = None,
    times: StageTimes | None = None,
    watchlist: Watchlist | None = None,
) -> tuple[list[Alert], Replayer]:
    """Replay ``events``; with ``times``, the stages of every ``times.every``-th
    event are timed (:mod:`streams.service.stages`)."""
    emitter = SummaryEmitter()
    replayer = Replayer(detector_factory(config, watchlist), partitions, sweep_interval_s,
                        summary_emitter=emitter)
    # Sampled events only run through the timing wrappers (swapped in for
    # them): on the others, a Python-level wrapper call per event cost more
    # than the timing itself.
    every = times.every if times is not None else 0
    stage = replayer.clusters
    timed_emitter = TimedSummarizer(emitter, times) if times is not None else None
    timed_stage = (TimedClusterStage(stage, times)
                   if times is not None and stage is not None else None)
    runners, partition_of = replayer.runners, replayer.partition_of
    alerts: list[Alert] = []
    process = replayer.process
    seen = replayer.seen_accounts
    n = 0
    for event in events:
        seen.add(event.account_id)
        n += 1
        if every and n % every == 0:
            assert times is not None
            runner = runners[partition_of(event.account_id)]
            runner.summarizer = timed_emitter
            replayer.clusters = timed_stage
            try:
                out = times.timed_event(process, event)
            finally:
                runner.summarizer = emitter
                replayer.clusters = stage
        else:
            out = process(event)
        if out:
            alerts.extend(out)
        if on_event is not None:
            on_event(event, replayer)
        if progress is not None:
            progress.update()
    # No closing sweep (resolutions wait for event time, as live); alerts the
    # campaign stage held for a campaign that never came out come out, as
    # the live worker lets them out once its input goes quiet.
    alerts.extend(replayer.finish())
    return alerts, replayer


@batch_gc()
def replay_files(
    paths: Iterable[str | Path],
    config: Mapping[str, Any] | None = None,
    *,
    partitions: int = 8,
    lateness_s: float = 300.0,
    sweep_interval_s: float = 60.0,
    show_progress: bool | None = None,
    on_event: Callable[[Event, Replayer], None] | None = None,
    max_prompt_chars: int = 200_000,
    jobs: int = 1,
    stage_every: int = 16,
    watchlist: Watchlist | None = None,
) -> ReplayResult:
    """Replay log files. ``jobs > 1`` splits the partitions across that many
    processes (:mod:`streams.replay.parallel`) with identical output; it needs
    ``on_event`` to be None (the callback reads in-process state), and runs in
    this process with a ``watchlist`` (shared indicators, as the live worker).
    ``stage_every``: time the stages of one event in this many
    (:mod:`streams.service.stages`; 0: not at all)."""
    if jobs > 1 and on_event is None and watchlist is None:
        from streams.replay.parallel import replay_files_parallel

        times = StageTimes(stage_every) if stage_every else None
        alerts, st, elapsed, accounts, seen = replay_files_parallel(
            paths, config, jobs=min(jobs, partitions), partitions=partitions,
            lateness_s=lateness_s, sweep_interval_s=sweep_interval_s,
            show_progress=show_progress, max_prompt_chars=max_prompt_chars, times=times,
        )
        return ReplayResult(alerts, st, elapsed, accounts, None, seen, times)
    stats = ReadStats()
    progress = Progress("replay", enabled=show_progress)
    times = StageTimes(stage_every) if stage_every else None
    started = time.perf_counter()
    with times.track_gc() if times is not None else nullcontext():
        events = merged_events(paths, stats, lateness_s=lateness_s,
                               max_prompt_chars=max_prompt_chars, times=times)
        alerts, replayer = replay_events(
            events, config, partitions=partitions, sweep_interval_s=sweep_interval_s,
            on_event=on_event, progress=progress, times=times, watchlist=watchlist,
        )
    elapsed = time.perf_counter() - started
    progress.close()
    accounts = sum(len(r.states) for r in replayer.runners)
    return ReplayResult(alerts, stats, elapsed, accounts, replayer, replayer.seen_accounts,
                        times)
