"""The service's one alert-emission path (streams.service.outputs) and its one
set of counters (Metrics.health, the /health body), without a broker: the
topics are recorders of what would be sent. The live path is covered by
test_service_integration.py, test_campaign_live.py and test_dlq_alarm.py."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import orjson

from detectors.alerts import Alert
from detectors.campaign import decode_alert
from streams.service.dlq_alarm import DeadLetterAlarm
from streams.service.metrics import Metrics
from streams.service.outputs import Outputs

HEALTH_KEYS = ["events", "rejected", "alerts", "checkpoints", "commits", "summaries",
               "summary_messages", "summaries_rejected", "commits_skipped", "assignments",
               "actions", "watchlist_entries", "stage_alerts", "first_message_at",
               "last_message_at"]


class Recorder:
    """Stands in for a Faust topic: keeps every send."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, **kwargs: Any) -> None:
        self.sent.append(kwargs)


def _alert(status: str = "firing") -> Alert:
    return Alert(detector="account", status=status, severity="warning", score=0.8,
                 ts=1_700_000_000.0, episode_start=1_700_000_000.0, summary="s",
                 account_id="acct-1")


def _outputs(*, staged: bool = False,
             alarm: DeadLetterAlarm | None = None) -> tuple[Outputs, dict[str, Recorder]]:
    topics = {name: Recorder() for name in ("alerts", "dlq", "actions", "campaign")}
    outputs = Outputs(metrics=Metrics(), clock=lambda: 1_700_000_100.0, dlq_payload="original",
                      alerts_topic=topics["alerts"], dlq_topic=topics["dlq"],  # type: ignore[arg-type]
                      actions_topic=topics["actions"],  # type: ignore[arg-type]
                      campaign_topic=topics["campaign"] if staged else None,  # type: ignore[arg-type]
                      policy=None, recent_alerts=deque(maxlen=200), dlq_alarm=alarm)
    return outputs, topics


def test_health_keeps_its_keys_and_order() -> None:
    assert list(Metrics().health()) == HEALTH_KEYS


def test_a_published_alert_is_counted_kept_and_sent_once() -> None:
    outputs, topics = _outputs()
    asyncio.run(outputs.alert(_alert(), partition=3, offset=17))
    [sent] = topics["alerts"].sent
    record = orjson.loads(sent["value"])
    assert sent["key"] == b"account:acct-1" and record["status"] == "firing"
    assert list(outputs.recent_alerts) == [record]
    assert outputs.metrics.alerts == {("account", "warning", "firing"): 1}
    assert outputs.metrics.health()["alerts"] == 1 and outputs.metrics.stage_alerts == 0
    assert not topics["campaign"].sent


def test_with_the_campaign_stage_account_alerts_go_to_it_not_to_on_call() -> None:
    outputs, topics = _outputs(staged=True)
    alert = _alert()
    asyncio.run(outputs.alert(alert, partition=0, offset=0))
    assert not topics["alerts"].sent and not outputs.recent_alerts
    [sent] = topics["campaign"].sent
    assert sent["partition"] == 0 and decode_alert(sent["value"]) == alert
    health = outputs.metrics.health()
    assert health["stage_alerts"] == 1 and health["alerts"] == 0
    # what the campaign agent decides goes out through the same path
    asyncio.run(outputs.publish(alert, partition=0, offset=0))
    assert len(topics["alerts"].sent) == 1 and outputs.metrics.health()["alerts"] == 1


def test_the_dead_letter_alarm_uses_the_same_path() -> None:
    alarm = DeadLetterAlarm("w@host:6066", 0.5, 10)
    outputs, topics = _outputs(alarm=alarm)
    record = alarm.record("firing", 1_700_000_000.0)
    asyncio.run(outputs.pipeline_alert(record))
    [sent] = topics["alerts"].sent
    assert orjson.loads(sent["value"])["emitted_at"].startswith("2023-11-14T22:15:00")
    assert outputs.metrics.alerts == {(record["detector"], "critical", "firing"): 1}
    assert list(outputs.recent_alerts) == [record] and not topics["actions"].sent
