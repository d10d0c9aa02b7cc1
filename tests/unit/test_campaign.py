"""Stage 3 (detectors/campaign.py): one campaign, one incident."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.alerts import Alert
from detectors.campaign import (
    CampaignStage,
    decode_alert,
    decode_campaign,
    encode_alert,
    encode_campaign,
)
from detectors.errors import CorruptState
from detectors.replay import Replayer
from tests.helpers.campaign import T0, account, cluster, member, run, tick


def test_clusters_sharing_members_and_keys_are_one_campaign_and_one_incident():
    stage = CampaignStage(update_interval_s=600, holddown_s=1800)
    a = tuple(f"h{i}" for i in range(8))
    out = run(stage, [
        cluster("pay:p1", T0, a[:5], shared=("ua:bot", "lsh:0-x")),
        cluster("ip:10.0.0.0/24", T0 + 30, a[3:8], shared=("ua:bot", "lsh:0-x")),
        cluster("tmpl:abcd", T0 + 40, a, shared=("ua:bot",)),
        member("pay:p1", T0 + 50, "h7", T0),
        member("ip:10.0.0.0/24", T0 + 60, "h0", T0 + 30),
    ])
    camps = [x for x in out if x.detector == "campaign"]
    assert len({x.dedup_key for x in camps}) == 1
    assert [x.revision for x in camps] == [0]  # growth within the interval waits
    members = [x.account_id for x in out if x.detector == "campaign_member"]
    assert sorted(members) == sorted(a)  # one record per account, not per key
    cid = camps[0].details["campaign_id"]
    assert all(x.details["campaign_id"] == cid for x in out if x.detector == "campaign_member")
    c = stage.campaign(cid)
    assert c is not None and set(c.keys) == {"pay:p1", "ip:10.0.0.0/24", "tmpl:abcd"}
    # after the interval the pending growth goes out once, same dedup_key, own id
    later = run(stage, [tick(T0 + 700)])
    upd = [x for x in later if x.detector == "campaign"]
    assert [x.revision for x in upd] == [1]
    assert upd[0].dedup_key == camps[0].dedup_key and upd[0].alert_id != camps[0].alert_id
    rec = upd[0].to_record()
    assert rec["revision"] == 1 and rec["account_count"] == 8
    assert set(rec["details"]["linkage_keys"]) >= {"pay:p1", "ip:10.0.0.0/24", "ua:bot"}
    assert rec["details"]["first_seen"] == T0


def test_unrelated_campaigns_stay_apart_and_behaviour_keys_do_not_merge_them():
    stage = CampaignStage()
    out = run(stage, [
        cluster("pay:p1", T0, ("a1", "a2", "a3"), shared=("ua:requests",)),
        cluster("pay:p2", T0 + 10, ("b1", "b2", "b3"), shared=("ua:requests",)),
        # a topic bucket both use: joins neither majority, founds nothing new
        cluster("lsh:0-x", T0 + 20, ("a1", "b1", "a2", "b2")),
    ])
    camps = {x.details["campaign_id"] for x in out if x.detector == "campaign"}
    assert len(camps) == 2
    assert len([x for x in out if x.detector == "campaign_member"]) == 6


def test_resolves_after_the_holddown_and_a_refire_within_it_reopens_the_episode():
    stage = CampaignStage(holddown_s=1800)
    a = ("h1", "h2", "h3")
    first = run(stage, [cluster("pay:p1", T0, a)])
    fire = first[0]
    # the cluster resolves, then fires again 10 min later: same episode, no page
    again = run(stage, [
        cluster("pay:p1", T0 + 3600, a, status="resolved"),
        cluster("pay:p1", T0 + 4200, a),
    ])
    assert not [x for x in again if x.detector == "campaign"]
    assert not [x for x in again if x.detector == "campaign_member"]
    # quiet for good: resolved once, holddown after its last cluster resolved
    end = run(stage, [cluster("pay:p1", T0 + 7200, a, status="resolved"), tick(T0 + 9100)])
    res = [x for x in end if x.detector == "campaign"]
    assert [x.status for x in res] == ["resolved"]
    assert res[0].ts == T0 + 7200 + 1800
    assert res[0].dedup_key == fire.dedup_key and res[0].episode_start == fire.episode_start
    # a later episode on the same key keeps the campaign id, new episode
    new = run(stage, [cluster("pay:p1", T0 + 20000, a)])
    fired = [x for x in new if x.detector == "campaign"]
    assert fired[0].dedup_key == fire.dedup_key and fired[0].episode_start == T0 + 20000
    assert len([x for x in new if x.detector == "campaign_member"]) == 3


def test_member_accounts_are_folded_unless_their_own_evidence_is_stronger():
    stage = CampaignStage(account_margin=0.05)
    run(stage, [cluster("pay:p1", T0, ("h1", "h2", "h3"), score=0.9)])
    assert run(stage, [account("h1", T0 + 60, 0.92)]) == []  # folded
    assert run(stage, [account("h1", T0 + 900, 0.1, "resolved", T0 + 60)]) == []
    strong = run(stage, [account("h2", T0 + 70, 0.99)])
    assert len(strong) == 1 and strong[0].details["campaign_id"].startswith("c-")
    # in no campaign: it goes out once event time moves on (a campaign could
    # still have named it in the same event)
    outsider = [x for x in run(stage, [account("x9", T0 + 80, 0.99), tick(T0 + 81)])
                if x.account_id == "x9"]
    assert len(outsider) == 1 and "campaign_id" not in outsider[0].details


def test_account_flapping_within_the_holddown_is_one_episode():
    stage = CampaignStage(holddown_s=1800)
    out = run(stage, [
        account("x", T0, 0.9),
        account("x", T0 + 600, 0.2, "resolved", T0),
        account("x", T0 + 1200, 0.9),  # re-fires within the hold-down
        account("x", T0 + 2400, 0.2, "resolved", T0 + 1200),
        tick(T0 + 2400 + 1900),
    ])
    assert [(x.status, x.episode_start) for x in out if x.account_id == "x"] == [
        ("firing", T0), ("resolved", T0)]
    firing, resolved = [x for x in out if x.account_id == "x"]
    assert resolved.alert_id != firing.alert_id


@lru_cache(maxsize=1)
def _stage_input() -> tuple[Alert, ...]:
    """Real stage-1/2 alerts of a small simulated run with two campaigns."""
    from detectors.engine import Detector
    from detectors.schema import parse_event
    from simulator.simulate import simulate

    sim = simulate(seed=3, hours=5, accounts=150,
                   attacks={"hydra": 1, "hydra_cover": 1, "extractor": 2})
    rep = Replayer(Detector, partitions=4, campaigns=False)
    return tuple(a for e in sim.events for a in rep.process(parse_event(e)))


@pytest.mark.slow  # a whole simulated run through replay, twice
def test_checkpoint_and_restore_continue_exactly():
    alerts = _stage_input()
    assert any(a.detector == "cluster" for a in alerts)
    whole = [x.alert_id for x in run(CampaignStage(), list(alerts))]
    for cut in (len(alerts) // 3, 2 * len(alerts) // 3):
        first = CampaignStage()
        out = [x.alert_id for x in run(first, list(alerts[:cut]))]
        changed, _ = first.take_dirty()
        restored = CampaignStage()
        restored.restore(first.snapshot(), [decode_campaign(v) for _, v in changed])
        out += [x.alert_id for x in run(restored, list(alerts[cut:]))]
        assert out == whole


@pytest.mark.slow  # a whole simulated run through replay
def test_replay_through_the_campaign_stage_is_deterministic_and_quieter():
    from detectors.engine import Detector
    from detectors.schema import parse_event
    from simulator.simulate import simulate

    sim = simulate(seed=3, hours=5, accounts=150, attacks={"hydra": 1, "hydra_cover": 1})
    events = [parse_event(e) for e in sim.events]

    def go(campaigns: bool) -> list[Alert]:
        rep = Replayer(Detector, partitions=4, campaigns=campaigns)
        return [a for e in events for a in rep.process(e)]

    on, again, off = go(True), go(True), go(False)
    assert [a.alert_id for a in on] == [a.alert_id for a in again]
    assert not [a for a in on if a.detector.startswith("cluster")]
    labelled = {lab["account_id"] for lab in sim.labels}
    named = {a.account_id for a in on if a.detector == "campaign_member"}
    assert named and named <= labelled  # no benign account
    per_account: dict[str, int] = {}
    for a in on:
        if a.detector == "campaign_member":
            per_account[a.account_id] = per_account.get(a.account_id, 0) + 1
    assert max(per_account.values()) == 1
    incidents = {(a.dedup_key, a.episode_start) for a in on
                 if a.detector == "campaign" and a.status == "firing"}
    before = {(a.dedup_key, a.episode_start) for a in off
              if a.detector == "cluster" and a.status == "firing"}
    assert 1 <= len(incidents) < len(before)


def test_stage_alert_codec_round_trips_and_rejects_garbage():
    a = replace(account("x", T0 + 0.123456789, 0.987654321), revision=2)
    assert decode_alert(encode_alert(a)) == a
    for bad in (b"", b"[]", b"{}", b'{"detector": "account"}', b"\xff"):
        with pytest.raises(CorruptState):
            decode_alert(bad)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["pay:p1", "pay:p2", "ip:n1", "tmpl:t", "lsh:0-x"]),
                          st.integers(0, 20_000),
                          st.lists(st.sampled_from([f"a{i}" for i in range(12)]),
                                   min_size=1, max_size=6, unique=True),
                          st.sampled_from(["firing", "resolved", "member", "account"])),
                max_size=40))
def test_invariants_on_arbitrary_streams(items):
    """Any order of stage alerts: one member record per account per
    campaign episode, updates numbered in order, state round-trips."""
    stage = CampaignStage(max_members=4, bloom_bits=1 << 10, max_keys=3)
    items = sorted(items, key=lambda it: it[1])
    out: list[Alert] = []
    for key, dt, accts, what in items:
        t = T0 + dt
        if what == "member":
            a = member(key, t, accts[0], t)
        elif what == "account":
            a = account(accts[0], t, 0.95)
        else:
            a = cluster(key, t, tuple(accts), status=what)
        out += stage.process(a)
    seen: set[tuple[str, float, str]] = set()
    revisions: dict[tuple[str, float], int] = {}
    for a in out:
        if a.detector == "campaign_member":
            k = (a.details["campaign_id"], a.episode_start, a.account_id)
            assert k not in seen
            seen.add(k)
        if a.detector == "account" and a.status == "firing":
            revisions[(a.dedup_key, a.episode_start)] = 0  # a page a campaign may adopt
        if a.detector == "campaign" and a.status == "firing":
            ep = (a.dedup_key, a.episode_start)
            # an adopted page was the incident's first record: the campaign updates it
            assert ("adopted" in a.details) == a.dedup_key.startswith("account:")
            assert a.revision == revisions.get(ep, -1) + 1
            revisions[ep] = a.revision
    for c in stage.campaigns():
        assert len(c.members) <= 4 and len(c.evidence) <= 3
        assert decode_campaign(encode_campaign(c)).to_json() == c.to_json()


def test_invalid_parameters_fail_in_the_constructor():
    for kw in ({"holddown_s": -1}, {"growth": 0}, {"max_members": 0},
               {"join_overlap": 0.0}, {"join_members": 0}, {"sweep_interval_s": 0}):
        with pytest.raises(ValueError):
            CampaignStage(**kw)  # type: ignore[arg-type]


def test_every_stage_output_matches_the_alert_schema():
    import json
    from pathlib import Path

    import jsonschema

    root = Path(__file__).resolve().parents[2]
    schema = json.loads((root / "schemas/alert.schema.json").read_text())
    stage = CampaignStage(update_interval_s=0)
    out = run(stage, list(_stage_input()))
    end = _stage_input()[-1].ts
    quiet = [cluster(k, end + 60, (), status="resolved")
             for c in stage.campaigns() for k in sorted(c.firing_keys)]
    out += run(stage, [*quiet, tick(end + 6 * 3600)])  # everything resolves
    kinds = {(a.detector, a.status, bool(a.revision)) for a in out}
    assert {("campaign", "firing", False), ("campaign", "firing", True),
            ("campaign", "resolved", False), ("campaign_member", "firing", False)} <= kinds
    for alert in out:
        jsonschema.validate(alert.to_record(emitted_at=alert.ts), schema)
    bad = run(CampaignStage(), [cluster("pay:p9", T0, ("a", "b", "c"))])[0].to_record()
    del bad["details"]["linkage_keys"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


@pytest.mark.slow  # a whole simulated run through replay
def test_replay_report_has_a_campaigns_table(tmp_path):
    from streams.cli import main

    events, labels = tmp_path / "day.jsonl", tmp_path / "labels.jsonl"
    assert main(["simulate", "--out", str(events), "--labels", str(labels), "--seed", "3",
                 "--hours", "5", "--accounts", "150", "--attacks", "hydra:1"]) == 0
    report = tmp_path / "report.html"
    assert main(["replay", str(events), "--alerts-out", str(tmp_path / "a.jsonl"),
                 "--labels", str(labels), "--report", str(report), "--no-progress"]) == 0
    text = report.read_text()
    assert "<h2>Campaigns</h2>" in text
    table = text.split("<h2>Campaigns</h2>")[1].split("</table>")[0]
    assert "<code>c-" in table and "hydra-1" in table and "pay:" in table
    assert table.count("<tr>") >= 2  # header and at least one campaign


def test_a_resolution_from_a_lagging_partition_is_not_held_forever():
    """Live, partitions are read at different speeds: found by the crash test,
    an account's resolution arriving after other partitions' event time has
    passed its hold-down must come out at once (no later tick would)."""
    stage = CampaignStage(holddown_s=1800)
    run(stage, [account("slow", T0, 0.9), tick(T0 + 10_000)])
    out = run(stage, [account("slow", T0 + 600, 0.2, "resolved", T0)])
    assert [(a.account_id, a.status) for a in out] == [("slow", "resolved")]
    run(stage, [cluster("pay:p1", T0 + 10_100, ("a", "b", "c"))])
    late = run(stage, [tick(T0 + 20_000),
                       cluster("pay:p1", T0 + 12_000, ("a", "b", "c"), status="resolved")])
    assert [(a.detector, a.status) for a in late if a.detector != "other"] == [
        ("campaign", "resolved")]


def test_an_account_alert_from_before_the_campaign_is_not_folded():
    """Live, a lagging partition's account alert can arrive after a campaign
    that began later in event time; it is the account's own earlier incident."""
    stage = CampaignStage()
    run(stage, [cluster("pay:p1", T0 + 600, ("h1", "h2", "h3"), score=0.9)])
    late = run(stage, [account("h1", T0 + 300, 0.9)])
    assert [(a.account_id, a.status) for a in late] == [("h1", "firing")]
    assert late[0].details["campaign_id"].startswith("c-")  # it still names it


def test_earlier_evidence_arriving_late_is_sent_at_once():
    """Live, a cluster that fired earlier in event time can arrive after the
    campaign's page (another summaries partition lagging): the campaign's
    first_seen moves back and an update goes out at that event time."""
    stage = CampaignStage(update_interval_s=900)
    first = run(stage, [cluster("pay:p1", T0 + 600, ("h1", "h2", "h3"))])
    late = run(stage, [cluster("ip:n1", T0 + 100, ("h1", "h2", "h4"))])
    upd = [a for a in late if a.detector == "campaign"]
    assert [(a.revision, a.ts) for a in upd] == [(1, T0 + 100)]
    assert upd[0].dedup_key == first[0].dedup_key
    assert upd[0].details["first_seen"] == T0 + 100
    assert [a.account_id for a in late if a.detector == "campaign_member"] == ["h4"]


def test_campaign_records_export_their_linkage_keys_as_indicators():
    """Indicator sharing (streams/response/sharing.py) reads cluster alerts' keys; with
    the campaign stage on, the campaign record carries them instead."""
    from streams.response.sharing import build_bundle

    stage = CampaignStage()
    out = run(stage, [cluster("pay:pm_1", T0, ("a", "b", "c"), shared=("ip:10.1.2.0/24",))])
    record = next(a for a in out if a.detector == "campaign").to_record(emitted_at=T0)
    bundle = build_bundle([record], key=b"k" * 32, key_id="test")
    kinds = [o for o in bundle["objects"] if o["type"] == "indicator"]
    assert len(kinds) >= 2, bundle
    assert any(o["type"] == "campaign" for o in bundle["objects"])
