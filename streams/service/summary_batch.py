"""Batched messages on the summaries topic.

The ``detect`` agent used to send every account summary once per linkage key,
one Kafka message each (about six per summary); the ``clusters`` agent then
paid Faust's per-message cost for each. Now the worker buffers the
``(linkage key, summary)`` pairs in a :class:`SummaryBatcher`, groups them by
the partition each key maps to (Kafka's default partitioner, murmur2 -- the
partition the key's cluster state lives on, since the ``cluster-state`` table
is co-partitioned with the summaries topic) and sends ONE message per
destination partition, with that partition set explicitly.

Wire format (version 1)::

    b"\\x01" + JSON [[summary, [key, ...]], ...]

``summary`` is :meth:`AccountSummary.to_json` (serialized once per summary and
embedded as is), followed by the keys of that summary that map to the
message's partition, in the summary's key order. Entries keep the order in
which summaries were produced, so each partition's cluster detector sees the
same ``(key, summary)`` sequence as with one message per key (and as replay's
:class:`~detectors.cluster.ClusterStage`).

The old format -- one summary per message, JSON object, key = linkage key --
starts with ``{``, never with the version byte, so :func:`decode_batch` is
only called on batch messages and messages in flight during an upgrade are
still accepted (see :meth:`streams.service.clusters.ClusterProcessor.handle`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from detectors.cluster import AccountSummary
from detectors.errors import CorruptState
from detectors.partitioning import PartitionCache

#: first byte of a batch message (an old single-summary message starts with ``{``)
BATCH_V1 = b"\x01"

#: flush once this many (key, summary) pairs are buffered
DEFAULT_MAX_PAIRS = 512
#: ... or once one partition's message would exceed about this many bytes
#: (well below the producer's 1 MB request limit)
DEFAULT_MAX_BYTES = 256 * 1024


def is_batch(value: bytes | None) -> bool:
    return value is not None and value[:1] == BATCH_V1


def encode_batch(items: list[tuple[bytes, list[str]]]) -> bytes:
    """``items``: ``(AccountSummary.encode(), keys)`` in production order.

    >>> s = AccountSummary("a", 1e9, 1e9, ("pay:pm_1", "ip:10.0.0.0/24"))
    >>> value = encode_batch([(s.encode(), ["pay:pm_1"])])
    >>> value[:1], [(k, x.account_id) for k, x, _ in decode_batch(value)]
    (b'\\x01', [('pay:pm_1', 'a')])
    """
    return BATCH_V1 + orjson.dumps([[orjson.Fragment(enc), keys] for enc, keys in items])


#: one decoded pair: ``(key, summary, None)`` or, for a bad entry,
#: ``(None, None, reason)``, one per pair it held when that is known
Decoded = tuple[str | None, AccountSummary | None, str | None]


def decode_batch(value: bytes) -> Iterator[Decoded]:
    """The pairs of a batch message, in order; a malformed entry yields a
    ``(None, None, reason)`` per pair it stood for (at least one), so callers
    count and skip it and keep the rest. A message that is not a batch at all
    (bad version byte, not JSON, not a list) raises :class:`CorruptState`.

    Never raises anything else, whatever the bytes.
    """
    if value[:1] != BATCH_V1:
        raise CorruptState("bad summary batch: unknown version byte")
    try:
        entries = orjson.loads(value[1:])
    except orjson.JSONDecodeError as exc:
        raise CorruptState(f"bad summary batch: {exc}") from None
    if not isinstance(entries, list):
        raise CorruptState("bad summary batch: not a list")
    return _pairs(entries)


def _pairs(entries: list[Any]) -> Iterator[Decoded]:
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 2
                and isinstance(entry[0], dict) and isinstance(entry[1], list)):
            yield None, None, "bad summary batch entry: not [summary, [keys]]"
            continue
        obj, keys = entry
        try:
            summary = AccountSummary.from_json(obj)
        except (CorruptState, ArithmeticError, ValueError, TypeError) as exc:
            reason = str(exc) if isinstance(exc, CorruptState) else f"bad account summary: {exc}"
            for _ in range(max(1, len(keys))):
                yield None, None, reason
            continue
        if not keys:
            yield None, None, "bad summary batch entry: no keys"
        for key in keys:
            if isinstance(key, str):
                yield key, summary, None
            else:
                yield None, None, "bad summary batch entry: key is not a string"


class SummaryBatcher:
    """Buffers ``(key, summary)`` pairs per destination partition.

    ``add`` says when the buffer is full; ``drain`` returns one
    ``(partition, value)`` message per partition with pending pairs and empties
    the buffer. The caller sends them (in that order) and also drains on a
    short timer and before every offset commit.

    >>> b = SummaryBatcher(partitions=4)
    >>> b.add(AccountSummary("a", 1e9, 1e9, ("pay:pm_1", "ip:10.0.0.0/24")))
    False
    >>> b.pairs, sorted(p for p, _ in b.drain()) == sorted(
    ...     {b.partition_of("pay:pm_1"), b.partition_of("ip:10.0.0.0/24")}), b.pairs
    (2, True, 0)
    """

    def __init__(
        self,
        partitions: int,
        max_pairs: int = DEFAULT_MAX_PAIRS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if partitions <= 0:
            raise ValueError(f"partitions must be > 0, got {partitions}")
        if max_pairs < 1 or max_bytes < 1:
            raise ValueError("max_pairs and max_bytes must be >= 1")
        self.partitions = partitions
        self.max_pairs = max_pairs
        self.max_bytes = max_bytes
        self._items: dict[int, list[tuple[bytes, list[str]]]] = {}
        self._bytes: dict[int, int] = {}
        self.partition_of = PartitionCache(partitions, max_entries=200_000)
        #: pairs buffered now
        self.pairs = 0
        #: summaries and messages handed out by drain, since start
        self.sent_summaries = 0
        self.sent_messages = 0
        self._pending_summaries = 0

    def add(self, summary: AccountSummary) -> bool:
        """Buffer ``summary`` under each of its keys; True when it is time to drain."""
        if not summary.keys:
            return False
        by_partition: dict[int, list[str]] = {}
        for key in summary.keys:
            p = self.partition_of(key)
            keys = by_partition.get(p)
            if keys is None:
                by_partition[p] = [key]
            else:
                keys.append(key)
        encoded = summary.encode()
        full = False
        for p, keys in by_partition.items():
            items = self._items.get(p)
            if items is None:
                items = self._items[p] = []
                self._bytes[p] = 1
            items.append((encoded, keys))
            size = self._bytes[p] + len(encoded) + 8 + sum(len(k) + 3 for k in keys)
            self._bytes[p] = size
            if size >= self.max_bytes:
                full = True
        self.pairs += len(summary.keys)
        self._pending_summaries += 1
        return full or self.pairs >= self.max_pairs

    def drain(self) -> list[tuple[int, bytes]]:
        """One ``(partition, batch value)`` per partition with pending pairs."""
        if not self._items:
            return []
        out = [(p, encode_batch(items)) for p, items in self._items.items()]
        self._items = {}
        self._bytes = {}
        self.pairs = 0
        self.sent_summaries += self._pending_summaries
        self._pending_summaries = 0
        self.sent_messages += len(out)
        return out
