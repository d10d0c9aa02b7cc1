"""Everything the agents send: alerts, response actions, dead letters, the
campaign stage's input, and account summaries (:class:`SummaryOutbox`).

One path for alert records: :meth:`Outputs.publish` (a detector's alert) and
:meth:`Outputs.pipeline_alert` (the dead-letter alarm) both end in
:meth:`Outputs._emit`, which counts the alert, keeps it for ``/alerts/`` and
sends it to the alerts topic. :meth:`Outputs.alert` is what the account and
cluster agents call: with the campaign stage on, their alerts go to the
campaign agent, which decides what on-call receives and publishes it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
import structlog
from faust.types import TopicT

from detectors.alerts import Alert
from detectors.campaign import encode_alert
from detectors.cluster import AccountSummary
from detectors.response import ResponsePolicy
from detectors.schema import format_ts
from streams.service.campaigns import encode_tick
from streams.service.dlq_alarm import DeadLetterAlarm
from streams.service.metrics import Metrics
from streams.service.processor import DeadLetter
from streams.service.summary_batch import SummaryBatcher

log = structlog.get_logger("distillwatch.worker")


class Outputs:
    """The service's sends, with the counters and the recent-alerts buffer
    they update. ``campaign_topic`` is None unless the campaign stage is on;
    ``policy`` is None unless actions are enabled."""

    def __init__(self, *, metrics: Metrics, clock: Callable[[], float], dlq_payload: str,
                 alerts_topic: TopicT, dlq_topic: TopicT, actions_topic: TopicT,
                 campaign_topic: TopicT | None, policy: ResponsePolicy | None,
                 recent_alerts: deque[dict[str, Any]],
                 dlq_alarm: DeadLetterAlarm | None) -> None:
        self.metrics = metrics
        self.clock = clock
        self.dlq_payload = dlq_payload
        self.alerts_topic = alerts_topic
        self.dlq_topic = dlq_topic
        self.actions_topic = actions_topic
        self.campaign_topic = campaign_topic
        self.policy = policy
        self.recent_alerts = recent_alerts
        self.dlq_alarm = dlq_alarm

    async def alert(self, alert: Alert, partition: int, offset: int) -> None:
        """An account or cluster alert: to the campaign stage when it is on,
        else published (``partition``/``offset``: the message it came from)."""
        if self.campaign_topic is not None:
            # one partition: key irrelevant, kept readable
            self.metrics.stage_alerts += 1
            await self.campaign_topic.send(key=alert.dedup_key.encode(),
                                           value=encode_alert(alert), partition=0)
        else:
            await self.publish(alert, partition, offset)

    async def publish(self, alert: Alert, partition: int, offset: int) -> None:
        """A detector's alert to the alerts topic, then its response actions."""
        log.info(
            "alert_emitted", alert_id=alert.alert_id, dedup_key=alert.dedup_key,
            status=alert.status, severity=alert.severity, score=round(alert.score, 3),
            partition=partition, offset=offset,
        )
        record = alert.to_record(emitted_at=self.clock())
        await self._emit(record)
        await self.actions(record)

    async def pipeline_alert(self, record: dict[str, Any]) -> None:
        """The dead-letter alarm's firing or resolved record."""
        alarm = self.dlq_alarm
        assert alarm is not None
        record["emitted_at"] = format_ts(self.clock())
        if record["status"] == "firing":
            log.error("dead_letter_alarm", alert_id=record["alert_id"],
                      dedup_key=record["dedup_key"], reason=alarm.reason())
        else:
            log.warning("dead_letter_alarm_resolved", alert_id=record["alert_id"],
                        dedup_key=record["dedup_key"], reason=alarm.reason())
        await self._emit(record)

    async def _emit(self, record: dict[str, Any]) -> None:
        """The one place an alert record is counted, kept and sent."""
        self.metrics.alert(record["detector"], record["severity"], record["status"])
        self.recent_alerts.append(record)
        await self.alerts_topic.send(key=record["dedup_key"].encode(),
                                     value=orjson.dumps(record))

    async def actions(self, record: dict[str, Any]) -> None:
        """Proposals (and automatic decisions) for one alert, after the alert:
        at-least-once like it, with deterministic ids."""
        if self.policy is None:
            return
        for action in self.policy.propose(record):
            self.metrics.actions += 1
            data = action["data"]
            log.info("action_" + ("decided" if action["type"].endswith("decided")
                                   else "proposed"),
                     action_id=data["action_id"], action=data["action"],
                     subject=action["subject"], mode=data.get("mode"))
            await self.actions_topic.send(key=action["subject"].encode(),
                                          value=orjson.dumps(action))

    async def dead_letter(self, dead: DeadLetter) -> None:
        """Every agent's dead letters go one way: under the configured payload
        policy (``dlq_payload``: original or redacted, docs/privacy.md)."""
        await self.dlq_topic.send(key=dead.key,
                                  value=orjson.dumps(dead.to_record(self.clock(),
                                                                    self.dlq_payload)))

    async def tick(self, watermark: float) -> None:
        """Event time for the campaign stage (a partition's watermark)."""
        assert self.campaign_topic is not None
        await self.campaign_topic.send(key=b"tick", value=encode_tick(watermark), partition=0)


class SummaryOutbox:
    """Account summaries on their way to the cluster agents: each summary goes
    to the partition of every linkage key, so the cluster agent of that
    partition sees every account that shares the key; buffered by
    :class:`SummaryBatcher`, one message per partition."""

    def __init__(self, batcher: SummaryBatcher, topic: TopicT, metrics: Metrics) -> None:
        self.batcher = batcher
        self.topic = topic
        self.metrics = metrics

    def add(self, summaries: list[AccountSummary]) -> None:
        full = False
        for summary in summaries:
            full = self.batcher.add(summary) or full
        self.metrics.summaries += len(summaries)
        if full:
            self.flush()

    def flush(self) -> None:
        """Hand the buffered summaries to the producer: one message per
        summaries partition. ``send_soon`` is synchronous and FIFO (Faust's
        producer buffer, flushed by the producer before every commit), so the
        checkpoint's state collection can call it, and the messages of one
        partition leave in the order the summaries were produced."""
        if not self.batcher.pairs:
            return
        for partition, value in self.batcher.drain():
            self.topic.send_soon(value=value, partition=partition)
            self.metrics.summary_messages += 1
