"""The ``campaigns`` agent: campaign topic (one partition: every account and
cluster alert, and event-time ticks) → :class:`CampaignProcessor` → the
alerts topic, one incident per campaign episode."""

from __future__ import annotations

from typing import Any

import structlog

from streams.service.campaigns import CampaignProcessor
from streams.service.checkpoint import Checkpointer
from streams.service.metrics import Metrics
from streams.service.outputs import Outputs
from streams.service.processor import DeadLetter

log = structlog.get_logger("distillwatch.worker")


class CampaignAgent:
    """The body of the ``campaigns`` agent."""

    def __init__(self, *, campaigns: CampaignProcessor, checkpointer: Checkpointer,
                 outputs: Outputs, metrics: Metrics) -> None:
        self.campaigns = campaigns
        self.checkpointer = checkpointer
        self.outputs = outputs
        self.metrics = metrics
        #: the campaign-topic offset of the last message handled (logged with
        #: alerts released by the timer)
        self.offset = -1

    async def run(self, stream: Any) -> None:
        await self.checkpointer.run_held(stream, self.handle)

    async def handle(self, message: Any) -> None:
        out = self.campaigns.handle(message.value)
        if out is None:
            reason = "campaign input: not a stage alert"
            self.metrics.rejected(reason)
            dead = DeadLetter(reason, message.value, message.key, message.topic,
                              message.partition, message.offset, None)
            await self.outputs.dead_letter(dead)
            return
        for alert in out:
            await self.outputs.publish(alert, message.partition, message.offset)
        self.offset = message.offset

    async def release_quiet(self) -> None:
        """The timer: held alerts out once the campaign topic has been quiet
        (:meth:`CampaignProcessor.release_quiet`), between two messages and
        never inside a checkpoint, like a message."""
        await self.checkpointer.wait()
        self.checkpointer.enter()
        try:
            out = self.campaigns.release_quiet()
            if out:
                log.info("campaign_alerts_released", alerts=len(out),
                         quiet_s=self.campaigns.quiet_s)
            for alert in out:
                await self.outputs.publish(alert, 0, self.offset)
        finally:
            self.checkpointer.leave()
