"""Replay on several processes, with output identical to the one-process replay.

The per-account stage is independent per partition, so the partitions are
split across ``jobs`` forked child processes (partition ``p`` belongs to child
``p % jobs``). Every child reads all input and sees the same merged event
sequence, so it numbers it the same way (event ``i``), but decodes only its own
events (:func:`~streams.replay.logfiles.read_file_part`: a C scanner reads the
other events' account id and time, and says when a line needs the full decode,
which every child then does alike); it runs only
its own partitions' :class:`~detectors.runner.PartitionRunner`\\ s and sends the
parent, per chunk of events, what they produced: account alerts and account
summaries, each tagged with ``i``. The parent merges the children's chunks by
``i`` and runs the cluster stage (which needs every summary, in stream order)
exactly where the one-process :class:`~detectors.replay.Replayer` runs it: after
the account alerts of the event that produced the summary. Same alerts, same
order, byte for byte (``tests/unit/test_parallel_replay.py``).

Children and parent talk through pipes in orjson, never pickle.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import multiprocessing
import time
from collections.abc import Iterable, Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

from detectors.alerts import Alert
from detectors.campaign import CampaignStage, tick_due
from detectors.cluster import AccountSummary, ClusterDetector, ClusterStage, SummaryEmitter
from detectors.partitioning import PartitionCache
from detectors.runner import PartitionRunner
from detectors.schema import Event
from streams.replay.logfiles import ReadStats, merged_events_part
from streams.replay.progress import Progress
from streams.service.detection import detector_factory
from streams.service.stages import StageTimes, TimedSummarizer

_ALERT_FIELDS = tuple(f.name for f in dataclasses.fields(Alert))
_KIND_ALERT = 0
_KIND_SUMMARY = 1
_KIND_TICK = 2


class ParallelReplayError(RuntimeError):
    """A replay child process failed; its traceback is in the message. Re-run
    with ``--jobs 1`` to see the failure in-process."""


def _alert_to_json(alert: Alert) -> dict[str, Any]:
    return {name: getattr(alert, name) for name in _ALERT_FIELDS}


def _alert_from_json(obj: dict[str, Any]) -> Alert:
    obj["accounts"] = tuple(obj["accounts"])
    return Alert(**obj)


def _child(conn: Connection, k: int, jobs: int, paths: list[str],
           config: Mapping[str, Any] | None, partitions: int, lateness_s: float,
           sweep_interval_s: float, max_prompt_chars: int, chunk: int,
           stage_every: int = 0) -> None:
    gc_tracking = contextlib.ExitStack()
    try:
        factory = detector_factory(config)
        times = StageTimes(stage_every) if stage_every else None
        if times is not None:
            gc_tracking.enter_context(times.track_gc())
        emitter = SummaryEmitter()
        timed_emitter = TimedSummarizer(emitter, times) if times is not None else None
        runners = {p: PartitionRunner(factory(), sweep_interval_s=sweep_interval_s,
                                      summarizer=emitter)
                   for p in range(partitions) if p % jobs == k}
        stats = ReadStats()
        partition_of = PartitionCache(partitions)
        seen: set[str] = set()
        ticked = dict.fromkeys(runners, 0.0)
        items: list[Any] = []
        n = 0
        i = -1
        every = stage_every
        mine = 0

        def is_mine(acct: str) -> bool:
            return partition_of(acct) in runners

        events = merged_events_part(paths, stats, is_mine, lateness_s=lateness_s,
                                    max_prompt_chars=max_prompt_chars, times=times)
        for i, event in enumerate(events):
            if type(event) is Event:
                acct = event.account_id
                runner = runners[partition_of(acct)]
                seen.add(acct)
                mine += 1
                if every and mine % every == 0:
                    assert times is not None
                    runner.summarizer = timed_emitter  # for this event only
                    try:
                        found = times.timed_event(runner.process, event)
                    finally:
                        runner.summarizer = emitter
                else:
                    found = runner.process(event)
                for alert in found:
                    items.append((i, _KIND_ALERT, _alert_to_json(alert)))
                if runner.summaries:
                    for summary in runner.take_summaries():
                        items.append((i, _KIND_SUMMARY, summary.to_json()))
                p = partition_of(acct)
                if tick_due(ticked[p], runner.watermark):
                    ticked[p] = runner.watermark
                    items.append((i, _KIND_TICK, runner.watermark))
            n += 1
            if n == chunk:
                conn.send_bytes(orjson.dumps({"events": n, "items": items}))
                items, n = [], 0
        conn.send_bytes(orjson.dumps({"events": n, "items": items}))
        done: dict[str, Any] = {
            "done": True,
            "accounts": sum(len(r.states) for r in runners.values()),
            "seen": sorted(seen),
            "total": i + 1,
        }
        if times is not None:
            done["stages"] = times.to_json()
        # the counts of lines, events, bad and late ones are alike in every
        # child; with_prompt and with_topic count the child's own events
        done["stats"] = dataclasses.asdict(stats)
        conn.send_bytes(orjson.dumps(done))
    except BaseException as exc:  # reported to the parent, which raises it
        import traceback

        conn.send_bytes(orjson.dumps({"error": f"{exc!r}\n{traceback.format_exc()}"}))
    finally:
        gc_tracking.close()
        conn.close()


def replay_files_parallel(
    paths: Iterable[str | Path],
    config: Mapping[str, Any] | None = None,
    *,
    jobs: int = 2,
    partitions: int = 8,
    lateness_s: float = 300.0,
    sweep_interval_s: float = 60.0,
    show_progress: bool | None = None,
    max_prompt_chars: int = 200_000,
    chunk: int = 2048,
    times: StageTimes | None = None,
) -> tuple[list[Alert], ReadStats, float, int, set[str]]:
    """``(alerts, stats, elapsed_s, accounts, seen_accounts)``, as the
    one-process :func:`streams.replay.replayer.replay_files` computes them.

    With ``times``, the children time their stages and the parent its cluster
    stage (:mod:`streams.service.stages`); ``times`` then holds the sum over the
    processes (CPU time: with two processes it can exceed the wall time).
    A child decodes and validates its own events (and the lines the
    scanner leaves to the full decode), so ``decode`` and ``validate`` count
    about one process's work."""
    if not 1 <= jobs <= partitions:
        raise ValueError(f"jobs must be in 1..partitions ({partitions}), got {jobs}")
    files = [str(p) for p in paths]
    progress = Progress("replay", enabled=show_progress)
    started = time.perf_counter()
    ctx = multiprocessing.get_context("fork")
    conns: list[Connection] = []
    procs = []
    for k in range(jobs):
        parent_end, child_end = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_child, name=f"replay-{k}", daemon=True,
            args=(child_end, k, jobs, files, config, partitions, lateness_s,
                  sweep_interval_s, max_prompt_chars, chunk,
                  times.every if times is not None else 0),
        )
        proc.start()
        child_end.close()  # the parent's copy: a dead child then reads as EOF
        conns.append(parent_end)
        procs.append(proc)

    stage = ClusterStage(ClusterDetector, partitions)
    campaigns = CampaignStage()
    every = times.every if times is not None else 0
    n_summaries = 0
    alerts: list[Alert] = []
    stats = ReadStats()
    accounts = 0
    seen: set[str] = set()
    gc_tracking = contextlib.ExitStack()
    if times is not None:  # the parent's cluster stage
        gc_tracking.enter_context(times.track_gc())
    try:
        finished = False
        while not finished:
            chunks = [_receive(c, procs[k]) for k, c in enumerate(conns)]
            if "done" in chunks[0]:
                for msg in chunks:
                    if "done" not in msg:
                        raise ParallelReplayError("replay children disagree on the input")
                    accounts += msg["accounts"]
                    seen.update(msg["seen"])
                    if times is not None and "stages" in msg:
                        times.merge(msg["stages"])
                if len({msg["total"] for msg in chunks}) != 1:
                    raise ParallelReplayError("replay children read different event counts")
                st = chunks[0]["stats"]
                st["with_prompt"] = sum(msg["stats"]["with_prompt"] for msg in chunks)
                st["with_topic"] = sum(msg["stats"]["with_topic"] for msg in chunks)
                stats = ReadStats(**st)
                finished = True
                continue
            # each child's items are in stream order; one event's items come
            # from one child only, so a merge on the event number keeps order
            streams = [msg["items"] for msg in chunks]
            # one event's alerts (account, then cluster) go through the
            # campaign stage in that order, as Replayer.process does
            for _, kind, payload in heapq.merge(*streams, key=lambda item: item[0]):
                if kind == _KIND_ALERT:
                    alerts.extend(campaigns.process(_alert_from_json(payload)))
                elif kind == _KIND_TICK:
                    alerts.extend(campaigns.advance(payload))
                else:
                    summary = AccountSummary.from_json(payload)
                    n_summaries += 1
                    if every and n_summaries % every == 0:
                        assert times is not None
                        t0 = times.clock()
                        found = stage.process(summary)
                        times.add("cluster", times.clock() - t0)
                    else:
                        found = stage.process(summary)
                    for alert in found:
                        alerts.extend(campaigns.process(alert))
            progress.update(chunks[0]["events"])
        alerts.extend(campaigns.release_held())  # the input ended (Replayer.finish)
    finally:
        gc_tracking.close()
        for c in conns:
            c.close()
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
    elapsed = time.perf_counter() - started
    progress.close()
    return alerts, stats, elapsed, accounts, seen


def _receive(conn: Connection, proc: Any) -> dict[str, Any]:
    try:
        msg: dict[str, Any] = orjson.loads(conn.recv_bytes())
    except EOFError:
        proc.join(timeout=5)
        raise ParallelReplayError(
            f"replay child {proc.name} ended without a result (exit code {proc.exitcode})"
        ) from None
    if "error" in msg:
        raise ParallelReplayError(f"replay child {proc.name} failed: {msg['error']}")
    return msg
