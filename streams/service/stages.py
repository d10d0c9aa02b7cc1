"""Where the time goes: cumulative per-stage timings, cheap enough to leave on.

A message goes through five stages: ``decode`` (bytes to JSON), ``validate``
(JSON to an :class:`~detectors.schema.Event`), ``account`` (the per-account
detector, its sweeps included), ``summaries`` (turning account state into an
account summary, on the events that emit one) and ``cluster`` (the cluster
stage over those summaries, its sweeps included).

Reading the clock costs about 50 ns, a few percent of an event if every stage
of every event were timed, so only every ``every``-th unit
is (16: about +1.5%): every
``every``-th line or message for ``decode`` (with the validation of its
items), every ``every``-th event for the others. The totals are the sampled
nanoseconds times ``every``: an unbiased estimate of the time spent (the
choice of sample is periodic, not tied to the data), and monotone, so they
can be Prometheus counters. ``ns`` and ``samples`` keep what was measured.

Garbage collection is not a stage, and while :meth:`StageTimes.track_gc` is
on it is kept out of the stages: the collector's pauses are timed exactly
(every one, through ``gc.callbacks``; ``gc`` in the report) and the clock the
stages read stands still during them. Sampling made the pauses a lottery:
a young-generation collection of a 10k-account replay took 0.1-0.5 s
(measured, loaded machine), and one that fell inside one of the sampled
calls counted ``every`` (16) times, in whichever stage had allocated the
object that triggered it. The summaries allocate much for their time, and
the same input replays with the same allocations, so a replay run as
``python -m streams.cli`` (whose imports shift the trigger points) showed
25% in ``summaries`` run after run, and 4% run another way, with the same
CPU time in all.

The detectors stay clock-free (tests/unit/test_purity.py): the summarizer and the
cluster stage are wrapped here, in the service and replay layer.

>>> times = StageTimes(every=1, clock=iter(range(0, 100, 5)).__next__)
>>> with times.measure("decode"):
...     pass
>>> times.seconds()["decode"], times.samples["decode"]
(5e-09, 1)
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: the stages, in the order a message passes them
STAGES: tuple[str, ...] = ("decode", "validate", "account", "summaries", "cluster")


class StageTimes:
    """Sampled cumulative nanoseconds per stage (see the module docstring).

    Parameters
    ----------
    every
        Time one unit in this many (1: every unit). Must be >= 1.
    clock
        Nanosecond clock (``time.perf_counter_ns``); an input, for tests.
    """

    __slots__ = ("every", "clock", "ns", "samples", "on", "_events", "_lines", "gc_ns",
                 "gc_pauses", "_gc_start")

    def __init__(self, every: int = 16, clock: Callable[[], int] = time.perf_counter_ns) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every!r}")
        self.every = every
        self.clock = clock
        self.ns: dict[str, int] = dict.fromkeys(STAGES, 0)
        self.samples: dict[str, int] = dict.fromkeys(STAGES, 0)
        #: True while the current event is a sampled one: the wrapped
        #: summarizer and cluster stage time their calls only then
        self.on = False
        self._events = 0
        self._lines = 0
        #: nanoseconds in the garbage collector while :meth:`track_gc` was on
        #: (every pause, not sampled), and how many pauses
        self.gc_ns = 0
        self.gc_pauses = 0
        self._gc_start = 0

    @contextmanager
    def track_gc(self) -> Iterator[None]:
        """Time the collector's pauses into ``gc_ns`` and keep them out of
        the stages: ``clock`` stands still while the collector runs (see the
        module docstring). Callers that keep ``times.clock`` must read it
        inside this block."""
        raw = self.clock
        paused = [0]  # this block's pauses (gc_ns also gets other processes' in merge)

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                self._gc_start = raw()
            else:
                dt = raw() - self._gc_start
                paused[0] += dt
                self.gc_ns += dt
                self.gc_pauses += 1

        def clock() -> int:
            return raw() - paused[0]

        self.clock = clock
        gc.callbacks.append(on_gc)
        try:
            yield
        finally:
            gc.callbacks.remove(on_gc)
            self.clock = raw

    def event_sampled(self) -> bool:
        """Count one event; True when it is one to time."""
        self._events += 1
        return self._events % self.every == 0

    def line_sampled(self) -> bool:
        """Count one line or message; True when its decoding is one to time."""
        self._lines += 1
        return self._lines % self.every == 0

    def timed_event(self, process: Callable[[Any], Any], event: Any) -> Any:
        """``process(event)`` for a sampled event: its time is ``account``
        less what the wrapped summarizer and cluster stage measured inside."""
        ns = self.ns
        inner = ns["summaries"] + ns["cluster"]
        clock = self.clock
        self.on = True
        t0 = clock()
        try:
            return process(event)
        finally:
            dt = clock() - t0
            self.on = False
            self.add("account", dt - (ns["summaries"] + ns["cluster"] - inner))

    def add(self, stage: str, ns: int) -> None:
        self.ns[stage] += ns
        self.samples[stage] += 1

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        t0 = self.clock()
        try:
            yield
        finally:
            self.add(stage, self.clock() - t0)

    def seconds(self) -> dict[str, float]:
        """Estimated seconds spent in each stage so far (monotone)."""
        return {s: self.ns[s] * self.every / 1e9 for s in STAGES}

    def merge(self, other: StageTimes | dict[str, Any]) -> None:
        """Add another process's timings (a :meth:`to_json` dict or an instance)."""
        data = other.to_json() if isinstance(other, StageTimes) else other
        scale = int(data["every"])
        for s in STAGES:
            # kept in this object's units: estimated ns / every
            self.ns[s] += int(data["ns"].get(s, 0)) * scale // self.every
            self.samples[s] += int(data["samples"].get(s, 0))
        self.gc_ns += int(data.get("gc_ns", 0))
        self.gc_pauses += int(data.get("gc_pauses", 0))

    def to_json(self) -> dict[str, Any]:
        return {"every": self.every, "ns": dict(self.ns), "samples": dict(self.samples),
                "gc_ns": self.gc_ns, "gc_pauses": self.gc_pauses}

    def report(self, events: int, elapsed_s: float | None = None) -> dict[str, Any]:
        """Per stage: estimated seconds, µs per event and share of the sum;
        with ``elapsed_s``, also the rest (reading files, ordering, merging)."""
        secs = self.seconds()
        total = sum(secs.values())
        out: dict[str, Any] = {
            s: {
                "s": round(v, 4),
                "us_per_event": round(1e6 * v / events, 3) if events else 0.0,
                "share": round(v / total, 4) if total else 0.0,
            }
            for s, v in secs.items()
        }
        out["sampled_1_in"] = self.every
        out["gc_s"] = round(self.gc_ns / 1e9, 4)
        if elapsed_s is not None:
            out["other_s"] = round(max(0.0, elapsed_s - total - self.gc_ns / 1e9), 4)
        return out

    def line(self, events: int) -> str:
        """One line for a summary: ``decode 1.2 µs, validate 2.0 µs, ...``."""
        secs = self.seconds()
        total = sum(secs.values()) or 1.0
        parts = [
            f"{s} {1e6 * v / max(events, 1):.1f} µs ({100 * v / total:.0f}%)"
            for s, v in secs.items()
        ]
        if self.gc_pauses:
            parts.append(f"gc pauses {1e6 * self.gc_ns / 1e9 / max(events, 1):.1f} µs "
                         f"({self.gc_pauses}, not in the stages)")
        return f"per event: {', '.join(parts)} (sampled 1 in {self.every})"


class TimedSummarizer:
    """A summarizer (``maybe_emit``) whose summaries are timed as ``summaries``
    while ``times.on``; the due check, which costs nothing, is not."""

    __slots__ = ("inner", "times")

    def __init__(self, inner: Any, times: StageTimes) -> None:
        self.inner = inner
        self.times = times

    def maybe_emit(self, detector: Any, prev_last_ts: float | None, state: Any,
                   event: Any) -> Any:
        times = self.times
        if not times.on:
            return self.inner.maybe_emit(detector, prev_last_ts, state, event)
        clock = times.clock
        t0 = clock()
        out = self.inner.maybe_emit(detector, prev_last_ts, state, event)
        if out is not None:
            times.add("summaries", clock() - t0)
        return out

    def __getattr__(self, name: str) -> Any:  # interval_s, summarize, due ...
        return getattr(self.inner, name)


class TimedClusterStage:
    """A cluster stage (``process(summary)``) timed as ``cluster`` while ``times.on``."""

    __slots__ = ("inner", "times")

    def __init__(self, inner: Any, times: StageTimes) -> None:
        self.inner = inner
        self.times = times

    def process(self, summary: Any) -> Any:
        times = self.times
        if not times.on:
            return self.inner.process(summary)
        clock = times.clock
        t0 = clock()
        out = self.inner.process(summary)
        times.add("cluster", clock() - t0)
        return out

    def __getattr__(self, name: str) -> Any:  # detectors, work() ...
        return getattr(self.inner, name)
