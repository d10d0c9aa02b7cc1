"""The ``clusters`` agent: summaries topic → :class:`ClusterProcessor`
(linkage-key clusters) → cluster and cluster-member alerts."""

from __future__ import annotations

from typing import Any

from streams.service.checkpoint import Checkpointer
from streams.service.clusters import ClusterProcessor
from streams.service.metrics import Metrics
from streams.service.outputs import Outputs
from streams.service.processor import DeadLetter


class ClusterAgent:
    """The body of the ``clusters`` agent."""

    def __init__(self, *, clusters: ClusterProcessor, checkpointer: Checkpointer,
                 outputs: Outputs, metrics: Metrics) -> None:
        self.clusters = clusters
        self.checkpointer = checkpointer
        self.outputs = outputs
        self.metrics = metrics

    async def run(self, stream: Any) -> None:
        await self.checkpointer.run_held(stream, self.handle)

    async def handle(self, message: Any) -> None:
        for alert in self.clusters.handle(message.value, message.key, message.partition):
            await self.outputs.alert(alert, message.partition, message.offset)
        for reason, item in self.clusters.take_rejects():
            self.metrics.summaries_rejected += 1
            self.metrics.rejected(f"summary: {reason}")  # its own label: not an event
            dead = DeadLetter(reason, message.value, message.key, message.topic,
                              message.partition, message.offset, item)
            await self.outputs.dead_letter(dead)
