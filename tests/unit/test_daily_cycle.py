"""Own-baseline evidence and the account's daily cycle (issue 18, dw/pivot2):
evidence read against the account's own rate counts as far as its profile has
seen a day; a change point of its daily cycle does not hold drift; a broad
mix that outgrows the topic sketch is not novelty; a mix that was always broad
is not a sweep. Traffic written for these tests (topic names, rates and
cycles of our own, not the simulator's)."""

from __future__ import annotations

import random
from collections.abc import Callable

from detectors.config import DetectorConfig
from detectors.engine import Detector
from detectors.schema import Event
from detectors.state import AccountState

T0 = 1_780_012_800.0  # 00:00 UTC
HOUR = 3600.0
POPULAR = ("weather/today", "recipes/pasta", "email/reply")
WIDE = tuple(f"field{i}/area{i % 7}" for i in range(60))
SCHOOL = ("algebra/linear", "algebra/quadratic", "geometry/circles", "physics/motion",
          "chemistry/acids", "biology/cells", "essay/structure", "history/wars")
# evidence terms as Detector._combine returns them
TERMS = ("template", "elicitation", "sweep", "timing", "volume", "narrow", "drift",
         "harvest", "fresh", "pivot")

Plan = Callable[[float, random.Random], tuple[float, Callable[[random.Random], str]]]


class _Recorder(Detector):
    """The detector, recording each evidence term of one account after each event."""

    watch = "acct"

    def __init__(self, config: DetectorConfig | None = None) -> None:
        super().__init__(config)
        self.rows: list[tuple[float, float, dict[str, float]]] = []

    def _combine(self, state, t, ws, wl, age, cnt_s, *terms):  # type: ignore[no-untyped-def]
        score, out = super()._combine(state, t, ws, wl, age, cnt_s, *terms)
        if state.account_id == self.watch:
            self.rows.append((age, score, dict(zip(TERMS, out, strict=True))))
        return score, out


def _run(plan: Plan, start_h: float, end_h: float, population_rate: float = 60.0,
         seed: int = 0) -> tuple[_Recorder, AccountState | None, list]:
    """Replay ``plan(t_h, rng) -> (rate_per_h, topic_picker)`` for "acct" from
    ``start_h`` to ``end_h`` (hours after T0), beside a population of 20 accounts
    on a few popular topics at ``population_rate`` requests per hour in all."""
    rng = random.Random(seed)
    det = _Recorder()
    others: dict[str, AccountState | None] = {f"o{i}": None for i in range(20)}
    state: AccountState | None = None
    alerts: list = []
    t_acct = T0 + start_h * HOUR
    t_pop = T0
    end = T0 + end_h * HOUR
    while min(t_acct, t_pop) < end:
        if t_pop <= t_acct:
            o = rng.choice(sorted(others))
            others[o], _ = det.process(others[o], Event(t_pop, o, topic=rng.choice(POPULAR),
                                                        input_tokens=100, output_tokens=200))
            t_pop += rng.expovariate(population_rate / HOUR)
            continue
        rate, pick = plan((t_acct - T0) / HOUR, rng)
        state, fired = det.process(state, Event(t_acct, "acct", topic=pick(rng),
                                                input_tokens=100, output_tokens=200))
        alerts += [a for a in fired if a.status == "firing"]
        t_acct += rng.expovariate(rate / HOUR)
    return det, state, alerts


def _max(det: _Recorder, term: str, lo_h: float, hi_h: float = 1e9) -> float:
    return max((r[term] for age, _, r in det.rows if lo_h * HOUR <= age < hi_h * HOUR),
               default=0.0)


def _school(quiet: float, busy: float) -> Callable[[float], float]:
    """A school day: busy 8..16 h, quiet otherwise."""
    return lambda h: busy if 8.0 <= h % 24.0 < 16.0 else quiet


def test_a_young_profile_weighs_a_jump_against_its_own_rate_by_the_day_it_has_seen() -> None:
    cycle = _school(3.0, 48.0)  # 16x every morning, lighter than its neighbours

    def plan(h: float, rng: random.Random):
        return cycle(h), (lambda r: r.choice(SCHOOL))

    # first seen at midnight: its first morning (age 8..11 h) is a 16x jump
    # against its mean so far, but the profile has seen less than half a day
    det, _, alerts = _run(plan, 0.0, 11.0, population_rate=1200.0)
    assert _max(det, "volume", 8.0) < 0.3  # (the whole jump would be 0.57)
    assert not alerts
    # the same jump after a whole day at the night's rate is a burst
    def flat_then_jump(h: float, rng: random.Random):
        return (48.0 if h >= 26.0 else 3.0), (lambda r: r.choice(SCHOOL))

    det, _, _ = _run(flat_then_jump, 0.0, 27.0, population_rate=1200.0)
    assert _max(det, "volume", 26.2) >= 0.5


def test_the_change_points_of_a_daily_cycle_do_not_hold_drift() -> None:
    cycle = _school(6.0, 60.0)

    def plan(h: float, rng: random.Random):
        return cycle(h), (lambda r: r.choice(SCHOOL))

    det, state, _ = _run(plan, 0.0, 58.0)
    assert state is not None and state.drift_ts > 0.0  # its mornings are change points
    # ... of its day: from the second day on, none of them holds drift
    assert _max(det, "drift", 24.0) < 0.5
    # a jump well above what its profile expects at that hour still does
    def jump(h: float, rng: random.Random):
        return (960.0 if 57.0 <= h else cycle(h)), (lambda r: r.choice(SCHOOL))

    det, _, _ = _run(jump, 0.0, 58.0)
    assert _max(det, "drift", 57.0) >= 0.5


def _zipf(topics: tuple[str, ...]) -> Callable[[random.Random], str]:
    weights = [1.0 / (i + 1) ** 0.5 for i in range(len(topics))]
    return lambda r: r.choices(topics, weights)[0]


def test_a_broad_mix_that_outgrows_the_sketch_is_not_novel() -> None:
    # 60 topics through a 16-slot sketch: a third of its requests are on
    # topics the sketch does not hold, every hour of its life
    def plan(h: float, rng: random.Random):
        return 120.0, _zipf(WIDE)

    det, state, _ = _run(plan, 0.0, 30.0)
    assert state is not None
    assert _max(det, "drift", 6.0) < 0.5
    assert det.describe(state)["novelty"] < det.config.novelty_lo
    # a narrow account moving to topics it never used is still novel
    def move(h: float, rng: random.Random):
        return 120.0, (lambda r: r.choice(WIDE[:3] if h < 26.0 else WIDE[20:32]))

    det, _, _ = _run(move, 0.0, 27.0)
    assert _max(det, "drift", 26.0) >= 0.5


def test_a_mix_that_was_always_broad_is_no_sweep_for_an_established_account() -> None:
    def plan(h: float, rng: random.Random):
        return 120.0, (lambda r: r.choice(WIDE))

    # the population draws a few popular topics; this account, all of WIDE
    det, _, alerts = _run(plan, 0.0, 30.0, population_rate=600.0)
    young = _max(det, "sweep", 1.0, 5.0)
    assert young >= 0.7  # unlike the population's mix: a sweep, while it is new
    assert _max(det, "sweep", 7.0) <= 0.3 * young + 1e-9  # its business once established
    assert not [a for a in alerts if a.ts >= T0 + 7.0 * HOUR]
    # the same coverage from an account first seen a day later is a sweep
    det, _, _ = _run(plan, 24.0, 30.0, population_rate=600.0)
    assert _max(det, "sweep", 1.0) >= 0.7
