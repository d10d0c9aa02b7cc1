"""The traffic simulator: determinism, labels vs events, rates and shares."""

from __future__ import annotations

import gzip
import io
import statistics
from collections import Counter, defaultdict
from typing import Any

import orjson
import pytest

from detectors.schema import parse_event, parse_ts
from simulator import topics as T
from simulator.attacks import CLASSIC_FAMILIES as FAMILIES
from simulator.attacks import FAMILIES as ALL_FAMILIES
from simulator.attacks import Params, hydra_size
from simulator.core import MODEL_NEW, MODELS_BASE
from simulator.population import BENIGN_KINDS
from simulator.simulate import parse_attacks, simulate, write_events

N_ACCOUNTS = 200
ATTACKS = {f: 2 for f in FAMILIES} | {"hydra": 1, "hydra_cover": 1}


@pytest.fixture(scope="module")
def sim() -> Any:
    return simulate(seed=7, hours=5, accounts=N_ACCOUNTS, attacks=ATTACKS)


@pytest.fixture(scope="module")
def events(sim: Any) -> list[dict[str, Any]]:
    return list(sim.events)


@pytest.fixture(scope="module")
def by_account(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ev in events:
        out[ev["account_id"]].append(ev)
    return out


def _bytes(seed: int, batch: int | None = None) -> bytes:
    s = simulate(seed=seed, hours=1.5, accounts=60, attacks="extractor:1,hydra_cover:1,sweep:1")
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        write_events(s.events, gz, batch=batch)  # type: ignore[arg-type]
    return raw.getvalue() + orjson.dumps(s.labels) + orjson.dumps(s.truth)


def test_byte_identical_for_a_seed() -> None:
    a, b = _bytes(3), _bytes(3)
    assert a == b
    assert a != _bytes(4)


def test_events_reiterate_identically(sim: Any, events: list[dict[str, Any]]) -> None:
    assert list(sim.events) == events


def test_batch_form_holds_the_same_events(tmp_path: Any) -> None:
    from simulator.cli import main

    plain, batched = tmp_path / "e.jsonl.gz", tmp_path / "b.jsonl"
    args = [
        "simulate",
        "--hours",
        "1",
        "--accounts",
        "30",
        "--attacks",
        "extractor:1",
        "--seed",
        "5",
    ]
    assert main([*args, "--out", str(plain), "--labels", str(tmp_path / "l.jsonl")]) == 0
    assert (
        main([*args, "--out", str(batched), "--labels", str(tmp_path / "l2.jsonl"), "--batch", "7"])
        == 0
    )
    one = [orjson.loads(x) for x in gzip.open(plain).read().splitlines()]
    lines = batched.read_bytes().splitlines()
    arrays = [orjson.loads(x) for x in lines]
    assert all(isinstance(a, list) and 1 <= len(a) <= 7 for a in arrays)
    assert [e for a in arrays for e in a] == one
    assert (tmp_path / "l.jsonl").read_bytes() == (tmp_path / "l2.jsonl").read_bytes()
    truth = [orjson.loads(x) for x in (tmp_path / "l.accounts.jsonl").read_bytes().splitlines()]
    assert {r["kind"] for r in truth} >= {"regular", "extractor"}


def test_event_time_order_and_schema(events: list[dict[str, Any]]) -> None:
    ts = [parse_event(e).ts for e in events]
    assert ts == sorted(ts)
    assert len({e["request_id"] for e in events}) == len(events)
    e = events[0]
    assert set(e) == {
        "ts",
        "account_id",
        "request_id",
        "model",
        "topic",
        "prompt",
        "input_tokens",
        "output_tokens",
        "org_id",
        "api_key_id",
        "ip",
        "user_agent",
        "payment_fingerprint",
    }


def test_parse_attacks() -> None:
    assert parse_attacks("none", 100) == {}
    assert parse_attacks("sweep:4,hydra:0", 100) == {"sweep": 4}
    assert set(parse_attacks("all", 1000)) == set(FAMILIES)  # the classic mix's default
    assert set(parse_attacks("all", 1000, "production")) == set(ALL_FAMILIES)
    assert parse_attacks("plain_harvest:3", 100) == {"plain_harvest": 3}
    with pytest.raises(ValueError):
        parse_attacks("ddos", 100)


def test_taxonomy_shape() -> None:
    assert 30 <= len(T.TOPICS) <= 60
    assert all(t.count("/") == 1 for t in T.TOPICS)
    assert set(T.HIGH_VALUE) >= {"agentic/tool-use", "coding/python", "math/algebra"}


# ------------------------------------------------------------ labels/events ---


def test_every_label_has_events_inside_its_window(
    sim: Any, by_account: dict[str, list[dict[str, Any]]]
) -> None:
    assert {lab["attack"] for lab in sim.labels} == set(FAMILIES)
    for lab in sim.labels:
        start, end = parse_ts(lab["start"]), parse_ts(lab["end"])
        assert start < end
        inside = [e for e in by_account[lab["account_id"]] if start <= parse_ts(e["ts"]) <= end]
        assert len(inside) >= 2, lab
        assert sim.account_kinds[lab["account_id"]] == lab["attack"]
        assert ("campaign" in lab) == lab["attack"].startswith("hydra")
    labelled = {lab["account_id"] for lab in sim.labels}
    for acct, kind in sim.account_kinds.items():
        assert (kind in FAMILIES) == (acct in labelled)
        if kind not in FAMILIES:
            assert kind in BENIGN_KINDS


def _attack_events(
    sim: Any, by_account: dict[str, list[dict[str, Any]]], family: str
) -> dict[str, list]:
    out = {}
    for lab in sim.labels:
        if lab["attack"] == family:
            s, e = parse_ts(lab["start"]), parse_ts(lab["end"])
            out[lab["account_id"]] = [
                x for x in by_account[lab["account_id"]] if s <= parse_ts(x["ts"]) <= e
            ]
    return out


@pytest.mark.parametrize(
    "family", ["extractor", "low_and_slow", "model_pivot", "takeover", "hydra"]
)
def test_extraction_traffic_is_narrow_high_value_and_templated(sim, by_account, family) -> None:
    for acct, evs in _attack_events(sim, by_account, family).items():
        topics = Counter(e["topic"] for e in evs)
        assert set(topics) <= set(T.HIGH_VALUE)
        assert len(topics) <= 2
        assert statistics.mean(T.is_elicitation(e["prompt"]) for e in evs) >= 0.2
        assert _dup_score([e["prompt"] for e in evs]) > 0.3, acct


def test_cot_coercion_prompts_elicit_reasoning_and_some_are_not_english(sim, by_account) -> None:
    for evs in _attack_events(sim, by_account, "cot_coercion").values():
        assert all(T.is_elicitation(e["prompt"]) for e in evs)
        non_ascii = statistics.mean(not e["prompt"].isascii() for e in evs)
        assert 0.1 <= non_ascii <= 0.6  # i18n share 0.4, French/Portuguese partly ASCII
        assert set(e["topic"] for e in evs) <= set(T.REASONING_TOPICS)


def test_sweep_is_uniform_over_every_topic(sim, by_account) -> None:
    for evs in _attack_events(sim, by_account, "sweep").values():
        counts = Counter(e["topic"] for e in evs)
        assert len(evs) > 2 * len(T.TOPICS)
        # shuffled full cycles: every topic within one of every other
        assert set(counts) == set(T.TOPICS) and max(counts.values()) - min(counts.values()) <= 1


def test_takeover_account_was_benign_before(sim, by_account) -> None:
    for lab in sim.labels:
        if lab["attack"] != "takeover":
            continue
        start = parse_ts(lab["start"])
        before = [e for e in by_account[lab["account_id"]] if parse_ts(e["ts"]) < start]
        after = [e for e in by_account[lab["account_id"]] if parse_ts(e["ts"]) >= start]
        assert before, "an established account"
        assert _dup_score([e["prompt"] for e in before]) < 0.15
        hours_before = (start - parse_ts(before[0]["ts"])) / 3600
        hours_after = (parse_ts(lab["end"]) - start) / 3600
        assert len(after) / hours_after > 10 * len(before) / max(hours_before, 1)


def test_model_pivot_moves_about_half_to_the_new_model(sim, by_account) -> None:
    p = Params()
    for lab in sim.labels:
        if lab["attack"] != "model_pivot":
            continue
        pivot = parse_ts(lab["pivot"])
        evs = by_account[lab["account_id"]]
        assert not any(e["model"] == MODEL_NEW for e in evs if parse_ts(e["ts"]) < pivot)
        late = [e for e in evs if parse_ts(e["ts"]) >= parse_ts(lab["end"]) - 1800]
        share = statistics.mean(e["model"] == MODEL_NEW for e in late)
        assert p.pivot_share[0] - 0.2 <= share <= p.pivot_share[1] + 0.2


def test_new_model_appears_mid_run_and_is_adopted_gradually(sim, events) -> None:
    release = sim.timeline.release
    benign = {a for a, k in sim.account_kinds.items() if k not in FAMILIES}
    before = [e for e in events if parse_ts(e["ts"]) < release]
    assert before and all(e["model"] in MODELS_BASE for e in before)
    late = [
        e
        for e in events
        if parse_ts(e["ts"]) > sim.timeline.t1 - 3600
        and e["account_id"] in benign
        and sim.account_kinds[e["account_id"]] in ("regular", "org_member")
    ]
    share = statistics.mean(e["model"] == MODEL_NEW for e in late)
    assert 0.0 < share < 0.25


# ----------------------------------------------------------- rates, shares ---


def test_hydra_members_share_cards_ranges_client_and_start_together(sim, by_account) -> None:
    p = Params()
    camps: dict[str, list[str]] = defaultdict(list)
    for lab in sim.labels:
        if "campaign" in lab:
            camps[lab["campaign"]].append(lab["account_id"])
    assert len(camps) == 2
    for members in camps.values():
        assert len(members) == hydra_size(N_ACCOUNTS)
        evs = [e for m in members for e in by_account[m]]
        assert len({e["payment_fingerprint"] for e in evs}) <= p.hydra_cards
        assert len({e["ip"].rsplit(".", 1)[0] for e in evs}) <= p.hydra_prefixes
        assert len({e["user_agent"] for e in evs}) == 1
        assert len({e["org_id"] for e in evs}) == len(members)  # registered separately
        starts = sorted(
            parse_ts(lab["start"]) for lab in sim.labels if lab["account_id"] in members
        )
        assert (
            starts[-1] - starts[0] < 3600
        )  # synchronized (aggregate rate / members, jitter 5 min)
        # every member is unremarkable on its own: within the benign-looking rate range
        for m in members:
            lab = next(x for x in sim.labels if x["account_id"] == m)
            hours = (parse_ts(lab["end"]) - parse_ts(lab["start"])) / 3600
            n = len(_attack_events(sim, by_account, lab["attack"])[m])
            assert n / hours < 3 * p.hydra_member_rate[1]


def test_hydra_cover_mixes_in_unrelated_traffic(sim, by_account) -> None:
    p = Params()
    members = [lab["account_id"] for lab in sim.labels if lab["attack"] == "hydra_cover"]
    evs = [e for m in members for e in by_account[m]]
    hv = statistics.mean(T.is_elicitation(e["prompt"]) for e in evs)
    narrow = Counter(e["topic"] for e in evs).most_common(1)[0][1] / len(evs)
    assert narrow < 1 - p.hydra_cover_share / 2  # the campaign topic no longer dominates outright
    assert len({e["topic"] for e in evs}) > 15
    assert 0 < hv < 1


def test_org_members_share_card_ip_range_and_org(sim, by_account) -> None:
    orgs: dict[str, list[str]] = defaultdict(list)
    for r in sim.truth:
        if r["kind"] == "org_member":
            orgs[r["org_id"]].append(r["account_id"])
    assert orgs and all(len(m) >= 3 for m in orgs.values())
    for members in orgs.values():
        evs = [e for m in members for e in by_account.get(m, [])]
        assert len({e["payment_fingerprint"] for e in evs}) == 1
        assert len({e["ip"].rsplit(".", 1)[0] for e in evs}) == 1


@pytest.fixture(scope="module")
def day() -> Any:
    """A full benign day, so every account sees its local day and night."""
    s = simulate(seed=11, hours=24, accounts=250, attacks="none")
    return s, list(s.events)


def test_benign_volume_is_diurnal(day) -> None:
    """Day (10-16 h local) vs night (1-5 h local) request rate of ordinary accounts."""
    s, events = day
    accts = {a.account_id: a for a in s.accounts if a.kind in ("regular", "org_member")}
    hours: Counter[int] = Counter()
    for e in events:
        a = accts.get(e["account_id"])
        if a is not None:
            hours[int((parse_ts(e["ts"]) / 3600 + a.tz) % 24)] += 1
    day_rate = sum(hours[h] for h in range(10, 16)) / 6
    night_rate = sum(hours[h] for h in range(1, 5)) / 4
    assert day_rate / night_rate > 4


def test_account_sizes_are_heavy_tailed(day) -> None:
    s, events = day
    counts = Counter(e["account_id"] for e in events)
    sizes = sorted((counts.get(a, 0) for a, k in s.account_kinds.items()), reverse=True)
    per_hour = [n / 24 for n in sizes]
    med = statistics.median(per_hour)
    assert med < 10  # most accounts send a handful an hour
    assert per_hour[0] > 100 * med  # a few send hundreds to thousands
    top = sizes[: len(sizes) // 20]
    assert sum(top) > 0.5 * sum(sizes)  # top 5% carry most of the volume
    # ordinary accounts span narrow to broad topic mixes
    breadths: Counter[str] = Counter()
    for a in s.accounts:
        if a.kind == "regular":
            k = sum(1 for w in a.phases[0][0][1].weights if w > 0.02)
            breadths["narrow" if k <= 2 else "broad" if k >= 7 else "mid"] += 1
    assert min(breadths.values()) >= 10


def test_attack_rates_match_their_parameters(sim, by_account) -> None:
    p = Params()
    ranges = {
        "extractor": p.extractor_rate,
        "low_and_slow": p.low_slow_rate,
        "sweep": p.sweep_rate,
        "cot_coercion": p.cot_rate,
        "model_pivot": p.pivot_rate,
        "takeover": p.takeover_rate,
    }
    for fam, (lo, hi) in ranges.items():
        for evs in _attack_events(sim, by_account, fam).values():
            hours = (parse_ts(evs[-1]["ts"]) - parse_ts(evs[0]["ts"])) / 3600
            rate = len(evs) / hours
            slack = 3 * (rate * hours) ** 0.5 / hours  # Poisson noise
            assert lo - slack <= rate <= hi + slack, (fam, rate)


def test_benign_prompts_are_varied_attack_prompts_templated(sim, by_account) -> None:
    benign = [evs for a, evs in by_account.items() if sim.account_kinds[a] == "narrow_app"]
    for evs in benign:
        assert _dup_score([e["prompt"] for e in evs[:200]]) < 0.2
    regular = [
        e["prompt"]
        for a, evs in by_account.items()
        if sim.account_kinds[a] == "regular"
        for e in evs
    ]
    assert len(set(regular)) == len(regular)


def _shingles(text: str, k: int = 4) -> set[tuple[str, ...]]:
    w = text.lower().split()
    return {tuple(w[i : i + k]) for i in range(max(1, len(w) - k + 1))}


def _dup_score(prompts: list[str], lookback: int = 8) -> float:
    """Mean over prompts of the highest 4-word-shingle Jaccard similarity to
    any of the ``lookback`` previous prompts (a near-duplicate rate proxy)."""
    sh = [_shingles(p) for p in prompts[:400]]
    sims = []
    for i in range(1, len(sh)):
        sims.append(
            max(len(sh[i] & sh[j]) / len(sh[i] | sh[j]) for j in range(max(0, i - lookback), i))
        )
    return statistics.mean(sims) if sims else 0.0


def test_drop_topic_omits_topics_without_changing_anything_else() -> None:
    full = list(simulate(seed=2, hours=1, accounts=40, attacks="sweep:1").events)
    part = list(simulate(seed=2, hours=1, accounts=40, attacks="sweep:1", drop_topic=0.3).events)
    assert len(full) == len(part)
    missing = sum("topic" not in e for e in part)
    assert 0.2 * len(part) < missing < 0.4 * len(part)
    assert [{k: v for k, v in e.items() if k != "topic"} for e in full] == [
        {k: v for k, v in e.items() if k != "topic"} for e in part
    ]
