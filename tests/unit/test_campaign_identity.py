"""Stage 3, issue 23's first detections: account alerts carry their own
identity keys (payer, network range, org), so an account is folded into the
campaign that fired on them before any cluster names it, and an account
sharing one with an account paged minutes ago joins that page's incident."""

from __future__ import annotations

import orjson
import pytest

from detectors.alerts import Alert
from detectors.campaign import CampaignStage, decode_campaign
from detectors.cluster.keys import identity_keys
from detectors.engine import Detector
from detectors.schema import parse_event
from simulator.noise import noise_metrics
from tests.helpers.attack import extractor_events
from tests.helpers.campaign import T0, acct, cluster, quiet, records, run, tick


def test_an_account_alert_carries_the_identity_keys_of_its_request():
    det, state, fired = Detector(), None, []
    for _, value in extractor_events("x1", n=400, start=T0):
        obj = orjson.loads(value)
        obj.update(payment_fingerprint="pm_77", ip="203.0.113.9", user_agent="curl/8")
        state, alerts = det.process(state, parse_event(obj))
        fired += [a for a in alerts if a.status == "firing"]
    assert fired, "the blatant extractor must fire"
    # identity keys only: a client or template is shared by unrelated accounts
    assert fired[0].details["linkage_keys"] == ["pay:pm_77", "ip:203.0.113.0/24"]
    assert identity_keys(parse_event({"ts": T0, "account_id": "y"})) == []


def test_an_account_on_a_campaigns_card_or_range_is_its_member_at_once():
    stage = CampaignStage()
    run(stage, [cluster("pay:p1", T0, ("h1", "h2", "h3"), shared=("ip:10.0.0.0/24", "ua:b"))])
    # h9 pays with the campaign's card: named now, at its own event time,
    # not paged (the cluster stage would name it on a later rescoring)
    out = run(stage, [acct("h9", T0 + 100, 0.9, keys=("pay:p1",))])
    assert [(x.detector, x.account_id, x.ts, x.details["via"]) for x in out] == [
        ("campaign_member", "h9", T0 + 100, "pay:p1")]
    # h8 comes from a range the campaign's members share (a linked key)
    out = run(stage, [acct("h8", T0 + 110, 0.9, keys=("pay:zz", "ip:10.0.0.0/24"))])
    assert records(out, "h8") == [("campaign_member", "firing")]
    # a client (behaviour key) does not fold: h7 waits, then pages on its own
    assert run(stage, [acct("h7", T0 + 120, 0.9, keys=("ua:b",))]) == []
    assert records(quiet(run(stage, [tick(T0 + 121)])), "h7") == [("account", "firing")]
    # the folded accounts' resolutions close nothing
    assert records(run(stage, [acct("h9", T0 + 900, 0.1, status="resolved",
                                    start=T0 + 100)]), "h9") == []
    # off: paged like any account in no campaign
    off = CampaignStage(identity_fold=False)
    run(off, [cluster("pay:p1", T0, ("h1", "h2", "h3"))])
    run(off, [acct("h9", T0 + 100, 0.9, keys=("pay:p1",))])
    assert records(quiet(run(off, [tick(T0 + 101)])), "h9") == [("account", "firing")]


def test_identity_fold_picks_the_campaign_sharing_most_keys_and_not_a_later_one():
    stage = CampaignStage()
    run(stage, [cluster("pay:p1", T0, ("a1", "a2", "a3"))])
    run(stage, [cluster("pay:p2", T0 + 10, ("b1", "b2", "b3"), shared=("ip:10.0.0.0/24",))])
    out = run(stage, [acct("x", T0 + 20, 0.9, keys=("pay:p1", "pay:p2", "ip:10.0.0.0/24"))])
    member = [x for x in out if x.detector == "campaign_member"]
    assert len(member) == 1 and member[0].details["via"] == "pay:p2"
    # an account alert older than the campaign is not folded into it
    # (live: a lagging partition; replay would have passed it first)
    late = CampaignStage()
    run(late, [cluster("pay:p1", T0 + 100, ("a1", "a2", "a3"))])
    assert records(run(late, [acct("y", T0 + 50, 0.9, keys=("pay:p1",))]), "y") == [
        ("account", "firing")]


def test_an_account_sharing_a_card_with_a_recent_page_joins_its_incident():
    stage = CampaignStage()
    run(stage, [acct("a1", T0, 0.85, severity="warning", keys=("pay:pA", "ip:10.1.1.0/24"))])
    page = records(quiet(run(stage, [tick(T0 + 1)])), "a1")
    assert page == [("account", "firing")]
    # a2 pays with a1's card two minutes later: one incident, not two
    run(stage, [acct("a2", T0 + 120, 0.86, severity="warning", keys=("pay:pA",))])
    out = quiet(run(stage, [tick(T0 + 121)]))
    assert [(x.detector, x.account_id, x.ts, x.episode_start) for x in out] == [
        ("account_member", "a2", T0 + 120, T0)]
    joined = out[0]
    assert joined.details["account_dedup_key"] == "account:a1"
    assert joined.details["via"] == "pay:pA" and joined.severity == "warning"
    # after the window, or stronger than the page it would join: its own page
    run(stage, [acct("a3", T0 + 700, 0.86, severity="warning", keys=("pay:pA",))])
    assert records(quiet(run(stage, [tick(T0 + 701)])), "a3") == [("account", "firing")]
    run(stage, [acct("a4", T0 + 750, 0.99, severity="critical", keys=("ip:10.1.1.0/24",))])
    assert records(quiet(run(stage, [tick(T0 + 751)])), "a4") == [("account", "firing")]
    # nothing in common: its own page
    run(stage, [acct("b1", T0 + 760, 0.86, severity="warning", keys=("pay:pB",))])
    assert records(quiet(run(stage, [tick(T0 + 761)])), "b1") == [("account", "firing")]
    # the joined account's resolution closes nothing of its own
    assert records(run(stage, [acct("a2", T0 + 900, 0.1, status="resolved",
                                    start=T0 + 120)]), "a2") == []


def test_a_joined_account_is_one_incident_for_on_call():
    stage = CampaignStage()
    out = run(stage, [acct("a1", T0, 0.85, severity="warning", keys=("pay:pA",)),
                      acct("a2", T0 + 60, 0.85, severity="warning", keys=("pay:pA",)),
                      tick(T0 + 61)])
    labels = [{"account_id": a, "attack": "hydra", "campaign": "c1"} for a in ("a1", "a2")]
    kinds = {"a1": "hydra", "a2": "hydra"}
    hydra = noise_metrics(quiet(out), labels, kinds, 24)["families"]["hydra"]
    assert hydra["incidents_per_entity"] == 1.0
    # with the join off, two pages: two incidents
    off = CampaignStage(join_window_s=0)
    out = run(off, [acct("a1", T0, 0.85, severity="warning", keys=("pay:pA",)),
                    acct("a2", T0 + 60, 0.85, severity="warning", keys=("pay:pA",)),
                    tick(T0 + 61)])
    hydra = noise_metrics(quiet(out), labels, kinds, 24)["families"]["hydra"]
    assert hydra["incidents_per_entity"] == 2.0


def test_join_window_must_not_be_negative():
    with pytest.raises(ValueError, match="join_window_s"):
        CampaignStage(join_window_s=-1)


def test_snapshot_carries_recent_pages():
    def feed() -> list[Alert]:
        return [acct("a1", T0, 0.85, severity="warning", keys=("pay:pA",)), tick(T0 + 1),
                acct("a2", T0 + 60, 0.85, severity="warning", keys=("pay:pA",)), tick(T0 + 61),
                tick(T0 + 900), acct("a3", T0 + 901, 0.85, severity="warning",
                                     keys=("pay:pA",)), tick(T0 + 902)]

    whole = [x.alert_id for x in run(CampaignStage(), feed())]
    for cut in range(1, len(feed())):
        first = CampaignStage()
        out = [x.alert_id for x in run(first, feed()[:cut])]
        changed, _ = first.take_dirty()
        again = CampaignStage()
        again.restore(first.snapshot(), [decode_campaign(v) for _, v in changed])
        out += [x.alert_id for x in run(again, feed()[cut:])]
        assert out == whole, cut
