"""The ``campaigns`` agent: campaign topic (one partition: every account and
cluster alert, and event-time ticks) → :class:`CampaignProcessor` → the
alerts topic, one incident per campaign episode."""

from __future__ import annotations

from typing import Any

from streams.service.campaigns import CampaignProcessor
from streams.service.checkpoint import Checkpointer
from streams.service.metrics import Metrics
from streams.service.outputs import Outputs
from streams.service.processor import DeadLetter


class CampaignAgent:
    """The body of the ``campaigns`` agent."""

    def __init__(self, *, campaigns: CampaignProcessor, checkpointer: Checkpointer,
                 outputs: Outputs, metrics: Metrics) -> None:
        self.campaigns = campaigns
        self.checkpointer = checkpointer
        self.outputs = outputs
        self.metrics = metrics

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
