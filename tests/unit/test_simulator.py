"""The traffic simulator: determinism, labels vs events, rates and shares."""

from __future__ import annotations

import gzip
import io
import random
import re
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


@pytest.mark.slow  # a whole simulated day
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


@pytest.mark.slow  # a whole simulated day
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


# ------------------------------------------------------- production mix ---
# The production workloads (simulator/workloads.py), the evasions
# (simulator/evasions.py), real corpus text and the gateway fields.

from simulator import corpus as C  # noqa: E402
from simulator import phrasebook as PB  # noqa: E402
from simulator.attacks import CAMPAIGN_FAMILIES, EVASION_FAMILIES  # noqa: E402
from simulator.gateway import TOP_MODEL  # noqa: E402
from simulator.workloads import PRODUCTION_KINDS  # noqa: E402

PROD = {"seed": 3, "hours": 5, "accounts": 400, "attacks": "all", "mix": "production"}


@pytest.fixture(scope="module")
def prod() -> Any:
    return simulate(**PROD, text="real")


@pytest.fixture(scope="module")
def prod_by_account(prod: Any) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ev in prod.events:
        out[ev["account_id"]].append(ev)
    return out


def _of(sim: Any, by: dict[str, list[dict[str, Any]]], kind: str) -> list[list[dict[str, Any]]]:
    return [by[a] for a, k in sim.account_kinds.items() if k == kind and by.get(a)]


def _acct(sim: Any, account_id: str) -> Any:
    return next(a for a in sim.accounts if a.account_id == account_id)


def test_production_mix_has_every_kind_and_family_labelled(prod: Any, prod_by_account) -> None:
    kinds = set(prod.account_kinds.values())
    assert set(PRODUCTION_KINDS) | set(BENIGN_KINDS) <= kinds
    assert {lab["attack"] for lab in prod.labels} == set(ALL_FAMILIES)
    for fam in CAMPAIGN_FAMILIES:
        assert all(lab.get("campaign") for lab in prod.labels if lab["attack"] == fam)
    for lab in prod.labels:  # every label's window holds its account's events
        ts = [parse_ts(e["ts"]) for e in prod_by_account[lab["account_id"]]]
        assert any(parse_ts(lab["start"]) <= t <= parse_ts(lab["end"]) for t in ts)


def test_production_events_parse_and_carry_plausible_gateway_fields(prod: Any, prod_by_account
                                                                    ) -> None:
    benign_top = benign_n = benign_cap = 0
    for acct, evs in prod_by_account.items():
        benign = prod.account_kinds[acct] not in ALL_FAMILIES
        for ev in evs:
            parse_event(ev)
            assert ev["stop_reason"] in ("end_turn", "max_tokens", "stop_sequence")
            assert isinstance(ev["thinking"], bool)
            assert 0 < ev["output_tokens"] <= ev["max_tokens"]
            assert (ev["stop_reason"] == "max_tokens") == (ev["output_tokens"] == ev["max_tokens"])
            if "system_prompt_fingerprint" in ev:
                int(ev["system_prompt_fingerprint"], 16)
            if "prompt" in ev:  # input tokens consistent with the text
                assert ev["input_tokens"] >= len(ev["prompt"]) // 8
            if benign:
                benign_n += 1
                benign_top += ev["model"] == TOP_MODEL
                benign_cap += ev["stop_reason"] == "max_tokens"
    # benign apps also use the most capable model and also hit max_tokens
    assert benign_top / benign_n > 0.15
    assert benign_cap / benign_n > 0.01


def test_wrapper_apps_have_long_fixed_prefixes_around_varied_content(prod: Any, prod_by_account
                                                                     ) -> None:
    apps = _of(prod, prod_by_account, "rag_wrapper")
    assert len(apps) >= 10
    lengths = []
    for evs in apps:
        beh = _acct(prod, evs[0]["account_id"]).phases[0][0][1]
        prefix = beh.params["prefix"]
        lengths.append(len(prefix))
        assert 100 <= len(prefix) <= 1500
        assert all(e["prompt"].startswith(prefix) for e in evs)
        assert all(e["prompt"].endswith(beh.params["suffix"]) for e in evs)
        bodies = [e["prompt"][len(prefix) :] for e in evs]
        assert len(set(bodies)) > 0.9 * len(bodies)  # the content varies
    assert max(lengths) > 600 and min(lengths) < 600  # the whole range is exercised


def test_plain_harvest_asks_raw_attack_pool_questions_once_without_elicitation(
    prod: Any, prod_by_account
) -> None:
    attack_texts = {p.text: p for p in C.pool("attack")}
    benign_texts = {p.text for p in C.pool("benign")}
    phrases = [t.lower() for _, t in PB.table("elicitation.tsv")]
    harvesters = _of(prod, prod_by_account, "plain_harvest")
    assert harvesters
    for evs in harvesters:
        prompts = [e["prompt"] for e in evs]
        assert len(set(prompts)) == len(prompts)  # each question once
        assert all(p in attack_texts and p not in benign_texts for p in prompts)  # raw, unwrapped
        assert not any(T.is_elicitation(p) for p in prompts)
        assert not any(ph in p.lower() for p in prompts for ph in phrases)
        cats = {attack_texts[p].cat for p in prompts}
        assert len(cats) <= 2  # narrow
        assert len(prompts) >= 100  # heavy


def test_paraphrased_elicitation_is_mid_prompt_in_many_languages(prod: Any, prod_by_account
                                                                 ) -> None:
    table = PB.table("elicitation.tsv")
    found_langs: set[str] = set()
    cases: set[str] = set()
    for evs in _of(prod, prod_by_account, "paraphrase_cot"):
        for e in evs:
            # dotless i: random casing of Turkish text does not lower back to it
            low = e["prompt"].lower().replace("ı", "i")
            hits = [(lang, t) for lang, t in table if t.lower().replace("ı", "i") in low]
            assert hits, e["prompt"]
            lang, t = hits[0]
            i = low.index(t.lower().replace("ı", "i"))
            assert i > 0 and i + len(t) < len(low)  # neither prefix nor suffix
            found_langs.add(lang)
            seg = e["prompt"][i : i + len(t)]
            cases.add("upper" if seg.isupper() else "lower" if seg.islower() else "mixed")
    assert len(found_langs) >= 8
    assert cases >= {"upper", "lower", "mixed"}
    # none of the obvious keywords in the phrase list itself
    for _, t in table:
        assert not any(k in t.lower() for k in ("step by step", "reasoning", "chain of thought"))


def test_affixes_make_every_prompt_start_and_end_differently(prod: Any, prod_by_account) -> None:
    for evs in _of(prod, prod_by_account, "affix_extractor"):
        heads = [e["prompt"][:12] for e in evs]
        tails = [e["prompt"][-12:] for e in evs]
        assert len(set(heads)) > 0.8 * len(heads)
        assert len(set(tails)) > 0.8 * len(tails)


def test_metadata_gateway_sends_no_prompt_and_no_topic(prod: Any, prod_by_account) -> None:
    accts = _of(prod, prod_by_account, "metadata_gateway")
    assert accts
    for evs in accts:
        assert all("prompt" not in e and "topic" not in e for e in evs)
        assert all(e["input_tokens"] > 0 and e["model"] for e in evs)


SCRIPTS = {
    "zh": re.compile("[\u4e00-\u9fff]"),
    "ja": re.compile("[\u3040-\u30ff]"),
    "ko": re.compile("[\uac00-\ud7af]"),
    "th": re.compile("[\u0e00-\u0e7f]"),
    "ru": re.compile("[\u0400-\u04ff]"),
    "ar": re.compile("[\u0600-\u06ff]"),
}


def test_multilingual_customers_write_in_their_scripts(prod: Any, prod_by_account) -> None:
    seen = set()
    for evs in _of(prod, prod_by_account, "multilingual"):
        (lang,) = _acct(prod, evs[0]["account_id"]).langs
        share = statistics.mean(bool(SCRIPTS[lang].search(e["prompt"])) for e in evs)
        assert share > 0.95, (lang, evs[0]["prompt"])
        seen.add(lang)
    assert len(seen) >= 4
    # every language, directly: what a customer of that language sends
    from simulator.core import Account
    from simulator.styles import human_text

    for lang, script in SCRIPTS.items():
        acct = Account("a", "multilingual", "o", "p", ("1.2.3",), "ua", ("k",), text="real",
                       langs=(lang,))
        rng = random.Random(lang)
        texts = [human_text(rng, acct, T.ch(rng, T.TOPICS)) for _ in range(200)]
        assert statistics.mean(bool(script.search(t)) for t in texts) > 0.95, lang
        assert len(set(texts)) > 150  # varied (Arabic: 30 synthetic prompts only)
    arabic = [r for r in prod.truth if "ar" in r.get("langs", ())]
    assert arabic and all(r["text_source"] == "synthetic" for r in arabic)


def test_hydra_proxy_members_share_only_behaviour(prod: Any, prod_by_account) -> None:
    camps: dict[str, list[str]] = defaultdict(list)
    for lab in prod.labels:
        if lab["attack"] == "hydra_proxy":
            camps[lab["campaign"]].append(lab["account_id"])
    assert camps
    for members in camps.values():
        cards = {prod_by_account[a][0]["payment_fingerprint"] for a in members}
        assert len(cards) == len(members)  # no shared card
        ranges = [{e["ip"].rsplit(".", 1)[0] for e in prod_by_account[a]} for a in members]
        for i, r in enumerate(ranges):  # no /24 shared between members
            assert not any(r & other for other in ranges[i + 1 :])
        starts = sorted(parse_ts(prod_by_account[a][0]["ts"]) for a in members)
        assert starts[len(starts) // 2] - starts[0] < 900  # synchronized
        topics = {e["topic"] for a in members for e in prod_by_account[a]}
        assert len(topics) == 1  # one shared target


def test_cover_extractor_and_slow_pivot(prod: Any, prod_by_account) -> None:
    for evs in _of(prod, prod_by_account, "cover_extractor"):
        acct = _acct(prod, evs[0]["account_id"])
        attack = sum(acct.is_attack_event(t, s) for t, s in acct.times)
        assert 0.15 < attack / len(acct.times) < 0.6  # cover traffic mixed in
    for evs in _of(prod, prod_by_account, "slow_pivot"):
        acct = _acct(prod, evs[0]["account_id"])
        before = [e for e in evs if parse_ts(e["ts"]) < acct.attack_from]
        after = [e for e in evs if parse_ts(e["ts"]) >= acct.attack_from + 3 * 3600]
        if len(before) < 5 or len(after) < 20:
            continue
        top_before = Counter(e["topic"] for e in before).most_common(1)[0][1] / len(before)
        top_after = Counter(e["topic"] for e in after).most_common(1)[0][1] / len(after)
        assert top_after > top_before  # the mix narrowed
        assert len(after) / 2 > len(before) / max(1.0, (acct.attack_from - prod.timeline.t0) / 3600)


def test_judges_are_bursty_and_tutors_follow_school_hours(prod: Any, prod_by_account) -> None:
    for evs in _of(prod, prod_by_account, "llm_judge"):
        per10 = Counter(int((parse_ts(e["ts"]) - prod.timeline.t0) // 600) for e in evs)
        slots = [per10.get(i, 0) for i in range(int(PROD["hours"] * 6))]
        assert max(slots) > 5 * max(1.0, statistics.median(slots))  # evaluation runs
        assert all("[[" in e["prompt"] or "rating" in e["prompt"].lower()
                   or "評価" in e["prompt"] or "평가" in e["prompt"] for e in evs)
    tutors = _of(prod, prod_by_account, "edtech_tutor")
    assert tutors
    orgs = Counter(_acct(prod, evs[0]["account_id"]).org_id for evs in tutors)
    assert max(orgs.values()) >= 2  # tutors come with an organisation
    for evs in tutors:
        tz = _acct(prod, evs[0]["account_id"]).tz
        hours = [((parse_ts(e["ts"]) / 3600 + tz) % 24) for e in evs]
        assert statistics.mean(8 <= h < 21 for h in hours) > 0.7 or len(evs) < 10


def test_org_product_accounts_share_templates_card_and_range(prod: Any, prod_by_account) -> None:
    orgs: dict[str, list[list[dict[str, Any]]]] = defaultdict(list)
    for evs in _of(prod, prod_by_account, "org_product"):
        orgs[evs[0]["org_id"]].append(evs)
    assert orgs
    for members in orgs.values():
        if len(members) < 2:
            continue
        for field_ in ("payment_fingerprint", "system_prompt_fingerprint"):
            assert len({e[field_] for evs in members for e in evs}) == 1
        assert len({e["ip"].rsplit(".", 1)[0] for evs in members for e in evs}) == 1
        in_accounts = Counter(p for evs in members for p in {e["prompt"] for e in evs})
        assert in_accounts.most_common(1)[0][1] >= 2  # verbatim prompts repeat across accounts


def test_reseller_is_broad_multilingual_and_heavy(prod: Any, prod_by_account) -> None:
    for evs in _of(prod, prod_by_account, "assistant_reseller"):
        assert len({e["topic"] for e in evs}) >= 20
        assert len({e["api_key_id"] for e in evs}) >= 5
        langs = _acct(prod, evs[0]["account_id"]).langs
        assert len(langs) >= 3
        assert len(evs) >= 5 * 60


def test_real_and_synthetic_text_modes() -> None:
    spec = {"seed": 5, "hours": 1, "accounts": 60, "attacks": "plain_harvest:1,extractor:1",
            "mix": "production"}
    real = list(simulate(**spec, text="real").events)
    syn = list(simulate(**spec, text="synthetic").events)
    sentences = set(C.sentences("benign", "en")) | {p.text for p in C.pool("benign", "en")}

    def corpus_share(evs: list[dict[str, Any]]) -> float:
        en = [e["prompt"] for e in evs if "prompt" in e and e["prompt"].isascii()]
        return statistics.mean(any(s in p for s in sentences) for p in en[:300])

    assert corpus_share(real) > 0.5
    assert corpus_share(syn) < 0.05


def test_production_determinism_and_drop_fields() -> None:
    spec = {"seed": 9, "hours": 1, "accounts": 60, "attacks": "paraphrase_cot:1,hydra_proxy:1",
            "mix": "production", "text": "real"}
    a = [orjson.dumps(e) for e in simulate(**spec).events]
    b = [orjson.dumps(e) for e in simulate(**spec).events]
    assert a == b
    c = [orjson.dumps(e) for e in simulate(**{**spec, "seed": 10}).events]
    assert a != c
    dropped = list(simulate(**spec, drop_fields="prompt,topic").events)
    assert all("prompt" not in e and "topic" not in e for e in dropped)
    assert [orjson.loads(x) for x in a] != dropped
    assert [{k: v for k, v in orjson.loads(x).items() if k not in ("prompt", "topic")}
            for x in a] == dropped
    with pytest.raises(ValueError):
        simulate(**spec, drop_fields="ts")
    with pytest.raises(ValueError):
        simulate(**{**spec, "text": "klingon"})


def test_evasion_families_in_the_classic_mix_too() -> None:
    """New families can be asked for on the classic population (synthetic text)."""
    spec = ",".join(f"{f}:1" for f in EVASION_FAMILIES)
    sim = simulate(seed=4, hours=3, accounts=50, attacks=spec)
    assert {lab["attack"] for lab in sim.labels} == set(EVASION_FAMILIES)
    assert all("max_tokens" not in e for e in sim.events if sim.account_kinds[e["account_id"]]
               == "regular")


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from simulator.gateway import estimate_tokens  # noqa: E402
from simulator.styles import capitalise, insert_mid  # noqa: E402


@given(st.text(min_size=2, max_size=300).map(str.strip).filter(lambda t: len(t) >= 2),
       st.sampled_from([t for _, t in PB.table("elicitation.tsv")]), st.integers(0, 2**32))
def test_insert_mid_puts_the_phrase_strictly_inside(text: str, phrase: str, seed: int) -> None:
    out = insert_mid(random.Random(seed), text, phrase)
    i = out.find(phrase)
    assert 0 < i and i + len(phrase) < len(out)
    assert "".join(out.replace(phrase, "", 1).split()) == "".join(text.split())


@given(st.text(max_size=400), st.integers(0, 2**32))
def test_capitalise_and_token_estimate_are_total(text: str, seed: int) -> None:
    out = capitalise(random.Random(seed), text)
    assert isinstance(out, str)
    n = estimate_tokens(text)
    assert 1 <= n <= max(1, len(text))


# ------------------------------------------------------------- warm-up ---
# simulator/warmup.py: the history an always-on detector has of the accounts
# active before the run.


def test_warmup_prepends_history_and_leaves_the_run_unchanged() -> None:
    args: dict[str, Any] = {"seed": 5, "hours": 3, "accounts": 120, "attacks": "all",
                            "mix": "production", "text": "real"}
    plain = simulate(**args)
    warm = simulate(**args, warmup_hours=4)
    t0 = warm.timeline.t0
    run = list(plain.events)
    both = list(warm.events)
    early = [e for e in both if parse_ts(e["ts"]) < t0]
    assert early and both[len(early):] == run  # the run itself is the same bytes
    assert all(parse_ts(e["ts"]) >= t0 - 4 * 3600 for e in early)
    assert plain.labels == warm.labels
    kinds = warm.account_kinds
    seen = {e["account_id"] for e in early}
    # established customers have a past; new accounts and attack traffic do not
    assert {kinds[a] for a in seen} >= {"regular", "narrow_app", "rag_wrapper", "edtech_tutor"}
    assert not {kinds[a] for a in seen} & {"new_ramp", "extractor", "cover_extractor",
                                          "plain_harvest", "hydra", "sweep"}
    # a slow pivot's and a takeover's past is the account's own broad traffic:
    # the warm-up repeats only what they sent before the attack began
    first_attack = {lab["account_id"]: parse_ts(lab["start"]) for lab in warm.labels}
    for a in warm.accounts:
        if a.kind in ("slow_pivot", "takeover") and a.warm:
            assert {s for _, s in a.warm} == {0}
            assert all(t < t0 for t, _ in a.warm)
            assert a.account_id in first_attack
    # the history is drawn at the account's own rate: a heavy narrow app's
    # warm-up is about as dense as its run, a light regular's is light
    for a in warm.accounts:
        if a.kind in ("narrow_app", "regular") and len(a.times) > 50:
            per_hour_run = len(a.times) / 3.0
            per_hour_warm = len(a.warm) / 4.0
            assert 0.3 < per_hour_warm / per_hour_run < 3.0, a.kind


def test_warmup_draws_rates_and_bursts_and_skips_attack_sources() -> None:
    from simulator.core import Account
    from simulator.warmup import add_warmup

    a = Account("a", "batch", "", "", ("10.0.0",), "ua", ("k",), predates=True)
    a.rates = {0: lambda t: 30.0, 1: lambda t: 1000.0}
    a.attack_sources, a.attack_from = frozenset({1}), 1300.0
    a.bursts = (2, 2.0, (500.0, 500.0), (600.0, 600.0))
    n = add_warmup([a], t0=0.0, hours=12.0, seed=3)
    by_source = Counter(s for _, s in a.warm)
    assert n == len(a.warm) and all(-12 * 3600.0 <= t < 0.0 for t, _ in a.warm)
    assert 250 < by_source[0] < 470  # 30/h for 12 h
    assert 1 not in by_source  # the attack source has no past
    assert 350 < by_source[2] < 700  # twice a day: one burst of 500 requests in 12 h
    assert add_warmup([a], t0=0.0, hours=12.0, seed=3) == n  # deterministic
    b = Account("b", "new_ramp", "", "", ("10.0.0",), "ua", ("k",))
    b.rates = {0: lambda t: 30.0}
    assert add_warmup([b], 0.0, 1.0) == 0 and b.warm == []
    with pytest.raises(ValueError):
        add_warmup([a], 0.0, -1.0)
