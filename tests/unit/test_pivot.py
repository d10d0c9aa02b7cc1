"""Pivot evidence (detectors.engine.Detector._pivot): an established account
moving to one capability while its rate grows, against its own time-weighted
topic mix. Traffic written for these tests (topic names and rates of our own,
not the simulator's)."""

from __future__ import annotations

import random
import struct

import pytest

from detectors.config import DetectorConfig
from detectors.engine import Detector
from detectors.errors import CorruptState
from detectors.schema import Event
from detectors.state import AccountState

T0 = 1_780_000_000.0
BROAD = ("astronomy/stars", "gardening/roses", "law/contracts", "cooking/bread",
         "travel/japan", "music/theory", "finance/taxes", "history/rome")
TARGET = "chemistry/synthesis"


def _run(plan, seed=0, hours_before=30.0, config=None):
    """Replay ``plan(t_rel_h, rng) -> (rate_per_h, topic_picker, out_tokens)``
    for one account (plus a quiet population), hour by hour; returns the
    alerts, the max pivot evidence and the detector/state."""
    rng = random.Random(seed)
    det = Detector(config)
    state = None
    alerts = []
    top = 0.0
    # a population of light accounts so that the partition's models have seen traffic
    others: dict[str, AccountState | None] = {f"o{i}": None for i in range(20)}
    t = T0
    end = T0 + hours_before * 3600.0
    while t < end:
        h = (t - T0) / 3600.0
        rate, pick, out = plan(h, rng)
        t += rng.expovariate(rate / 3600.0)
        ev = Event(t, "acct", topic=pick(rng), input_tokens=120, output_tokens=out,
                   model="m-large")
        state, fired = det.process(state, ev)
        alerts += fired
        top = max(top, det._pivot(state, t, *_w(det, state, t)))
        if rng.random() < 0.5:
            o = rng.choice(sorted(others))
            others[o], _ = det.process(others[o], Event(t, o, topic=rng.choice(BROAD),
                                                        input_tokens=100, output_tokens=300))
    return alerts, top, det, state


def _w(det: Detector, state: AccountState, t: float) -> tuple[float, float, float]:
    ws = 2.0 ** ((t - state.ref) / det.config.short_half_life_s)
    wl = 2.0 ** ((t - state.ref) / det.config.long_half_life_s)
    return ws, wl, t - state.first_ts


def _broad(rng: random.Random) -> str:
    return rng.choice(BROAD)


def _pivot_plan(start_h: float, span_h: float, top_rate: float):
    def plan(h: float, rng: random.Random):
        f = min(1.0, max(0.0, (h - start_h) / span_h))
        rate = (1.0 - f) * 8.0 + f * top_rate
        share = 0.9 * f

        def pick(r: random.Random) -> str:
            return TARGET if r.random() < share else r.choice(BROAD)

        return rate, pick, 900  # long answers taken home
    return plan


def test_an_established_account_pivoting_while_its_rate_grows_pages_with_pivot_evidence() -> None:
    alerts, top, _, _ = _run(_pivot_plan(24.0, 5.0, 160.0), hours_before=29.0)
    firing = [a for a in alerts if a.status == "firing"]
    assert firing, "the pivot must page"
    first = firing[0]
    assert T0 + 24 * 3600.0 <= first.ts <= T0 + 26 * 3600.0  # within 2 h of the pivot's start
    assert first.details["evidence"]["pivot"] > 0.2
    assert top > 0.5
    # without the pivot evidence (a time history it never reaches) the same
    # account pages only once its rate alone is a burst, an hour or more later
    late, none, _, _ = _run(_pivot_plan(24.0, 5.0, 160.0), hours_before=29.0,
                            config=DetectorConfig(pivot_history_s=1e12))
    assert none == 0.0
    later = [a.ts for a in late if a.status == "firing"]
    assert not later or later[0] - first.ts >= 1800.0


def test_interests_that_change_naturally_do_not_page() -> None:
    # a day of broad traffic, then the account's interests move to another
    # mix, one topic leading, at the same modest rate: a new project, not a harvest
    new_mix = ("robotics/arms", "robotics/sensors", "electronics/pcb", TARGET)

    def plan(h: float, rng: random.Random):
        if h < 24.0:
            return 8.0, _broad, 500
        return 10.0, (lambda r: TARGET if r.random() < 0.5 else r.choice(new_mix)), 500

    alerts, top, _, _ = _run(plan, hours_before=30.0)
    assert not [a for a in alerts if a.status == "firing"]
    assert top < 0.2


def test_a_burst_on_the_accounts_usual_topics_is_no_pivot() -> None:
    # a busy hour (10x) with the account's own mix: growth without a shift
    def plan(h: float, rng: random.Random):
        return (80.0 if 26.0 <= h < 27.0 else 8.0), _broad, 500

    alerts, top, _, _ = _run(plan, hours_before=28.0)
    assert top < 0.2  # (sampling noise of the top share of a broad mix)
    assert not [a for a in alerts if a.status == "firing"]


def test_without_hours_of_history_there_is_no_pivot_evidence() -> None:
    # the same pivot, but the account is first seen an hour before it
    alerts, top, _, _ = _run(_pivot_plan(1.0, 4.0, 160.0), hours_before=4.0)
    assert top == 0.0


def test_time_mix_survives_encoding_and_a_version_5_state_decodes_empty() -> None:
    _, _, det, state = _run(_pivot_plan(24.0, 5.0, 160.0), hours_before=26.0)
    assert state is not None and sum(state.w_time) > 0.0
    v8 = state.encode()
    again = AccountState.decode(v8)
    assert list(again.w_time) == list(state.w_time)
    ph = 2 * struct.calcsize("<7d")
    # as version 7 wrote it: no busy-period peaks (24 bytes) before the Page-Hinkley states
    v7 = bytes([7]) + v8[1 : len(v8) - ph - 24] + v8[len(v8) - ph :]
    seven = AccountState.decode(v7)
    assert list(seven.w_time) == list(state.w_time)
    assert (seven.bst_peak, seven.bst_ts, seven.cur_peak) == (0.0, 0.0, 0.0)
    # as version 6 wrote it: no sur_long (8 bytes) before the Page-Hinkley states
    blob = bytes([6]) + v7[1 : len(v7) - ph - 8] + v7[len(v7) - ph :]
    assert list(AccountState.decode(blob).w_time) == list(state.w_time)
    # the same state as version 5 wrote it: no w_time before the Page-Hinkley states
    cut = len(blob) - ph - 8 * len(state.w_time)
    v5 = bytes([5]) + blob[1:cut] + blob[cut + 8 * len(state.w_time):]
    old = AccountState.decode(v5)
    assert sum(old.w_time) == 0.0 and old.n == state.n
    # a pivot needs pivot_history_s of time again, so a restored account is no pivot yet
    ws, wl, age = _w(det, old, old.last_ts)
    assert det._pivot(old, old.last_ts, ws, wl, age) == 0.0
    with pytest.raises(CorruptState):
        AccountState.decode(bytes([6]) + blob[1:cut] + blob[cut + 8 * len(state.w_time):])
    with pytest.raises(CorruptState):
        AccountState.decode(bytes([7]) + blob[1:])
    with pytest.raises(CorruptState):
        AccountState.decode(bytes([8]) + v7[1:])



def _first_day_drift(out_tokens: int, seed: int = 3):
    """An account broad at 6/h from the stream's start, whose mix moves over
    hours 10-14 to one topic while its rate grows to 200/h, among 15 broad
    accounts at 50-400/h with the same answers (the test's small population
    is no reference for volume, which is set aside). Returns its alerts and
    its highest (first-day weighted) pivot evidence."""
    rng = random.Random(seed)
    det = Detector(DetectorConfig(volume_pct_lo=0.99999, volume_pct_hi=0.999999))
    states: dict[str, AccountState | None] = {}
    rates = {"acct": 0.0, **{f"o{i}": 50.0 * 8.0 ** rng.random() for i in range(15)}}
    nxt = {a: T0 + rng.random() * 60.0 for a in rates}
    alerts = []
    top = 0.0
    end = T0 + 16 * 3600.0
    while True:
        a = min(nxt, key=nxt.__getitem__)
        t = nxt[a]
        if t >= end:
            break
        f = min(1.0, max(0.0, ((t - T0) / 3600.0 - 10.0) / 4.0))
        if a == "acct":
            rate = 6.0 + 194.0 * f
            topic = TARGET if rng.random() < 0.9 * f else rng.choice(BROAD)
            out = out_tokens
        else:
            rate, topic, out = rates[a], rng.choice(BROAD), out_tokens
        st, fired = det.process(states.get(a), Event(t, a, topic=topic, input_tokens=120,
                                                     output_tokens=out, model="m-large"))
        states[a] = st
        if a == "acct":
            alerts += fired
            top = max(top, det._pivot(st, t, *_w(det, st, t)))
        nxt[a] = t + rng.expovariate(rate / 3600.0)
    return alerts, top


def test_a_first_day_pivot_lifts_the_stable_history_discount_of_long_answers() -> None:
    # long answers from the start are the account's business while its mix
    # is broad; once its hour is mostly one topic that had a small share of
    # its time and its rate has grown against its own, they are not, although
    # the pivot evidence itself is still weighed down in the account's first
    # day (stop 32: on main the discount held and this account never paged)
    alerts, top = _first_day_drift(1500)
    firing = [a for a in alerts if a.status == "firing"]
    assert top < 0.5
    assert firing, "the pivot with harvest-shaped answers must page"
    assert firing[0].ts >= T0 + 10 * 3600.0
    assert firing[0].details["evidence"]["harvest"] > 0.5


def test_the_same_first_day_pivot_with_short_answers_does_not_page() -> None:
    alerts, _ = _first_day_drift(300)
    assert not [a for a in alerts if a.status == "firing"]
