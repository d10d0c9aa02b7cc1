"""Stage 2 for a whole stream: :class:`ClusterStage` routes each summary to the
:class:`~detectors.cluster.detector.ClusterDetector` of every linkage key's
partition."""

from __future__ import annotations

from collections.abc import Callable

from detectors.alerts import Alert
from detectors.cluster.detector import ClusterDetector
from detectors.cluster.summaries import AccountSummary
from detectors.partitioning import PartitionCache


class ClusterStage:
    """Stage 2 for a whole stream: routes each summary to the
    :class:`ClusterDetector` of every linkage key's partition (Kafka's default
    partitioner on the key, as the live summaries topic does), in key order.

    >>> stage = ClusterStage(ClusterDetector, partitions=4)
    >>> stage.process(AccountSummary("a", 1e9, 1e9, ("pay:pm_1", "ip:10.0.0.0/24")))
    []
    >>> sum(d.sizes()[1] for d in stage.detectors)
    2
    """

    def __init__(self, factory: Callable[[], ClusterDetector], partitions: int = 8) -> None:
        if partitions <= 0:
            raise ValueError(f"partitions must be > 0, got {partitions}")
        self.partitions = partitions
        self.detectors = [factory() for _ in range(partitions)]
        self.partition_of = PartitionCache(partitions)
        self._cache = self.partition_of.cache
        self.summaries = 0

    def process(self, summary: AccountSummary) -> list[Alert]:
        self.summaries += 1
        alerts: list[Alert] = []
        detectors, cache = self.detectors, self._cache
        for key in summary.keys:
            p = cache.get(key)
            if p is None:
                p = self.partition_of(key)
            found = detectors[p].process(key, summary)
            if found:
                alerts += found
        return alerts

    def work(self) -> dict[str, int]:
        """:meth:`ClusterDetector.work` summed over the partitions, with the
        summaries processed."""
        total = {"summaries": self.summaries}
        for d in self.detectors:
            for name, n in d.work().items():
                total[name] = total.get(name, 0) + n
        return total
