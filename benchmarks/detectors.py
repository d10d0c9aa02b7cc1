"""Throughput of the detection core alone (issue 3: >= 50k events/s on one core).

Replays a seeded, pre-built stream through :class:`detectors.replay.Replayer`
(8 partitions, prompt-text features included: every event carries a prompt,
a fifth of them templated, some without a topic so that online text topics run
too) and reports the median events/s of 3 runs. Process CPU time is reported
next to wall time because shared CI machines are noisy; ``calibration_ms`` is
the time of ``sum(range(10**6))`` on the same interpreter (about 10-12 ms on a
current desktop core), to compare numbers across machines.

    .venv/bin/python -m benchmarks.detectors [n_events]
"""

from __future__ import annotations

import random
import statistics
import sys
import time

from detectors.engine import Detector
from detectors.replay import Replayer
from detectors.schema import Event

_TOPICS = tuple(
    f"{c}/{s}"
    for c in ("coding", "math", "writing", "data", "support", "agentic", "vision")
    for s in ("a", "b", "c", "d", "e", "f")
)
_WORDS = tuple(
    "the a my data model error table user query report function result value list reply "
    "customer invoice order chart cluster deploy budget email draft summary review".split()
)
_TEMPLATE = (
    "You are an expert assistant. Solve the following task. Think step by step and write out "
    "your complete reasoning before the final answer. Task: "
)


def make_events(n_events: int, n_accounts: int = 2000, seed: int = 7) -> list[Event]:
    """A seeded stream: heavy-tailed accounts, varied prompts, some templated ones."""
    rng = random.Random(seed)
    weights = [1.0 / (i + 1) ** 0.9 for i in range(n_accounts)]
    accounts = rng.choices(range(n_accounts), weights=weights, k=n_events)
    t = 1_772_409_600.0
    events = []
    for a in accounts:
        t += rng.expovariate(1.0 / 0.02)
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(8, 60)))
        if a % 5 == 0:
            prompt = _TEMPLATE + words[:80]
        else:
            prompt = f"Please help with {rng.choice(_WORDS)} {rng.randint(1, 999)}: {words}"
        events.append(
            Event(
                ts=t,
                account_id=f"acct_{a:06d}",
                topic=None if a % 11 == 0 else _TOPICS[(a * 7 + rng.randint(0, 3)) % len(_TOPICS)],
                prompt=prompt,
                input_tokens=rng.randint(20, 2000),
                output_tokens=rng.randint(50, 3000),
                model="model-a",
            )
        )
    return events


def _calibration_ms() -> float:
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        sum(range(10**6))
        best = min(best, time.perf_counter() - t0)
    return round(best * 1000, 1)


def bench_detectors(n_events: int = 200_000) -> dict[str, float]:
    """Median events/s (wall and process CPU) of 3 replays of ``n_events`` events.

    The headline numbers are the full replay path (account stage + the cluster
    stage that :class:`Replayer` runs by default); ``account_stage_*`` is the
    same stream with ``clusters=False`` (per-account detection only), so the
    two stages' shares can be told apart.
    """
    events = make_events(n_events)
    wall, cpu, acct_cpu, alerts = [], [], [], 0
    for _ in range(3):
        replayer = Replayer(Detector, partitions=8)
        w0, c0 = time.perf_counter(), time.process_time()
        alerts = sum(1 for _ in replayer.run(events))
        wall.append(n_events / (time.perf_counter() - w0))
        cpu.append(n_events / max(time.process_time() - c0, 1e-9))
        replayer = Replayer(Detector, partitions=8, clusters=False)
        c0 = time.process_time()
        for _ in replayer.run(events):
            pass
        acct_cpu.append(n_events / max(time.process_time() - c0, 1e-9))
    return {
        "events": n_events,
        "events_per_s": round(statistics.median(wall)),
        "events_per_cpu_s": round(statistics.median(cpu)),
        "us_per_event": round(1e6 / statistics.median(cpu), 2),
        "account_stage_events_per_cpu_s": round(statistics.median(acct_cpu)),
        "account_stage_us_per_event": round(1e6 / statistics.median(acct_cpu), 2),
        "alerts": alerts,
        "calibration_ms": _calibration_ms(),
    }


if __name__ == "__main__":
    print(bench_detectors(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))
