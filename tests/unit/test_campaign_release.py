"""Held account alerts come out when traffic stops: the campaign stage holds
an account alert in no campaign until event time moves on (a cluster alert of
the same moment may fold it), and event time only moves with events. Replay
lets them out at the end of its input; the live worker once its campaign
topic has been quiet for ``campaign_release_quiet_s``."""

from __future__ import annotations

import json

import pytest

from detectors.alerts import Alert
from detectors.campaign import CampaignStage, encode_alert
from detectors.engine import Detector
from detectors.replay import Replayer
from detectors.schema import parse_event
from streams.errors import ConfigError
from streams.service.campaigns import CampaignProcessor, encode_tick
from streams.settings import Settings
from tests.helpers.attack import extractor_events
from tests.helpers.campaign import T0, account, cluster, run


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_release_gives_what_the_next_tick_would_have_given():
    held, ticked = CampaignStage(), CampaignStage()
    for stage in (held, ticked):
        assert stage.process(account("lone", T0, 0.95)) == []
        assert stage.holding == 1
    by_tick = ticked.advance(T0 + 60)
    by_release = held.release_held()
    assert [a.to_record() for a in by_release] == [a.to_record() for a in by_tick]
    assert [a.account_id for a in by_release] == ["lone"]
    assert held.holding == 0 and held.release_held() == []
    assert held.watermark == T0  # release does not move event time


def test_an_alert_folded_by_its_campaign_is_not_released():
    stage = CampaignStage()
    assert stage.process(account("h1", T0, 0.85)) == []
    out = stage.process(cluster("pay:p1", T0, ("h1", "h2", "h3")))
    assert "h1" in {a.account_id for a in out if a.detector == "campaign_member"}
    assert stage.holding == 0 and stage.release_held() == []


def test_release_respects_each_alert_s_due_time():
    stage = CampaignStage(account_hold_s=120.0)
    stage.process(account("a", T0, 0.95))
    stage.process(account("b", T0 + 60, 0.95))
    assert [x.account_id for x in stage.release_held(T0 + 130)] == ["a"]
    assert stage.holding == 1
    assert [x.account_id for x in stage.release_held(T0 + 180)] == ["b"]


def test_clusters_on_probation_come_out_at_the_end_of_input():
    stage = CampaignStage(probation_s=600.0)
    run(stage, [cluster("pay:p1", T0, ("x1", "x2", "x3"))])
    # another card naming one member of the firing campaign: on probation
    assert stage.process(cluster("pay:p2", T0 + 30, ("x3", "y1", "y2", "y3"))) == []
    assert stage.holding == 1
    out = stage.release_held()
    assert [a.detector for a in out][:1] == ["campaign"]
    assert out[0].ts == T0 + 30 + 600 and stage.holding == 0  # paged when probation ends


def test_the_live_processor_releases_only_after_its_input_went_quiet():
    clock = FakeClock()
    proc = CampaignProcessor(CampaignStage, quiet_s=5.0, clock=clock)
    assert proc.handle(encode_alert(account("lone", T0, 0.95))) == []
    clock.now += 4.0
    assert proc.release_quiet() == []
    assert proc.handle(encode_tick(T0)) == []  # a tick of the same minute: input, no release
    clock.now += 4.0
    assert proc.release_quiet() == []  # 4 s since that tick
    clock.now += 1.5
    out = proc.release_quiet()
    assert [a.account_id for a in out] == ["lone"] and proc.released == 1
    assert proc.release_quiet() == [] and proc.stage is not None and proc.stage.holding == 0


def test_a_processor_without_its_stage_releases_nothing():
    clock = FakeClock()
    proc = CampaignProcessor(CampaignStage, quiet_s=5.0, clock=clock)
    clock.now += 60
    assert proc.release_quiet() == []
    proc.handle(encode_alert(account("lone", T0, 0.95)))
    proc.revoke()  # partition 0 moved to another worker
    clock.now += 60
    assert proc.release_quiet() == []


def _extractor_replay() -> tuple[list[Alert], list[Alert]]:
    events = [parse_event(json.loads(v)) for _, v in extractor_events("harvest-end", start=T0)]
    replayer = Replayer(Detector, partitions=4)
    during = [a for e in events for a in replayer.process(e)]
    return during, replayer.finish()


def test_replay_ends_with_the_alert_its_last_events_raised():
    """A log whose attack runs to its last line: the account alert is held
    (no later event moves event time), and the end of input lets it out."""
    during, end = _extractor_replay()
    assert not [a for a in during if a.account_id == "harvest-end"]
    assert [(a.detector, a.status, a.account_id) for a in end] == [
        ("account", "firing", "harvest-end")]
    events = [parse_event(json.loads(v)) for _, v in extractor_events("harvest-end", start=T0)]
    assert [a.to_record() for a in Replayer(Detector, partitions=4).run(events)] == [
        a.to_record() for a in during + end]


def test_the_quiet_setting_must_outlast_the_summary_flush():
    with pytest.raises(ConfigError, match="campaign_release_quiet_s"):
        Settings(campaign_release_quiet_s=0.1, summary_flush_interval_s=0.2)
    assert Settings().campaign_release_quiet_s == 5.0
