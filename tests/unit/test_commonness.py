"""Issue 18: a prompt fingerprint that a large share of the population sends
(common text) is not a linkage key; an operator's own template still is.

The text below is written for this test (not the simulator's corpora or
phrase lists): a public-question-set style closing sentence that many
unrelated accounts append, and one operator's harvesting template."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.cluster.summaries import SummaryEmitter
from detectors.commonness import PACKED, CommonFingerprints
from detectors.config import DetectorConfig
from detectors.engine import Detector
from detectors.errors import CorruptState, InvalidConfig
from detectors.schema import Event
from detectors.text import prompt_features

T0 = 1.8e9
CLOSING = "Please walk me slowly through each of the steps that lead you to that result."
QUESTIONS = [
    f"Why does a {a} {b} when the {c} is {d}?"
    for a in ("kettle", "bridge", "glacier", "violin", "rocket", "orchard")
    for b in ("hum", "sag", "crack", "drift")
    for c in ("air", "river", "night", "engine")
    for d in ("cold", "loud", "still")
]
TEMPLATE = ("[[harvest v2]] Produce a gold-standard answer with exhaustive derivation "
            "for item #{i}: {q} Output format: derivation, then answer, then confidence.")


def _anchor(text: str) -> int:
    return prompt_features(text)[4]


def _day(det: Detector, em: SummaryEmitter, commons: int, operators: int, quiet: int):
    """``commons`` accounts ask questions ending with the common sentence,
    ``operators`` accounts run one template, ``quiet`` accounts ask plain
    questions; every account 12 prompts over an hour. Returns the last
    summary of each account."""
    states: dict[str, object] = {}
    last: dict[str, object] = {}
    k = 0
    for step in range(12):
        t = T0 + step * 300.0
        for i in range(commons + operators + quiet):
            acct = f"acct-{i}"
            q = QUESTIONS[(i * 7 + step * 13) % len(QUESTIONS)]
            if i < commons:
                prompt = f"{q} {CLOSING}" if step % 2 == 0 else f"{CLOSING} {q}"
            elif i < commons + operators:
                prompt = TEMPLATE.format(i=k, q=q)
            else:
                prompt = q
            k += 1
            ev = Event(t + i * 0.5, acct, prompt=prompt)
            prev = getattr(states.get(acct), "last_ts", None)
            state, _ = det.process(states.get(acct), ev)
            states[acct] = state
            s = em.maybe_emit(det, prev, state, ev)
            if s is not None:
                last[acct] = s
    return last


def test_common_text_links_nobody_and_an_operators_template_still_does():
    det, em = Detector(), SummaryEmitter(interval_s=300)
    last = _day(det, em, commons=30, operators=4, quiet=66)
    common_fp = f"tmpl:{_anchor(f'{QUESTIONS[0]} {CLOSING}'):08x}"
    # the closing sentence carries the anchor of the prompts that end with it
    assert _anchor(f"{QUESTIONS[5]} {CLOSING}") == _anchor(f"{QUESTIONS[9]} {CLOSING}")
    n, total = det.common_fps.carriers(int(common_fp[5:], 16))
    assert (n, total) == (30, 100)
    assert det.common_fps.is_common(int(common_fp[5:], 16))
    # 30% of the accounts send it: it is a key of none of them
    assert not any(common_fp in s.keys for s in last.values())
    assert not any(int(common_fp[5:], 16) in s.fps for s in last.values())
    # the operator's template (4% of accounts) links its accounts
    op_keys = [set(k for k in last[f"acct-{i}"].keys if k.startswith("tmpl:"))
               for i in range(30, 34)]
    assert set.intersection(*op_keys)
    # off: the common sentence is a linkage key again
    off = Detector(DetectorConfig(common_fp_share=0.0))
    last_off = _day(off, SummaryEmitter(interval_s=300), commons=30, operators=4, quiet=66)
    assert any(common_fp in s.keys for s in last_off.values())


def test_the_table_survives_a_snapshot_and_old_snapshots_restore_empty():
    det, em = Detector(), SummaryEmitter(interval_s=300)
    _day(det, em, commons=30, operators=4, quiet=66)
    fp = _anchor(f"{QUESTIONS[0]} {CLOSING}")
    snap = det.snapshot()
    again = Detector()
    again.restore(snap)
    assert again.common_fps.is_common(fp) and again.snapshot() == snap
    old = orjson.loads(snap)
    del old["common_fps"]
    older = Detector()
    older.restore(orjson.dumps(old))
    assert not older.common_fps.is_common(fp) and len(older.common_fps) == 0
    for key, value in (("carriers", "AAA"), ("carriers", 5), ("counts", [1]),
                       ("fps", "!!!!"), ("format", 3)):
        bad = orjson.loads(snap)
        bad["common_fps"][key] = value
        with pytest.raises(CorruptState):
            Detector().restore(orjson.dumps(bad))


def test_the_table_is_packed_and_the_plain_layout_still_restores():
    # the snapshot is written with every checkpoint: packed, the table takes
    # about half the bytes of JSON lists, and a snapshot in the plain
    # layout (before PACKED) restores to the same table
    det, em = Detector(), SummaryEmitter(interval_s=300)
    _day(det, em, commons=30, operators=4, quiet=66)
    table = det.common_fps
    packed = table.to_json()
    assert packed["format"] == PACKED
    plain = {
        "window": table._window,
        "cur": sorted([[fp, sorted(s)] for fp, s in table._cur.items()]),
        "accounts": sorted(table._accounts),
        "prev": sorted([[fp, n] for fp, n in table._prev.items()]),
        "prev_accounts": table._prev_accounts,
    }
    assert len(table) > 100 and len(orjson.dumps(packed)) < 0.6 * len(orjson.dumps(plain))
    snap = det.snapshot()
    old = orjson.loads(snap)
    old["common_fps"] = plain
    again = Detector()
    again.restore(orjson.dumps(old))
    assert again.snapshot() == snap
    a = again.common_fps
    assert (a._cur, a._accounts, a._prev, a._size) == (table._cur, table._accounts,
                                                       table._prev, table._size)
    # fingerprints that are not 32-bit words keep the plain layout
    c = CommonFingerprints(share=0.2, min_carriers=3)
    c.observe(2**40, "a", 1.0)
    c.observe(-5, "b", 2.0)
    assert "format" not in c.to_json()
    d = CommonFingerprints(share=0.2, min_carriers=3)
    d.load_json(c.to_json())
    assert d.to_json() == c.to_json()


def test_windows_roll_and_a_common_fingerprint_stays_common_one_more_window():
    c = CommonFingerprints(share=0.2, min_carriers=3, window_s=100.0)
    for i in range(10):
        c.observe(7, f"a{i}", 10.0 + i)          # 10 of 10 accounts
    c.observe(8, "b", 150.0)                      # the next window
    assert c.is_common(7)                         # from the previous window
    c.observe(8, "b", 250.0)                      # two windows on
    assert not c.is_common(7)
    c.observe(9, "c", 1000.0)                     # a gap of many windows: nothing kept
    assert not c.is_common(7) and len(c) == 1


def test_memory_is_bounded():
    c = CommonFingerprints(share=0.5, min_carriers=2, max_entries=16, max_carriers=4)
    for i in range(5000):
        c.observe(i % 97, f"acct-{i}", 1.0 + i * 1e-3)
    assert len(c) <= 16
    assert all(len(s) <= 4 for s in c._cur.values())
    assert c._size == sum(len(s) for s in c._cur.values()) <= 8 * 16
    assert len(c._accounts) <= 4 / 0.5 + 2


def test_beyond_the_decidable_population_nothing_is_common():
    """A fingerprint keeps at most max_carriers senders: with more text
    accounts than max_carriers / share, no share can be decided."""
    c = CommonFingerprints(share=0.25, min_carriers=2, max_carriers=10)
    for i in range(30):
        c.observe(5 if i % 2 else 1000 + i, f"a{i}", 1.0)
    assert c.is_common(5)                       # 10 (capped) of 30 accounts
    for i in range(30, 60):
        c.observe(2000 + i, f"a{i}", 2.0)
    assert not c.is_common(5)                   # 41 accounts kept: past 10 / 0.25


@pytest.mark.parametrize("kwargs", [{"share": -0.1}, {"share": 2.0}, {"min_carriers": 1},
                                    {"window_s": 0.0}, {"max_entries": 3},
                                    {"min_carriers": 10, "max_carriers": 5}])
def test_invalid_parameters_fail_in_the_constructor(kwargs):
    with pytest.raises(ValueError):
        CommonFingerprints(**kwargs)


def test_invalid_config_fails_loudly():
    with pytest.raises(InvalidConfig):
        DetectorConfig(common_fp_share=1.5)
    with pytest.raises(InvalidConfig):
        DetectorConfig(common_fp_min_carriers=1)


accounts = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 40)), max_size=200)


@settings(max_examples=80, deadline=None)
@given(accounts, st.integers(1, 60))
def test_unrelated_accounts_never_make_a_fingerprint_common(sends, extra):
    """More accounts sending other text can only lower a fingerprint's share."""
    c = CommonFingerprints(share=0.1, min_carriers=2)
    for fp, who in sends:
        c.observe(fp, f"a{who}", 5.0)
    before = {fp: c.is_common(fp) for fp in range(6)}
    for j in range(extra):
        c.observe(1000 + j, f"other-{j}", 6.0)
    after = {fp: c.is_common(fp) for fp in range(6)}
    assert all(before[fp] or not after[fp] for fp in range(6))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 500))
def test_one_account_repeating_itself_is_one_carrier(n):
    c = CommonFingerprints(share=0.1, min_carriers=2)
    for i in range(n):
        c.observe(42, "same", float(i))
    assert c.carriers(42) == (1, 1) and not c.is_common(42)
