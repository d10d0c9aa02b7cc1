"""The series scorer ``score-series`` runs (detectors.seasonal.SeasonalSeriesScorer):
invariants under hostile input (hypothesis) and the behaviour of its three
stages (residual surprise, calibration, onset only). NAB numbers: docs/nab.md."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.errors import InvalidConfig
from detectors.seasonal import SeasonalSeriesScorer, tail_nines

T0 = 1_700_000_000.0
STEP = 300.0

any_float = st.floats(allow_nan=True, allow_infinity=True)
finite = st.floats(allow_nan=False, allow_infinity=False)


def _run(scorer: SeasonalSeriesScorer, values: list[float], t0: float = T0) -> list[float]:
    return [scorer.learn_one(v, t0 + STEP * i) for i, v in enumerate(values)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(any_float, any_float), max_size=300), st.booleans())
def test_scores_bounded_and_finite_whatever_the_input(items, log):
    scorer = SeasonalSeriesScorer(log=log, calibration=5, warmup=2)
    for v, t in items:
        s = scorer.learn_one(v, t)
        assert math.isfinite(s) and 0.0 <= s <= 1.0, (v, t, s)
        p = scorer.score_one(v, t)
        assert math.isfinite(p) and 0.0 <= p <= 1.0, (v, t, p)


@settings(max_examples=40, deadline=None)
@given(st.lists(finite, min_size=1, max_size=200), st.floats(min_value=-1e300, max_value=1e300))
def test_constant_and_extreme_series_do_not_crash(values, c):
    scorer = SeasonalSeriesScorer(calibration=5, warmup=2, log=False)
    for s in _run(scorer, [c] * 100 + values):
        assert math.isfinite(s) and 0.0 <= s <= 1.0


def test_a_constant_series_scores_zero_and_a_change_is_news():
    scorer = SeasonalSeriesScorer()
    scores = _run(scorer, [7.0] * 600)
    assert max(scores) == 0.0
    assert scorer.learn_one(9.0, T0 + STEP * 600) > 0.5


def test_missing_values_are_skipped_not_learned():
    rng = random.Random(5)
    values = [100 + rng.gauss(0, 5) for _ in range(400)]
    a, b = SeasonalSeriesScorer(), SeasonalSeriesScorer()
    sa = _run(a, values)
    sb = []
    for i, v in enumerate(values):
        if i % 50 == 0:
            for bad in (math.nan, math.inf, -math.inf):
                assert b.learn_one(bad, T0 + STEP * i) == 0.0
            assert b.learn_one(v, math.nan) == 0.0
        sb.append(b.learn_one(v, T0 + STEP * i))
    assert sa == sb


def test_deterministic_and_fixed_size_state():
    rng = random.Random(11)
    values = [50 + 10 * math.sin(i / 20) + rng.gauss(0, 2) for i in range(5000)]
    a = SeasonalSeriesScorer(likelihood_window=7)
    b = SeasonalSeriesScorer(likelihood_window=7)
    assert _run(a, values) == _run(b, values)
    assert len(a._window) == 7 and len(a._profile._w) == 2 * a.season_slots
    assert not hasattr(a, "__dict__")  # no state can grow outside the slots


def test_score_one_does_not_learn():
    rng = random.Random(2)
    values = [10 + rng.gauss(0, 1) for _ in range(300)]
    a, b = SeasonalSeriesScorer(), SeasonalSeriesScorer()
    _run(a, values)
    _run(b, values)
    t = T0 + STEP * 300
    assert a.score_one(40.0, t) == a.score_one(40.0, t) > 0.5
    assert a.learn_one(11.0, t) == b.learn_one(11.0, t)


def test_reported_at_onset_only():
    """A level shift scores high on its first values and not for its whole length."""
    rng = random.Random(8)
    values = [200 + rng.gauss(0, 10) for _ in range(600)]
    values += [500 + rng.gauss(0, 10) for _ in range(300)]
    scores = _run(SeasonalSeriesScorer(), values)
    assert max(scores[100:600]) < 0.05
    assert max(scores[600:610]) > 0.3
    assert sum(s > 0.05 for s in scores[600:]) <= 5
    every = _run(SeasonalSeriesScorer(suppress=0.0), values)  # every value on its own
    assert sum(s > 0.05 for s in every[600:]) > 5


def test_a_rise_is_reported_by_its_whole_size_and_not_at_every_step():
    """Stage 3 on given surprises: a rise over several values is measured from
    the memory it began above; within it, a report needs twice the last one."""
    def reports(growth: float) -> list[float]:
        sc = SeasonalSeriesScorer(report_growth=growth)
        sc._novel(0.1)
        assert sc._novel(0.0) == 0.0  # the memory stays near 0.1
        return [round(sc._novel(s), 3) for s in (0.12, 0.13, 0.2, 0.6)]
    m = 0.1 * 0.999
    whole = round((0.6 - m) / (1 - m), 3)  # the whole rise, not 0.6's step alone
    assert reports(2.0) == [0.022, 0.0, 0.111, whole]
    assert reports(1.0) == [0.022, 0.033, 0.111, whole]  # every new high


def test_calibration_a_noisy_series_needs_more():
    """The same jump is more surprising on a calm series than on a noisy one."""
    def jump_score(noise: float) -> float:
        rng = random.Random(3)
        values = [100 * math.exp(rng.gauss(0, noise)) for _ in range(1500)] + [300.0]
        return _run(SeasonalSeriesScorer(), values)[-1]
    assert jump_score(0.02) > jump_score(0.3) + 0.1


@given(st.floats(min_value=-10, max_value=1e200), st.floats(min_value=0, max_value=1e200))
def test_tail_nines_monotone_and_finite(z, dz):
    a, b = tail_nines(z), tail_nines(z + dz)
    assert math.isfinite(a) and math.isfinite(b) and 0.0 <= a <= b


@pytest.mark.parametrize("kwargs, match", [
    ({"likelihood_window": 0}, "likelihood_window"),
    ({"likelihood_window": 5000}, "likelihood_window"),
    ({"likelihood_half_life": 0}, "likelihood_half_life"),
    ({"global_half_life": -1}, "global_half_life"),
    ({"likelihood_min_std": 0}, "likelihood_min_std"),
    ({"nines": math.inf}, "nines"),
    ({"nines": 0}, "nines"),
    ({"calibration": 0}, "calibration"),
    ({"suppress": 1.0}, "suppress"),
    ({"report_growth": 0.5}, "report_growth"),
    ({"report_growth": math.nan}, "report_growth"),
    ({"half_life": math.nan}, "half_life"),
    ({"clip_z": 0}, "clip_z"),
    ({"long_half_life": -1}, "long_half_life"),
    ({"long_half_life": math.inf}, "long_half_life"),
    ({"long_half_life": math.nan}, "long_half_life"),
])
def test_invalid_parameters_fail_in_the_constructor(kwargs, match):
    with pytest.raises(InvalidConfig, match=match):
        SeasonalSeriesScorer(**kwargs)


def test_slow_baseline_keeps_a_level_shift_in_evidence_then_recovers():
    """Stage 1's slow baseline: after a level shift the short baseline is
    re-centred at once; against the slow one the shift stays surprising for a
    while (decaying) and is absorbed within a few half-lives."""
    rng = random.Random(8)
    values = [200 + rng.gauss(0, 10) for _ in range(600)]
    values += [500 + rng.gauss(0, 10) for _ in range(1500)]

    def residual_z(scorer: SeasonalSeriesScorer) -> list[float]:
        out = []
        for i, v in enumerate(values):
            t = T0 + STEP * i
            out.append(scorer._z(v, t))  # before learning v, as learn_one scores it
            scorer.learn_one(v, t)
        return out

    slow = residual_z(SeasonalSeriesScorer())
    short_only = residual_z(SeasonalSeriesScorer(long_half_life=0))
    assert slow[600] > 6 and short_only[600] > 6  # the shift itself, either way
    assert short_only[700] < 1.5  # re-centred: a hundred values on it is forgotten
    assert slow[700] > 3.0  # still beyond z_lo against the slow baseline
    assert slow[650] > slow[700] > slow[800]  # decaying ...
    assert max(slow[1600:]) < 2.0  # ... and absorbed
    assert max(slow[100:600]) < 3.0  # no cost before the shift


def test_slow_baseline_state_is_two_numbers():
    a = SeasonalSeriesScorer()
    b = SeasonalSeriesScorer(long_half_life=0)
    assert a.long_half_life == 400.0 and b.long_half_life == 0
    values = [100 + (i % 7) for i in range(300)]
    _run(a, values)
    _run(b, values)
    assert abs(a._slow_mean - math.log(104)) < 0.1  # the log level, deseasonalised
    assert b._slow_mean == 0.0  # off: never learned
