"""Unit tests of the context the account stage weighs evidence with (issue 18):
whether an account predates the stream, what it takes home (output/input
tokens), the ratio-led harvest evidence, and the stable-history discount.

The prompts here are written for these tests: no list in detectors/ or in the
simulator anticipated them (the detector keeps no list of its own for these
pieces of evidence; they read timing and token counts only).
"""

from __future__ import annotations

import random

from detectors.config import DetectorConfig
from detectors.engine import Detector
from detectors.schema import Event

T0 = 1_772_409_600.0
# Step-by-step tutoring in a fixed frame around the student's question: what an
# ed-tech tutor sends all day, and what a templated reasoning harvest sends too.
TUTOR = (
    "You are a patient maths tutor for a secondary-school pupil. Walk the pupil through the "
    "solution step by step, explain your reasoning at each step, then give the final answer. "
    "Pupil's question: {q}"
)


WORDS = ("the answer states that energy is conserved because work done equals change in "
         "kinetic energy which the reference also shows but with a diagram of forces and a "
         "worked example about a sliding block on an incline with friction").split()


def _question(rng: random.Random) -> str:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    return rng.choice((
        f"what is {a} times {b} and why does the method work",
        f"how do I simplify {a}/{b} into lowest terms",
        f"if a train travels {a} km in {b} minutes what is its speed",
    ))


def _feed(det: Detector, events: list[Event]) -> list:
    state = None
    alerts: list = []
    for e in events:
        state, out = det.process(state, e)
        alerts += out
    return alerts


def _warm(det: Detector) -> None:
    """A population from the stream's start: 60 ordinary accounts, a few heavy
    (a Zipf-like spread of request rates, as in production)."""
    rng = random.Random(0)
    state: dict[str, object] = {}
    for i in range(4000):
        acct = f"pop-{min(59, int(rng.paretovariate(0.8)) - 1)}"
        t = T0 + i * 3.0
        ev = Event(t, acct, prompt=f"please help with {rng.choice('abcdefgh')} report {i % 7}",
                   input_tokens=30, output_tokens=40, max_tokens=1024, stop_reason="end_turn")
        state[acct], _ = det.process(state.get(acct), ev)  # type: ignore[arg-type]


def _tutor_events(acct: str, start: float, n: int, gap: float, out_tokens: int,
                  seed: int = 1) -> list[Event]:
    rng = random.Random(seed)
    return [
        Event(start + i * gap * rng.uniform(0.5, 1.5), acct,
              prompt=TUTOR.format(q=_question(rng)), input_tokens=60, output_tokens=out_tokens,
              max_tokens=4096, stop_reason="end_turn")
        for i in range(n)
    ]


# --------------------------------------------------------------- predates
def test_a_heavy_account_first_seen_late_is_new_and_a_light_one_may_predate() -> None:
    det = Detector()
    det.process(None, Event(T0, "first"))  # the partition's first event
    heavy = None
    for i in range(30):  # 30 requests in 5 minutes, first seen 40 minutes in
        heavy, _ = det.process(heavy, Event(T0 + 2400 + 10 * i, "heavy"))
    light = None
    for i in range(3):  # 3 requests an hour apart, first seen 40 minutes in
        light, _ = det.process(light, Event(T0 + 2400 + 3600 * i, "light"))
    assert heavy is not None and light is not None
    assert not det.predates(heavy, heavy.last_ts - heavy.first_ts)
    assert det.predates(light, light.last_ts - light.first_ts)
    early = None
    for i in range(30):  # active from the stream's first minute
        early, _ = det.process(early, Event(T0 + 10 + 10 * i, "early"))
    assert early is not None and det.predates(early, early.last_ts - early.first_ts)


def test_a_busy_account_first_seen_a_minute_in_predates_a_stream_of_many() -> None:
    # ~3 requests a minute, first seen 80 s after the partition's first event: a
    # Poisson account already active is silent that long with probability
    # e^-4 (2%). Of the thousand accounts active when a partition starts, one in
    # twenty at e^-3 would be taken for new and read with a new account's
    # evidence; at e^-5, one in 150.
    def first_seen_at(cfg: DetectorConfig, offset: float, gap: float) -> bool:
        det = Detector(cfg)
        det.process(None, Event(T0, "first"))
        state = None
        for i in range(20):
            state, _ = det.process(state, Event(T0 + offset + gap * i, "acct"))
        assert state is not None
        return det.predates(state, state.last_ts - state.first_ts)

    assert first_seen_at(DetectorConfig(), 80.0, 20.0)
    assert not first_seen_at(DetectorConfig(fresh_gap_events=3.0), 80.0, 20.0)
    # the same account first seen 10 minutes in would have sent ~30: it is new
    assert not first_seen_at(DetectorConfig(), 600.0, 20.0)


# ----------------------------------------------------------- what it takes
def test_take_home_ramp_on_output_over_input_and_neutral_without_tokens() -> None:
    det = Detector()
    short = long_ = none = None
    for i in range(12):
        t = T0 + 10 * i
        short, _ = det.process(short, Event(t, "judge", input_tokens=2000, output_tokens=150))
        long_, _ = det.process(long_, Event(t, "harvest", input_tokens=40, output_tokens=900))
        none, _ = det.process(none, Event(t, "gateway"))
    assert short is not None and long_ is not None and none is not None
    ws = 2.0 ** ((short.last_ts - short.ref) / det.config.short_half_life_s)
    assert det._take(short, ws) == 0.0
    assert det._take(long_, ws) == 1.0
    assert det._take(none, ws) == 1.0


# ----------------------------------------------------------------- harvest
def test_harvest_is_led_by_the_ratio_and_absent_indicators_do_not_dilute_it() -> None:
    det = Detector()
    harvester = app = few = None
    for i in range(20):
        t = T0 + 10 * i
        # long answers to short questions; never at the limit, no thinking
        harvester, _ = det.process(harvester, Event(
            t, "h", input_tokens=40, output_tokens=1200, max_tokens=8192,
            stop_reason="end_turn", thinking=False))
        # an app that always hits its limit and thinks, with outputs like its inputs
        app, _ = det.process(app, Event(
            t, "a", input_tokens=500, output_tokens=512, max_tokens=512,
            stop_reason="max_tokens", thinking=True))
    for i in range(5):  # too few requests to judge
        few, _ = det.process(few, Event(T0 + 10 * i, "f", input_tokens=10, output_tokens=2000,
                                        max_tokens=2048, stop_reason="max_tokens"))
    assert harvester is not None and app is not None and few is not None
    ws = 2.0 ** ((harvester.last_ts - harvester.ref) / det.config.short_half_life_s)
    h = det._harvest(harvester, ws)
    assert 0.69 <= h <= 0.71  # the ratio's full ramp, others present but low
    assert det._harvest(app, ws) == 0.0
    ws_f = 2.0 ** ((few.last_ts - few.ref) / det.config.short_half_life_s)
    assert det._harvest(few, ws_f) == 0.0


# ---------------------------------------------------- stable history, judges
def test_an_established_tutor_does_not_page_but_a_new_account_doing_the_same_does() -> None:
    det = Detector()
    _warm(det)
    # the tutor has been working this way since the stream began (long answers,
    # templated step-by-step requests, ~20/h)
    tutor = _tutor_events("tutor", T0 + 20.0, 100, 180.0, out_tokens=700)
    # a brand-new account, first seen 3 h in, sends the same kind of traffic
    # at ~150/h: nothing in its history makes it the account's business
    newcomer = _tutor_events("newcomer", T0 + 3 * 3600.0, 200, 24.0, out_tokens=700, seed=2)
    merged = sorted(tutor + newcomer, key=lambda e: e.ts)
    states: dict[str, object] = {}
    fired: set[str] = set()
    for e in merged:
        states[e.account_id], out = det.process(states.get(e.account_id), e)  # type: ignore
        fired |= {a.account_id for a in out if a.status == "firing"}
    assert "tutor" not in fired
    assert "newcomer" in fired


SUBJECTS = ("algebra", "geometry", "statistics", "physics", "chemistry", "biology")


def _observed_score(topics: tuple[str, ...], *, burst: bool = False,
                    out_tokens: int = 300) -> float:
    """The score of a tutor-like account first seen 1 h into the stream (so it
    does not predate it), after 4 h of templated step-by-step requests at
    ~30/h; ``burst``: its last 10 minutes at ~1,800/h."""
    det = Detector()
    _warm(det)
    rng = random.Random(3)
    events = []
    t = T0 + 3600.0
    while t < T0 + 5 * 3600.0:
        events.append(Event(t, "acct", topic=rng.choice(topics),
                            prompt=TUTOR.format(q=_question(rng)), input_tokens=60,
                            output_tokens=out_tokens, max_tokens=4096,
                            stop_reason="end_turn"))
        fast = burst and t > T0 + 5 * 3600.0 - 600.0
        t += rng.expovariate(1.0 / (2.0 if fast else 120.0))
    state = None
    for e in events:
        state, _ = det.process(state, e)
    assert state is not None and not det.predates(state, state.last_ts - state.first_ts)
    return state.score


def test_a_tutor_observed_for_hours_at_a_steady_rate_over_a_broad_mix_is_its_business() -> None:
    cfg = DetectorConfig()
    broad = _observed_score(SUBJECTS)
    # the same language on one narrow topic (a low-and-slow harvest), in a burst
    # against the account's own rate, or with harvest-shaped answers keeps its weight
    narrow = _observed_score(("algebra",))
    burst = _observed_score(SUBJECTS, burst=True)
    harvest = _observed_score(SUBJECTS, out_tokens=1500)
    assert broad < cfg.fire_threshold
    assert narrow >= cfg.fire_threshold
    assert burst >= cfg.fire_threshold
    assert harvest >= cfg.fire_threshold


def _new_account_peak(topics: tuple[str, ...], gap: float, n: int = 12,
                      out_tokens: int = 300, cfg: DetectorConfig | None = None) -> float:
    """The highest score of an account first seen after the population warmed
    up, over its first ``n`` templated step-by-step requests ``gap`` s apart
    on average."""
    det = Detector(cfg)
    _warm(det)
    rng = random.Random(4)
    state = None
    peak = 0.0
    t = T0 + 13_000.0
    for i in range(n):
        t += rng.expovariate(1.0 / gap)  # Poisson arrivals: not machine-timed
        e = Event(t, "new", topic=topics[i % len(topics)],
                  prompt=TUTOR.format(q=_question(rng)), input_tokens=60,
                  output_tokens=out_tokens, max_tokens=4096, stop_reason="end_turn")
        state, _ = det.process(state, e)
        peak = max(peak, state.score)
    return peak


def test_template_and_reasoning_requests_reinforce_as_far_as_the_account_takes() -> None:
    fire = DetectorConfig().fire_threshold
    # a tutor app first seen minutes ago: ~30 requests an hour over six subjects
    assert _new_account_peak(SUBJECTS, 120.0) < fire
    # before (pair_alone = 1: the two always lent each other full context) it paged
    assert _new_account_peak(SUBJECTS, 120.0, cfg=DetectorConfig(pair_alone=1.0)) >= fire
    # the same language at a heavy rate, on one narrow topic, or taking home
    # harvest-shaped answers pages
    assert _new_account_peak(SUBJECTS, 3.0, n=40) >= fire
    assert _new_account_peak(("algebra",), 120.0) >= fire
    assert _new_account_peak(SUBJECTS, 120.0, n=30, out_tokens=1500) >= fire


def test_grading_with_short_verdicts_weighs_less_than_reasoning_with_long_answers() -> None:
    cfg = DetectorConfig()
    prompt = ("Please act as an impartial judge and grade the assistant's answer against the "
              "reference on a 1-10 scale, explaining your reasoning briefly. Answer: {a}")
    scores = {}
    for name, (inp, out) in {"judge": (1500, 120), "reasoner": (80, 1500)}.items():
        det = Detector(cfg)
        _warm(det)
        state = None
        rng = random.Random(5)
        peak = 0.0
        t = T0 + 4 * 3600.0
        for _ in range(120):
            t += rng.expovariate(1 / 20.0)  # Poisson arrivals, ~180/h
            ev = Event(t, name,
                       prompt=prompt.format(a=" ".join(rng.choice(WORDS) for _ in range(60))),
                       input_tokens=inp, output_tokens=out)
            state, _ = det.process(state, ev)
            peak = max(peak, state.score)
        scores[name] = peak
    assert scores["judge"] < cfg.fire_threshold
    assert scores["judge"] < scores["reasoner"]


def _morning_peak(topics: tuple[str, ...]) -> float:
    """The highest score, after school starts, of a tutor-like account first
    seen 1 h into the stream at night (~3 templated step-by-step requests an
    hour for 5 h), then at ~40 an hour for 1.5 h: a morning ramp of >= 4x its
    mean rate since first seen, at a rate ordinary for the population."""
    det = Detector()
    _warm(det)
    rng = random.Random(3)
    t = T0 + 3600.0
    morning = t + 5 * 3600.0
    state = None
    peak = 0.0
    while t < morning + 1.5 * 3600.0:
        e = Event(t, "acct", topic=rng.choice(topics), prompt=TUTOR.format(q=_question(rng)),
                  input_tokens=60, output_tokens=300, max_tokens=4096, stop_reason="end_turn")
        state, _ = det.process(state, e)
        if t > morning:
            peak = max(peak, state.score)
        t += rng.expovariate(1.0 / (1200.0 if t < morning else 90.0))
    return peak


def test_a_morning_ramp_without_volume_evidence_keeps_the_kept_language_discount() -> None:
    # A rise against the account's own mean since first seen is what a school
    # morning looks like to an account first seen at night; unless the rate is
    # also heavy for the population (volume evidence), language the account
    # has used all along stays its business. Before, the rise alone (not
    # "steady") took the discount away and the tutor paged at 0.84.
    fire = DetectorConfig().fire_threshold
    assert _morning_peak(SUBJECTS) < fire
    # the same ramp on one narrow topic (a low-and-slow harvest) still pages
    assert _morning_peak(("algebra",)) >= fire
