"""Busy periods the account has already had (``Detector._seen_burst``, issue 18).

A batch job that runs three times a day pages on its second run at the
population's 99.9th percentile of request rates, though its first run, at the
same rate, did not page: its volume evidence is its business once it has done
this before. These tests drive the pure helper with rates, times and the
account's open page; no event stream, no simulator list.
"""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from detectors.config import DetectorConfig
from detectors.engine import Detector
from detectors.schema import Event
from detectors.state import AccountState

T0 = 1_772_409_600.0
KEEP = 1.0 - DetectorConfig().stable_discount


def _run(det: Detector, state: AccountState, rates: list[float], t: float = T0,
         step: float = 60.0) -> list[float]:
    out = []
    for r in rates:
        out.append(det._seen_burst(state, t, r))
        t += step
    return out


def test_a_second_run_at_the_first_runs_rate_counts_at_the_stable_discount() -> None:
    det = Detector()
    state = AccountState("batch", T0)
    # quiet, a run at up to 40/min, quiet again (below a quarter of its peak)
    first = _run(det, state, [0.5, 10.0, 40.0, 38.0, 20.0])
    assert first == [1.0] * 5  # nothing seen before: full weight throughout
    assert state.bst_peak == 0.0
    _run(det, state, [5.0, 0.5], t=T0 + 600.0)   # the run has ended: now it is seen
    assert state.bst_peak == 40.0
    # eight hours later the same run: its volume evidence is discounted
    second = _run(det, state, [12.0, 39.0, 75.0], t=T0 + 8 * 3600.0)
    assert second == [KEEP, KEEP, KEEP]   # 75 <= 2 x 40
    # more than twice the rate it ever ran at is new: full weight
    assert _run(det, state, [90.0], t=T0 + 9 * 3600.0) == [1.0]


def test_a_busy_period_during_which_a_page_was_open_is_not_the_accounts_normal() -> None:
    det = Detector()
    state = AccountState("acct", T0)
    _run(det, state, [1.0, 30.0])
    state.episode_start = T0 + 120.0        # paged during the run
    _run(det, state, [40.0, 2.0], t=T0 + 180.0)
    assert state.bst_peak == 0.0          # the run ended tainted: not taken
    state.episode_start = 0.0
    assert _run(det, state, [40.0], t=T0 + 4 * 3600.0) == [1.0]


def test_a_run_that_has_not_ended_is_not_yet_seen() -> None:
    # a ramp (a harvest growing its rate) never ends a busy period, so its own
    # growth never discounts it
    det = Detector()
    state = AccountState("ramp", T0)
    out = _run(det, state, [float(r) for r in range(1, 200, 5)])
    assert out == [1.0] * len(out)
    assert state.bst_peak == 0.0


def test_the_peak_fades_with_its_half_life_and_zero_margin_turns_it_off() -> None:
    cfg = DetectorConfig()
    det = Detector()
    state = AccountState("batch", T0)
    _run(det, state, [40.0, 1.0])
    # two half-lives later the old peak reads as 10/min: 25/min is beyond 2 x that
    later = T0 + 2 * cfg.seen_burst_half_life_s
    assert _run(det, state, [25.0], t=later) == [1.0]
    assert _run(det, state, [19.0], t=later + 60.0) == [KEEP]
    off = Detector(DetectorConfig(seen_burst_margin=0.0))
    state = AccountState("batch", T0)
    for ev_rate in (40.0, 1.0, 40.0):
        # the engine does not call the helper when the margin is 0; called
        # anyway, a 0 margin covers no positive rate
        assert off._seen_burst(state, T0, ev_rate) == 1.0


@given(st.lists(st.tuples(st.floats(0.0, 1e4), st.booleans()), max_size=60))
def test_rate_evidence_is_kept_or_discounted_never_raised(steps: list[tuple[float, bool]]) -> None:
    det = Detector()
    state = AccountState("any", T0)
    t = T0
    for rate, paged in steps:
        state.episode_start = t if paged else 0.0
        assert det._seen_burst(state, t, rate) in (1.0, KEEP)
        assert state.bst_peak >= 0.0 and abs(state.cur_peak) >= 0.0
        t += 30.0
    # the state round-trips through its encoding with the new fields
    assert AccountState.decode(state.encode()) == state


# ------------------------------------------------------------ in the detector
def _batch_peaks(cfg: DetectorConfig, runs: tuple[float, ...], out: int = 1200) -> list[float]:
    """The highest score of a batch-like account in each of its runs: a
    population of light accounts from the stream's start, and one account
    sending ~0.3 requests a minute on four topics, with runs of 40 minutes at
    ``runs[i]`` requests a minute (mostly its top topic) every 8 hours; its
    answers are ~6x its inputs (generation, not classification)."""
    det = Detector(cfg)
    rng = random.Random(7)
    events = []
    for i in range(6000):
        acct = f"pop-{min(79, int(rng.paretovariate(0.8)) - 1)}"
        events.append(Event(T0 + i * 2.0, acct, topic=f"t/{rng.randrange(12)}",
                            input_tokens=30, output_tokens=40))
    t = T0 + 60.0
    end = T0 + 8 * 3600.0 * len(runs)
    starts = [T0 + 3600.0 + 8 * 3600.0 * k for k in range(len(runs))]
    while t < end:
        k = next((k for k, s in enumerate(starts) if s <= t < s + 2400.0), -1)
        rate = runs[k] if k >= 0 else 0.3
        topic = "job/a" if k >= 0 and rng.random() < 0.7 else rng.choice(("job/a", "b", "c", "d"))
        events.append(Event(t, "batch", topic=topic, input_tokens=200, output_tokens=out))
        t += rng.expovariate(rate / 60.0)
    events.sort(key=lambda e: e.ts)
    states: dict[str, AccountState | None] = {}
    peaks = [0.0] * len(runs)
    for e in events:
        states[e.account_id], _ = det.process(states.get(e.account_id), e)
        if e.account_id == "batch":
            s = states["batch"]
            assert s is not None
            for k, st0 in enumerate(starts):
                if st0 <= e.ts < st0 + 2400.0:
                    peaks[k] = max(peaks[k], s.score)
    return peaks


def test_a_batch_jobs_later_runs_weigh_less_than_its_first_and_a_bigger_run_does_not() -> None:
    fire = DetectorConfig().fire_threshold
    on = _batch_peaks(DetectorConfig(), (30.0, 30.0, 30.0), out=1000)
    off = _batch_peaks(DetectorConfig(seen_burst_margin=0.0), (30.0, 30.0, 30.0), out=1000)
    # the first run does not page (nothing seen yet: the same either way); before,
    # the second and third runs paged, on volume with the gate opened by answers
    # ~5x the inputs, though they are the first run again
    assert on[0] == off[0] < fire
    assert off[1] >= fire and off[2] >= fire
    assert on[1] < fire - 0.2 and on[2] < fire - 0.2
    # a run at four times the rate of the first is not its normal
    big_on = _batch_peaks(DetectorConfig(), (30.0, 120.0), out=1000)
    big_off = _batch_peaks(DetectorConfig(seen_burst_margin=0.0), (30.0, 120.0), out=1000)
    assert big_on[1] == big_off[1]
