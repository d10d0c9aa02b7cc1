"""The ``detect`` agent: events topic → :class:`StreamProcessor` (per-account
detectors) → alerts, dead letters, the dead-letter alarm, account summaries
and the campaign stage's event-time ticks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from detectors.campaign import tick_due
from streams.service.checkpoint import Checkpointer
from streams.service.dlq_alarm import DeadLetterAlarm
from streams.service.metrics import Metrics
from streams.service.outputs import Outputs, SummaryOutbox
from streams.service.processor import Outcome, StreamProcessor

log = structlog.get_logger("distillwatch.worker")


class AccountAgent:
    """The body of the ``detect`` agent and the state it keeps between
    messages (the watermark of each partition last sent as a campaign tick)."""

    def __init__(self, *, processor: StreamProcessor, checkpointer: Checkpointer,
                 outputs: Outputs, metrics: Metrics, clock: Callable[[], float],
                 dlq_alarm: DeadLetterAlarm | None, summaries: SummaryOutbox | None,
                 ticks: bool) -> None:
        self.processor = processor
        self.checkpointer = checkpointer
        self.outputs = outputs
        self.metrics = metrics
        self.clock = clock
        self.dlq_alarm = dlq_alarm
        self.summaries = summaries
        #: send event-time ticks to the campaign stage (it is on)
        self.ticks = ticks
        self.ticked: dict[int, float] = {}

    async def run(self, stream: Any) -> None:
        perf = time.perf_counter
        checkpointer = self.checkpointer
        metrics = self.metrics
        # Iterate the stream itself and read ``current_event``: the same events,
        # acked the same way (after the body), without the extra async
        # generator that ``stream.events()`` wraps around this loop.
        async for _ in stream:
            # a checkpoint writing state holds every event until it has committed
            if checkpointer.paused:
                await checkpointer.wait()
            # an event applied but not yet acknowledged must not be checkpointed
            checkpointer.enter()
            try:
                if not metrics.first_message_at:
                    metrics.first_message_at = self.clock()
                message = stream.current_event.message
                started = perf()
                outcome = self.processor.handle(
                    message.value, message.key, message.topic, message.partition, message.offset
                )
                await self.handle(outcome, message)
                metrics.latency.observe(perf() - started)
                metrics.last_message_at = self.clock()
            finally:
                checkpointer.leave()

    async def handle(self, outcome: Outcome, message: Any) -> None:
        """Send what one message produced, in this order: dead letters, the
        alarm's record, alerts, the campaign tick, summaries."""
        self.metrics.events_processed += outcome.events
        self.warn_blind_partitions()
        await self.dead_letters(outcome)
        if self.dlq_alarm is not None:
            changed = self.dlq_alarm.observe(
                outcome.events, len(outcome.dead), message.timestamp,
                [d.reason for d in outcome.dead] if outcome.dead else None)
            if changed is not None:
                await self.outputs.pipeline_alert(changed)
        for alert in outcome.alerts:
            await self.outputs.alert(alert, message.partition, message.offset)
        if self.ticks:
            await self.tick(message.partition)
        if outcome.summaries and self.summaries is not None:
            self.summaries.add(outcome.summaries)

    def warn_blind_partitions(self) -> None:
        coverage = self.processor.coverage
        if coverage.has_notices:
            for notice in coverage.take_notices():
                # detection is blind here: say so, once per episode
                log.warning("content_missing", **notice,
                            hint="no prompt or topic for an hour of event time on "
                                 "this partition: most families cannot fire")

    async def dead_letters(self, outcome: Outcome) -> None:
        for dead in outcome.dead:
            self.metrics.events_dead += 1
            self.metrics.rejected(dead.reason)
            log.warning(
                "event_rejected", reason=dead.reason, topic=dead.topic,
                partition=dead.partition, offset=dead.offset, item=dead.item,
            )
            await self.outputs.dead_letter(dead)

    async def tick(self, partition: int) -> None:
        """Event time for the campaign stage, once a minute of it per partition."""
        runner = self.processor.runners.get(partition)
        if runner is not None and tick_due(self.ticked.get(partition, 0.0), runner.watermark):
            self.ticked[partition] = runner.watermark
            await self.outputs.tick(runner.watermark)
