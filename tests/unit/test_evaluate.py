"""Evaluation: scoring on hand-made inputs, baselines, and detection-quality floors."""

from __future__ import annotations

import io
from typing import Any

import pytest

from detectors.alerts import Alert
from simulator.attacks import CLASSIC_FAMILIES, SINGLE_ACCOUNT_FAMILIES
from simulator.evaluate import (
    HourlyBatch,
    RuleConfig,
    StaticRule,
    better_than,
    evaluate,
    format_table,
    quantile,
    score_alerts,
)

T0 = 1_772_409_600.0  # 2026-03-02T00:00:00Z


def _a(
    acct: str | None, ts: float, status: str = "firing", accounts: tuple[str, ...] = ()
) -> Alert:
    return Alert(
        detector="account" if acct else "cluster",
        status=status,
        severity="warning",
        score=0.9,
        ts=ts,
        episode_start=ts,
        summary="",
        account_id=acct,
        accounts=accounts,
        details={} if acct else {"cluster_key": "pm:x"},
    )


def test_quantile_and_median_by_hand() -> None:
    assert quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0
    assert quantile([0.0, 100.0], 0.9) == 90.0
    assert quantile([3.0, 1.0, 2.0], 0.9) == pytest.approx(2.8)


def test_score_alerts_by_hand() -> None:
    labels = [
        {
            "account_id": "e1",
            "attack": "extractor",
            "start": "2026-03-02T01:00:00Z",
            "end": "2026-03-02T05:00:00Z",
        },
        {"account_id": "e2", "attack": "extractor", "start": T0 + 3600, "end": T0 + 7200},
        {"account_id": "e3", "attack": "extractor", "start": T0 + 3600, "end": T0 + 7200},
        {"account_id": "s1", "attack": "sweep", "start": T0, "end": T0 + 600},
        {
            "account_id": "h1",
            "attack": "hydra",
            "start": T0 + 100,
            "end": T0 + 9000,
            "campaign": "c1",
        },
        {
            "account_id": "h2",
            "attack": "hydra",
            "start": T0 + 200,
            "end": T0 + 9000,
            "campaign": "c1",
        },
        {"account_id": "h3", "attack": "hydra", "start": T0, "end": T0 + 9000, "campaign": "c2"},
    ]
    kinds = {
        "e1": "extractor",
        "e2": "extractor",
        "e3": "extractor",
        "s1": "sweep",
        "h1": "hydra",
        "h2": "hydra",
        "h3": "hydra",
        "r1": "regular",
        "r2": "regular",
        "r3": "regular",
        "r4": "regular",
        "n1": "narrow_app",
        "n2": "narrow_app",
    }
    alerts = [
        _a("e1", T0 + 3600 + 120),  # delay 120
        _a("e1", T0 + 3600 + 999),  # later alert of the same account: ignored
        _a("e2", T0 + 3000),  # before its start: does not count ...
        _a("e2", T0 + 3600 + 600, status="resolved"),  # ... and resolved never counts
        _a("e3", T0 + 7200 + 900),  # exactly end + grace: counts, delay 4500
        _a("s1", T0 + 600 + 901),  # past end + grace: a miss
        _a(None, T0 + 400, accounts=("h2", "r1")),  # a cluster alert names h2 and benign r1
        _a("n1", T0 + 50),
        _a("n1", T0 + 60),
        _a("zz", T0),  # unknown account: ignored
    ]
    m = score_alerts(alerts, labels, kinds, grace_s=900)
    ex = m["attacks"]["extractor"]
    assert (ex["accounts"], ex["detected"], ex["recall"]) == (3, 2, 0.6667)
    assert ex["delay_median_s"] == pytest.approx((120 + 4500) / 2)
    assert ex["delay_p90_s"] == pytest.approx(120 + 0.9 * 4380)
    assert (
        m["attacks"]["sweep"]["recall"] == 0.0 and m["attacks"]["sweep"]["delay_median_s"] is None
    )
    assert m["attacks"]["hydra"]["recall"] == pytest.approx(1 / 3, abs=1e-4)
    hy = m["campaigns"]["hydra"]
    assert (hy["campaigns"], hy["detected"], hy["recall"]) == (2, 1, 0.5)
    assert hy["account_recall"] == pytest.approx(1 / 3, abs=1e-4)
    assert (
        hy["by_campaign"]["c1"]["delay_s"] == 300.0
    )  # first member hit (400) - campaign start (100)
    assert hy["delay_median_s"] == 300.0
    b = m["benign"]
    assert b["overall"] == {"accounts": 6, "flagged": 2, "fp_rate": round(2 / 6, 5)}
    assert b["by_kind"]["regular"] == {"accounts": 4, "flagged": 1, "fp_rate": 0.25}
    assert b["by_kind"]["narrow_app"] == {"accounts": 2, "flagged": 1, "fp_rate": 0.5}
    assert b["flagged_accounts"] == ["n1", "r1"]
    # alert records (the Kafka contract) score the same as Alert objects
    assert score_alerts([a.to_record() for a in alerts], labels, kinds) == m


def test_static_rule_fires_on_the_crossing_event_once_per_episode() -> None:
    cfg = RuleConfig(max_requests=10, rate_window_s=60, share_min_requests=1000, quiet_s=120)
    rule = StaticRule(cfg)
    fired = [rule.process("a", T0 + i, f"t{i % 5}") for i in range(30)]
    assert [i for i, f in enumerate(fired) if f] == [10]  # the 11th request inside 60 s
    assert fired[10].reason == "volume"
    assert rule.process("a", T0 + 400, "t") is None  # quiet: rule false again
    fired = [rule.process("a", T0 + 1000 + i, "t") for i in range(12)]
    assert sum(1 for f in fired if f) == 1  # a new episode


def test_static_rule_concentration() -> None:
    rule = StaticRule(RuleConfig(max_requests=10_000, share_min_requests=20, max_top_share=0.9))
    out = [
        rule.process("a", T0 + 10 * i, "coding/python" if i % 20 else "writing/email")
        for i in range(40)
    ]
    hits = [i for i, f in enumerate(out) if f]
    assert hits and hits[0] == 19 and out[19].reason == "concentration"  # 18/20 = 0.9 at the 20th


def test_hourly_batch_alerts_at_the_hour_boundary() -> None:
    cfg = RuleConfig(max_requests=10, rate_window_s=600, share_min_requests=10_000)
    job = HourlyBatch(cfg)
    for i in range(20):  # 20 requests in one 10-minute bucket at 00:30
        job.process("a", T0 + 1800 + i, "x")
    job.process("b", T0 + 1800, "x")
    job.process("b", T0 + 3600 + 5, "x")  # crossing the hour runs the job for hour 0
    assert [(a.account_id, a.ts) for a in job.alerts] == [("a", T0 + 3600)]
    for i in range(20):  # still true in the next hour: same episode, no new alert
        job.process("a", T0 + 3600 + 60 + i, "x")
    job.finish()
    assert len(job.alerts) == 1


def test_better_than_and_table() -> None:
    labels = [{"account_id": "e", "attack": "extractor", "start": T0, "end": T0 + 100}]
    kinds = {"e": "extractor", "r": "regular"}
    ours = score_alerts([_a("e", T0 + 10)], labels, kinds)
    same_later = score_alerts([_a("e", T0 + 50)], labels, kinds)
    none = score_alerts([], labels, kinds)
    assert better_than(ours, none)[0] and better_than(ours, same_later)[0]
    assert not better_than(ours, ours)[0]
    noisy = score_alerts([_a("e", T0 + 10), _a("r", T0)], labels, kinds)
    assert not better_than(noisy, ours)[0]
    table = format_table({"distillwatch": ours, "static": none, "hourly": same_later})
    assert "extractor" in table and "regular" in table and "all benign" in table


# -------------------------------------------------------------------- floors ---

# The CI evaluation: small enough for the default test run, with every family.
FLOOR_RUN = {
    "seed": 0,
    "hours": 8.0,
    "accounts": 300,
    "attacks": "extractor:3,sweep:3,takeover:3,low_and_slow:3,cot_coercion:3,model_pivot:3,"
    "hydra:1,hydra_cover:1",
}


@pytest.fixture(scope="module")
def floor_report() -> dict[str, Any]:
    out = io.StringIO()
    report = evaluate(**FLOOR_RUN, out=out)
    print(out.getvalue())
    return report


@pytest.mark.slow
def test_evaluation_floors(floor_report: dict[str, Any]) -> None:
    """Issue 3's targets on the classic mix (synthetic text; the production mix's
    numbers are in docs/evaluation.md): recall >= 0.95 for every
    single-account family, benign FP <= 0.5%, median delay <= 5 min for
    extractors and takeovers and <= 30 min for low-and-slow, strictly better
    than every baseline; every hydra campaign caught (issue 6)."""
    ours = floor_report["results"]["distillwatch"]
    problems = []
    for fam in (f for f in SINGLE_ACCOUNT_FAMILIES if f in CLASSIC_FAMILIES):
        r = ours["attacks"][fam]
        if r["recall"] < 0.95:
            problems.append(f"{fam} recall {r['recall']}")
    for fam, limit in (("extractor", 300), ("takeover", 300), ("low_and_slow", 1800)):
        d = ours["attacks"][fam]["delay_median_s"]
        if d is None or d > limit:
            problems.append(f"{fam} median delay {d}s > {limit}s")
    fp = ours["benign"]["overall"]["fp_rate"]
    if fp > 0.005:
        problems.append(f"benign FP {fp} ({ours['benign']['flagged_accounts']})")
    for fam, c in ours["campaigns"].items():
        if c["recall"] < 1.0:
            problems.append(f"{fam} campaign recall {c['recall']}")
    for base, v in floor_report["better_than"].items():
        if not v["better"]:
            problems.append(f"not better than {base}: {v['why_not']}")
    assert not problems, "\n" + floor_report["table"] + "\n" + "\n".join(problems)


# ------------------------------------------------------------- baselines ---

from simulator.baselines import (  # noqa: E402
    OPERATOR_KEYWORDS,
    KeywordRule,
    SharedCardRule,
    VolumeRule,
    quantile_threshold,
)
from simulator.evaluate import (  # noqa: E402
    BASELINES,
    BaselineConfig,
    evaluate_seeds,
    format_summary,
    make_baselines,
    parse_seeds,
    summarize_seeds,
)


def _ev(acct: str, ts: float, **kw: Any) -> dict[str, Any]:
    return {"account_id": acct, "ts": ts, **kw}


def test_volume_rule_learns_the_population_p99_then_fires() -> None:
    rule = VolumeRule(learn_s=3 * 3600, quantile=0.99)
    # learning: 100 accounts x 3 clock hours; account i sends i+1 requests per hour
    for h in range(3):
        for i in range(100):
            for k in range(i + 1):
                assert rule.process(_ev(f"a{i}", T0 + h * 3600 + k, topic=f"t{k % 7}")) is None
    assert rule.process(_ev("new", T0 + 3 * 3600 + 1)) is None  # first event after learning
    assert rule.threshold == quantile_threshold([i + 1 for i in range(100)] * 3, 0.99) == 99.0
    fired = [rule.process(_ev("x", T0 + 4 * 3600 + 10 * k, topic=f"t{k % 9}")) for k in range(120)]
    hits = [k for k, f in enumerate(fired) if f]
    assert hits == [99]  # the 100th request in the trailing hour; one alert per episode
    assert fired[99].reason == "volume"


def test_volume_rule_given_threshold_and_bad_parameters() -> None:
    rule = VolumeRule(5)
    out = [rule.process(_ev("a", T0 + k)) for k in range(7)]
    assert [bool(o) for o in out] == [False] * 5 + [True, False]
    with pytest.raises(ValueError):
        VolumeRule(quantile=1.5)


def test_keyword_rule_counts_reasoning_requests_per_hour() -> None:
    rule = KeywordRule(min_hits=3)
    assert "step by step" in OPERATOR_KEYWORDS
    prompts = ["Explain STEP BY STEP", "hello", "show your work please", "think through it"]
    out = [rule.process(_ev("a", T0 + k, prompt=p)) for k, p in enumerate(prompts)]
    assert [bool(o) for o in out] == [False, False, False, True]
    assert rule.process(_ev("a", T0 + 5000, prompt="step-by-step")) is None  # window moved on
    assert rule.process(_ev("b", T0, prompt=None)) is None
    with pytest.raises(ValueError):
        KeywordRule(min_hits=0)


def test_shared_card_rule_pages_every_account_on_a_crowded_card() -> None:
    rule = SharedCardRule(min_accounts=3)
    assert rule.process(_ev("a", T0, payment_fingerprint="pm1")) == []
    assert rule.process(_ev("a", T0 + 1, payment_fingerprint="pm1")) == []  # same account
    assert rule.process(_ev("b", T0 + 2, payment_fingerprint="pm1")) == []
    assert rule.process(_ev("c", T0 + 3, payment_fingerprint="pm2")) == []
    paged = rule.process(_ev("d", T0 + 4, payment_fingerprint="pm1"))
    assert sorted(a.account_id for a in paged) == ["a", "b", "d"]
    later = rule.process(_ev("e", T0 + 5, payment_fingerprint="pm1"))
    assert [a.account_id for a in later] == ["e"]
    assert rule.process(_ev("f", T0 + 6)) == []
    with pytest.raises(ValueError):
        SharedCardRule(1)


@pytest.mark.slow  # simulated evaluation runs
def test_each_baseline_catches_an_attacking_family() -> None:
    """On simulated traffic each baseline detects at least one family (none is a
    straw man); scored with the same rules as distillwatch."""
    from simulator.simulate import simulate

    sim = simulate(seed=0, hours=3, accounts=600, mix="production", text="real",
                   attacks="extractor:2,affix_extractor:2,cot_coercion:2,hydra:1")
    rules = make_baselines(BaselineConfig(), 3)
    for ev in sim.events:
        for r in rules.values():
            r.process(ev)
    caught = {}
    for name in BASELINES:
        m = score_alerts(rules[name].alerts, sim.labels, sim.account_kinds)
        caught[name] = {f for f, r in m["attacks"].items() if r["recall"] > 0}
    assert set(caught) == {"volume", "keyword", "shared_card"}
    assert all(caught.values()), caught
    assert "hydra" in caught["shared_card"]
    assert caught["keyword"] & {"extractor", "cot_coercion", "affix_extractor"}
    assert caught["volume"] & {"extractor", "affix_extractor"}


def test_parse_seeds() -> None:
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("10-14") == [10, 11, 12, 13, 14]
    assert parse_seeds("0, 3,5-6") == [0, 3, 5, 6]
    assert parse_seeds(7) == [7]
    for bad in ("", "4-2", "x"):
        with pytest.raises(ValueError):
            parse_seeds(bad)


def test_summarize_seeds_by_hand() -> None:
    labels = [{"account_id": "e", "attack": "extractor", "start": T0, "end": T0 + 1000}]
    kinds = {"e": "extractor", "r1": "regular", "r2": "regular", "t": "edtech_tutor"}
    hit = score_alerts([_a("e", T0 + 60), _a("t", T0)], labels, kinds)
    miss = score_alerts([_a("r1", T0)], labels, kinds)
    per_seed = {
        0: {"results": {"distillwatch": hit}, "delays": {"distillwatch": {"extractor": [60.0]}}},
        1: {"results": {"distillwatch": miss}, "delays": {"distillwatch": {}}},
    }
    s = summarize_seeds(per_seed)["distillwatch"]
    ex = s["attacks"]["extractor"]
    assert (ex["mean_recall"], ex["worst_recall"], ex["delay_median_s"]) == (0.5, 0.0, 60.0)
    assert s["benign"]["by_kind"]["regular"] == {
        "accounts": 4, "flagged": 1, "fp_rate": 0.25, "worst_fp_rate": 0.5}
    assert s["benign"]["by_kind"]["edtech_tutor"]["worst_fp_rate"] == 1.0
    assert s["benign"]["overall"]["fp_rate"] == round(2 / 6, 5)
    table = format_summary({"distillwatch": s}, systems=["distillwatch"])
    assert "extractor" in table and "edtech_tutor" in table and "all benign" in table


@pytest.mark.slow  # simulated evaluation runs
def test_evaluate_seeds_runs_and_keeps_results_per_seed(tmp_path: Any) -> None:
    out = io.StringIO()
    rep = evaluate_seeds(
        "1-2", hours=1.5, accounts=60, attacks="extractor:1,plain_harvest:1",
        json_path=str(tmp_path / "m.json"), out=out,
        metric_hooks={"alerts": lambda alerts, sim: len(alerts)},
    )
    assert set(rep["seeds"]) == {1, 2}
    assert set(rep["summary"]) == {"distillwatch", *BASELINES}
    one = rep["seeds"][1]["results"]["distillwatch"]
    assert isinstance(one["extra"]["alerts"], int)
    assert rep["run"]["mix"] == "production" and rep["run"]["text"] == "real"
    assert "plain_harvest" in rep["table"] and "seeds 1,2" in out.getvalue()
    assert (tmp_path / "m.json").stat().st_size > 0


def test_evaluate_cli_metadata_only(tmp_path: Any) -> None:
    from simulator.cli import main

    path = tmp_path / "m.json"
    assert main(["evaluate", "--seeds", "3", "--hours", "1", "--accounts", "50",
                 "--attacks", "extractor:1", "--drop-fields", "prompt,topic",
                 "--json", str(path)]) == 0
    import orjson

    rep = orjson.loads(path.read_bytes())
    assert rep["run"]["drop_fields"] == ["prompt", "topic"]
    assert rep["summary"]["keyword"]["benign"]["overall"]["flagged"] == 0  # nothing to match


# The CI's held-out check: the small scenario (every family and kind) on a few
# seeds not used for tuning. Detection floors on it are the detector's to set
# (issue 18 part 3); this test pins what the scenario must exercise.
HELD_OUT_SMALL = {"seeds": "10-12", "hours": 6.0, "accounts": 600}


@pytest.mark.slow
def test_held_out_small_scenario_exercises_every_family_and_kind() -> None:
    from simulator.attacks import CAMPAIGN_FAMILIES as CAMPS
    from simulator.attacks import FAMILIES as ALL
    from simulator.population import BENIGN_KINDS
    from simulator.workloads import PRODUCTION_KINDS

    rep = evaluate_seeds(**HELD_OUT_SMALL, out=io.StringIO())
    print(rep["table"])
    ours = rep["summary"]["distillwatch"]
    assert set(ours["attacks"]) == set(ALL)
    assert set(ours["campaigns"]) == set(CAMPS)
    assert set(ours["benign"]["by_kind"]) == set(BENIGN_KINDS) | set(PRODUCTION_KINDS)
    for fam, r in ours["attacks"].items():
        assert r["seeds"] == 3 and r["accounts"] >= 3, fam
    problems = _held_out_problems(ours, HELD_OUT_FLOORS)
    assert not problems, "\n" + rep["table"] + "\n" + "\n".join(problems)


# Regression floors on the held-out seeds 10-12 (nothing was tuned on them):
# issue 18's targets where they are met (recall >= 0.95, heavy families'
# median delay <= 5 min, low-and-slow <= 30 min, every campaign), and where
# they are not yet met (cover traffic, slow pivots, benign FP <= 0.3%) a
# floor a little under what the merged detector measures, so a change that
# loses ground fails here rather than in someone's held-out run. Measured at
# each merge; raise them as the detector improves, never lower them to pass.
HELD_OUT_FLOORS: dict[str, Any] = {
    "recall": {"cover_extractor": 0.85, "slow_pivot": 0.2},  # others: 0.95
    "delay_s": {"low_and_slow": 1800.0, "cover_extractor": 1800.0,
                "slow_pivot": 4 * 3600.0},                    # others: 300 s
    "benign_fp": 0.009,
    # per kind (18-108 accounts over three seeds: one page is 1-6%); others 0.06
    "benign_kind_fp": {"edtech_tutor": 0.12},
}


def _held_out_problems(ours: dict[str, Any], floors: dict[str, Any]) -> list[str]:
    problems = []
    for fam, r in ours["attacks"].items():
        if fam not in SINGLE_ACCOUNT_FAMILIES:  # campaign members: the campaign rows
            continue
        want = floors["recall"].get(fam, 0.95)
        if r["mean_recall"] < want:
            problems.append(f"{fam}: recall {r['mean_recall']} < {want}")
        limit = floors["delay_s"].get(fam, 300.0)
        d = r["delay_median_s"]
        if d is None or d > limit:
            problems.append(f"{fam}: median delay {d} s > {limit} s")
    for fam, c in ours["campaigns"].items():
        if c["mean_recall"] < 1.0:
            problems.append(f"{fam}: campaign recall {c['mean_recall']} < 1")
    fp = ours["benign"]["overall"]["fp_rate"]
    if fp > floors["benign_fp"]:
        problems.append(f"benign FP {fp} > {floors['benign_fp']}")
    for kind, b in ours["benign"]["by_kind"].items():
        limit = floors["benign_kind_fp"].get(kind, 0.06)
        if b["fp_rate"] > limit:
            problems.append(f"{kind}: FP {b['fp_rate']} > {limit}")
    return problems


def test_held_out_floors_fail_on_a_regression() -> None:
    """The floor check itself: a lost family, a slow one, a missed campaign and
    too many benign pages are each named."""
    ok = {"mean_recall": 1.0, "delay_median_s": 60.0}
    ours = {
        "attacks": {"extractor": ok, "plain_harvest": {"mean_recall": 0.9, "delay_median_s": 60.0},
                    "sweep": {"mean_recall": 1.0, "delay_median_s": 400.0},
                    "slow_pivot": {"mean_recall": 0.3, "delay_median_s": None}},
        "campaigns": {"hydra": {"mean_recall": 2 / 3}},
        "benign": {"overall": {"fp_rate": 0.02},
                   "by_kind": {"regular": {"fp_rate": 0.001}, "batch": {"fp_rate": 0.2}}},
    }
    got = _held_out_problems(ours, HELD_OUT_FLOORS)
    assert [p.split(":")[0].split(" ")[0] for p in got] == [
        "plain_harvest", "sweep", "slow_pivot", "hydra", "benign", "batch"]
    assert not _held_out_problems({"attacks": {"extractor": ok}, "campaigns": {},
                                   "benign": {"overall": {"fp_rate": 0.0}, "by_kind": {}}},
                                  HELD_OUT_FLOORS)


def test_pages_before_the_run_count_and_are_reported() -> None:
    from simulator.evaluate import score_alerts

    labels = [{"account_id": "x", "attack": "slow_pivot", "start": 100.0, "end": 200.0}]
    kinds = {"x": "slow_pivot", "b1": "regular", "b2": "regular"}
    alerts = [{"status": "firing", "account_id": "x", "ts": -50.0},
              {"status": "firing", "account_id": "b2", "ts": -10.0}]
    m = score_alerts(alerts, labels, kinds, run_start=0.0)
    overall = m["benign"]["overall"]
    assert overall["flagged"] == 1 and overall["warmup_flagged"] == 1
    assert overall["warmup_attack_accounts"] == 1
    # a page in the warm-up is no detection of an attack that starts in the run
    assert m["attacks"]["slow_pivot"]["detected"] == 0
    assert "warmup_flagged" not in score_alerts(alerts, labels, kinds)["benign"]["overall"]


@pytest.mark.slow
def test_held_out_metadata_only_catches_heavy_harvesting() -> None:
    """Issue 18's metadata-only target on held-out seeds 10-12: with neither
    prompt nor topic (a gateway that logs only ids, times, model and tokens),
    heavy harvesting is still caught (recall >= 0.8) at benign FP <= 0.5%."""
    rep = evaluate_seeds(**HELD_OUT_SMALL, drop_fields=("prompt", "topic"), out=io.StringIO())
    print(rep["table"])
    ours = rep["summary"]["distillwatch"]
    problems = [f"{fam}: recall {ours['attacks'][fam]['mean_recall']}"
                for fam in HEAVY_HARVEST if ours["attacks"][fam]["mean_recall"] < 0.8]
    fp = ours["benign"]["overall"]["fp_rate"]
    if fp > 0.005:
        problems.append(f"benign FP {fp}")
    assert not problems, "\n" + rep["table"] + "\n" + "\n".join(problems)


#: the heavy harvesting families: many requests, answers taken home, nothing
#: in the metadata that hides the volume (README "fields you send")
HEAVY_HARVEST = ("extractor", "affix_extractor", "sweep", "plain_harvest")
