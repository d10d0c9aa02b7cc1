"""Stage 3, issue 23's remaining noise: member account alerts folded by
severity, account alerts held until a campaign can name them, the account
hold-down adapted to the account's own request rate, probation for a new
identity sub-group, and the snapshot carrying all of it (and restoring the
previous version)."""

from __future__ import annotations

import orjson
import pytest

from detectors.alerts import Alert
from detectors.campaign import CampaignStage, decode_campaign, encode_alert
from detectors.errors import CorruptState
from tests.helpers.campaign import T0, acct, cluster, member, quiet, records, run, tick


def test_a_member_alert_is_folded_unless_more_severe_and_beyond_the_margin():
    stage = CampaignStage()
    run(stage, [cluster("pay:p1", T0, ("h1", "h2", "h3"), score=0.9)])  # severity error
    # higher score than the campaign's (0.97 > 0.9 + 0.05) but the same severity: folded
    assert run(stage, [acct("h1", T0 + 60, 0.97, "error")]) == []
    # more severe, but within the margin (0.1): folded
    assert run(stage, [acct("h2", T0 + 70, 0.99, "critical")]) == []
    loose = CampaignStage(account_margin=0.05)
    run(loose, [cluster("pay:p1", T0, ("h1", "h2", "h3"), score=0.9)])
    own = run(loose, [acct("h2", T0 + 70, 0.99, "critical")])
    assert [(x.detector, x.details["campaign_id"]) for x in own] == [
        ("account", own[0].details["campaign_id"])]


def test_an_account_alert_of_the_same_event_as_its_campaign_is_folded():
    stage = CampaignStage()
    # the replay order of one event: its account alerts, then its cluster alerts
    out = run(stage, [acct("h1", T0, 0.95), cluster("pay:p1", T0, ("h1", "h2", "h3"))])
    assert records(out, "h1") == [("campaign_member", "firing")]
    # and its resolution is dropped with it
    assert records(run(stage, [acct("h1", T0 + 900, 0.1, status="resolved", start=T0)]),
                   "h1") == []


def test_an_account_alert_in_no_campaign_goes_out_when_event_time_moves_on():
    stage = CampaignStage()
    assert run(stage, [acct("x", T0, 0.95)]) == []
    out = quiet(run(stage, [tick(T0 + 1)]))
    assert records(out, "x") == [("account", "firing")]
    assert out[0].ts == T0  # its own event time, unchanged


def test_an_account_sharing_a_template_with_a_firing_campaign_waits_to_be_named():
    # (the hold alone: the template fold would name h9 at once, see test_campaign_fold)
    stage = CampaignStage(account_link_hold_s=600, template_fold=False)
    run(stage, [cluster("tmpl:abcd1234", T0, ("h1", "h2", "h3"))])
    # h9 uses the campaign's template: the cluster stage names it minutes later
    assert run(stage, [acct("h9", T0 + 100, 0.95, fps=("abcd1234", "00000001"))]) == []
    assert quiet(run(stage, [tick(T0 + 400)])) == []
    out = run(stage, [member("tmpl:abcd1234", T0 + 500, "h9", T0)])
    assert records(out, "h9") == [("campaign_member", "firing")]
    # one that is never named goes out after the hold, with its own event time
    assert records(run(stage, [acct("h8", T0 + 1000, 0.95, fps=("abcd1234",))]), "h8") == []
    assert records(run(stage, [tick(T0 + 1500)]), "h8") == []
    late = [x for x in run(stage, [tick(T0 + 1601)]) if x.account_id == "h8"]
    assert [(x.detector, x.ts) for x in late] == [("account", T0 + 1000)]
    # an unrelated template: no wait beyond the moment
    run(stage, [acct("h7", T0 + 2000, 0.95, fps=("ffffffff",))])
    assert records(run(stage, [tick(T0 + 2001)]), "h7") == [("account", "firing")]


@pytest.mark.parametrize(("rate", "episodes"), [(0.2, 1), (20.0, 2)])
def test_the_account_holddown_follows_the_accounts_own_rate(rate, episodes):
    """A low-and-slow account (0.2 requests/min) is quiet for 40 min between
    bursts: 30 requests at its rate is 2.5 h, so the second burst continues
    the first episode. A fast one quiet for 40 min has ended its episode."""
    stage = CampaignStage(holddown_s=1800, account_quiet_requests=30)
    out = run(stage, [
        acct("s", T0, 0.9, rate=rate), tick(T0 + 1),
        acct("s", T0 + 3600, 0.2, status="resolved", start=T0),
        acct("s", T0 + 3600 + 2400, 0.9, rate=rate),  # 40 min later
        acct("s", T0 + 9000, 0.2, status="resolved", start=T0 + 6000),
        tick(T0 + 9000 + 4 * 3600 + 120),
    ])
    got = records(out, "s")
    assert got.count(("account", "firing")) == episodes
    assert got.count(("account", "resolved")) == episodes
    assert {x.episode_start for x in out if x.account_id == "s"} == (
        {T0} if episodes == 1 else {T0, T0 + 6000})


def test_the_adaptive_holddown_is_capped():
    stage = CampaignStage(holddown_s=1800, account_quiet_requests=30, max_holddown_s=7200)
    assert stage._account_holddown(0.0) == 1800  # rate unknown: the fixed hold-down
    assert stage._account_holddown(0.01) == 7200
    assert stage._account_holddown(1.0) == 1800
    assert stage._account_holddown(0.5) == 3600


def test_probation_joins_a_subgroup_linked_minutes_later_without_a_page():
    stage = CampaignStage(probation_s=600)
    a = tuple(f"h{i}" for i in range(6))
    first = run(stage, [cluster("pay:p1", T0, a[:3], shared=("ua:bot",))])
    pages = [x for x in first if x.detector == "campaign"]
    # another card of the same actor: one of its accounts is named already,
    # nothing links it yet -> on probation, no page
    sub = run(stage, [cluster("pay:p2", T0 + 60, ("h2", "h4", "h5"), shared=("lsh:0-z",))])
    assert [x for x in sub if x.detector == "campaign"] == []
    assert run(stage, [member("pay:p2", T0 + 90, "h5", T0 + 60)]) == []
    # a range linking both fires 4 min later: the sub-group joins the first campaign
    link = run(stage, [cluster("ip:10.0.0.0/24", T0 + 300, a, shared=("pay:p1", "pay:p2"))])
    pages += [x for x in link if x.detector == "campaign"]
    assert {x.dedup_key for x in pages} == {first[0].dedup_key}
    assert not [x for x in link if x.detector == "campaign" and x.status == "resolved"]
    named = {x.account_id for x in first + sub + link if x.detector == "campaign_member"}
    assert named == set(a)


def test_probation_pages_an_unlinked_subgroup_after_it_with_the_decision_time():
    stage = CampaignStage(probation_s=600)
    run(stage, [cluster("pay:p1", T0, ("h1", "h2", "h3"))])
    assert run(stage, [cluster("pay:p9", T0 + 60, ("h3", "x1", "x2", "x3"))]) == []
    assert [x for x in run(stage, [tick(T0 + 600)]) if x.detector == "campaign"] == []
    out = run(stage, [tick(T0 + 661)])
    page = [x for x in out if x.detector == "campaign"]
    assert len(page) == 1 and page[0].ts == T0 + 661 and page[0].episode_start == T0 + 661
    # its member records carry the event time of the cluster that listed them:
    # the page waited, the evidence did not
    assert {x.account_id: x.ts for x in out if x.detector == "campaign_member"} == {
        "x1": T0 + 60, "x2": T0 + 60, "x3": T0 + 60}


def test_probation_is_on_by_default_for_five_minutes():
    stage = CampaignStage()
    assert stage.probation_s == 300.0
    run(stage, [cluster("pay:p1", T0, ("h1", "h2", "h3"))])
    assert run(stage, [cluster("pay:p9", T0 + 60, ("h3", "x1", "x2"))]) == []
    assert stage.holding == 1
    page = [x for x in run(stage, [tick(T0 + 361)]) if x.detector == "campaign"]
    assert [x.ts for x in page] == [T0 + 361]
    # off: paged at once, as before
    off = CampaignStage(probation_s=0)
    run(off, [cluster("pay:p1", T0, ("h1", "h2", "h3"))])
    assert [x.detector for x in run(off, [cluster("pay:p9", T0 + 60, ("h3", "x1", "x2"))])
            ].count("campaign") == 1


def test_a_cluster_re_fired_on_probation_keeps_its_first_event_time_and_members():
    stage = CampaignStage(probation_s=600)
    run(stage, [cluster("pay:p1", T0, ("h1", "h2", "h3"), shared=("ua:bot",))])
    assert run(stage, [cluster("pay:p2", T0 + 60, ("h3", "y1", "y2"))]) == []
    assert run(stage, [member("pay:p2", T0 + 90, "y3", T0 + 60)]) == []
    # the cluster stage rescored it with a further member: it waits with it
    # (re-parked, it used to drop y3's member alert and restart the probation)
    assert run(stage, [cluster("pay:p2", T0 + 200, ("h3", "y1", "y2", "y4"))]) == []
    assert stage.holding == 1
    link = run(stage, [cluster("ip:10.0.0.0/24", T0 + 400, ("h1", "y1"),
                               shared=("pay:p1", "pay:p2"))])
    assert [x for x in link if x.detector == "campaign"] == []  # joined: no page
    named = {x.account_id: x.ts for x in link if x.detector == "campaign_member"}
    # each at the event time of the first alert that listed it (y1 is named
    # by the range that links the two, but the parked card listed it at +60)
    assert named == {"y1": T0 + 60, "y2": T0 + 60, "y3": T0 + 90, "y4": T0 + 200}


def test_an_account_a_parked_cluster_listed_is_named_as_of_that_listing():
    stage = CampaignStage(probation_s=600)
    run(stage, [cluster("pay:p1", T0, ("h1", "h2", "h3"))])
    assert run(stage, [cluster("pay:p2", T0 + 60, ("h3", "y1", "y2"))]) == []
    # the first campaign's behaviour key names y1 minutes later, while pay:p2
    # still waits: the record says when the evidence named y1 (+60), not +250
    out = run(stage, [cluster("tmpl:abcd1234", T0 + 250, ("h1", "h2", "y1"))])
    assert {x.account_id: x.ts for x in out if x.detector == "campaign_member"} == {
        "y1": T0 + 60}
    # an account no parked cluster listed is named at the time it is named
    out = run(stage, [member("tmpl:abcd1234", T0 + 260, "z1", T0 + 250)])
    assert [(x.account_id, x.ts) for x in out] == [("z1", T0 + 260)]
    # and with nothing parked, nothing is backdated
    off = CampaignStage(probation_s=0)
    run(off, [cluster("pay:p1", T0, ("h1", "h2", "h3"))])
    run(off, [cluster("pay:p2", T0 + 60, ("h3", "y1", "y2"))])
    out = run(off, [cluster("tmpl:abcd1234", T0 + 250, ("h1", "h2", "y9"))])
    assert [(x.account_id, x.ts) for x in out if x.detector == "campaign_member"] == [
        ("y9", T0 + 250)]


def test_snapshot_carries_held_and_parked_alerts_and_restores_versions_1_and_2():
    def feed() -> list[Alert]:
        return [
            cluster("pay:p1", T0, ("h1", "h2", "h3")),
            acct("x", T0 + 10, 0.95),                           # held (no campaign)
            acct("h9", T0 + 20, 0.95, fps=("aaaa0000",)),
            cluster("pay:p2", T0 + 30, ("h3", "y1", "y2")),     # on probation
            cluster("pay:p2", T0 + 35, ("h3", "y1", "y2", "y4")),  # its re-fire waits too
            acct("s", T0 + 40, 0.9, rate=0.2),
            acct("s", T0 + 50, 0.1, status="resolved", start=T0 + 40),
            tick(T0 + 60), tick(T0 + 700), tick(T0 + 4 * 3600),
        ]

    whole = [x.alert_id for x in run(CampaignStage(probation_s=600), feed())]
    for cut in range(1, len(feed())):
        first = CampaignStage(probation_s=600)
        out = [x.alert_id for x in run(first, feed()[:cut])]
        changed, _ = first.take_dirty()
        again = CampaignStage(probation_s=600)
        again.restore(first.snapshot(), [decode_campaign(v) for _, v in changed])
        out += [x.alert_id for x in run(again, feed()[cut:])]
        assert out == whole, cut
    # a version-1 snapshot (before this change): accounts without a rate, no held lists
    v1 = orjson.dumps({"v": 1, "wm": T0, "next": T0 + 60, "held": {}, "alias": {},
                       "accounts": {"x": [T0, "", False]}})
    old = CampaignStage()
    old.restore(v1)
    assert old._accounts["x"] == (T0, "", False, 0.0)
    # a version-2 snapshot (before re-fires waited with their parked cluster):
    # its parked list holds member alerts only, read as before
    park = cluster("pay:p2", T0 + 30, ("h3", "y1", "y2"))
    v2 = orjson.dumps({
        "v": 2, "wm": T0 + 40, "next": T0 + 60, "held": {}, "alias": {}, "accounts": {},
        "pending": {}, "parked": {"pay:p2": [encode_alert(park).decode(), T0 + 630,
                                             [encode_alert(member("pay:p2", T0 + 40, "y3",
                                                                  T0 + 30)).decode()]]}})
    two = CampaignStage(probation_s=600)
    two.restore(v2)
    assert two.holding == 1
    out = two.release_held()
    assert {x.account_id: x.ts for x in out if x.detector == "campaign_member"} == {
        "h3": T0 + 30, "y1": T0 + 30, "y2": T0 + 30, "y3": T0 + 40}
    assert orjson.loads(two.snapshot())["v"] == 5
    with pytest.raises(CorruptState):
        old.restore(orjson.dumps({"v": 9, "wm": T0, "next": 0, "held": {}, "alias": {},
                                  "accounts": {}}))


def test_noise_counts_incidents_that_name_several_campaigns():
    from simulator.noise import format_noise, noise_metrics

    labels = [{"account_id": f"{c}{i}", "attack": "hydra", "campaign": c}
              for c in ("a", "b") for i in range(3)]
    kinds = {lab["account_id"]: "hydra" for lab in labels}
    one = {"detector": "campaign", "status": "firing", "dedup_key": "campaign:x",
           "episode_start": 1.0, "accounts": ["a0", "a1", "a2", "b0", "b1", "b2"]}
    own = {"detector": "campaign", "status": "firing", "dedup_key": "campaign:y",
           "episode_start": 1.0, "accounts": ["a0", "a1", "a2", "b0"]}
    assert noise_metrics([one], labels, kinds, 24)["mixed_incidents"] == 1
    m = noise_metrics([own], labels, kinds, 24)
    assert m["mixed_incidents"] == 0
    assert "naming >= 2 campaigns" in format_noise(m)
