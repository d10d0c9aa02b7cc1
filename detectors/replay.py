"""Offline detection over an ordered event stream: the live agent's code path.

Events are placed on partitions exactly as Kafka's default partitioner places
their ``account_id`` keys, and each partition runs its own
:class:`~detectors.runner.PartitionRunner` over a fresh detector, as each
partition does in the stream service. For input in event-time order (the way
``distillwatch publish`` sends it), replay and the live service see the same
per-partition sequences and emit the same alerts.

With ``clusters`` on (the default), the runners also emit account summaries
(:class:`~detectors.cluster.SummaryEmitter`) and a
:class:`~detectors.cluster.ClusterStage` -- one
:class:`~detectors.cluster.ClusterDetector` per partition of the summaries
topic, keyed by linkage key -- turns them into coordinated-cluster alerts,
right after the event that produced the summary, as the live second agent
does. With ``campaigns`` on too (the default), every alert of both stages
then goes through one :class:`~detectors.campaign.CampaignStage`, in the
order the stages emitted them, as the live campaign agent receives them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from detectors.alerts import Alert
from detectors.campaign import CampaignStage, tick_due
from detectors.cluster import ClusterDetector, ClusterStage, SummaryEmitter
from detectors.partitioning import PartitionCache
from detectors.runner import PartitionRunner
from detectors.schema import Event


# The two stage-2 parts are typed by what the replayer calls, not by class: an
# equivalent implementation (the frozen references in tests/) can stand in,
# also when this module is compiled (tools.native), where a class annotation
# would be checked at run time.
class Summarizer(Protocol):
    def maybe_emit(
        self, detector: Any, prev_last_ts: float | None, state: Any, event: Event
    ) -> Any:
        ...


class SummaryStage(Protocol):
    def process(self, summary: Any) -> list[Alert]:
        ...


class Replayer:
    """Feeds events to one runner per partition and yields their alerts."""

    def __init__(
        self,
        detector_factory: Callable[[], Any],
        partitions: int = 8,
        sweep_interval_s: float = 60.0,
        clusters: bool = True,
        cluster_factory: Callable[[], ClusterDetector] | None = None,
        summary_emitter: Summarizer | None = None,
        campaigns: bool = True,
        campaign_factory: Callable[[], CampaignStage] | None = None,
    ) -> None:
        if partitions <= 0:
            raise ValueError(f"partitions must be > 0, got {partitions}")
        self.partitions = partitions
        emitter: Summarizer | None = None
        self.clusters: SummaryStage | None = None
        if clusters:
            emitter = summary_emitter or SummaryEmitter()
            self.clusters = ClusterStage(cluster_factory or ClusterDetector, partitions)
        #: stage 3 (needs the cluster stage): None when off
        self.campaigns: CampaignStage | None = None
        if clusters and campaigns:
            self.campaigns = (campaign_factory or CampaignStage)()
        #: per partition, the watermark its last tick to the campaign stage carried
        self.ticked = [0.0] * partitions
        self.runners = [
            PartitionRunner(
                detector_factory(), sweep_interval_s=sweep_interval_s, summarizer=emitter
            )
            for _ in range(partitions)
        ]
        self.partition_of = PartitionCache(partitions)
        self.events = 0
        #: every account seen (filled by callers that need it, e.g. evaluation)
        self.seen_accounts: set[str] = set()

    def process(self, event: Event) -> list[Alert]:
        self.events += 1
        p = self.partition_of(event.account_id)
        runner = self.runners[p]
        alerts = runner.process(event)
        if self.clusters is not None and runner.summaries:
            for summary in runner.take_summaries():
                found = self.clusters.process(summary)
                if found:
                    alerts = alerts + found
        stage = self.campaigns
        if stage is None:
            return alerts
        folded: list[Alert] = []
        for alert in alerts:
            folded += stage.process(alert)
        # the partition's watermark, once per minute of it, as the live
        # detect agent sends it after the message's alerts
        wm = runner.watermark
        if tick_due(self.ticked[p], wm):
            self.ticked[p] = wm
            folded += stage.advance(wm)
        return folded

    def finish(self) -> list[Alert]:
        """The input ended: what the campaign stage still holds for a
        campaign that could have named it comes out (the live worker lets it
        out when its input goes quiet). Resolutions are not forced: they wait
        for event time, live and here alike."""
        return self.campaigns.release_held() if self.campaigns is not None else []

    def run(self, events: Iterable[Event]) -> Iterator[Alert]:
        for event in events:
            yield from self.process(event)
        yield from self.finish()
