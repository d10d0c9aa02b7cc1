"""The second stage of the stream service, without Faust: one
:class:`~detectors.cluster.ClusterDetector` per partition of the summaries
topic (key = linkage key), its state restored from and checkpointed to the
changelog-backed ``cluster-state`` table the way account state is.

The ``detect`` agent sends every account summary once per linkage key to the
summaries topic, batched: one message per destination partition holding many
``(key, summary)`` pairs (:mod:`streams.service.summary_batch`); the ``clusters`` agent
feeds each message to :meth:`ClusterProcessor.handle`, which still accepts the
old one-summary-per-message format; the worker's checkpoint timer writes
:meth:`ClusterProcessor.checkpoint` records to the table before it commits
offsets, so cluster state is never older than the committed offset either.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any

from detectors.alerts import Alert
from detectors.cluster import AccountSummary, ClusterDetector, decode_entry
from detectors.errors import CorruptState
from streams.service.stages import StageTimes
from streams.service.summary_batch import BATCH_V1, decode_batch

# Partition metadata key; linkage keys always contain ':' after a kind, so
# this cannot collide.
_META_PREFIX = b"\x00\x00dw-cluster-meta:"
_HEADER = struct.Struct("<d")

Lookup = Callable[[bytes], bytes | None]


def cluster_meta_key(partition: int) -> bytes:
    return _META_PREFIX + str(partition).encode()


class ClusterProcessor:
    """Owns one :class:`ClusterDetector` per assigned summaries partition."""

    def __init__(
        self,
        factory: Callable[[], ClusterDetector] = ClusterDetector,
        *,
        lookup: Lookup | None = None,
        on_corrupt: Callable[[str, str], None] | None = None,
        times: StageTimes | None = None,
    ) -> None:
        self.factory = factory
        #: sampled timings of the ``cluster`` stage (streams.service.stages)
        self.times = times
        self.lookup = lookup
        self.on_corrupt = on_corrupt
        self.detectors: dict[int, ClusterDetector] = {}
        self.summaries = 0
        self.rejected = 0
        # (reason, pair index or None) of the message being handled, for the
        # agent's dead-letter records (take_rejects)
        self._rejects: list[tuple[str, int | None]] = []
        self._last_error = ""

    def detector(self, partition: int) -> ClusterDetector:
        det = self.detectors.get(partition)
        if det is None:
            det = self.factory()
            if self.lookup is not None:
                det.loader = self._loader()
                raw = self.lookup(cluster_meta_key(partition))
                if raw:
                    try:
                        det.restore(raw[_HEADER.size :])
                    except CorruptState as exc:
                        if self.on_corrupt is not None:
                            self.on_corrupt(f"partition {partition}", str(exc))
            self.detectors[partition] = det
        return det

    def _loader(self) -> Callable[[str], Any]:
        assert self.lookup is not None
        lookup = self.lookup

        def load(key: str) -> Any:
            raw = lookup(key.encode("utf-8", "surrogatepass"))
            if raw is None:
                return None
            try:
                return decode_entry(raw)
            except CorruptState as exc:
                if self.on_corrupt is not None:
                    self.on_corrupt(key, str(exc))
                return None

        return load

    def handle(self, value: bytes | None, key: bytes | None, partition: int) -> list[Alert]:
        """One summaries-topic message: a batch of ``(key, summary)`` pairs
        (:mod:`streams.service.summary_batch`), or -- the format before batching -- one
        summary with its linkage key as the message key.

        Bad input never raises: each bad summary or pair is counted in
        ``rejected``, reported once per message through ``on_corrupt``, and
        listed by :meth:`take_rejects` for a dead-letter record. A summary that
        makes the cluster detector raise is rejected the same way, so a poison
        message cannot crash the agent (and, not committed, crash it again on
        every restart).
        """
        if value is not None and value[:1] == BATCH_V1:
            return self.handle_batch(value, partition)
        if value is None or key is None:
            self._reject("summary message without key or value", None)
            return []
        try:
            summary = AccountSummary.decode(value)
            linkage = key.decode("utf-8", "surrogatepass")
        except (CorruptState, UnicodeDecodeError, RecursionError) as exc:
            self._reject(str(exc), None)
            if self.on_corrupt is not None:
                self.on_corrupt("summary", str(exc))
            return []
        found = self._process(partition, linkage, summary, None)
        if found is None:
            if self.on_corrupt is not None:
                self.on_corrupt(linkage, self._last_error)
            return []
        return found

    def handle_batch(self, value: bytes, partition: int) -> list[Alert]:
        """Every pair of one batch message, in order, on ``partition``."""
        try:
            pairs = decode_batch(value)
        except CorruptState as exc:
            self._reject(str(exc), None)
            if self.on_corrupt is not None:
                self.on_corrupt("summary batch", str(exc))
            return []
        alerts: list[Alert] = []
        bad = total = 0
        first = ""
        for index, (linkage, summary, reason) in enumerate(pairs):
            total += 1
            if linkage is None or summary is None:
                bad += 1
                self._reject(reason or "bad pair", index)
                first = first or (reason or "bad pair")
                continue
            found = self._process(partition, linkage, summary, index)
            if found is None:
                bad += 1
                first = first or self._last_error
                continue
            if found:
                alerts.extend(found)
        if bad and self.on_corrupt is not None:
            self.on_corrupt("summary batch", f"{bad} of {total} pairs rejected, first: {first}")
        return alerts

    def _reject(self, reason: str, index: int | None) -> None:
        self.rejected += 1
        if len(self._rejects) < 10_000:  # one message's worth; drained after each
            self._rejects.append((reason, index))

    def take_rejects(self) -> list[tuple[str, int | None]]:
        """``(reason, pair index or None)`` of what the last handled message(s)
        rejected; the agent dead-letters each with the message's bytes."""
        out, self._rejects = self._rejects, []
        return out

    def _process(self, partition: int, linkage: str, summary: AccountSummary,
                 index: int | None) -> list[Alert] | None:
        """The detector's alerts, or None when it raised (the pair is then
        rejected: one place decides reject, never crash)."""
        self.summaries += 1
        times = self.times
        try:
            if times is not None and self.summaries % times.every == 0:
                t0 = times.clock()
                found = self.detector(partition).process(linkage, summary)
                times.add("cluster", times.clock() - t0)
                return found
            return self.detector(partition).process(linkage, summary)
        except Exception as exc:  # noqa: BLE001 - a poison summary must not stop the agent
            self._last_error = f"cluster detector error: {exc!r}"
            self._reject(self._last_error, index)
            return None

    def revoke(self, partitions: Iterable[int]) -> None:
        """Forget hot state of partitions this worker no longer owns."""
        for p in partitions:
            self.detectors.pop(p, None)

    def checkpoint(self) -> list[tuple[int, bytes, bytes | None]]:
        """Records for the ``cluster-state`` changelog: ``(partition, key, value)``."""
        records: list[tuple[int, bytes, bytes | None]] = []
        for partition, det in self.detectors.items():
            changed, removed = det.take_dirty()
            if not changed and not removed:
                continue
            for key, value in changed:
                records.append((partition, key.encode("utf-8", "surrogatepass"), value))
            for key in removed:
                records.append((partition, key.encode("utf-8", "surrogatepass"), None))
            meta = _HEADER.pack(0.0) + det.snapshot()
            records.append((partition, cluster_meta_key(partition), meta))
        return records

    def tracked(self) -> tuple[int, int]:
        """``(clusters, single-account keys)`` in memory on this worker."""
        c = s = 0
        for det in self.detectors.values():
            a, b = det.sizes()
            c += a
            s += b
        return c, s
