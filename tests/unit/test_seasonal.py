"""Daily/weekly seasonality (issue 18): the seasonal profile, the series
scorer ``score-series`` runs, and the account engine's burst evidence."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.config import DetectorConfig
from detectors.engine import Detector
from detectors.errors import InvalidConfig
from detectors.schema import Event
from detectors.seasonal import SeasonalProfile, SeasonalSeriesScorer, is_weekend
from detectors.series import VolumeSeriesScorer
from detectors.state import VERSION, AccountState

DAY = 86_400.0
STEP = 300.0  # 5-minute buckets
JUMP = 6 * 288 + 150  # day 7, 12:30


def _diurnal(seed: int = 4) -> list[float]:
    """Six quiet days of a strong daily cycle (x8 from night to afternoon),
    then one bucket far off the usual curve."""
    rng = random.Random(seed)
    out = []
    for i in range(8 * 288):
        hod = (i % 288) / 12.0
        level = 50.0 + 350.0 * max(0.0, math.sin(math.pi * (hod - 6.0) / 12.0))
        out.append(level * math.exp(rng.gauss(0.0, 0.05)))
    out[JUMP] *= 4.0
    return out


def _fires_on_jump_only(scores: list[float]) -> bool:
    ramps = scores[2 * 288:JUMP] + scores[JUMP + 12:]
    return scores[JUMP] >= 0.5 and scores[JUMP] > 2 * max(ramps)


def test_series_scorer_fires_on_the_jump_not_the_daily_ramps():
    values = _diurnal()
    scorer = SeasonalSeriesScorer()
    scores = [scorer.learn_one(v, 1_700_000_000.0 + STEP * i) for i, v in enumerate(values)]
    assert _fires_on_jump_only(scores), (scores[JUMP], max(scores[2 * 288:JUMP]))


def test_the_old_volume_model_fires_on_the_ramps():
    """The same check fails for the model score-series ran before (issue 18)."""
    old = VolumeSeriesScorer()
    scores = [old.learn_one(v) for v in _diurnal()]
    assert not _fires_on_jump_only(scores)
    assert max(scores[2 * 288:JUMP]) >= 0.5  # it pages on ordinary mornings


def test_profile_learns_weekends_apart():
    prof = SeasonalProfile(half_life_s=14 * DAY, min_weight=2.0)
    t0 = 0.0  # Thursday 1970-01-01
    for i in range(int(21 * DAY / 3600)):
        t = t0 + 3600.0 * i
        prof.update(t, 10.0 if is_weekend(t) else 100.0)
    assert prof.expected(3 * DAY + 12 * 3600) == pytest.approx(10.0)   # a Sunday
    assert prof.expected(5 * DAY + 12 * 3600) == pytest.approx(100.0)  # a Tuesday
    flat = SeasonalProfile(weekly=False)
    assert len(flat._w) == 24
    copy = SeasonalProfile(half_life_s=14 * DAY)
    copy.load_json(prof.to_json())
    assert copy.expected(9 * DAY) == prof.expected(9 * DAY)


def test_invalid_parameters_fail_in_the_constructor():
    with pytest.raises(InvalidConfig, match="half_life_s"):
        SeasonalProfile(half_life_s=0)
    with pytest.raises(InvalidConfig, match="min_weight"):
        SeasonalProfile(min_weight=-1)
    with pytest.raises(InvalidConfig, match="z_lo < z_hi"):
        SeasonalSeriesScorer(z_lo=5, z_hi=4)
    with pytest.raises(InvalidConfig, match="suppress"):
        SeasonalSeriesScorer(suppress=1.0)
    with pytest.raises(InvalidConfig, match="season_shrink"):
        DetectorConfig(season_shrink=0.0)


@given(st.lists(st.tuples(st.floats(min_value=-1e9, max_value=1e12, allow_nan=False),
                          st.floats(min_value=0, max_value=4e5)), max_size=200))
def test_scores_in_unit_interval_and_deterministic(items):
    a, b = SeasonalSeriesScorer(), SeasonalSeriesScorer(log=False)
    t = 1_700_000_000.0
    for v, dt in items:
        t += dt
        s = a.learn_one(v, t)
        assert 0.0 <= s <= 1.0 and math.isfinite(s)
        assert 0.0 <= b.learn_one(v, t) <= 1.0
    again = SeasonalSeriesScorer()
    t = 1_700_000_000.0
    for v, dt in items:
        t += dt
        again.learn_one(v, t)
    assert again._mean == a._mean and again._recent == a._recent


# -------------------------------------------------------------- accounts
T0 = 1_771_804_800.0


def _workday_account(days: int, jump_day: int | None, seed: int = 1) -> list[Event]:
    """An account busy 09:00-13:00 UTC (8/min), nearly silent otherwise; on
    ``jump_day`` six times its usual rate from 10:00 to 12:00."""
    rng = random.Random(seed)
    out, t = [], T0
    while t < T0 + days * DAY:
        hod = (t % DAY) / 3600.0
        rate = 8.0 if 9.0 <= hod < 13.0 else 0.05
        if jump_day is not None and 10.0 <= hod < 12.0 and int((t - T0) // DAY) == jump_day:
            rate *= 6.0
        t += rng.expovariate(rate / 60.0)
        out.append(Event(t, "acct-d", topic=rng.choice(["a/b", "c/d", "e/f"]),
                         input_tokens=50, output_tokens=400))
    return out


def _max_score_per_day(config: DetectorConfig, events: list[Event]) -> dict[int, float]:
    det, state, best = Detector(config), None, {}
    for e in events:
        state, _ = det.process(state, e)
        day = int((e.ts - T0) // DAY)
        best[day] = max(best.get(day, 0.0), state.score)
    return best


def test_account_mornings_are_expected_and_a_burst_is_not():
    events = _workday_account(5, jump_day=4)
    # the profile-less reference: the profile shrunk all the way to flat (not
    # season_min_age_s=inf, which would also withhold the own-rate evidence a
    # young profile weighs by the day it has seen)
    # (both without the busy-period discount, which also finds the mornings
    # seen before: this is the profile's own effect)
    old = _max_score_per_day(DetectorConfig(season_shrink=1e12, seen_burst_margin=0.0), events)
    new = _max_score_per_day(DetectorConfig(seen_burst_margin=0.0), events)
    # no profile on the first day (the account's age is under a day); from the
    # first morning a day after its first event the profile may lower the
    # evidence (checked below: never above the profile-less scores)
    assert new[0] == old[0]
    assert new[2] < old[2] - 0.05                       # an ordinary morning: less evidence
    assert all(new[d] <= old[d] for d in range(4))      # never more than before
    assert new[4] >= old[4] and new[4] > max(new[2], new[3])  # the burst stands out


def test_state_round_trips_with_the_hour_fields_and_older_versions_are_refused():
    state = AccountState("acct-1", 1e9)
    state.n = 7
    state.hour_w = 2.5
    state.hour_idx = 13
    data = state.encode()
    assert data[0] == VERSION == 8
    back = AccountState.decode(data)
    assert back.n == 7 and back.hour_w == 2.5 and back.hour_idx == 13
    assert back.encode() == data
    # version 3 (and older) had another layout (head/tail ring, no hour fields):
    # refused as corrupt, so that account starts over instead of misreading bytes
    from detectors.errors import CorruptState
    for old in (2, 3):
        with pytest.raises(CorruptState):
            AccountState.decode(bytes([old]) + data[1:])
