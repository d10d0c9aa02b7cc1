"""Stage 3, issue 23's first detections: a campaign whose founding cluster
names an account paged on its own minutes before (its campaign's first
detection) continues that page's incident instead of opening a second one,
and every consumer (PagerDuty, Alertmanager, the noise metrics, tail and the
live page's grouping) sees one incident."""

from __future__ import annotations

import orjson

from detectors.alerts import Alert
from detectors.campaign import CampaignStage, decode_campaign
from simulator.noise import noise_metrics
from streams.oncall.mappings import alertmanager_alert, pagerduty_event
from streams.oncall.render import alert_line, group_by_incident, incident_of
from tests.helpers.campaign import T0, acct, cluster, quiet, run, tick

LABELS = [{"account_id": a, "attack": "hydra", "campaign": "c1"}
          for a in ("a1", "a2", "a3", "a4")]
KINDS = {lab["account_id"]: "hydra" for lab in LABELS}


def _day(stage: CampaignStage) -> list[Alert]:
    """a1 pages on its own (no cluster yet); five minutes later the cluster
    of its card fires, naming it and two more; the campaign goes quiet."""
    return quiet(run(stage, [
        acct("a1", T0, 0.9, keys=("pay:p1", "ip:10.0.0.0/24")), tick(T0 + 1),
        cluster("pay:p1", T0 + 300, ("a1", "a2", "a3")),
        acct("a1", T0 + 900, 0.1, status="resolved", start=T0),
        cluster("pay:p1", T0 + 1200, ("a1", "a2", "a3"), status="resolved"),
        tick(T0 + 1200 + 1800 + 120), tick(T0 + 4 * 3600 + 600)]))


def _incidents(out: list[Alert]) -> float:
    return noise_metrics(out, LABELS, KINDS, 24)["families"]["hydra"]["incidents_per_entity"]


def test_a_campaign_continues_the_open_page_of_an_account_its_cluster_names():
    out = _day(CampaignStage())
    page, camp = out[0], out[1]
    assert (page.detector, page.dedup_key) == ("account", "account:a1")
    # the campaign goes out as an update of a1's incident: same key, same
    # episode, the next revision (a1's page was the incident's first record)
    assert camp.detector == "campaign" and camp.dedup_key == "account:a1"
    assert (camp.episode_start, camp.revision) == (T0, 1)
    assert camp.details["adopted"]["severity"] == "error"
    assert camp.alert_id != page.alert_id
    members = [x for x in out if x.detector == "campaign_member"]
    assert {x.account_id for x in members} == {"a1", "a2", "a3"}
    assert all(x.details["campaign_dedup_key"] == "account:a1" and x.episode_start == T0
               and x.details["campaign_alert_id"] == camp.alert_id for x in members)
    # a1's own resolution is the campaign's now: one resolve, the campaign's
    resolves = [x for x in out if x.status == "resolved"]
    assert [(x.detector, x.dedup_key, x.episode_start) for x in resolves] == [
        ("campaign", "account:a1", T0)]
    assert resolves[0].details["firing_severity"] == "error"
    assert _incidents(out) == 1.0
    # off: the campaign is an incident of its own, and a1's page resolves itself
    off = _day(CampaignStage(adopt_pages=False))
    assert [x.dedup_key for x in off if x.detector == "campaign"][0].startswith("campaign:")
    assert _incidents(off) == 2.0
    assert sum(1 for x in off if x.status == "resolved") == 2


def test_on_call_tools_see_one_incident_for_the_page_and_its_campaign():
    out = _day(CampaignStage())
    records = [x.to_record() for x in out]
    am = [alertmanager_alert(r) for r in records if not r["detector"].endswith("_member")]
    # Alertmanager identifies an alert by its labels: the page, the campaign's
    # update and its resolve are one alert, which the resolve ends
    assert len({orjson.dumps(a["labels"], option=orjson.OPT_SORT_KEYS) for a in am}) == 1
    assert "endsAt" in am[-1] and am[1]["annotations"]["campaign"].startswith("c-")
    pd = [pagerduty_event(r, "R" * 32) for r in records if not r["detector"].endswith("_member")]
    assert {e["dedup_key"] for e in pd} == {"account:a1"}
    assert [e["event_action"] for e in pd] == ["trigger", "trigger", "resolve"]


def test_a_template_cluster_does_not_adopt_another_operators_page():
    # m1 (a model pivot, say) paged an hour ago; a public template's cluster
    # names it with a campaign's accounts: not the same operator
    stage = CampaignStage()
    run(stage, [acct("m1", T0, 0.9, keys=("pay:zz",)), tick(T0 + 1)])
    out = run(stage, [cluster("tmpl:t1", T0 + 3600, ("m1", "a2", "a3"), shared=("ua:x",))])
    assert [x.dedup_key for x in out if x.detector == "campaign"][0].startswith("campaign:")
    # ... unless the template's members share m1's own card: one operator
    stage = CampaignStage()
    run(stage, [acct("m1", T0, 0.9, keys=("pay:zz",)), tick(T0 + 1)])
    out = run(stage, [cluster("tmpl:t1", T0 + 3600, ("m1", "a2", "a3"), shared=("pay:zz",))])
    assert [x.dedup_key for x in out if x.detector == "campaign"] == ["account:m1"]


def test_a_closed_or_less_severe_page_is_not_adopted():
    stage = CampaignStage()
    run(stage, [acct("a1", T0, 0.9, keys=("pay:p1",)), tick(T0 + 1),
                acct("a1", T0 + 60, 0.1, status="resolved", start=T0)])
    closed = quiet(run(stage, [tick(T0 + 60 + 1800 + 60)]))
    assert [(x.detector, x.status) for x in closed] == [("account", "resolved")]
    out = run(stage, [cluster("pay:p1", T0 + 4000, ("a1", "a2", "a3"))])
    assert [x.dedup_key for x in out if x.detector == "campaign"][0].startswith("campaign:")
    # a warning page, an error campaign: the campaign's own page escalates
    stage = CampaignStage()
    run(stage, [acct("a1", T0, 0.8, severity="warning", keys=("pay:p1",)), tick(T0 + 1)])
    out = run(stage, [cluster("pay:p1", T0 + 300, ("a1", "a2", "a3"))])
    assert [x.dedup_key for x in out if x.detector == "campaign"][0].startswith("campaign:")
    # ... unless told to (where on-call does not route by severity)
    stage = CampaignStage(adopt_less_severe=True)
    run(stage, [acct("a1", T0, 0.8, severity="warning", keys=("pay:p1",)), tick(T0 + 1)])
    out = run(stage, [cluster("pay:p1", T0 + 300, ("a1", "a2", "a3"))])
    camp = [x for x in out if x.detector == "campaign"][0]
    assert camp.dedup_key == "account:a1" and camp.details["adopted"]["severity"] == "warning"


def test_a_campaign_naming_an_account_that_joined_a_page_continues_that_page():
    stage = CampaignStage()
    out = quiet(run(stage, [
        acct("a1", T0, 0.9, keys=("pay:p1",)), tick(T0 + 1),
        acct("a2", T0 + 60, 0.9, keys=("pay:p1", "ip:10.9.9.0/24")), tick(T0 + 61),
        # the range's cluster names a2 (not a1): a2 is in a1's incident
        cluster("ip:10.9.9.0/24", T0 + 400, ("a2", "a3", "a4"))]))
    assert [(x.detector, x.dedup_key) for x in out if not x.detector.endswith("_member")] == [
        ("account", "account:a1"), ("campaign", "account:a1")]
    assert _incidents(out) == 1.0
    # and the live page and tail show them as one block
    groups = group_by_incident([x.to_record() for x in out])
    assert len(groups) == 1 and groups[0]["incident"] == "account:a1"
    g = groups[0]
    assert g["record"]["detector"] == "campaign" and g["campaign_id"].startswith("c-")
    assert [r["account_id"] for r in g["accounts"]] == ["a1"]  # the adopted page
    assert sorted(r["detector"] for r in g["members"]) == ["account_member"] + [
        "campaign_member"] * 3


def test_tail_lines_name_the_incident_a_record_joined():
    stage = CampaignStage()
    out = quiet(run(stage, [
        acct("a1", T0, 0.9, keys=("pay:p1",)), tick(T0 + 1),
        acct("a2", T0 + 60, 0.9, keys=("pay:p1",)), tick(T0 + 61),
        cluster("pay:p1", T0 + 400, ("a2", "a3", "a4"))]))
    lines = {x.detector: alert_line(x.to_record()) for x in out}
    assert lines["account_member"].endswith("[in account:a1]")
    assert incident_of(out[1].to_record()) == "account:a1"
    assert "[campaign c-" in lines["campaign"] and "accounts" in lines["campaign"]
    assert lines["campaign_member"].endswith(", incident account:a1]")


def test_snapshot_carries_open_pages_and_restores_version_3():
    def feed() -> list[Alert]:
        return [acct("a1", T0, 0.9, keys=("pay:p1",)), tick(T0 + 1),
                acct("a2", T0 + 60, 0.9, keys=("pay:p1",)), tick(T0 + 61),
                cluster("pay:p1", T0 + 300, ("a2", "a3")),
                acct("a1", T0 + 900, 0.1, status="resolved", start=T0),
                cluster("pay:p1", T0 + 1000, ("a2", "a3"), status="resolved"),
                tick(T0 + 5000), tick(T0 + 20000)]

    whole = [x.alert_id for x in run(CampaignStage(), feed())]
    for cut in range(1, len(feed())):
        first = CampaignStage()
        out = [x.alert_id for x in run(first, feed()[:cut])]
        changed, _ = first.take_dirty()
        again = CampaignStage()
        again.restore(first.snapshot(), [decode_campaign(v) for _, v in changed])
        out += [x.alert_id for x in run(again, feed()[cut:])]
        assert out == whole, cut
    # a version-3 snapshot (before adoption): no open pages, restored as none
    v3 = orjson.dumps({"v": 3, "wm": T0, "next": T0 + 60, "held": {}, "alias": {},
                       "accounts": {"a1": [T0, "", False, 5.0]}, "pending": {}, "parked": {},
                       "paged": {}})
    old = CampaignStage()
    old.restore(v3)
    out = run(old, [cluster("pay:p1", T0 + 300, ("a1", "a2", "a3"))])
    assert [x.dedup_key for x in out if x.detector == "campaign"][0].startswith("campaign:")
    assert orjson.loads(old.snapshot())["v"] == 5


def test_the_campaigns_resolve_lifts_the_actions_of_the_page_and_of_its_own_first_record():
    from detectors.response import ActionLedger, ResponsePolicy, decide

    policy = ResponsePolicy.from_mapping({})
    out = _day(CampaignStage())
    ledger = ActionLedger()
    caused: list[str] = []
    for x in out:
        if x.detector.endswith("_member"):
            continue
        for rec in policy.propose(x.to_record()):
            ledger.apply(rec)
            if rec["data"]["action"] != "lift" and rec["type"].endswith("proposed"):
                caused.append(rec["data"]["action_id"])
            elif rec["data"]["action"] == "lift" and rec["type"].endswith("proposed"):
                ledger.apply(decide(rec, "approved", "human", "ana", "resolved", T0 + 9000))
    # the page's actions and the campaign's (its first record, revision 1)
    assert len(caused) >= 2
    assert all(ledger.status(a) == "lifted" for a in caused), [ledger.status(a) for a in caused]


def test_a_campaign_whose_members_share_a_paged_accounts_range_continues_its_page():
    # a1 paged on its own card; the campaign's first cluster is another card
    # of the same operator, whose members share a1's network range
    stage = CampaignStage()
    run(stage, [acct("a1", T0, 0.9, keys=("pay:pX", "ip:10.5.5.0/24")), tick(T0 + 1)])
    out = run(stage, [cluster("pay:p1", T0 + 900, ("a2", "a3", "a4"),
                              shared=("ip:10.5.5.0/24", "ua:x"))])
    camp = [x for x in out if x.detector == "campaign"]
    assert [x.dedup_key for x in camp] == ["account:a1"]
    # a1 is its member from now on (as the identity fold names an account later)
    assert {x.account_id for x in out if x.detector == "campaign_member"} == {
        "a1", "a2", "a3", "a4"}
    # a page on a range the members do not share stays its own incident
    stage = CampaignStage()
    run(stage, [acct("a1", T0, 0.9, keys=("pay:pX", "ip:10.6.6.0/24")), tick(T0 + 1)])
    out = run(stage, [cluster("pay:p1", T0 + 900, ("a2", "a3", "a4"),
                              shared=("ip:10.5.5.0/24",))])
    assert [x.dedup_key for x in out if x.detector == "campaign"][0].startswith("campaign:")
