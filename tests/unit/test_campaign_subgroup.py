"""Stage 3, issue 23's sub-groups: an identity cluster (another card or range
of an actor) whose accounts a campaign names already, but through a
behaviour key (a template shared by several actors), joins that campaign
instead of paging as a second campaign of the same actor."""

from __future__ import annotations

from detectors.campaign import CampaignStage
from tests.helpers.campaign import T0, cluster, quiet, run, tick

A = tuple(f"a{i}" for i in range(4))
B = tuple(f"b{i}" for i in range(6))


def _pages(out):
    return [(x.details["campaign_id"], x.revision) for x in out
            if x.detector == "campaign" and x.status == "firing"]


def _setup(stage: CampaignStage) -> str:
    # a template shared by two actors founds a campaign naming both; actor
    # a's card joins it (it has no identity key yet), so its members named
    # through the card are the campaign's identity (core) members
    first = run(stage, [cluster("tmpl:pub", T0, A + B[:4])])
    cid = _pages(first)[0][0]
    run(stage, [cluster("pay:pa", T0 + 60, A)])
    return cid


def test_an_actors_card_joins_the_campaign_naming_its_accounts():
    stage = CampaignStage()
    cid = _setup(stage)
    # actor b's card: its accounts are named by the campaign only through the
    # template, so nothing links it (core members only): probation, then it
    # joins the campaign holding them instead of a second campaign
    assert run(stage, [cluster("pay:pb", T0 + 600, B)]) == []
    out = quiet(run(stage, [tick(T0 + 600 + 301)]))
    assert [p for p in _pages(out) if p[0] != cid] == []
    named = {x.account_id: x.details["campaign_id"] for x in out
             if x.detector == "campaign_member"}
    assert named == {"b4": cid, "b5": cid}  # its new accounts, named at its event time
    assert all(x.ts == T0 + 600 for x in out if x.detector == "campaign_member")
    assert stage.campaign(cid) is not None and "pay:pb" in stage.campaign(cid).keys


def test_off_the_card_pages_as_a_campaign_of_its_own():
    stage = CampaignStage(subgroup_join=False)
    cid = _setup(stage)
    run(stage, [cluster("pay:pb", T0 + 600, B)])
    out = quiet(run(stage, [tick(T0 + 600 + 301)]))
    assert len([p for p in _pages(out) if p[0] != cid]) == 1  # (besides cid's updates)


def test_a_card_whose_accounts_are_mostly_new_founds_its_own_campaign():
    # one shared account is not the actor being paged already: a card of six
    # accounts of which the campaign names one pages on its own
    stage = CampaignStage()
    cid = _setup(stage)
    other = ("b0", "c1", "c2", "c3", "c4", "c5")
    run(stage, [cluster("pay:pc", T0 + 600, other)])
    out = quiet(run(stage, [tick(T0 + 600 + 301)]))
    assert len([p for p in _pages(out) if p[0] != cid]) == 1  # (besides cid's updates)
