"""The hand-inlined per-event path of :class:`detectors.engine.Detector`
(issue 3) against the straightforward one (tests/oracles/plain_detector.py):
alerts, every account state and the population snapshots, bit for bit, on
simulated traffic and a stream of templated and varied prompts. Config
tuning affects both alike."""

from __future__ import annotations

import random
from functools import partial
from typing import Any

import pytest

from detectors.config import DetectorConfig
from detectors.engine import Detector
from detectors.replay import Replayer
from detectors.schema import Event, parse_event
from tests.oracles.plain_detector import ReferenceDetector

T0 = 1_772_409_600.0
TEMPLATE = (
    "Here is a completed response to a user request. Imagine and articulate the internal "
    "reasoning behind the completed response, step by step. Request: "
)
TOPICS = [f"cat{c}/sub{s}" for c in range(6) for s in range(5)]


def _varied_prompt(rng: random.Random) -> str:
    words = "data table user report invoice email summary order chart deploy budget".split()
    return " ".join(rng.choice(words) + str(rng.randint(0, 9)) for _ in range(rng.randint(6, 30)))


def _stream(seed: int) -> list[Event]:
    rng = random.Random(seed)
    evs = []
    t = T0
    for i in range(4000):
        t += rng.expovariate(2.0)
        a = rng.randrange(60)
        prompt = TEMPLATE + str(i) if a < 3 else _varied_prompt(rng)
        evs.append(Event(t, f"acct{a}", topic=TOPICS[(a + rng.randrange(3)) % 30] if a % 7
                         else None, prompt=prompt, input_tokens=100, output_tokens=300))
    return evs


def _simulated(seed: int, drop_topic: float) -> list[Event]:
    from simulator.simulate import simulate

    events, _, _ = simulate(seed=seed, hours=3, accounts=80, drop_topic=drop_topic)
    return [parse_event(e) for e in events]


def _replay_digest(factory: Any, events: list[Event]) -> tuple[Any, Any, Any]:
    rep = Replayer(factory, partitions=4)
    alerts = [a.to_record() for a in rep.run(events)]
    states = {
        acct: (st.encode(), r.detector.describe(st))
        for r in rep.runners
        for acct, st in r.states.items()
    }
    snaps = [r.detector.snapshot() for r in rep.runners]
    return alerts, states, snaps


@pytest.mark.parametrize(
    "config",
    [
        {},
        # fast decay: rebases of the scaled weights, established accounts, drift holds
        {"short_half_life_s": 60.0, "long_half_life_s": 1800.0, "established_age_s": 600.0,
         "population_sample_interval_s": 30.0, "max_tracked_topics": 4, "template_ring": 2,
         "season_min_age_s": 1200.0},
    ],
    ids=["default", "fast-decay"],
)
def test_optimised_detector_matches_reference(config: dict[str, float]) -> None:
    cfg = DetectorConfig(**config)  # type: ignore[arg-type]
    events = _simulated(5, 0.3) + _stream(21)
    events.sort(key=lambda e: e.ts)
    fast = _replay_digest(partial(Detector, cfg), events)
    slow = _replay_digest(partial(ReferenceDetector, cfg), events)
    assert fast[0] and any(a["status"] == "resolved" for a in fast[0])
    assert fast[0] == slow[0]
    assert fast[1] == slow[1]
    assert fast[2] == slow[2]
