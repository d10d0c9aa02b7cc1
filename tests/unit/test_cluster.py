"""Coordinated multi-account detection (detectors/cluster.py): linkage keys,
summaries, cluster scoring, bounded sketches, state round-trips, and the
second stage inside replay."""

from __future__ import annotations

import random
import tracemalloc

import orjson
import pytest

from detectors.cluster import (
    AccountSummary,
    ClusterDetector,
    ClusterStage,
    HyperLogLog,
    SummaryEmitter,
    account_hash,
    decode_entry,
    encode_entry,
    ip_prefix,
    linkage_keys,
    topic_signature,
)
from detectors.engine import Detector
from detectors.errors import CorruptState
from detectors.replay import Replayer
from detectors.runner import PartitionRunner
from detectors.schema import Event
from tests.helpers.summaries import (
    T0,
    hydra_summaries,
    org_summaries,
    run_summaries,
    summary,
)

# ------------------------------------------------------------------ linkage ---


@pytest.mark.parametrize(
    ("ip", "net"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        (" 203.0.113.7 ", "203.0.113.0/24"),
        ("0.0.0.0", "0.0.0.0/24"),
        ("2001:db8:abcd:12::1", "2001:db8:abcd::/48"),
        ("2001:DB8:ABCD:ffff:1:2:3:4", "2001:db8:abcd::/48"),
        ("fe80::1%eth0", "fe80::/48"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
        ("256.1.1.1", None),
        ("1.2.3", None),
        ("1.2.3.x", None),
        ("", None),
        (None, None),
        ("not an ip", None),
    ],
)
def test_ip_prefix(ip, net):
    assert ip_prefix(ip) == net
    assert ip_prefix(ip) == net  # again, from the memo


def test_ip_prefix_memo_is_bounded(monkeypatch):
    from detectors.cluster import keys

    monkeypatch.setattr(keys, "_PREFIXES", {})
    addresses = [f"2001:{i // 65536:x}:{i % 65536:x}::1" for i in range(keys._PREFIXES_MAX + 10)]
    for a in addresses:
        assert ip_prefix(a) == keys._ip_prefix(a) is not None
    assert 0 < len(keys._PREFIXES) <= keys._PREFIXES_MAX
    assert ip_prefix(addresses[-1]) == ip_prefix(addresses[-1].upper())
    # no text longer than an address is kept
    long = "1" * (keys._PREFIX_TEXT_MAX + 1)
    assert ip_prefix(long) is None and long not in keys._PREFIXES


def test_linkage_keys_from_event_fields():
    ev = Event(
        T0,
        "a",
        ip="2001:db8:1:2::9",
        payment_fingerprint=" pm_1 ",
        org_id="org_7",
        user_agent="Mozilla/5.0  (X11)",
    )
    assert linkage_keys(ev) == [
        "pay:pm_1",
        "ip:2001:db8:1::/48",
        "org:org_7",
        "ua:Mozilla/5.0 (X11)",
    ]
    assert linkage_keys(Event(T0, "a")) == []
    assert linkage_keys(Event(T0, "a", ip="garbage", user_agent="  ")) == []
    keys = linkage_keys(Event(T0, "a"), [1, 0xFFFFFFFF], ["0-00000001"])
    assert keys == ["tmpl:00000001", "tmpl:ffffffff", "lsh:0-00000001"]


def test_topic_signature_is_stable():
    a = topic_signature([["coding/rust", 0.7], ["math/proofs", 0.2], ["x/y", 0.01]])
    # order, exact shares and minor topics do not matter
    assert a == topic_signature([["math/proofs", 0.3], ["coding/rust", 0.5]])
    assert a == topic_signature([["coding/rust", 0.6], ["math/proofs", 0.3], ["z/w", 0.1]])
    # the same in every process (crc32, never the salted str hash)
    assert a == ["0-22e8d84e", "1-0c1e09c3"] or len(a) == 2
    assert topic_signature([["coding/rust", 0.7]], bands=3)[:2] == topic_signature(
        [["coding/rust", 0.9]], bands=2
    )
    # Jaccard 0.5 sets agree on some band with probability 1 - (1 - 0.5)^bands, not always
    far = topic_signature([["writing/email", 0.9]])
    assert not set(a) & set(far)
    # a weak top topic still gives a signature
    assert topic_signature([["coding/rust", 0.05]]) == topic_signature([["coding/rust", 1.0]])


def test_topic_signature_deterministic_value():
    sig = topic_signature([["coding/rust", 1.0]], bands=1)
    import zlib

    assert sig == [f"0-{zlib.crc32(b'coding/rust', 0x9E3779B1):08x}"]


# ------------------------------------------------------------------ summary ---


def test_emitter_rate_is_bounded_and_carries_behaviour():
    det, em = Detector(), SummaryEmitter(interval_s=300)
    runner = PartitionRunner(det, summarizer=em)
    tpl = "Answer the task below. First write your full internal reasoning step by step, Task: "
    for i in range(360):  # one event every 10 s for an hour
        runner.process(
            Event(
                T0 + 10 * i,
                "a",
                topic="math/proofs",
                prompt=f"{tpl}{i} apples",
                ip="10.0.0.9",
                payment_fingerprint="pm_1",
                user_agent="ua/1",
            )
        )
    out = runner.take_summaries()
    assert 12 <= len(out) <= 13  # first sight + once per 5-minute bucket
    assert runner.take_summaries() == []
    last = out[-1]
    assert last.first_ts == T0 and last.events == 331  # the first event of the last bucket
    assert {"pay:pm_1", "ip:10.0.0.0/24", "ua:ua/1"} <= set(last.keys)
    assert any(k.startswith("tmpl:") for k in last.keys)  # the repeated template head
    assert any(k.startswith("lsh:") for k in last.keys)
    assert last.top_topics[0][0] == "math/proofs"
    assert last.elicitation > 0.9 and last.template > 0.5
    assert "apples" not in orjson.dumps(last.to_json()).decode()  # no prompt text
    assert AccountSummary.decode(last.encode()) == last


def test_runner_without_summarizer_is_unchanged():
    runner = PartitionRunner(Detector())
    runner.process(Event(T0, "a", topic="coding/go"))
    assert runner.take_summaries() == [] and runner.summaries == []


def test_summary_decode_rejects_garbage():
    for bad in (b"nope", b"[1]", b'{"a": "x"}'):
        with pytest.raises(CorruptState):
            AccountSummary.decode(bad)


# ------------------------------------------------------------------ scoring ---


@pytest.mark.parametrize("size", [3, 8, 30])
def test_benign_organisation_is_not_flagged_for_sharing(size):
    rng = random.Random(size)
    det = ClusterDetector()
    alerts = run_summaries(det, org_summaries(rng, size))
    assert alerts == []
    c = det.cluster("pay:pm_org")
    assert c is not None and c.count() == size
    assert c.score < 0.5, c.evidence


def _framed(orgs: list[str], rounds: int = 6) -> list[AccountSummary]:
    """Accounts running one framing that asks for step-by-step reasoning
    (template and elicitation shares 1, own scores ~0.55), on varied topics,
    started before the stream's first hour (no synchronized start); account
    ``i`` declares ``orgs[i]``."""
    rng = random.Random(len(orgs))
    out = []
    for r in range(rounds):
        for i, org in enumerate(orgs):
            ts = T0 + 7200 + r * 300 + rng.uniform(0, 299)
            keys = ("tmpl:0000f00d", f"org:{org}", f"pay:pm_{org}")
            out.append(summary(f"acct-{i}", ts, T0 + rng.uniform(0, 600), keys, TOPICS_BY[i],
                               0.4, [0xF00D, rng.getrandbits(32)], 1.0, 1.0, score=0.55))
    out.sort(key=lambda s: s.ts)
    return out


TOPICS_BY = ["coding/python", "writing/email", "math/algebra", "support/customer",
             "data/analysis", "science/biology"]


def test_several_declared_orgs_sharing_a_framing_are_not_a_harvest():
    """Traced on a tuning day: tutors of four orgs (2+1+2+1 accounts) running
    one public framing fired the template cluster at 0.85, because the
    declared-org discount needed one org to hold 80% of the core. The same
    behaviour from accounts that each declare their own org (a hydra's) still
    fires, and one org holding the core is discounted as before."""
    det = ClusterDetector()
    rows = _framed(["o1", "o1", "o2", "o3", "o3", "o4"])
    assert run_summaries(det, rows) == []
    c = det.cluster("tmpl:0000f00d")
    assert c is not None
    score, ev, core = det.evaluate(c, rows[-1].ts)
    assert len(core) == 6 and score < 0.75, ev
    assert ev["declared_org_share"] == pytest.approx(4 / 6, abs=1e-3)

    det = ClusterDetector()
    fired = [a for a in run_summaries(det, _framed([f"h{i}" for i in range(6)]))
             if a.detector == "cluster"]
    assert [a.details["cluster_key"] for a in fired] == ["tmpl:0000f00d"]
    assert "declared_org_share" not in fired[0].details and fired[0].account_count == 6

    det = ClusterDetector()
    assert run_summaries(det, _framed(["o1"] * 5 + ["o2"])) == []


@pytest.mark.parametrize("cover", [False, True])
def test_synchronized_templated_cluster_fires_once_and_names_members(cover):
    rng = random.Random(7)
    stage = ClusterStage(ClusterDetector, partitions=4)
    summaries = org_summaries(rng, 12) + hydra_summaries(rng, 10, cover=cover)
    summaries.sort(key=lambda s: s.ts)
    alerts = run_summaries(stage, summaries)
    clusters = [a for a in alerts if a.detector == "cluster"]
    members = [a for a in alerts if a.detector == "cluster_member"]
    assert clusters, "no cluster alert"
    assert all(a.status == "firing" for a in clusters)
    keys = [a.details["cluster_key"] for a in clusters]
    assert len(keys) == len(set(keys))  # one firing per episode per key
    for a in clusters:
        assert a.account_id is None and a.account_count >= 3
        assert all(x.startswith("hydra-") for x in a.accounts)
        assert a.dedup_key == f"cluster:{a.details['cluster_key']}"
        rec = a.to_record()
        assert rec["accounts"] and rec["account_count"] == a.account_count
        assert rec["details"]["shared_keys"]
        assert len(rec["summary"]) <= 120
    named = {a.account_id for a in members}
    assert named == {f"hydra-{i}" for i in range(10)}
    import json
    from pathlib import Path

    import jsonschema

    root = Path(__file__).resolve().parents[2]
    schema = json.loads((root / "schemas/alert.schema.json").read_text())
    for alert in alerts:
        jsonschema.validate(alert.to_record(emitted_at=alert.ts), schema)
    cluster_ids = {a.alert_id for a in clusters}
    assert all(m.details["cluster_alert_id"] in cluster_ids for m in members)
    assert all(m.details["cluster_dedup_key"].startswith("cluster:") for m in members)
    # first alert within 15 min of the campaign start
    start = min(s.ts for s in summaries if s.account_id.startswith("hydra"))
    assert min(a.ts for a in clusters) - start <= 900


def test_cluster_resolves_after_quiet_period_and_ids_are_deterministic():
    def run():
        det = ClusterDetector(quiet_period_s=1800)
        summaries = hydra_summaries(random.Random(3), 8)
        alerts = run_summaries(det, summaries)
        end = summaries[-1].ts
        # unrelated traffic moves the watermark on
        for i in range(12):
            s = AccountSummary(f"x{i}", end + 300 * (i + 1), end, ("pay:other",))
            alerts.extend(det.process("pay:other", s))
        return alerts

    a, b = run(), run()
    assert [x.alert_id for x in a] == [x.alert_id for x in b]
    statuses = [(x.details["cluster_key"], x.status) for x in a if x.detector == "cluster"]
    fired = {k for k, s in statuses if s == "firing"}
    resolved = {k for k, s in statuses if s == "resolved"}
    assert fired and fired == resolved


# ------------------------------------------------------------------ sketches ---


def test_sketch_memory_is_bounded_at_20k_members():
    det = ClusterDetector(max_sample=256)
    key = "pay:pm_reseller"
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(20_000):
        s = summary(
            f"proxy-{i:05d}",
            T0 + i * 0.5,
            T0 + i * 0.5,
            (key, f"ip:10.{i % 250}.0.0/24"),
            "coding/rust",
            0.9,
            (0x1234ABCD, i),
            0.8,
            0.5,
        )
        det.process(key, s)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    c = det.cluster(key)
    assert c is not None
    assert len(c.members) <= 256
    assert abs(c.count() - 20_000) / 20_000 < 0.06
    grown = sum(st.size_diff for st in after.compare_to(before, "filename"))
    # the 250 ip keys are small too; the 20k-member cluster itself stays ~100 kB
    assert grown < 2_000_000, grown
    assert len(encode_entry(c)) < 250_000
    # the cluster fired and every member that kept coming got its member alert
    assert c.episode_start


def test_hyperloglog_accuracy():
    for n in (10, 1000, 100_000):
        h = HyperLogLog(10)
        for i in range(n):
            h.add(account_hash(f"a{i}"))
        assert abs(h.count() - n) <= max(2, 0.06 * n), (n, h.count())


# ------------------------------------------------------------------ state ---


def test_state_round_trip_resumes_identically():
    summaries = org_summaries(random.Random(1), 6) + hydra_summaries(random.Random(2), 8)
    summaries.sort(key=lambda s: s.ts)
    whole = ClusterDetector()
    expected = run_summaries(whole, summaries)
    # first half, checkpoint, restart from the checkpoint, second half
    half = len(summaries) // 2
    first = ClusterDetector()
    got = run_summaries(first, summaries[:half])
    table: dict[str, bytes] = {}
    changed, removed = first.take_dirty()
    for k, v in changed:
        table[k] = v
    for k in removed:
        table.pop(k, None)
    meta = first.snapshot()
    second = ClusterDetector()
    second.loader = lambda k: decode_entry(table[k]) if k in table else None
    second.restore(meta)
    got += run_summaries(second, summaries[half:])
    assert [a.alert_id for a in got] == [a.alert_id for a in expected]
    assert [a.to_record() for a in got] == [a.to_record() for a in expected]


def test_entry_codec_rejects_garbage():
    assert decode_entry(encode_entry((5, T0))) == (5, T0)
    for bad in (b"{", b'{"v": 99}', b'{"v": 1, "key": "x"}', b"[]"):
        with pytest.raises(CorruptState):
            decode_entry(bad)
    with pytest.raises(CorruptState):
        ClusterDetector().restore(b'{"v": 1}')


def test_idle_keys_are_forgotten():
    det = ClusterDetector(idle_ttl_s=3600)
    for i in range(100):
        det.process(f"pay:pm_{i}", AccountSummary(f"a{i}", T0 + i, T0, (f"pay:pm_{i}",)))
    assert det.sizes() == (0, 100)
    det.process("pay:late", AccountSummary("z", T0 + 7300, T0, ("pay:late",)))
    assert det.sizes() == (0, 1)
    _, removed = det.take_dirty()
    assert len(removed) == 100


# ------------------------------------------------------------------ replay ---


@pytest.mark.slow  # a whole simulated run through replay
def test_replay_includes_cluster_alerts_deterministically():
    from simulator.simulate import simulate

    sim = simulate(seed=5, hours=4, accounts=120, attacks={"hydra_cover": 1})
    from detectors.schema import parse_event

    events = [parse_event(e) for e in sim.events]

    def run(clusters):
        rep = Replayer(Detector, partitions=4, clusters=clusters, campaigns=False)
        return [a for e in events for a in rep.process(e)]

    on, again, off = run(True), run(True), run(False)
    assert [a.alert_id for a in on] == [a.alert_id for a in again]
    assert not [a for a in off if a.detector.startswith("cluster")]
    # the account stage is unchanged by the cluster stage
    assert [a.alert_id for a in on if a.detector == "account"] == [a.alert_id for a in off]
    members = {lab["account_id"] for lab in sim.labels}
    named = {a.account_id for a in on if a.detector == "cluster_member"}
    assert [a for a in on if a.detector == "cluster"]
    assert len(named & members) >= 0.9 * len(members)
    assert named <= members  # no benign account is named


# The shared-template search kernel (detectors/_fpcount.c) against counting:
# tests/oracles/test_cluster_oracle.py.


# ------------------------------------------- incremental bookkeeping (issue 19)


class _Exhaustive(ClusterDetector):
    """Every summary evaluates in full, as before the incremental counts."""

    def _cannot_score(self, c, t):  # type: ignore[no-untyped-def]
        return False


def _org_rows(n_accounts: int, rounds: int, seed: int = 0) -> list[AccountSummary]:
    """An organisation of ``n_accounts`` sharing card, range and client, with
    varied prompts (each prompt's fingerprint repeats in a few accounts, as
    short common prompts do), plus a templated campaign hidden in it."""
    rng = random.Random(seed)
    common = [rng.getrandbits(40) for _ in range(40)]
    rows = []
    for r in range(rounds):
        for i in range(n_accounts):
            if rng.random() < 0.4:  # not every account is active every round
                continue
            ts = T0 + 7200 + r * 300 + rng.uniform(0, 299)
            camp = i < 12 and r >= rounds // 2
            fps = (0xC0FFEE, rng.getrandbits(40)) if camp else tuple(
                rng.choice(common) if rng.random() < 0.3 else rng.getrandbits(40)
                for _ in range(rng.randint(1, 8)))
            keys = ("pay:pm_org", "ip:10.1.2.0/24", "ua:httpx") + (
                ("tmpl:00c0ffee",) if camp else ())
            rows.append(AccountSummary(
                f"org-{i}", ts, T0 + (7200 + 30 * i if camp else 0), keys,
                (("coding/rust", 0.9),) if camp else ((rng.choice(["a", "b", "c"]), 0.4),),
                fps, 0.8 if camp else 0.1, 0.5 if camp else 0.0, 0.3, 1.0, 0.6 if camp else 0.1,
                20))
    rows.sort(key=lambda s: s.ts)
    return rows


@pytest.mark.parametrize("kw", [{}, {"max_sample": 40, "member_ttl_s": 1200.0}])
def test_incremental_counts_skip_only_what_cannot_score(kw):
    rows = _org_rows(150, 16)
    fast, full = ClusterDetector(**kw), _Exhaustive(**kw)
    got, want = [], []
    for s in rows:
        for key in s.keys:
            got += [a.to_record() for a in fast.process(key, s)]
            want += [a.to_record() for a in full.process(key, s)]
    assert got == want
    assert any(a["detector"] == "cluster" for a in want)  # the campaign fires
    assert fast.take_dirty() == full.take_dirty()  # the same checkpointed state
    assert fast.snapshot() == full.snapshot()
    done, exhaustive = fast.work(), full.work()
    assert done["applied"] == exhaustive["applied"]
    # the organisation's keys are rescored only while something could score
    assert done["scored"] < exhaustive["scored"] / 3, (done, exhaustive)


def test_cluster_work_is_bounded_as_an_organisation_grows():
    """Full evaluations per summary do not grow with the organisation: an
    organisation with no shared template is never evaluated in full."""
    per_summary = []
    for n in (50, 400):
        det = ClusterDetector()
        rows = [s for s in _org_rows(n, 8, seed=1) if "tmpl:00c0ffee" not in s.keys]
        for s in rows:
            for key in s.keys:
                det.process(key, s)
        work = det.work()
        per_summary.append(work["scored"] / len(rows))
        assert work["core_checks"] <= work["scored"]
    assert per_summary == [0.0, 0.0]


def test_cluster_stage_work_sums_the_partitions():
    stage = ClusterStage(ClusterDetector, partitions=4)
    for s in _org_rows(30, 4):
        stage.process(s)
    work = stage.work()
    assert work["summaries"] == stage.summaries
    assert work["applied"] == sum(d.work()["applied"] for d in stage.detectors)
    assert set(work) == {"summaries", "applied", "scored", "core_checks"}
