"""``distillwatch bench``: throughput, latency and scale of the service, measured
side by side against aiokafka's and Faust's own ceilings (issue 7).

One run starts one embedded broker, generates one deterministic data set with
the simulator (seeded; benign population plus every attack family), publishes
it once as single-event messages and once as batched messages (JSON arrays of
up to ``batch`` consecutive events of one account, ``streams.replay.publish.batches``),
and then measures, on that broker and that data:

1. ``raw``      raw aiokafka consume + orjson decode (the ceiling);
2. ``noop``     a no-op Faust agent with the service's Faust settings and
   empty-fetch pacing (``streams.kafka.fetch_pacing``);
3. ``single``   the real ``distillwatch worker`` subprocess (full detection,
   recoverable state), fed single-event messages;
4. ``batched``  the same, fed batched messages;
5. ``replay``   ``streams.replay.replayer.replay_files`` over a JSONL file of the data;
   ``detectors``  the detection core alone on the same data, pre-parsed, in
   memory (issue 3: >= 50k events/s on one core, prompt features included):
   the account stage by itself, and with the cluster stage;
6. ``latency``  event → alert latency p50/p99 at half of (3)'s rate: a paced
   producer records when it sends each event; every *firing* alert names its
   account and the ``ts`` of the event that tripped it, which identifies that
   event; latency = alert readable on the alerts topic − tripping event sent;
7. ``memory``   resident memory per tracked account at 10k and 100k accounts
   (``benchmarks.memory.measure`` in a fresh subprocess each);
8. ``scaleout`` one vs two workers (same group) sharing the partitions: the
   data published first, the workers started together (one group
   generation, checked), median of ``Profile.scaleout_repeats`` interleaved
   runs of each (:func:`phase_scaleout`).

The data is one workload of :mod:`benchmarks.workloads` (``Profile.workload``):
``distillwatch bench`` runs ``realistic`` (the simulator's production mix with
real text and big shared-key organisations, 10k accounts) and ``classic`` (the
data of the earlier figures) in turn, each as its own table, then side by
side. ``detectors`` also reports the cluster stage's deterministic work per
1,000 events, and ``replay`` the per-stage timings (:mod:`streams.service.stages`).

Workers are timed by their own ``/health``: ``events``, and wall-clock stamps
of the first message begun and the latest finished (rate = all events over
that span, :func:`stamped_rate`); ``/health`` is polled until it shows all
events, and CPU time is taken over the polled window. Worker start-up, group
join and topic creation are outside the timed window. Sections 2-4 run ``Profile.repeats``
times on fresh topics and report the median run (the ratio of (3) to (2) is
of the medians).

Every process started here (broker, workers, memory probes) is stopped in a
``finally``; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("raw", "noop", "single", "batched", "replay", "detectors", "latency", "memory",
            "scaleout")

# Issue 7's "done when".
TARGETS = {
    "single_vs_noop": 0.80,
    "batched_events_per_s": 50_000,
    "replay_events_per_s": 50_000,
    "detectors_events_per_s": 50_000,  # issue 3: the account stage alone, one core
    "latency_p99_s": 1.0,
    "memory_bytes_per_account_100k": 4096,
    "scaleout_ratio": 1.6,
}


@dataclass
class Profile:
    """Sizes of one run."""

    hours: float
    accounts: int
    seed: int = 7
    batch: int = 100
    partitions: int = 8
    repeats: int = 3
    latency_max_events: int = 30_000
    memory_accounts: tuple[int, ...] = (10_000, 100_000)
    #: the scale-out phase publishes the batched data this many times (each
    #: copy under its own account ids): a timed window of a few seconds is
    #: mostly noise and start-up skew between two workers
    scaleout_copies: int = 4
    #: codec of the scale-out data (see :func:`phase_scaleout`); None: none
    scaleout_compression: str | None = "zstd"
    #: runs of each worker count in the scale-out phase (the median is
    #: reported): on 2 cores shared by two workers, the broker and this
    #: process, single runs of the same count differed by up to 30%
    scaleout_repeats: int = 5
    #: events/s of the latency section; None: half of the single-event maximum
    latency_rate: float | None = None
    #: the data (benchmarks.workloads.WORKLOADS): ``classic`` is the
    #: simulator's classic population, ``realistic`` its production mix with
    #: big shared-key organisations
    workload: str = "classic"

    @classmethod
    def full(cls, workload: str = "classic") -> Profile:
        from benchmarks.workloads import WORKLOADS

        w = WORKLOADS[workload]
        return cls(hours=w.hours, accounts=w.accounts, workload=workload)

    @classmethod
    def quick(cls, workload: str = "classic") -> Profile:
        from benchmarks.workloads import WORKLOADS

        w = WORKLOADS[workload]
        return cls(hours=w.quick_hours, accounts=w.quick_accounts, repeats=1,
                   latency_max_events=6_000, memory_accounts=(2_000, 10_000),
                   scaleout_copies=1, scaleout_repeats=1, workload=workload)


# --------------------------------------------------------------------- data ---


@dataclass
class Data:
    events: int
    accounts: int
    single: list[tuple[bytes, bytes]]           # (key, value) single-event messages
    batched: list[tuple[bytes, bytes]]          # (key, JSON array) messages
    batched_events: int
    replay_file: Path
    keys: list[tuple[str, str]] = field(repr=False)  # (account_id, RFC 3339 ts) per single msg
    parsed: list[Any] = field(repr=False, default_factory=list)  # detectors.schema.Event


def generate(profile: Profile, workdir: Path) -> Data:
    """Deterministic data: the workload's simulated traffic (seeded), as published."""
    from benchmarks.workloads import workload_dicts
    from detectors.schema import format_ts, parse_event
    from streams.replay.publish import batches, event_payload

    events = [parse_event(e) for e in workload_dicts(profile.workload, profile.seed,
                                                     profile.accounts, profile.hours)]
    single = [(k, v) for k, v, _ in batches(events, 1)]
    batched = [(k, v) for k, v, _ in batches(events, profile.batch)]
    replay_file = workdir / "events.jsonl"
    with open(replay_file, "wb") as fh:
        for e in events:
            fh.write(orjson.dumps(event_payload(e)) + b"\n")
    keys = [(e.account_id, format_ts(e.ts)) for e in events]
    return Data(len(events), len({e.account_id for e in events}), single, batched,
                len(events), replay_file, keys, events)


async def _produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]],
                   compression: str | None = None) -> float:
    """Send as fast as possible; returns messages/s."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10,
                                max_batch_size=512 * 1024, acks="all",
                                compression_type=compression)
    await producer.start()
    try:
        t0 = time.perf_counter()
        pending = []
        for key, value in messages:
            pending.append(await producer.send(topic, value=value, key=key))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        await producer.flush()
        return len(messages) / max(time.perf_counter() - t0, 1e-9)
    finally:
        await producer.stop()


def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]],
            compression: str | None = None) -> float:
    return asyncio.run(_produce(bootstrap, topic, messages, compression))


def drop_topics(bootstrap: str, keep: tuple[str, ...] = ()) -> int:
    """Delete every topic whose name does not start with one of ``keep``
    (the raw section's data topic goes before the no-op section); the number
    deleted.

    The embedded broker (noida-db 0.2.3) persists by rewriting everything it
    stores to one file, up to once a second while anything changes: holding
    200 MB of records, a trickle of one small record every 0.1 s cost it 85%
    of a core (0.08% once the topic was deleted). Without this, each section
    would pay for every earlier section's data (the scale-out section's
    broker used 0.75 of a core), which says nothing about the worker and
    would not happen on Kafka."""
    from kafka import KafkaAdminClient

    from streams.service.topics import delete_topics

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    try:
        doomed = [t for t in admin.list_topics()
                  if not t.startswith(keep) and not t.startswith("__")]
    finally:
        admin.close()
    delete_topics(bootstrap, doomed)
    return len(doomed)


# ---------------------------------------------------------------- processes ---


def _free_port() -> int:
    from streams.broker.embedded import free_port

    return free_port()


class Proc:
    """A worker subprocess (``distillwatch worker`` or the no-op agent)."""

    def __init__(self, module: str, env: dict[str, str], log_path: Path) -> None:
        self.port = int(env["DISTILLWATCH_WEB_PORT"])
        self.log_path = log_path
        with open(log_path, "ab") as log:
            args = [sys.executable, "-m", module]
            if module == "streams.cli":
                args.append("worker")
            self.proc = subprocess.Popen(
                args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )

    def _get(self, path: str) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, {}

    def health(self) -> dict[str, Any] | None:
        try:
            return self._get("/health")[1]
        except OSError:
            return None

    def ready(self) -> bool:
        try:
            return self._get("/ready")[0] == 200
        except OSError:
            return False

    def cpu_seconds(self) -> float:
        """User + system CPU time of the worker process so far."""
        from streams.broker.embedded import cpu_seconds

        cpu = cpu_seconds(self.proc.pid)
        return float("nan") if cpu is None else cpu

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace").splitlines()[-30:]
            raise RuntimeError(f"worker exited with {self.proc.returncode}:\n" + "\n".join(tail))

    def stop(self, timeout: float = 12.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


@dataclass
class Ctx:
    broker: Any
    workdir: Path
    profile: Profile
    procs: list[Proc] = field(default_factory=list)

    def settings_env(self, name: str, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "DISTILLWATCH_BROKER": self.broker.url,
            "DISTILLWATCH_APP_ID": name,
            "DISTILLWATCH_EVENTS_TOPIC": f"{name}-events",
            "DISTILLWATCH_ALERTS_TOPIC": f"{name}-alerts",
            "DISTILLWATCH_DLQ_TOPIC": f"{name}-dlq",
            "DISTILLWATCH_PARTITIONS": str(self.profile.partitions),
            "DISTILLWATCH_DATA_DIR": str(self.workdir / name),
            "DISTILLWATCH_LOG_FORMAT": "json",
            "DISTILLWATCH_WEB_PORT": str(_free_port()),
            **extra,
        }

    def topics(self, name: str) -> Any:
        from streams.service.topics import ensure_topics
        from streams.settings import Settings

        settings = Settings.load(env=self.settings_env(name))
        ensure_topics(settings)
        return settings

    def start(self, module: str, name: str, tag: str = "", **extra: str) -> Proc:
        env = self.settings_env(name, **extra)
        proc = Proc(module, env, self.workdir / f"{name}{tag}.log")
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            proc.stop()
        self.procs.clear()


def _name(kind: str) -> str:
    return f"bench-{kind}-{uuid.uuid4().hex[:6]}"


def wait_ready(procs: list[Proc], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            p.check_alive()
        if all(p.ready() for p in procs):
            # a second worker joining triggers one more rebalance: settle, re-check
            time.sleep(0.5)
            if all(p.ready() for p in procs):
                return
        time.sleep(0.2)
    raise TimeoutError(f"workers not ready within {timeout:.0f}s")


def stamped_rate(healths: list[dict[str, Any]], total: int) -> float | None:
    """``total`` events over the span from the first message any worker began
    to the last one any worker finished, by the workers' own wall-clock stamps
    (``first_message_at``, ``last_message_at`` in ``/health``); None without
    them. Unlike the polled window, it does not depend on when a poll landed:
    a 50 ms poll late by one interval is 6% of a 0.8 s window."""
    firsts = [h.get("first_message_at") or 0.0 for h in healths if h.get("events")]
    lasts = [h.get("last_message_at") or 0.0 for h in healths if h.get("events")]
    if not firsts or not all(firsts) or not all(lasts):
        return None
    span = max(lasts) - min(firsts)
    return total / span if span > 0 else None


def measure_rate(procs: list[Proc], total: int, timeout: float,
                 interval: float = 0.05, broker_pid: int | None = None) -> dict[str, Any]:
    """Poll ``/health`` until the workers together report ``total`` events.

    ``events_per_s`` is :func:`stamped_rate` (the workers' own stamps) when
    they report them, else the polled rate: the events after the first
    non-zero reading over the time from that reading to the one that showed
    all events (always kept as ``polled_events_per_s``).

    Besides wall-clock events/s, reports events per CPU-second of the workers
    (user + system time over the polled window): on a shared, loaded machine
    that figure moves much less than the wall-clock one. With ``broker_pid``,
    also the cores the workers and the broker used in the window: on a small
    machine the broker's share is what the workers cannot have.
    """
    from streams.broker.embedded import cpu_seconds

    def broker_cpu() -> float:
        return (cpu_seconds(broker_pid) or 0.0) if broker_pid else 0.0

    deadline = time.monotonic() + timeout
    first: tuple[float, int] | None = None
    cpu0 = broker0 = 0.0
    last_zero = time.monotonic()
    last_check = 0.0
    count = 0
    while time.monotonic() < deadline:
        now = time.monotonic()
        healths = [p.health() or {} for p in procs]
        counts = [h.get("events", 0) for h in healths]
        count = sum(counts)
        if first is None and count == 0:
            last_zero = now
            cpu0, broker0 = sum(p.cpu_seconds() for p in procs), broker_cpu()
        if first is None and 0 < count < total:
            first = (now, count)
            cpu0, broker0 = sum(p.cpu_seconds() for p in procs), broker_cpu()
        if count >= total:
            if first is None:
                # all of it between two polls (tiny data, fast worker): time it
                # from the last reading that showed nothing (a lower bound)
                first = (last_zero, 0)
            cpu = sum(p.cpu_seconds() for p in procs) - cpu0
            broker = broker_cpu() - broker0
            elapsed = now - first[0]
            done = count - first[1]
            polled = done / elapsed if elapsed > 0 else float("nan")
            stamped = stamped_rate(healths, total)
            rate = stamped if stamped is not None else polled
            out = {"events": total, "seconds": round(total / rate if stamped else elapsed, 3),
                   "events_per_s": round(rate) if rate == rate else None,
                   "polled_events_per_s": round(polled) if polled == polled else None,
                   "timed_by": "worker stamps" if stamped is not None else "polls",
                   "events_per_cpu_s": round(done / cpu) if cpu > 0 else None,
                   "cpu_s": round(cpu, 2), "per_worker": counts}
            if broker_pid and elapsed > 0:
                out["worker_cores"] = round(cpu / elapsed, 2)
                out["broker_cores"] = round(broker / elapsed, 2)
            return out
        if now - last_check > 1.0:
            for p in procs:
                p.check_alive()
            last_check = now
        time.sleep(interval)
    raise TimeoutError(f"workers processed {count}/{total} events within {timeout:.0f}s")


# ------------------------------------------------------------------ phases ---


async def _raw_consume(bootstrap: str, topic: str, total: int) -> tuple[float, float]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=None,
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in parts])
        await consumer.seek_to_beginning()
        loads = orjson.loads
        n = 0
        t0 = None
        while n < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if t0 is None and batch:
                t0, c0 = time.perf_counter(), time.process_time()
            for records in batch.values():
                for record in records:
                    loads(record.value)
                    n += 1
        assert t0 is not None
        return (total / max(time.perf_counter() - t0, 1e-9),
                total / max(time.process_time() - c0, 1e-9))
    finally:
        await consumer.stop()


def phase_raw(ctx: Ctx, topic: str, total: int) -> dict[str, Any]:
    runs = [asyncio.run(asyncio.wait_for(_raw_consume(ctx.broker.bootstrap, topic, total), 120))
            for _ in range(ctx.profile.repeats)]
    return {"events": total, "events_per_s": round(statistics.median(r[0] for r in runs)),
            "events_per_cpu_s": round(statistics.median(r[1] for r in runs)),
            "runs": [round(r[0]) for r in runs]}


def _timeout(total: int, floor_rate: float = 300.0) -> float:
    return 60.0 + total / floor_rate


def phase_worker(ctx: Ctx, module: str, kind: str, messages: list[tuple[bytes, bytes]],
                 total: int) -> dict[str, Any]:
    """Pre-load a fresh topic, wait for a quiet broker (it rewrites what it
    was just sent: :func:`settle`), start one worker, time it through all
    events."""
    name = _name(kind)
    settings = ctx.topics(name)
    produce(ctx.broker.bootstrap, settings.events_topic, messages)
    settle(ctx.broker)
    proc = ctx.start(module, name)
    try:
        out = measure_rate([proc], total, _timeout(total), broker_pid=ctx.broker.pid)
        health = proc.health() or {}
        out.update(messages=len(messages), alerts=health.get("alerts"),
                   rejected=health.get("rejected"), topic=settings.events_topic)
        return out
    finally:
        proc.stop()


def phase_worker_median(ctx: Ctx, module: str, kind: str, messages: list[tuple[bytes, bytes]],
                        total: int, between: Callable[[], None]) -> dict[str, Any]:
    """:func:`phase_worker` ``Profile.repeats`` times, ``between()`` before
    each repeat (old topics deleted, broker quiet); the run with the median
    events/s, plus every run's figures under ``runs``.

    One run times the worker over ~1 s (batched) to ~8 s (single-event): on
    a shared 2-core machine one stall of the broker or a neighbour moves it
    by 10-20%, in either direction."""
    runs = []
    for i in range(max(1, ctx.profile.repeats)):
        if i:
            between()
        runs.append(phase_worker(ctx, module, kind, messages, total))
    return median_run(runs, ("events_per_s", "polled_events_per_s", "events_per_cpu_s",
                             "seconds"))


def median_run(runs: list[dict[str, Any]], keep: tuple[str, ...]) -> dict[str, Any]:
    """The run with the median events/s (the lower one of an even count),
    with ``keep`` of every run, in order, under ``runs``."""
    ranked = sorted(runs, key=lambda r: r.get("events_per_s") or 0)
    out = dict(ranked[(len(ranked) - 1) // 2])
    out["runs"] = [{k: r.get(k) for k in keep} for r in runs]
    return out


def phase_replay(ctx: Ctx, data: Data) -> dict[str, Any]:
    """``replay_files`` over the data's JSONL file: one process, and the
    partitions split across one process per core (same output); the headline
    figure is the faster setting. Parent and children's CPU both count."""
    import resource

    from streams.replay.replayer import replay_files

    jobs_many = min(os.cpu_count() or 1, ctx.profile.partitions)
    out: dict[str, Any] = {"events": data.events}
    for jobs in sorted({1, jobs_many}):
        runs, cpu = [], []
        alerts = 0
        for _ in range(ctx.profile.repeats):
            c0 = time.process_time()
            ch0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            result = replay_files([data.replay_file], partitions=ctx.profile.partitions,
                                  show_progress=False, jobs=jobs)
            ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            used = (time.process_time() - c0 + (ch1.ru_utime + ch1.ru_stime)
                    - (ch0.ru_utime + ch0.ru_stime))
            cpu.append(result.stats.events / max(used, 1e-9))
            runs.append(result.events_per_s)
            alerts = len(result.alerts)
            stages = (result.stages.report(result.stats.events,
                                           result.elapsed_s if jobs == 1 else None)
                      if result.stages is not None else None)
        out[f"jobs_{jobs}"] = {"jobs": jobs, "events_per_s": round(statistics.median(runs)),
                               "events_per_cpu_s": round(statistics.median(cpu)),
                               "runs": [round(r) for r in runs], "alerts": alerts,
                               "stages": stages}
    best = max((v for k, v in out.items() if k.startswith("jobs_")),
               key=lambda v: v["events_per_s"])
    out.update(events_per_s=best["events_per_s"], events_per_cpu_s=best["events_per_cpu_s"],
               jobs=best["jobs"], alerts=best["alerts"])
    return out


def phase_detectors(ctx: Ctx, data: Data) -> dict[str, Any]:
    """The detection core alone: the data's parsed events through
    :class:`detectors.replay.Replayer` in this process (no file, no decode),
    the account stage by itself (``clusters=False``) and with the cluster
    stage; medians of ``repeats`` runs, wall and process CPU."""
    from detectors.engine import Detector
    from detectors.replay import Replayer

    events = data.parsed
    out: dict[str, Any] = {"events": len(events)}
    for label, clusters in (("account_stage", False), ("both_stages", True)):
        wall, cpu, alerts = [], [], 0
        for _ in range(max(ctx.profile.repeats, 3)):
            replayer = Replayer(Detector, partitions=ctx.profile.partitions, clusters=clusters)
            w0, c0 = time.perf_counter(), time.process_time()
            alerts = sum(1 for _ in replayer.run(events))
            wall.append(len(events) / (time.perf_counter() - w0))
            cpu.append(len(events) / max(time.process_time() - c0, 1e-9))
        out[label] = {"events_per_s": round(statistics.median(wall)),
                      "events_per_cpu_s": round(statistics.median(cpu)),
                      "us_per_event": round(1e6 / statistics.median(cpu), 2),
                      "alerts": alerts}
        if not clusters:
            # the checkpointed state of the workload's accounts (what a
            # worker writes to its changelog), bytes per account
            sizes = [len(st.encode()) for r in replayer.runners for st in r.states.values()]
            if sizes:
                out["state_bytes_per_account"] = round(statistics.mean(sizes))
                out["state_bytes_max"] = max(sizes)
        work = getattr(replayer.clusters, "work", None)
        if work is not None and events:
            # deterministic: the cluster stage's work per 1,000 events
            out[label]["cluster_work_per_1k_events"] = {
                k: round(1000 * v / len(events), 1) for k, v in work().items()}
    out["events_per_s"] = out["account_stage"]["events_per_s"]
    out["events_per_cpu_s"] = out["account_stage"]["events_per_cpu_s"]
    return out


async def _latency(bootstrap: str, settings: Any, data: Data, rate: float,
                   n: int) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=None)
    # linger 5 ms (Kafka 4's default for producers): the event's clock starts
    # before the send, so the linger counts in the latency; with linger 0 every
    # event was its own produce request (~2,300/s), and the probe and the
    # broker took CPU the worker then lacked on the 2-core box
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    received: list[tuple[float, bytes]] = []
    stop = asyncio.Event()

    async def read_alerts() -> None:
        parts = consumer.partitions_for_topic(settings.alerts_topic) or set()
        consumer.assign([TopicPartition(settings.alerts_topic, p) for p in parts])
        await consumer.seek_to_beginning()
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=50)
            now = time.monotonic()
            for records in batch.values():
                received.extend((now, r.value) for r in records)

    reader = asyncio.create_task(read_alerts())
    sent_at: dict[tuple[str, str], float] = {}
    try:
        await asyncio.sleep(0.5)  # reader assigned and positioned
        t0 = time.monotonic()
        i = 0
        pending = []
        while i < n:
            due = min(n, int((time.monotonic() - t0) * rate) + 1)
            while i < due:
                key, value = data.single[i]
                sent_at[data.keys[i]] = time.monotonic()
                pending.append(await producer.send(settings.events_topic, value=value, key=key))
                i += 1
            if len(pending) > 2000:
                await asyncio.gather(*pending)
                pending.clear()
            await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        await asyncio.gather(*pending)
        send_s = time.monotonic() - t0
        # let the last alerts arrive: quiet for 3 s (bounded at 15 s)
        end = time.monotonic() + 15
        seen = -1
        while time.monotonic() < end:
            if len(received) == seen:
                break
            seen = len(received)
            await asyncio.sleep(3.0)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader, 5)
        await producer.stop()
        await consumer.stop()
    latencies = []
    # (seconds into the run the tripping event was sent, latency): where in
    # time the tail sits (checkpoints every 5 s, a backlog, ...)
    samples: list[tuple[float, float]] = []
    firing = unmatched = 0
    for at, value in received:
        alert = orjson.loads(value)
        if alert.get("status") != "firing":
            continue
        firing += 1
        sent = sent_at.get((alert.get("account_id") or "", alert.get("ts") or ""))
        if sent is None:
            unmatched += 1  # multi-account alerts, or tripped by a sweep
            continue
        latencies.append(at - sent)
        samples.append((round(sent - t0, 3), round(at - sent, 4)))
    samples.sort()
    latencies.sort()
    return {
        "rate_events_per_s": round(rate), "events": n, "achieved_rate": round(n / send_s),
        "alerts_firing": firing, "measured": len(latencies), "unmatched": unmatched,
        "p50_ms": round(_pct(latencies, 50) * 1000, 1) if latencies else None,
        "p99_ms": round(_pct(latencies, 99) * 1000, 1) if latencies else None,
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        "samples": samples,
    }


def _pct(values: list[float], p: float) -> float:
    k = min(len(values) - 1, max(0, int(round(p / 100 * len(values) + 0.5)) - 1))
    return values[k]


def phase_latency(ctx: Ctx, data: Data, rate: float) -> dict[str, Any]:
    import gc

    name = _name("latency")
    settings = ctx.topics(name)
    proc = ctx.start("streams.cli", name)
    # The probe (paced producer, alert reader) runs in this process, whose heap
    # holds the earlier phases' data: its full garbage collections would pause
    # the probe itself and show up as latency that is not the worker's. Freeze
    # what exists (after raw, noop, single and batched at 2,150 events/s: p99
    # 0.93 s without, 0.41 s with; 0.48 s with the latency phase alone).
    gc.collect()
    gc.freeze()
    try:
        wait_ready([proc])
        n = min(data.events, ctx.profile.latency_max_events)
        return asyncio.run(asyncio.wait_for(
            _latency(ctx.broker.bootstrap, settings, data, rate, n), n / rate + 60))
    finally:
        gc.unfreeze()
        proc.stop()


def phase_memory(ctx: Ctx) -> dict[str, Any]:
    out: dict[str, Any] = {}
    code = ("import json, sys; from benchmarks.memory import measure; "
            "print(json.dumps(measure(int(sys.argv[1]))))")
    for n in ctx.profile.memory_accounts:
        proc = subprocess.run([sys.executable, "-c", code, str(n)], cwd=ROOT,
                              capture_output=True, timeout=600, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"memory probe failed: {proc.stderr.decode()[-2000:]}")
        out[str(n)] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return out


def replicate(messages: list[tuple[bytes, bytes]], copies: int) -> list[tuple[bytes, bytes]]:
    """The batched messages ``copies`` times, copy ``c > 0`` under account ids
    suffixed ``~c`` (new accounts, spread over the partitions like the rest)."""
    out = list(messages)
    for c in range(1, copies):
        for _, value in messages:
            events = orjson.loads(value)
            for event in events:
                event["account_id"] = f"{event['account_id']}~{c}"
            out.append((events[0]["account_id"].encode(), orjson.dumps(events)))
    return out


def _scaleout_run(ctx: Ctx, messages: list[tuple[bytes, bytes]], total: int,
                  n_workers: int) -> dict[str, Any]:
    """One timed run: publish the data to a fresh topic with no other data on
    the broker, wait for a quiet broker, then start ``n_workers`` workers at
    once and time them from the first event any of them processed to the last.

    Started together, the workers join one group generation, so nothing is
    revoked inside the window; ``assignments`` (each worker's count from
    ``/health``) shows it."""
    drop_topics(ctx.broker.bootstrap)
    settle(ctx.broker)
    name = _name(f"scale{n_workers}")
    settings = ctx.topics(name)
    produce(ctx.broker.bootstrap, settings.events_topic, messages,
            ctx.profile.scaleout_compression)
    settle(ctx.broker)
    procs = [ctx.start("streams.cli", name, tag=f"-{i}") for i in range(n_workers)]
    try:
        # start-up (~3 s) is outside the window but inside this bound
        out = measure_rate(procs, total, _timeout(total, floor_rate=2000.0),
                           broker_pid=ctx.broker.pid)
        out["assignments"] = [(p.health() or {}).get("assignments") for p in procs]
        out["logs"] = [str(p.log_path) for p in procs]
        return out
    finally:
        for p in procs:
            p.stop()


def _clean(run: dict[str, Any]) -> bool:
    """Every worker joined once (no rebalance in the window) and took part."""
    return (all(a == 1 for a in run.get("assignments") or [None])
            and all(n > 0 for n in run.get("per_worker") or [0]))


def phase_scaleout(ctx: Ctx, data: Data) -> dict[str, Any]:
    """1 and 2 workers in one group over the same data: the batched messages
    ``Profile.scaleout_copies`` times over, published before the workers start
    (``Profile.scaleout_compression``), ``Profile.scaleout_repeats`` runs of each,
    interleaved (1, 2, 1, 2, ...); the median run of each and the ratio of the
    medians.

    Why the data goes first and the broker holds nothing else: the embedded
    broker rewrites all it holds up to once a second while anything changes
    (:func:`drop_topics`), so data still arriving, or an earlier run's topic,
    costs it cores the workers then cannot have. Why compressed: the same
    rewrite costs in proportion to the bytes held (4 copies are 120 MB raw,
    25 MB lz4, 21 MB zstd, which also decodes fastest here: 0.5 µs per event
    against 0.8), and producers commonly compress; the worker reads every
    codec. A run in which a worker was assigned partitions twice (a
    rebalance inside the window) or got none is recorded under
    ``join_failures`` and run again, up to 3 attempts; if none is clean, the
    last is kept with ``clean: false``."""
    copies = max(1, ctx.profile.scaleout_copies)
    messages = replicate(data.batched, copies)
    total = data.batched_events * copies
    out: dict[str, Any] = {"join_failures": [], "events": total, "copies": copies,
                           "compression": ctx.profile.scaleout_compression}
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    for _ in range(max(1, ctx.profile.scaleout_repeats)):
        for n_workers in (1, 2):
            last: dict[str, Any] | None = None
            for _attempt in range(3):
                try:
                    run = _scaleout_run(ctx, messages, total, n_workers)
                except TimeoutError as exc:
                    # seen on the embedded broker: a worker's group coordinator
                    # dies on a malformed-looking response during a two-member
                    # join ("unpack requires a buffer of 2 bytes")
                    out["join_failures"].append({"workers": n_workers, "error": str(exc)})
                    continue
                run["clean"] = _clean(run)
                if run["clean"]:
                    runs[n_workers].append(run)
                    break
                last = run
                out["join_failures"].append({k: run.get(k) for k in
                                             ("assignments", "per_worker", "logs")}
                                            | {"workers": n_workers})
            else:
                if last is not None:  # measured, with a rebalance inside: kept, flagged
                    runs[n_workers].append(last)
    for n_workers, done in runs.items():
        if done:
            out[str(n_workers)] = median_run(done, (
                "events_per_s", "polled_events_per_s", "events_per_cpu_s", "seconds",
                "worker_cores", "broker_cores", "per_worker", "clean"))
    one = (out.get("1") or {}).get("events_per_s")
    two = (out.get("2") or {}).get("events_per_s")
    out["ratio"] = round(two / one, 2) if one and two else None
    return out


# -------------------------------------------------------------------- run ---


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"nproc": os.cpu_count(), "python": platform.python_version(),
                            "platform": platform.platform()}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
        for line in lscpu.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "CPU max MHz"):
                info[k.strip()] = v.strip()
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["mem_total_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    with contextlib.suppress(ImportError):
        import faust

        info["faust"] = faust.__version__
    import detectors

    # "on": the mypyc-compiled detection core (tools/native.py); else pure Python
    info["detectors_native"] = detectors.NATIVE
    return info


def settle(broker: Any, idle_share: float = 0.15, max_wait_s: float = 20.0) -> float:
    """Wait until the broker is quiet (below ``idle_share`` of a core over
    0.5 s), at most ``max_wait_s``; the seconds waited.

    The embedded broker keeps working after a section ends (seen: a full core
    for 10+ s after the batched and scale-out sections, rewriting its data
    file: see :func:`drop_topics`), and a section that starts then shares the 2 cores with it:
    the latency section's p99 went from 0.57-0.77 s alone to 1.08 s right
    after the others."""
    from streams.broker.embedded import cpu_seconds

    pid = getattr(broker, "pid", None)
    start = time.monotonic()
    if not pid:
        return 0.0
    while time.monotonic() - start < max_wait_s:
        c0 = cpu_seconds(pid)
        time.sleep(0.5)
        c1 = cpu_seconds(pid)
        if c0 is None or c1 is None or (c1 - c0) / 0.5 < idle_share:
            break
    return round(time.monotonic() - start, 1)


def run(profile: Profile, *, sections: tuple[str, ...] = SECTIONS,
        say: Callable[[str], None] = print, workdir: Path | None = None) -> dict[str, Any]:
    from streams.broker.embedded import embedded_broker_from_env

    own_dir = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="dw-bench-")) if workdir is None else workdir
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"profile": profile.__dict__, "machine": machine(),
                               "loadavg_start": os.getloadavg()}
    t_start = time.monotonic()
    say(f"bench: generating data ({profile.workload} workload, simulator seed {profile.seed}, "
        f"{profile.hours:g} h, {profile.accounts} benign accounts + attacks) ...")
    data = generate(profile, workdir)
    results["data"] = {"workload": profile.workload, "events": data.events,
                       "accounts": data.accounts,
                       "single_messages": len(data.single),
                       "batched_messages": len(data.batched),
                       "mean_batch": round(data.events / len(data.batched), 1)}
    say(f"  {data.events:,} events of {data.accounts:,} accounts; "
        f"{len(data.batched):,} batched messages (≤{profile.batch} events)")
    broker = embedded_broker_from_env(data_dir=workdir / "broker")
    ctx = Ctx(broker, workdir, profile)
    try:
        say(f"bench: starting the embedded broker ({broker.kind}) ...")
        broker.start()
        single_name = _name("data")
        single_settings = ctx.topics(single_name)
        rate = produce(broker.bootstrap, single_settings.events_topic, data.single)
        results["data"]["producer_msgs_per_s"] = round(rate)
        # before each section: delete the earlier sections' topics (not before
        # raw, which reads the data topic), then wait for a quiet broker;
        # both recorded per section
        settled: dict[str, float] = results.setdefault("settle_s", {})
        dropped: dict[str, int] = results.setdefault("dropped_topics", {})

        def prepare(section: str) -> None:
            if section != "raw":
                dropped[section] = drop_topics(broker.bootstrap)
            settled[section] = settle(broker)

        def between() -> None:  # between repeats of a worker section
            drop_topics(broker.bootstrap)
            settle(broker)
        if "raw" in sections:
            prepare("raw")
            say("bench: (1) raw aiokafka consume + orjson ...")
            results["raw"] = phase_raw(ctx, single_settings.events_topic, data.events)
        if "noop" in sections:
            prepare("noop")
            say("bench: (2) no-op Faust agent ...")
            results["noop"] = phase_worker_median(ctx, "benchmarks.noop_agent", "noop",
                                                  data.single, data.events, between)
        if "single" in sections:
            prepare("single")
            say("bench: (3) distillwatch worker, single-event messages ...")
            results["single"] = phase_worker_median(ctx, "streams.cli", "single", data.single,
                                                    data.events, between)
        if "batched" in sections:
            prepare("batched")
            say("bench: (4) distillwatch worker, batched messages ...")
            results["batched"] = phase_worker_median(ctx, "streams.cli", "batched",
                                                     data.batched, data.events, between)
        if "replay" in sections:
            prepare("replay")
            say("bench: (5) replay ...")
            results["replay"] = phase_replay(ctx, data)
        if "detectors" in sections:
            prepare("detectors")
            say("bench: (5b) detectors alone (in memory) ...")
            results["detectors"] = phase_detectors(ctx, data)
        if "latency" in sections:
            prepare("latency")
            rate = profile.latency_rate or (
                results.get("single", {}).get("events_per_s") or 2000) / 2
            say(f"bench: (6) event → alert latency at {rate:,.0f} events/s ...")
            results["latency"] = phase_latency(ctx, data, rate)
        if "memory" in sections:
            prepare("memory")
            say("bench: (7) memory per account ...")
            results["memory"] = phase_memory(ctx)
        if "scaleout" in sections:
            prepare("scaleout")
            say("bench: (8) one vs two workers (batched messages) ...")
            results["scaleout"] = phase_scaleout(ctx, data)
    finally:
        ctx.stop_all()
        broker.stop()
        if own_dir:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    results["elapsed_s"] = round(time.monotonic() - t_start, 1)
    results["loadavg_end"] = os.getloadavg()
    results["targets"] = assess(results)
    return results


def assess(r: dict[str, Any]) -> dict[str, Any]:
    """Issue 7's targets against this run's figures (None: not measured)."""
    def get(*path: str) -> Any:
        cur: Any = r
        for p in path:
            if not isinstance(cur, dict) or p not in cur:
                return None
            cur = cur[p]
        return cur

    single, noop = get("single", "events_per_s"), get("noop", "events_per_s")
    ratio = round(single / noop, 3) if single and noop else None
    mem_keys = sorted(int(k) for k in (get("memory") or {}))
    mem = get("memory", str(mem_keys[-1]), "rss_bytes_per_account") if mem_keys else None
    values = {
        "single_vs_noop": ratio,
        "batched_events_per_s": get("batched", "events_per_s"),
        "replay_events_per_s": get("replay", "events_per_s"),
        "detectors_events_per_s": get("detectors", "account_stage", "events_per_s"),
        "latency_p99_s": (get("latency", "p99_ms") / 1000) if get("latency", "p99_ms") else None,
        "memory_bytes_per_account_100k": mem,
        "scaleout_ratio": get("scaleout", "ratio"),
    }
    out = {}
    for key, target in TARGETS.items():
        v = values[key]
        lower_is_better = key in ("latency_p99_s", "memory_bytes_per_account_100k")
        met = None if v is None else (v <= target if lower_is_better else v >= target)
        out[key] = {"value": v, "target": target, "met": met}
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and v < 100:
        return f"{v:.1f}"
    return f"{v:,.0f}"


def table(r: dict[str, Any]) -> str:
    """The results as a Markdown table: wall-clock events/s, events per CPU-second
    of the measured process(es), and ratios to (1) and (2) on both bases."""
    raw = r.get("raw") or {}
    noop = r.get("noop") or {}

    def ratio(a: Any, b: Any, digits: int = 2) -> str:
        return f"{a / b:.{digits}f}" if a and b else "–"

    rows = [("#", "measurement", "events/s", "events/CPU-s", "÷ (1) raw", "÷ (2) no-op",
             "÷ (2) per CPU-s", "target")]

    def add(n: str, what: str, m: dict[str, Any], target: str = "") -> None:
        eps, cps = m.get("events_per_s"), m.get("events_per_cpu_s")
        if len(m.get("runs") or ()) > 1:
            what += f", median of {len(m['runs'])}"
        rows.append((n, what, _fmt(eps), _fmt(cps), ratio(eps, raw.get("events_per_s"), 3),
                     ratio(eps, noop.get("events_per_s")),
                     ratio(cps, noop.get("events_per_cpu_s")), target))

    add("1", "raw aiokafka consume + orjson", raw)
    add("2", "no-op Faust agent, single-event msgs", noop)
    add("3", "worker, full detection, single-event msgs", r.get("single") or {}, "≥ 0.80 × (2)")
    mean = (r.get("data") or {}).get("mean_batch")
    add("4", f"worker, batched msgs ({mean} ev/msg)", r.get("batched") or {}, "≥ 50,000/s")
    rep = r.get("replay") or {}
    for key in sorted(k for k in rep if k.startswith("jobs_")):
        jobs = rep[key]["jobs"]
        add("5", f"replay (JSONL file → detectors), {jobs} process{'es' if jobs > 1 else ''}",
            rep[key], "≥ 50,000/s" if jobs == rep.get("jobs") else "")
    det = r.get("detectors") or {}
    if det:
        add("5b", "detectors alone: account stage, in memory", det.get("account_stage") or {},
            "≥ 50,000/s (issue 3)")
        add("5b", "detectors alone: both stages, in memory", det.get("both_stages") or {})
        if det.get("state_bytes_per_account"):
            rows.append(("5b", "encoded account state (this workload), mean / max",
                         f"{det['state_bytes_per_account']:,} B",
                         _fmt(det.get("state_bytes_max")) + " B",
                         "", "", "", ""))
    lat = r.get("latency") or {}
    if lat:
        rows.append(("6", f"event → alert latency @ {lat.get('rate_events_per_s', 0):,} ev/s, "
                     f"{lat.get('measured')} alerts",
                     f"p50 {_fmt(lat.get('p50_ms'))} ms", f"p99 {_fmt(lat.get('p99_ms'))} ms",
                     "", "", "", "p99 ≤ 1,000 ms"))
    for n, m in (r.get("memory") or {}).items():
        rows.append(("7", f"RSS per account, {int(n):,} accounts",
                     f"{m.get('rss_bytes_per_account', 0):,.0f} B", "", "", "", "",
                     "≤ 4,096 B @ 100k"))
    so = r.get("scaleout") or {}
    if so:
        for w in ("1", "2"):
            m = so.get(w) or {}
            notes = []
            if "broker_cores" in m:
                notes.append(f"{m['worker_cores']} cores, broker {m['broker_cores']}")
            split = m.get("per_worker") or []
            if len(split) > 1 and sum(split):
                # the partitions' data is not even: the busiest worker sets the end
                notes.append(f"busiest worker {max(split) / sum(split):.0%}")
            cores = f" ({'; '.join(notes)})" if notes else ""
            data = f"batched ×{so.get('copies', 1)}"
            if so.get("compression"):
                data += f" {so['compression']}"
            if m.get("clean") is False:
                data += ", a rebalance in the window"
            add("8", f"{w} worker{'s' if w == '2' else ''} in one group, {data}{cores}", m)
        rows.append(("8", "two workers ÷ one (wall)", f"{so.get('ratio')}×", "", "", "", "",
                     "≥ 1.6×"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for j, row in enumerate(rows):
        cells = (str(c).ljust(w) for c, w in zip(row, widths, strict=True))
        lines.append("| " + " | ".join(cells) + " |")
        if j == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    verdict = []
    for key, t in (r.get("targets") or {}).items():
        mark = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        verdict.append(f"  {key}: {t['value']} (target {t['target']}) — {mark}")
    return "\n".join(lines) + "\n\ntargets:\n" + "\n".join(verdict)


def compare(by_workload: dict[str, dict[str, Any]]) -> str:
    """The headline figures of several workloads' runs, one row per workload
    (a Markdown table; "–" where a section did not run)."""
    head = ("workload", "events", "accounts", "replay 1 proc", "replay best",
            "batched worker", "single ÷ no-op", "p99 alert", "both stages µs/ev",
            "cluster evals /1k ev", "state B/account")
    rows = [head]
    for name, r in by_workload.items():
        data = r.get("data") or {}
        rep = r.get("replay") or {}
        det = (r.get("detectors") or {}).get("both_stages") or {}
        lat = r.get("latency") or {}
        ratio = ((r.get("targets") or {}).get("single_vs_noop") or {}).get("value")
        work = det.get("cluster_work_per_1k_events") or {}
        rows.append((
            name, _fmt(data.get("events")), _fmt(data.get("accounts")),
            _fmt((rep.get("jobs_1") or {}).get("events_per_s")),
            _fmt(rep.get("events_per_s")) + (f" ({rep['jobs']} proc)" if rep.get("jobs") else ""),
            _fmt((r.get("batched") or {}).get("events_per_s")),
            "–" if ratio is None else f"{ratio:.2f}",
            "–" if lat.get("p99_ms") is None else f"{_fmt(lat['p99_ms'])} ms",
            _fmt(det.get("us_per_event")),
            _fmt(work.get("scored")),
            _fmt((r.get("detectors") or {}).get("state_bytes_per_account")),
        ))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    lines = []
    for j, row in enumerate(rows):
        lines.append("| " + " | ".join(str(c).ljust(w)
                                        for c, w in zip(row, widths, strict=True)) + " |")
        if j == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def iter_sections(r: dict[str, Any]) -> Iterator[str]:
    return (s for s in SECTIONS if s in r)
