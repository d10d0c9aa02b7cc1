"""Stage 3: an account alert whose own template is a firing cluster of a
campaign is named by that campaign at once (one member record at the alert's
event time), instead of paging on its own before the cluster stage names it
on a later rescoring."""

from __future__ import annotations

import pytest

from detectors.campaign import CampaignStage
from tests.helpers.campaign import T0, acct, cluster, member, quiet, records, run, tick


def test_an_account_using_a_firing_campaigns_template_is_named_at_its_own_time():
    stage = CampaignStage()
    first = run(stage, [cluster("tmpl:abcd1234", T0, ("h1", "h2", "h3"), score=0.9)])
    cid = first[0].details["campaign_id"]
    out = run(stage, [acct("h9", T0 + 100, 0.95, fps=("00000001", "abcd1234"))])
    assert records(out, "h9") == [("campaign_member", "firing")]
    assert out[0].ts == T0 + 100 and out[0].details["campaign_id"] == cid
    assert out[0].details["via"] == "tmpl:abcd1234"
    # the cluster stage naming it later adds nothing; its resolution is dropped
    assert run(stage, [member("tmpl:abcd1234", T0 + 300, "h9", T0)]) == []
    gone = run(stage, [acct("h9", T0 + 900, 0.1, status="resolved", start=T0 + 100),
                       tick(T0 + 9 * 3600)])
    assert records(gone, "h9") == []


def test_an_unrelated_template_or_a_resolved_template_cluster_does_not_fold():
    stage = CampaignStage()
    run(stage, [cluster("tmpl:abcd1234", T0, ("h1", "h2", "h3"), shared=("tmpl:77770000",))])
    # a template the campaign's members merely share (no cluster fired on it)
    assert run(stage, [acct("x", T0 + 10, 0.95, fps=("77770000",))]) == []
    assert records(quiet(run(stage, [tick(T0 + 11)])), "x") == [("account", "firing")]
    # the template's cluster resolved: no longer evidence of membership
    run(stage, [cluster("tmpl:abcd1234", T0 + 20, ("h1",), status="resolved")])
    run(stage, [acct("y", T0 + 30, 0.95, fps=("abcd1234",))])
    assert records(quiet(run(stage, [tick(T0 + 31)])), "y") == [("account", "firing")]


def test_of_two_campaigns_the_most_specific_template_names_the_account():
    stage = CampaignStage()
    public = tuple(f"p{i}" for i in range(20))
    run(stage, [cluster("tmpl:0000aaaa", T0, public)])
    mine = run(stage, [cluster("pay:card", T0 + 5, ("h1", "h2", "h3"),
                               shared=("tmpl:1111bbbb",)),
                       cluster("tmpl:1111bbbb", T0 + 6, ("h1", "h2", "h3", "h4"))])
    cid = mine[0].details["campaign_id"]
    out = run(stage, [acct("h9", T0 + 60, 0.95, fps=("0000aaaa", "1111bbbb"))])
    assert [(x.detector, x.details["campaign_id"]) for x in out] == [("campaign_member", cid)]


def test_stronger_evidence_still_pages_naming_the_campaign():
    stage = CampaignStage()
    first = run(stage, [cluster("tmpl:abcd1234", T0, ("h1", "h2", "h3"), score=0.6)])
    cid = first[0].details["campaign_id"]
    out = run(stage, [acct("h9", T0 + 100, 0.95, "critical", fps=("abcd1234",))])
    assert records(out, "h9") == [("campaign_member", "firing"), ("account", "firing")]
    assert out[1].details["campaign_id"] == cid


@pytest.mark.parametrize("fold", [True, False])
def test_the_fold_is_an_option(fold):
    stage = CampaignStage(template_fold=fold)
    run(stage, [cluster("tmpl:abcd1234", T0, ("h1", "h2", "h3"))])
    out = run(stage, [acct("h9", T0 + 100, 0.95, fps=("abcd1234",)), tick(T0 + 101)])
    assert records(quiet(out), "h9") == (
        [("campaign_member", "firing")] if fold else [("account", "firing")])


def test_a_campaign_founded_after_the_alert_does_not_fold_it():
    # live: an account alert from a lagging partition, after a campaign that began later
    stage = CampaignStage()
    run(stage, [cluster("tmpl:abcd1234", T0 + 500, ("h1", "h2", "h3"))])
    out = run(stage, [acct("h9", T0 + 100, 0.95, fps=("abcd1234",))])
    assert records(out, "h9") == [("account", "firing")]
