"""``distillwatch soak``: run one worker for a while at a fixed fraction of its
measured maximum throughput and watch its resident memory and consumer lag.

1. calibrate: publish a burst as fast as possible, measure the worker's
   processing rate (its ``/health`` ``events`` counter); then publish at that
   rate for ``sustain_s`` and take the rate the worker keeps up while the
   producer and the broker share the machine with it (the maximum the load
   refers to), and let the backlog drain;
2. soak: publish at ``load`` x that rate for ``minutes``, sampling the worker's
   VmRSS (``/proc/PID/status``) and the group's lag (end offsets minus
   committed offsets) every ``sample_s``;
3. verdict: memory is flat (growth after the warm-up third below
   ``max_growth``), lag stays bounded and drains after the load stops.

Traffic: accounts rotate (each active for a short stretch, then idle), and
event time runs ~4 s per event, so several days of event time pass and idle
accounts expire: the state stays bounded only if expiry works.

    distillwatch soak --minutes 10            # the full run (embedded broker)
    distillwatch soak --minutes 1 --load 0.5  # about what `make test` runs
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

T0 = 1771840800.0
EVENT_DT_S = 4.0        # event-time step per event: ~21,600 events per event-time day
ACTIVE_EVENTS = 400     # an account's stretch of activity, in events of the whole stream
CONCURRENT = 20         # accounts active at a time
TOPICS = ("coding/python", "writing/email", "math/algebra", "support/customer", "data/analysis")


def soak_event(i: int) -> tuple[bytes, bytes]:
    generation, slot = divmod(i, ACTIVE_EVENTS)
    account = f"soak-{generation}-{i % CONCURRENT}"
    prompt = (f"Please help with item {i % 97} of {TOPICS[i % 5]}: "
              f"{'step by step ' * (i % 3)}details {slot}")
    return account.encode(), orjson.dumps({
        "ts": T0 + i * EVENT_DT_S, "account_id": account, "topic": TOPICS[(i // 7) % 5],
        "prompt": prompt, "input_tokens": 50 + i % 400, "output_tokens": 100 + i % 900,
    })


@dataclass
class Sample:
    t: float
    rss_mb: float
    lag: int
    events: int
    #: accounts held by the worker, and linkage keys of the cluster stage
    #: (``/metrics``): what bounded state and idle-account expiry keep flat
    accounts: int = -1
    cluster_keys: int = -1
    #: events published but not yet processed (the worker's ``/health`` count):
    #: the processing backlog, without the up-to-one-checkpoint of processed
    #: but not yet committed events that ``lag`` also holds
    behind: int = 0


@dataclass
class SoakResult:
    max_rate: float
    target_rate: float
    produced: int
    processed: int
    samples: list[Sample] = field(default_factory=list)
    drained_s: float | None = None
    rss_warm_mb: float = 0.0
    rss_end_mb: float = 0.0
    rss_max_mb: float = 0.0
    max_lag: int = 0
    max_behind: int = 0
    #: the worker's rate on a pre-published burst (``max_rate`` is the rate it
    #: sustains while the soak's producer publishes at that burst rate)
    burst_rate: float = 0.0
    #: the worker's commit cadence: committed lag legitimately holds up to one
    #: interval of traffic (plus the commit's own flush)
    checkpoint_s: float = 5.0

    @property
    def growth(self) -> float:
        return (self.rss_end_mb - self.rss_warm_mb) / max(self.rss_warm_mb, 1.0)

    def summary(self) -> str:
        drained = None if self.drained_s is None else round(self.drained_s, 1)
        return (f"max {self.max_rate:,.0f} ev/s sustained ({self.burst_rate:,.0f} in a burst), "
                f"soak at {self.target_rate:,.0f} ev/s; "
                f"{self.processed:,}/{self.produced:,} processed; RSS after warm-up "
                f"{self.rss_warm_mb:.1f} MB, at the end {self.rss_end_mb:.1f} MB "
                f"({self.growth:+.1%}), max {self.rss_max_mb:.1f} MB; max lag {self.max_lag:,} "
                f"(max backlog {self.max_behind:,}); drained {drained} s after the load stopped")

    def problems(self, *, max_growth: float, behind_s: float = 10.0) -> list[str]:
        """What fails the soak; empty when it passes. One verdict for the CLI
        and the test: nothing lost, memory flat, backlog and lag bounded,
        drained once the load stops."""
        out = []
        if self.processed < self.produced:
            out.append(f"processed {self.processed:,} of {self.produced:,} events")
        if self.drained_s is None:
            out.append("the lag did not drain within 60 s after the load stopped")
        if self.growth > max_growth:
            out.append(f"RSS grew {self.growth:.1%} after warm-up (bound {max_growth:.0%})")
        behind_bound = max(behind_s * self.target_rate, 5000)
        if self.max_behind > behind_bound:
            out.append(f"backlog reached {self.max_behind:,} events, more than {behind_s:g} s "
                       f"of traffic ({behind_bound:,.0f})")
        lag_bound = behind_bound + (self.checkpoint_s + 5) * self.target_rate
        if self.max_lag > lag_bound:
            out.append(f"committed lag reached {self.max_lag:,}, more than the backlog bound "
                       f"plus one checkpoint interval and a 5 s commit ({lag_bound:,.0f})")
        return out


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _tracked(port: int) -> tuple[int, int]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except Exception:  # noqa: BLE001
        return -1, -1
    accounts = keys = 0
    for line in text.splitlines():
        if line.startswith("distillwatch_accounts_tracked"):
            accounts += int(float(line.rsplit(" ", 1)[1]))
        elif line.startswith("distillwatch_cluster_keys_tracked"):
            keys += int(float(line.rsplit(" ", 1)[1]))
    return accounts, keys


def _health(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return json.loads(resp.read())
    except Exception:  # noqa: BLE001 - not up yet / busy
        return None


class _Lag:
    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        from kafka import KafkaConsumer, TopicPartition

        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                      enable_auto_commit=False, request_timeout_ms=5000)
        parts = self.consumer.partitions_for_topic(topic) or set()
        self.tps = [TopicPartition(topic, p) for p in sorted(parts)]

    def __call__(self) -> int:
        ends = self.consumer.end_offsets(self.tps)
        return sum(ends[tp] - (self.consumer.committed(tp) or 0) for tp in self.tps)

    def close(self) -> None:
        self.consumer.close(autocommit=False)


def _publish(producer: Any, topic: str, start: int, count: int) -> None:
    for i in range(start, start + count):
        key, value = soak_event(i)
        producer.send(topic, key=key, value=value)


def _pace(producer: Any, topic: str, start: int, rate: float, seconds: float) -> int:
    """Publish events ``start``, ``start + 1``, ... at ``rate`` for ``seconds``;
    return the index after the last one published."""
    began = time.monotonic()
    sent = start
    while (elapsed := time.monotonic() - began) < seconds:
        due = start + int(elapsed * rate)
        if due > sent:
            _publish(producer, topic, sent, due - sent)
            sent = due
        time.sleep(0.05)
    return sent


def run_soak(broker_url: str, *, minutes: float, load: float = 0.8, workdir: Path,
             calibrate_events: int = 20_000, sustain_s: float = 16.0, sample_s: float = 2.0,
             partitions: int = 4, say: Any = print) -> SoakResult:
    from kafka import KafkaProducer

    from streams.broker.embedded import free_port
    from streams.service.topics import ensure_topics
    from streams.settings import Settings

    name = f"soak-{os.getpid()}-{int(time.time())}"
    port = free_port()
    env = {**os.environ, "DISTILLWATCH_BROKER": broker_url, "DISTILLWATCH_APP_ID": name,
           "DISTILLWATCH_EVENTS_TOPIC": f"{name}-events",
           "DISTILLWATCH_ALERTS_TOPIC": f"{name}-alerts", "DISTILLWATCH_DLQ_TOPIC": f"{name}-dlq",
           "DISTILLWATCH_PARTITIONS": str(partitions), "DISTILLWATCH_DATA_DIR": str(workdir / name),
           "DISTILLWATCH_WEB_PORT": str(port), "DISTILLWATCH_LOG_FORMAT": "json",
           "DISTILLWATCH_LOG_LEVEL": "WARNING"}
    settings = Settings.load(env=env)
    ensure_topics(settings)
    topic = settings.events_topic
    bootstrap = settings.bootstrap_servers
    log = open(workdir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    log.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024)
    lag = None
    try:
        deadline = time.monotonic() + 60
        while (h := _health(port)) is None or not _ready(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not become ready; see {workdir / name}.log")
            time.sleep(0.3)
        lag = _Lag(",".join(bootstrap), name, topic)

        # 1. calibrate: a burst, published before the worker reads it, gives
        # the worker's maximum with the machine to itself ...
        _publish(producer, topic, 0, calibrate_events)
        producer.flush(60)
        first = _health(port) or {"events": 0}
        t_first = time.monotonic()
        while (h := _health(port)) is None or h["events"] < calibrate_events:
            if time.monotonic() - t_first > 120 or proc.poll() is not None:
                raise RuntimeError("calibration did not finish")
            time.sleep(0.2)
        burst_rate = (h["events"] - first["events"]) / max(time.monotonic() - t_first, 1e-3)
        # ... but during the soak the producer (this process) and the broker
        # share the machine with it. So: publish at the burst rate for
        # ``sustain_s`` and take the rate the worker keeps up over the second
        # half: the maximum it sustains under load, which the load refers to.
        # (A burst-calibrated 80% soak fell behind from the first minute on
        # the 2-core box: 1,600 of 2,677 events/s.)
        sent_cal = _pace(producer, topic, calibrate_events, burst_rate, sustain_s / 2)
        mid = _health(port) or {"events": 0}
        t_mid = time.monotonic()
        sent_cal = _pace(producer, topic, sent_cal, burst_rate, sustain_s / 2)
        end = _health(port) or {"events": 0}
        max_rate = min(burst_rate,
                       (end["events"] - mid["events"]) / max(time.monotonic() - t_mid, 1e-3))
        producer.flush(60)
        t_drain = time.monotonic()
        while (h := _health(port)) is None or h["events"] < sent_cal:
            if time.monotonic() - t_drain > 120 or proc.poll() is not None:
                raise RuntimeError("calibration backlog did not drain")
            time.sleep(0.2)
        target = load * max_rate
        say(f"soak: single-worker maximum {burst_rate:,.0f} events/s in a burst, "
            f"{max_rate:,.0f} events/s sustained while publishing; "
            f"soaking at {load:.0%} = {target:,.0f} events/s for {minutes:g} min")
        result = SoakResult(max_rate, target, sent_cal, 0,
                            checkpoint_s=settings.checkpoint_interval_s,
                            burst_rate=burst_rate)

        # 2. soak
        stop = threading.Event()
        sent = [sent_cal]

        def pace() -> None:
            started = time.monotonic()
            while not stop.is_set():
                due = sent_cal + int((time.monotonic() - started) * target)
                if due > sent[0]:
                    _publish(producer, topic, sent[0], due - sent[0])
                    sent[0] = due
                time.sleep(0.05)

        pacer = threading.Thread(target=pace, name="soak-producer", daemon=True)
        started = time.monotonic()
        pacer.start()
        try:
            while time.monotonic() - started < minutes * 60:
                time.sleep(sample_s)
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited with {proc.returncode} during the soak")
                h = _health(port) or {"events": -1}
                produced = sent[0]
                result.samples.append(Sample(round(time.monotonic() - started, 1),
                                             round(_rss_mb(proc.pid), 1), lag(), h["events"],
                                             *_tracked(port),
                                             behind=max(0, produced - h["events"])))
        finally:
            stop.set()
            pacer.join(10)
            producer.flush(60)
        result.produced = sent[0]

        # 3. drain
        stopped = time.monotonic()
        while time.monotonic() - stopped < 60:
            if lag() == 0:
                result.drained_s = time.monotonic() - stopped
                break
            time.sleep(0.5)
        result.processed = (_health(port) or {"events": 0})["events"]
        rss = [s.rss_mb for s in result.samples]
        warm = rss[len(rss) // 3: len(rss) // 3 + 3] or rss[:1]
        tail = rss[-3:]
        result.rss_warm_mb = sum(warm) / len(warm)
        result.rss_end_mb = sum(tail) / len(tail)
        result.rss_max_mb = max(rss)
        result.max_lag = max(s.lag for s in result.samples)
        result.max_behind = max(s.behind for s in result.samples)
        return result
    finally:
        if lag is not None:
            lag.close()
        producer.close(timeout=5)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as resp:
            return resp.status == 200
    except Exception:  # noqa: BLE001
        return False


def cmd_soak(args: argparse.Namespace) -> int:
    from streams.broker.embedded import EmbeddedBroker

    workdir = Path(tempfile.mkdtemp(prefix="distillwatch-soak-"))
    broker = None
    try:
        url = args.broker
        if not url:
            broker = EmbeddedBroker(data_dir=workdir / "broker").start()
            url = broker.url
        result = run_soak(url, minutes=args.minutes, load=args.load, workdir=workdir)
    finally:
        if broker is not None:
            broker.stop()
    print(result.summary())
    for s in result.samples[:: max(1, len(result.samples) // 20)]:
        print(f"  t={s.t:7.1f}s  rss={s.rss_mb:7.1f} MB  lag={s.lag:7,d}  "
              f"backlog={s.behind:7,d}  events={s.events:,}"
              f"  accounts={s.accounts:,}  cluster_keys={s.cluster_keys:,}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(asdict(result), indent=1))
    problems = result.problems(max_growth=args.max_growth)
    for problem in problems:
        print(f"soak: {problem}")
    print("soak: FAIL" if problems else "soak: PASS")
    return 1 if problems else 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("soak", help="run one worker at a fraction of its maximum rate "
                              "and check memory and lag stay flat")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--load", type=float, default=0.8, help="fraction of the measured maximum")
    p.add_argument("--broker", default="", help="kafka://HOST:PORT (default: embedded)")
    p.add_argument("--max-growth", type=float, default=0.15,
                   help="allowed RSS growth after the warm-up third (fraction)")
    p.add_argument("--json-out", metavar="PATH")
    p.set_defaults(func=cmd_soak)


if __name__ == "__main__":  # `python -m benchmarks.soak --minutes 10` (before the CLI lists it)
    _parser = argparse.ArgumentParser(prog="python -m benchmarks.soak")
    register(_parser.add_subparsers())
    _args = _parser.parse_args(["soak", *sys.argv[1:]])
    sys.exit(_args.func(_args))
