"""Kafka's default partitioner (murmur2), so replay can place accounts on the
same partitions as the live topic and run one detector per partition."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final


def _c_murmur2() -> Callable[[bytes], int] | None:
    """The C hash (``detectors/_eventscan.c``), when built: the same ints as
    :func:`murmur2`'s Python (tests/unit/test_partitioning.py), which compiled
    went through arbitrary-precision multiplications for every new key."""
    try:
        from detectors import _eventscan
    except ImportError:
        return None
    return _eventscan.murmur2


_C_MURMUR2: Final = _c_murmur2()


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (Java client ``Utils.murmur2``), as a signed 32-bit int.

    >>> murmur2(b"21")
    -973932308
    """
    if _C_MURMUR2 is not None:
        return _C_MURMUR2(data)
    return _murmur2(data)


def _murmur2(data: bytes) -> int:
    """:func:`murmur2` in Python (the reference)."""
    length = len(data)
    seed = 0x9747B28C
    m = 0x5BD1E995
    r = 24
    h = (seed ^ length) & 0xFFFFFFFF
    n4 = length // 4
    for i in range(n4):
        i4 = i * 4
        k = data[i4] | (data[i4 + 1] << 8) | (data[i4 + 2] << 16) | (data[i4 + 3] << 24)
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    extra = length % 4
    idx = length & ~3
    if extra >= 3:
        h ^= data[idx + 2] << 16
    if extra >= 2:
        h ^= data[idx + 1] << 8
    if extra >= 1:
        h ^= data[idx]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - 0x100000000 if h & 0x80000000 else h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key``.

    >>> partition_for(b"acct-1", 8) in range(8)
    True
    """
    if partitions <= 0:
        raise ValueError(f"partitions must be > 0, got {partitions}")
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class PartitionCache:
    """:func:`partition_for` of text keys, memoised: account ids and linkage
    keys repeat, and murmur2 in Python costs microseconds. The memo stops
    growing at ``max_entries`` (later keys are hashed each time).

    >>> parts = PartitionCache(8)
    >>> parts("acct-1") == partition_for(b"acct-1", 8) == parts("acct-1")
    True
    """

    __slots__ = ("partitions", "max_entries", "cache")

    def __init__(self, partitions: int, max_entries: int = 1_000_000) -> None:
        if partitions <= 0:
            raise ValueError(f"partitions must be > 0, got {partitions}")
        self.partitions = partitions
        self.max_entries = max_entries
        #: the memo itself, for hot loops that inline ``cache.get(key)``
        self.cache: dict[str, int] = {}

    def __call__(self, key: str) -> int:
        p = self.cache.get(key)
        if p is None:
            p = partition_for(key.encode("utf-8", "surrogatepass"), self.partitions)
            if len(self.cache) < self.max_entries:
                self.cache[key] = p
        return p
