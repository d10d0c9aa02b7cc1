"""Stage 3, ``suspect_hold_s``: an account alert in no campaign that shares a
template with an account paged on its own minutes before waits a bounded
time for a campaign to name it (one incident, not one per member), and goes
out as before if none does (no page is lost)."""

from __future__ import annotations

import orjson
import pytest

from detectors.campaign import CampaignStage
from tests.helpers.campaign import T0, acct, cluster, quiet, run, tick


def _burst(stage: CampaignStage, named: bool) -> list:
    """a1 pages alone; a2, on another card but with a1's template, fires a
    minute later; (optionally) the cluster of a2's card names it 3 min on."""
    alerts = [
        acct("a1", T0, 0.8, fps=("f1",), keys=("pay:p1",)), tick(T0 + 61),
        acct("a2", T0 + 60, 0.8, fps=("f1", "f2"), keys=("pay:p2",)), tick(T0 + 121),
    ]
    if named:
        alerts.append(cluster("pay:p2", T0 + 240, ("a2", "a3")))
    alerts += [tick(T0 + 300), tick(T0 + 420), tick(T0 + 480)]
    return quiet(run(stage, alerts))


def test_a_suspected_page_waits_for_the_campaign_and_keeps_its_evidence_time():
    out = _burst(CampaignStage(suspect_hold_s=300), named=True)
    assert [(x.detector, x.account_id) for x in out if x.detector == "account"] == [
        ("account", "a1")]
    m2 = [x for x in out if x.detector == "campaign_member" and x.account_id == "a2"]
    assert len(m2) == 1 and m2[0].ts == T0 + 60  # the evidence's time, not the cluster's
    # off (the default): a2 pages on its own a minute after a1, a second incident
    off = _burst(CampaignStage(), named=True)
    assert [x.account_id for x in off if x.detector == "account"] == ["a1", "a2"]
    m2 = [x for x in off if x.detector == "campaign_member" and x.account_id == "a2"]
    assert m2[0].ts == T0 + 240


def test_no_page_is_lost_when_no_campaign_forms_within_the_hold():
    out = _burst(CampaignStage(suspect_hold_s=300), named=False)
    pages = [x for x in out if x.detector == "account"]
    assert [(x.account_id, x.ts) for x in pages] == [("a1", T0), ("a2", T0 + 60)]
    stage = CampaignStage(suspect_hold_s=300)
    run(stage, [acct("a1", T0, 0.8, fps=("f1",), keys=("pay:p1",)), tick(T0 + 61),
                acct("a2", T0 + 60, 0.8, fps=("f1",), keys=("pay:p2",))])
    assert stage.holding == 1  # released at the end of input like any held alert
    assert [x.account_id for x in stage.release_held()] == ["a2"]


def test_an_unrelated_template_or_an_old_page_does_not_hold():
    stage = CampaignStage(suspect_hold_s=300, suspect_window_s=600)
    run(stage, [acct("a1", T0, 0.8, fps=("f1",), keys=("pay:p1",)), tick(T0 + 61)])
    out = quiet(run(stage, [acct("a2", T0 + 60, 0.8, fps=("f9",), keys=("pay:p2",)),
                            tick(T0 + 121)]))
    assert [x.account_id for x in out] == ["a2"]
    out = quiet(run(stage, [acct("a3", T0 + 700, 0.8, fps=("f1",), keys=("pay:p3",)),
                            tick(T0 + 761)]))
    assert [x.account_id for x in out] == ["a3"]  # a1's page is older than the window


def test_an_alert_that_joins_a_recent_page_is_not_held():
    """Sharing a1's card it joins a1's incident at once: no incident to spare."""
    stage = CampaignStage(suspect_hold_s=300)
    out = quiet(run(stage, [acct("a1", T0, 0.8, fps=("f1",), keys=("pay:p1",)), tick(T0 + 61),
                            acct("a2", T0 + 60, 0.8, fps=("f1",), keys=("pay:p1",)),
                            tick(T0 + 121)]))
    assert [(x.detector, x.account_id) for x in out] == [
        ("account", "a1"), ("account_member", "a2")]


def test_suspects_survive_a_restore_and_older_snapshots_restore_empty():
    stage = CampaignStage(suspect_hold_s=300)
    run(stage, [acct("a1", T0, 0.8, fps=("f1",), keys=("pay:p1",)), tick(T0 + 61)])
    snap = stage.snapshot()
    again = CampaignStage(suspect_hold_s=300)
    again.restore(snap)
    run(again, [acct("a2", T0 + 60, 0.8, fps=("f1",), keys=("pay:p2",)), tick(T0 + 121)])
    assert again.holding == 1  # a1's template is still under suspicion
    obj = orjson.loads(snap)
    obj["v"] = 4
    del obj["suspects"]
    old = CampaignStage(suspect_hold_s=300)
    old.restore(orjson.dumps(obj))
    run(old, [acct("a2", T0 + 60, 0.8, fps=("f1",), keys=("pay:p2",)), tick(T0 + 121)])
    assert old.holding == 0


@pytest.mark.parametrize("kw", [{"suspect_hold_s": -1.0}, {"suspect_window_s": -1.0}])
def test_negative_suspect_settings_are_rejected(kw):
    with pytest.raises(ValueError):
        CampaignStage(**kw)
