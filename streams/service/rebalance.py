"""What the worker does when the consumer group hands it partitions or takes
them away (Faust's ``on_partitions_assigned`` / ``on_partitions_revoked``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import faust
import structlog

from streams.kafka.consumer import checkpoint_before_every_commit
from streams.kafka.flush import install as commit_only_what_was_sent
from streams.kafka.offsets import CommitWatch
from streams.kafka.offsets import install as install_offset_rule
from streams.service.campaigns import CampaignProcessor
from streams.service.checkpoint import Checkpointer
from streams.service.clusters import ClusterProcessor
from streams.service.metrics import Metrics
from streams.service.processor import StreamProcessor
from streams.settings import Settings

log = structlog.get_logger("distillwatch.worker")


class Rebalance:
    """The two signal handlers and what they touch."""

    def __init__(self, *, settings: Settings, checkpointer: Checkpointer, metrics: Metrics,
                 processor: StreamProcessor, commit_watch: CommitWatch,
                 clusters: ClusterProcessor | None,
                 campaigns: CampaignProcessor | None) -> None:
        self.settings = settings
        self.checkpointer = checkpointer
        self.metrics = metrics
        self.processor = processor
        self.commit_watch = commit_watch
        self.clusters = clusters
        self.campaigns = campaigns

    def connect(self, app: faust.App) -> None:
        # mode's signal type wants a keyword-only ``signal`` parameter in every
        # receiver; Faust sends ``(app, partitions)`` and the handlers take just that
        app.on_partitions_assigned.connect(self.assigned)  # type: ignore[arg-type]
        app.on_partitions_revoked.connect(self.revoked)  # type: ignore[arg-type]

    async def assigned(self, app: faust.App, assigned: Any, **kwargs: Any) -> None:
        """Install the Faust workarounds on this generation's consumer and
        producer (streams/kafka/), and count the assignment."""
        checkpoint_before_every_commit(app.consumer, self.checkpointer)
        # Faust's commit-offset rule stalls on duplicate acks after a restart
        install_offset_rule(app.consumer)
        if not commit_only_what_was_sent(app.producer, self.settings.flush_timeout_s):
            # a Faust without the buffer this guards: commits flush as Faust does
            log.warning("producer_buffer_unknown", producer=type(app.producer).__name__)
        mine = sorted(tp.partition for tp in assigned if tp.topic == self.settings.events_topic)
        # one per group generation this worker joined: 1 after start-up, each
        # more is a rebalance (a member joined, left or was expelled)
        self.metrics.assignments += 1
        log.info("partitions_assigned", partitions=mine)

    async def revoked(self, app: faust.App, revoked: Any, **kwargs: Any) -> None:
        """Drop the hot state of partitions this worker no longer owns (the
        next owner restores it from the changelog)."""
        settings = self.settings
        self.processor.revoke(partitions_of(revoked, settings.events_topic))
        self.commit_watch.forget(partitions_of(revoked, settings.events_topic))
        if self.clusters is not None:
            self.clusters.revoke(partitions_of(revoked, settings.summaries_topic))
        if self.campaigns is not None and partitions_of(revoked, settings.campaign_topic):
            self.campaigns.revoke()


def partitions_of(tps: Iterable[Any], topic: str) -> list[int]:
    return [tp.partition for tp in tps if tp.topic == topic]
