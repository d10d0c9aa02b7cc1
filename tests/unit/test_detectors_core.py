"""Unit and property tests of the detection core (issue 3)."""

from __future__ import annotations

import math
import random
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from river import drift

from detectors import text
from detectors.config import DetectorConfig
from detectors.engine import Detector
from detectors.errors import CorruptState, InvalidConfig
from detectors.models import DecayedQuantiles, PageHinkley, TopicMix
from detectors.replay import Replayer
from detectors.runner import PartitionRunner
from detectors.schema import Event
from detectors.state import AccountState
from detectors.text import TextTopics, agreement, normalize, prompt_features, topic_terms, units

T0 = 1_772_409_600.0
TEMPLATE = (
    "Here is a completed response to a user request. Imagine and articulate the internal "
    "reasoning behind the completed response, step by step. Request: "
)
TOPICS = [f"cat{c}/sub{s}" for c in range(6) for s in range(5)]


def varied_prompt(rng: random.Random) -> str:
    words = "data table user report invoice email summary order chart deploy budget".split()
    return " ".join(rng.choice(words) + str(rng.randint(0, 9)) for _ in range(rng.randint(6, 30)))


def feed(det: Detector, events: list[Event], state: AccountState | None = None):
    alerts = []
    for e in events:
        state, out = det.process(state, e)
        alerts.extend(out)
    return state, alerts


# ------------------------------------------------------------------ models
def test_page_hinkley_matches_river_exactly() -> None:
    rng = random.Random(3)
    data = [rng.gauss(0, 1) for _ in range(800)] + [rng.gauss(2, 1) for _ in range(800)]
    ours, theirs = PageHinkley(threshold=20.0), drift.PageHinkley(threshold=20.0)
    hits_ours, hits_theirs = [], []
    for i, x in enumerate(data):
        ours.update(x)
        theirs.update(x)
        if ours.drift_detected:
            hits_ours.append(i)
        if theirs.drift_detected:
            hits_theirs.append(i)
    assert hits_ours == hits_theirs and hits_ours


def test_page_hinkley_both_directions_and_state_roundtrip() -> None:
    ph = PageHinkley(min_instances=10, threshold=5.0)
    directions = []
    for x in [0.0] * 50 + [-3.0] * 20:
        ph.update(x)
        if ph.drift_detected:
            directions.append(ph.last_direction)
    assert directions and directions[0] == -1
    clone = PageHinkley(min_instances=10, threshold=5.0)
    clone.set_state(ph.state())
    assert clone.state() == ph.state()


def test_decayed_quantiles_uniform_and_decay() -> None:
    rng = random.Random(1)
    q = DecayedQuantiles(0.0, 1.0, bins=100, half_life_s=3600.0)
    for i in range(20_000):
        q.update(rng.random(), T0 + i * 0.1)
    assert abs(q.quantile(0.9) - 0.9) < 0.03
    assert abs(q.percentile(0.25) - 0.25) < 0.03
    # the newest data dominates after a shift
    for i in range(20_000):
        q.update(0.9 + 0.1 * rng.random(), T0 + 2000 + 36_000 + i * 0.1)
    assert q.quantile(0.1) > 0.85


def test_topic_mix_bounded() -> None:
    mix = TopicMix(half_life_s=600.0, max_topics=10)
    for i in range(1000):
        mix.update(i % 37 + 1, T0 + i)
    assert len(mix._c) <= 20
    assert all(math.isfinite(mix.log_prob(t)) and mix.log_prob(t) < 0 for t in range(1, 50))


# -------------------------------------------------------------------- text
def test_fingerprints_deterministic_across_processes() -> None:
    code = (
        "from detectors.text import prompt_features, fingerprint_topic;"
        "print(prompt_features('Grade this answer step by step: 12 apples')[:3],"
        " fingerprint_topic('coding/python'))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            cwd=Path(__file__).resolve().parents[2],
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Think step by step and show your work.", True),
        ("Score the candidate answer against the rubric below.", True),
        ("请一步一步地思考，并写出你完整的内部推理过程。", True),
        ("Piensa paso a paso y escribe tu razonamiento interno.", True),
        ("Summarize this support ticket for the agent: printer offline.", False),
        ("Translate to Spanish: the cat sat on the mat.", False),
    ],
)
def test_elicitation(prompt: str, expected: bool) -> None:
    assert prompt_features(prompt)[2] is expected


def _repeats(det: Detector, prompts: list[str]) -> float:
    """Share of prompts the detector counts as template repeats."""
    state = None
    for i, p in enumerate(prompts):
        state, _ = det.process(state, Event(T0 + i * 30.0, "t", topic="x", prompt=p))
    assert state is not None
    return state.tmpl_long / state.txt_long


def test_template_vs_short_app_prefix() -> None:
    rng = random.Random(5)
    attack = [prompt_features(TEMPLATE + f"{rng.randint(1, 99)} apples") for _ in range(5)]
    assert len({a[0] for a in attack}) == 1
    app = [prompt_features("Fix grammar: " + varied_prompt(rng)) for _ in range(50)]
    assert len({a[0] for a in app}) == 50


def test_template_survives_random_affixes_and_wrapper_is_not_a_template() -> None:
    rng = random.Random(7)
    junk = "zebra quartz lemon violet copper maple ember onyx tulip falcon".split()
    slots = "apples pears trains rivers proofs loops graphs queues sorts heaps".split()
    # a harvest template with a random word glued to each end: head/tail CRCs differ
    # every time; the sketches still agree
    affixed = [f"{rng.choice(junk)}{rng.randint(0, 99)} {TEMPLATE}{rng.choice(slots)} "
               f"{rng.choice(slots)} {rng.choice(junk)}" for _ in range(40)]
    assert _repeats(Detector(), affixed) > 0.8
    # an app's long fixed wrapper (~1,100 characters) around long varied content
    wrapper = ("You are the support assistant of Acme Cloud. Answer only from the context "
               "below; cite the document id; if the context does not contain the answer, "
               "say so and suggest contacting support. Keep a friendly, concise tone. ") * 4
    vocab = ("invoice deploy cluster billing region latency quota storage bucket token "
             "rotate certificate outage dashboard alert metric replica backup restore "
             "migrate schema index query cache").split()
    wrapped = [wrapper + "Context: " + " ".join(rng.choice(vocab) for _ in range(120))
               + " Question: " + " ".join(rng.choice(vocab) for _ in range(12))
               for _ in range(40)]
    assert _repeats(Detector(), wrapped) < 0.1
    # unrelated prompts never repeat
    assert _repeats(Detector(), [varied_prompt(rng) for _ in range(40)]) < 0.05


def test_text_topics_bounded_and_deterministic() -> None:
    rng = random.Random(2)
    prompts = [varied_prompt(rng) for _ in range(500)]
    a, b = TextTopics(max_topics=8), TextTopics(max_topics=8)
    ids_a = [a.assign(topic_terms(units(normalize(p)))) for p in prompts]
    ids_b = [b.assign(topic_terms(units(normalize(p)))) for p in prompts]
    assert ids_a == ids_b
    assert len(set(ids_a)) <= 8
    c = TextTopics(max_topics=8)
    c.load_json(a.to_json())
    assert c.to_json() == a.to_json()


# ---------------------------------------------------------------- features
def test_entropy_collapse_and_sweep() -> None:
    det = Detector()
    narrow, _ = feed(det, [Event(T0 + i, "n", topic="math/algebra") for i in range(50)])
    broad, _ = feed(det, [Event(T0 + i, "b", topic=TOPICS[i % 30]) for i in range(300)])
    dn, db = det.describe(narrow), det.describe(broad)
    assert dn["entropy_short"] == 0.0 and dn["top_share_short"] == 1.0
    assert db["entropy_short"] > 0.97 and db["top_share_short"] < 0.15


def test_rate_decays_monotonically_without_events() -> None:
    det = Detector()
    state, _ = feed(det, [Event(T0 + i * 2, "a", topic="x/y") for i in range(100)])
    rates = [det.features(state, T0 + 200 + k * 60)["rate_per_min"] for k in range(30)]
    assert all(b <= a for a, b in zip(rates, rates[1:], strict=False))
    assert rates[-1] < rates[0]


def test_bias_corrected_rate_of_new_account() -> None:
    det = Detector()
    state, _ = feed(det, [Event(T0 + i * 6, "a", topic="x/y") for i in range(100)])
    assert det.describe(state)["rate_per_min"] == pytest.approx(10.0, rel=0.1)


def test_regular_timing_lowers_cv() -> None:
    det = Detector()
    rng = random.Random(4)
    reg, _ = feed(det, [Event(T0 + i * 10, "r", topic="x/y") for i in range(60)])
    t, evs = T0, []
    for _ in range(60):
        t += rng.expovariate(0.1)
        evs.append(Event(t, "p", topic="x/y"))
    poi, _ = feed(det, evs)
    assert det.describe(reg)["interarrival_cv"] < 0.05 < 0.6 < det.describe(poi)["interarrival_cv"]


# --------------------------------------------------------------- decisions
def test_templated_extractor_fires_once_then_resolves() -> None:
    det = Detector()
    runner = PartitionRunner(det)
    evs = [
        Event(T0 + i * 3, "x", topic="math/algebra", prompt=TEMPLATE + f"{i} apples",
              input_tokens=300, output_tokens=1200)
        for i in range(200)
    ]
    alerts = [a for e in evs for a in runner.process(e)]
    alerts += runner.process(Event(T0 + 4000, "other", topic="a/b"))
    assert [a.status for a in alerts] == ["firing", "resolved"]
    fire = alerts[0]
    assert fire.ts < T0 + 30 and fire.severity in ("warning", "error", "critical")
    assert "template" in fire.details["reasons"]
    assert fire.alert_id != alerts[1].alert_id
    assert fire.episode_start == alerts[1].episode_start


def test_narrow_heavy_app_with_varied_prompts_does_not_fire() -> None:
    det = Detector()
    rng = random.Random(9)
    t, evs = T0, []
    for _ in range(3000):  # ~2 requests/s, Poisson, one topic, fixed short instruction
        t += rng.expovariate(2.0)
        prompt = "Summarize this support ticket for the agent: " + varied_prompt(rng)
        evs.append(Event(t, "app", topic="support/customer-service", prompt=prompt,
                         input_tokens=800, output_tokens=200))
    _, alerts = feed(det, evs)
    assert alerts == []


def test_no_prompt_text_in_alerts_or_describe() -> None:
    det = Detector()
    secret = "SECRETWORD"
    evs = [Event(T0 + i, "x", topic="m/a", prompt=TEMPLATE + secret) for i in range(60)]
    state, alerts = feed(det, evs)
    assert alerts
    blob = repr([a.to_record() for a in alerts]) + repr(det.describe(state))
    assert secret not in blob and "articulate" not in blob


def test_idle_expiry_and_next_due() -> None:
    det = Detector(DetectorConfig(idle_ttl_s=100.0))
    state, _ = det.process(None, Event(T0, "a", topic="x/y"))
    assert det.next_due(state) == T0 + 100.0
    kept, _ = det.expire(state, T0 + 50)
    assert kept is state
    gone, alerts = det.expire(state, T0 + 100)
    assert gone is None and alerts == []


def _stream(seed: int) -> list[Event]:
    rng = random.Random(seed)
    evs = []
    t = T0
    for i in range(4000):
        t += rng.expovariate(2.0)
        a = rng.randrange(60)
        prompt = TEMPLATE + str(i) if a < 3 else varied_prompt(rng)
        evs.append(Event(t, f"acct{a}", topic=TOPICS[(a + rng.randrange(3)) % 30] if a % 7
                         else None, prompt=prompt, input_tokens=100, output_tokens=300))
    return evs


def test_replay_is_deterministic_byte_for_byte() -> None:
    evs = _stream(11)
    runs = []
    for _ in range(2):
        rep = Replayer(Detector, partitions=4)
        runs.append([a.to_record() for a in rep.run(evs)])
    assert runs[0] == runs[1] and runs[0]


class _FullScan:
    """The same detector without next_due: the runner falls back to a full scan."""

    def __init__(self) -> None:
        self.inner = Detector(DetectorConfig(idle_ttl_s=300.0, quiet_period_s=120.0))

    def process(self, state, event):  # type: ignore[no-untyped-def]
        return self.inner.process(state, event)

    def expire(self, state, watermark):  # type: ignore[no-untyped-def]
        return self.inner.expire(state, watermark)


def test_sublinear_sweep_equals_full_scan() -> None:
    evs = _stream(12)
    fast = PartitionRunner(Detector(DetectorConfig(idle_ttl_s=300.0, quiet_period_s=120.0)))
    slow = PartitionRunner(_FullScan())
    out_fast = [a.to_record() for e in evs for a in fast.process(e)]
    out_slow = [a.to_record() for e in evs for a in slow.process(e)]
    assert out_fast == out_slow
    assert sorted(fast.states) == sorted(slow.states)


def test_snapshot_restore_roundtrip() -> None:
    det = Detector()
    feed(det, _stream(13)[:1000])
    snap = det.snapshot()
    other = Detector()
    other.restore(snap)
    assert other.snapshot() == snap
    with pytest.raises(CorruptState):
        other.restore(b"{not json")


# ------------------------------------------------------------------ config
def test_default_toml_matches_defaults_and_rejects_unknown() -> None:
    path = Path(__file__).resolve().parents[2] / "detectors" / "default_config.toml"
    data = tomllib.loads(path.read_text())
    assert DetectorConfig.from_mapping(data) == DetectorConfig()
    assert DetectorConfig.from_mapping(DetectorConfig().to_mapping()) == DetectorConfig()
    with pytest.raises(InvalidConfig, match="unknown section"):
        DetectorConfig.from_mapping({"nope": {}})
    with pytest.raises(InvalidConfig, match="hot_threshold"):
        DetectorConfig.from_mapping({"score": {"hot_threshold": 0.9, "fire_threshold": 0.8}})
    with pytest.raises(InvalidConfig, match="max_tracked_topics"):
        DetectorConfig(max_tracked_topics=1000)


# -------------------------------------------------------------- properties
hostile = st.text(
    alphabet=st.characters(blacklist_categories=()), min_size=0, max_size=400
)
events_strategy = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=5000.0, allow_nan=False),
        st.one_of(st.none(), hostile),
        st.one_of(st.none(), hostile),
        st.one_of(st.none(), st.integers(min_value=0, max_value=10_000_000)),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events_strategy, hostile.filter(lambda s: 0 < len(s) <= 256))
def test_hostile_streams_never_crash_and_state_roundtrips(data, account_id) -> None:  # type: ignore[no-untyped-def]
    det = Detector()
    state = None
    for dt, topic, prompt, tokens in data:
        state, alerts = det.process(
            state, Event(T0 + dt, account_id, topic=topic, prompt=prompt, input_tokens=tokens)
        )
        for a in alerts:
            a.to_record()
        d = det.describe(state)
        if "entropy_short" in d:
            assert 0.0 <= d["entropy_short"] <= 1.0 and 0.0 <= d["entropy_long"] <= 1.0
        assert 0.0 <= state.score <= 1.0
    assert state is not None
    blob = state.encode()
    again = AccountState.decode(blob)
    assert again.encode() == blob and again == state


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_decode_garbage_raises_corrupt_state_only(blob: bytes) -> None:
    try:
        AccountState.decode(blob)
    except CorruptState:
        pass


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(TOPICS), min_size=1, max_size=200))
def test_entropy_in_unit_interval(topics: list[str]) -> None:
    det = Detector()
    state = None
    for i, topic in enumerate(topics):
        state, _ = det.process(state, Event(T0 + i * 7.0, "a", topic=topic))
        d = det.describe(state)
        assert 0.0 <= d["entropy_short"] <= 1.0
        assert 0.0 < d["top_share_short"] <= 1.0


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1e6, allow_nan=False), min_size=1, max_size=50))
def test_truncated_state_is_corrupt(cuts: list[float]) -> None:
    det = Detector()
    state, _ = feed(det, [Event(T0 + i, "a", topic="x/y", prompt="p") for i in range(5)])
    blob = state.encode()
    for c in cuts:
        k = int(c) % len(blob)
        with pytest.raises(CorruptState):
            AccountState.decode(blob[:k])


# The hand-inlined per-event path against the straightforward one:
# tests/oracles/test_detector_oracle.py.


_PROMPT_ALPHABET = st.sampled_from(
    list("abcXYZ019 .,!?-|_\n\t\x0b\u00a0\u2028\u00df\u0130\uff21") + ["step", " by ",
    "Step", "chain of thought", "REASONING", "grade", " the ", "rubric", "paso a paso",
    "шаг за шагом", "Étape par étape", "一步一步", "推理", "ไทย", "think", " through",
    "\ud800", "show your work", "explain"]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PROMPT_ALPHABET, max_size=400).map("".join), st.integers(1, 120))
def test_prompt_features_total_and_ascii_fast_path(prompt: str, scan: int) -> None:
    # any text (lone surrogates, every separator, scripts without spaces) gives a
    # sketch without a 0 word, and the ASCII fast path's units are the regular
    # expression's
    sk, size, elicit, terms, anchor = prompt_features(prompt, scan)
    assert anchor > 0
    assert len(sk) == 4 and all(0 < w < 2**32 for w in sk)
    assert size >= 0 and isinstance(elicit, bool) and len(terms) <= text.TOPIC_TERMS
    norm = normalize(prompt, scan)
    if norm.isascii():
        fast = norm.encode("ascii").translate(text._ASCII_SEP).split()
        assert [b.decode() for b in fast] == units(norm)
    assert agreement(*sk, *sk) == 16


# ----------------------------------------- AccountState's array look-ups
# detectors.state.find / argmin / maximum against what the array module says
# (the C kernels of detectors/_arrays.c when compiled, else the Python itself)
_U32 = st.integers(0, 2**32 - 1)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_U32, st.sampled_from([0, 1, 2**32 - 1])), max_size=64),
       st.one_of(_U32, st.integers(-2**70, 2**70)))
def test_array_find_matches_the_array_module(items: list[int], value: int) -> None:
    from array import array

    from detectors.state import find

    arr = array("I", items)
    expected = arr.index(value) if value in arr else -1
    assert find(arr, value) == expected
    for i, item in enumerate(items):  # every item, also repeated ones: the first index
        assert find(arr, item) == items.index(item) <= i


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=False), st.sampled_from([0.0, -0.0, 1.0])),
                min_size=1, max_size=64))
def test_array_argmin_and_maximum_match_the_array_module(items: list[float]) -> None:
    from array import array

    from detectors.state import argmin, maximum

    arr = array("d", items)
    assert argmin(arr) == arr.index(min(arr))
    top = maximum(arr)
    assert top == max(arr) and math.copysign(1.0, top) == math.copysign(1.0, max(arr))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_U32, st.sampled_from([0, 1, 0x01010101, 2**32 - 1])),
                max_size=16).map(lambda xs: xs * 4),
       st.tuples(*[st.one_of(_U32, st.integers(-2**70, 2**70))] * 4))
def test_best_agreement_matches_agreement_over_the_ring(
    words: list[int], sk: tuple[int, int, int, int]
) -> None:
    from array import array

    from detectors.state import best_agreement
    from detectors.text import agreement

    ring = array("I", words)  # a multiple of four words, as AccountState's
    expected = max([agreement(*sk, *words[i:i + 4]) for i in range(0, len(words), 4)
                    if words[i]], default=0)
    assert best_agreement(ring, sk) == expected
    # a sketch equal to a non-empty slot agrees in all 16 bins
    for i in range(0, len(words), 4):
        if words[i]:
            assert best_agreement(ring, (words[i], words[i + 1], words[i + 2],
                                         words[i + 3])) == 16


def test_array_kernels_run_in_c_when_compiled_and_refuse_other_arrays() -> None:
    from array import array

    import detectors
    from detectors import state

    assert (state._C_FIND is not None) == (detectors.NATIVE == "on")
    assert (state._C_BEST is not None) == (detectors.NATIVE == "on")
    if (state._C_FIND is None or state._C_ARGMIN is None or state._C_MAXIMUM is None
            or state._C_BEST is None):
        return
    with pytest.raises(TypeError, match=r"array\('I'\)"):
        state._C_BEST(array("Q", [1, 2, 3, 4]), (1, 2, 3, 4))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tuple of 4"):
        state._C_BEST(array("I", [1, 2, 3, 4]), (1, 2, 3))  # type: ignore[arg-type]
    with pytest.raises(IndexError):  # a short last slot, as the Python reads it
        state._C_BEST(array("I", [1, 2, 3, 4, 5]), (1, 2, 3, 4))
    with pytest.raises(TypeError, match=r"array\('I'\)"):
        state._C_FIND(array("i", [1]), 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"array\('d'\)"):
        state._C_ARGMIN(array("f", [1.0]))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        state._C_MAXIMUM(array("d"))


# ----------------------------------------------- event time going backwards
@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-400 * 86_400.0, 400 * 86_400.0, allow_nan=False),
                min_size=1, max_size=60))
def test_out_of_order_event_times_never_break_the_detector(offsets: list[float]) -> None:
    """Events of one account in any time order, up to a year apart (late
    log shipping, clock skew): every event is processed, features stay finite,
    and the account's clock never runs backwards."""
    det = Detector()
    state = None
    last = -math.inf
    for i, off in enumerate(offsets):
        event = Event(ts=1_780_000_000.0 + off, account_id="acct", topic=f"t{i % 3}",
                      prompt=f"solve {i} step by step", input_tokens=10, output_tokens=20)
        state, alerts = det.process(state, event)
        assert state.last_ts >= last
        last = state.last_ts
        for alert in alerts:
            assert alert.status in ("firing", "resolved")
        assert all(math.isfinite(v) for v in det.describe(state).values()
                   if isinstance(v, float))


def test_late_event_counts_at_the_accounts_latest_time() -> None:
    det = Detector()
    t0 = 1_780_000_000.0
    state = None
    for i in range(20):
        state, _ = det.process(state, Event(ts=t0 + i, account_id="a", topic="math"))
    assert state is not None
    before = state.last_ts
    state, _ = det.process(state, Event(ts=t0 - 120 * 86_400, account_id="a", topic="math"))
    assert state.last_ts == before and state.n == 21


# ------------------------------------- the cached day of Detector.process
# ``t % 86_400.0`` and ``t // 3600.0`` (fmods of large floats) come from the
# cached UTC day; the hour slot and hour index must be those of the direct
# formulas for every time: at and next to hour and day boundaries, after jumps
# of days or backwards (a late event counts at the account's latest time)
_BOUNDARY = st.integers(946_684_800 // 3600, 4_102_444_800 // 3600).map(lambda h: h * 3600.0)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(
    st.floats(946_684_800.0, 4_102_444_800.0),
    _BOUNDARY,
    _BOUNDARY.map(lambda x: math.nextafter(x, -math.inf)),
    _BOUNDARY.map(lambda x: math.nextafter(x, math.inf)),
), min_size=1, max_size=30))
def test_hour_slot_and_index_are_the_direct_formulas(times: list[float]) -> None:
    from detectors.engine import Detector

    det = Detector()
    state = None
    latest = -math.inf
    for t in times:
        state, _ = det.process(state, Event(t, "a", topic="x"))
        latest = max(latest, t)  # a late event counts at the account's latest time
        assert state.hour_idx == int(latest // 3600.0)
        assert state.hours[int(latest % 86_400.0) // 3600] > 0.0
    for t in (0.0, 5e-324, 86_399.99, -1.0, -86_400.0, 2.0**52 + 86_400.0, 1e300):
        assert det._new_day(t) == (int(t % 86_400.0) // 3600, int(t // 3600.0))
