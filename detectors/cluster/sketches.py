"""Fixed-size sketches kept per cluster (and per campaign): a HyperLogLog
distinct count and a Bloom filter of account hashes."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any

from detectors.errors import CorruptState


class HyperLogLog:
    """Distinct count in ``2**p`` one-byte registers (p=10: 1 KiB, ~3% error).

    >>> from detectors.cluster.keys import account_hash
    >>> h = HyperLogLog(10)
    >>> for i in range(20_000):
    ...     h.add(account_hash(f"acct-{i}"))
    >>> abs(h.count() - 20_000) / 20_000 < 0.06
    True
    >>> HyperLogLog.from_json(h.to_json()).count() == h.count()
    True
    """

    __slots__ = ("p", "_reg", "_cached")

    def __init__(self, p: int = 10) -> None:
        if not 4 <= p <= 16:
            raise ValueError(f"p must be in 4..16, got {p}")
        self.p = p
        self._reg = bytearray(1 << p)
        self._cached: int | None = None

    def add(self, h: int) -> None:
        p = self.p
        idx = h >> (64 - p)
        rest = (h << p) & 0xFFFFFFFFFFFFFFFF
        rank = 64 - p + 1 if rest == 0 else 65 - rest.bit_length()
        if rank > self._reg[idx]:
            self._reg[idx] = rank
            self._cached = None

    def count(self) -> int:
        if self._cached is not None:
            return self._cached
        m = len(self._reg)
        alpha = 0.7213 / (1.0 + 1.079 / m)
        total = 0.0
        zeros = 0
        for r in iter(self._reg):  # (mypyc cannot loop over a bytearray directly)
            total += math.pow(2.0, -r)
            if r == 0:
                zeros += 1
        est = alpha * m * m / total
        if est <= 2.5 * m and zeros:
            est = m * math.log(m / zeros)
        self._cached = int(round(est))
        return self._cached

    def to_json(self) -> dict[str, Any]:
        return {"p": self.p, "r": base64.b64encode(bytes(self._reg)).decode()}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> HyperLogLog:
        h = cls(int(obj["p"]))
        reg = base64.b64decode(obj["r"])
        if len(reg) != len(h._reg):
            raise CorruptState("HyperLogLog register size mismatch")
        h._reg[:] = reg
        return h


class BloomFilter:
    """Fixed-size set membership (no false negatives), for "already alerted".

    >>> from detectors.cluster.keys import account_hash
    >>> b = BloomFilter(1 << 12, 4)
    >>> b.add(account_hash("x")); account_hash("x") in b, account_hash("y") in b
    (True, False)
    """

    __slots__ = ("bits", "hashes", "_data")

    def __init__(self, bits: int = 1 << 18, hashes: int = 4) -> None:
        self.bits = bits
        self.hashes = hashes
        self._data = bytearray(bits // 8)

    # Bit positions by double hashing, (h1 + i * h2) % bits for i < hashes,
    # written out in add and __contains__ (a shared generator cost more than
    # the loop on this hot path).

    def add(self, h: int) -> None:
        h1 = h & 0xFFFFFFFF
        h2 = (h >> 32) | 1
        bits = self.bits
        data = self._data
        for i in range(self.hashes):
            pos = (h1 + i * h2) % bits
            data[pos >> 3] |= 1 << (pos & 7)

    def __contains__(self, h: object) -> bool:
        if not isinstance(h, int):
            return False
        h1 = h & 0xFFFFFFFF
        h2 = (h >> 32) | 1
        bits = self.bits
        data = self._data
        for i in range(self.hashes):
            pos = (h1 + i * h2) % bits
            if not data[pos >> 3] & (1 << (pos & 7)):
                return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {"b": self.bits, "k": self.hashes, "d": base64.b64encode(bytes(self._data)).decode()}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> BloomFilter:
        b = cls(int(obj["b"]), int(obj["k"]))
        data = base64.b64decode(obj["d"])
        if len(data) != len(b._data):
            raise CorruptState("Bloom filter size mismatch")
        b._data[:] = data
        return b
