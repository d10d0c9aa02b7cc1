"""Indicators shared by other providers, as evidence for the account detector.

Pure (no Kafka, no clock). Entries come from the compacted watchlist topic
(``distillwatch indicators pull|import``) or a file (replay). Each names one
linkage key the way :func:`detectors.cluster.linkage_keys` spells it:

- ``pay`` (payment fingerprint), ``ua`` (client fingerprint) and ``tmpl``
  (prompt-template fingerprint) only as ``HMAC-SHA256(community key,
  "<kind>:<value>")`` hex, with the ``key_id`` of the community key: no
  member sends another a raw card fingerprint or any prompt text;
- ``ip``: a network in CIDR notation (an IPv4 /24 or IPv6 /48 matches by
  prefix text; other lengths by containment).

An event matching entries adds ``weight * sum(kind_weight * confidence *
marking)`` over the matched kinds (capped at ``cap``) to the account's
evidence ``z`` (score ``1 - exp(-z)``): reason ``shared_indicator``. One
matched kind alone stays below the default fire threshold (0.8 needs z >=
1.61); a match plus the account's own evidence, or two independent kinds,
fires. ``marking`` trusts a TLP:CLEAR indicator (anyone could post it) less
than one shared inside a community.

>>> key = b"k" * 32
>>> w = Watchlist({"c1": key})
>>> w.upsert({"id": "indicator--1", "kind": "pay", "value": hmac_hex(key, "pay", "pm_9"),
...           "key_id": "c1", "confidence": 80, "tlp": "amber"})
True
>>> from detectors.schema import Event
>>> round(w.evidence(Event(1e9, "a", payment_fingerprint="pm_9")), 3)
0.8
>>> w.evidence(Event(1e9, "b", payment_fingerprint="pm_1")), w.matched
(0.0, [])
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from detectors.alerts import Alert
from detectors.cluster import ip_prefix
from detectors.schema import Event

KINDS: Final = ("pay", "ua", "tmpl", "ip")
HASHED: Final = frozenset({"pay", "ua", "tmpl"})
#: how much one matched kind counts, before confidence and marking
KIND_WEIGHTS: Final = {"pay": 1.0, "tmpl": 1.0, "ip": 0.5, "ua": 0.3}
#: the more openly an indicator was posted, the more likely stale or planted
MARKING_WEIGHTS: Final = {"clear": 0.5, "green": 0.75, "amber": 1.0, "amber+strict": 1.0,
                          "red": 1.0}
_CACHE_MAX: Final = 65536


def normalize(value: str) -> str:
    """Whitespace collapsed, at most 200 characters (as linkage keys are).

    >>> normalize("  aiohttp/3.9   x ")
    'aiohttp/3.9 x'
    """
    return " ".join(value.split())[:200]


def hmac_hex(key: bytes, kind: str, value: str) -> str:
    """The shared form of a hashed linkage key.

    >>> hmac_hex(b"k", "pay", "pm_1") == hmac_hex(b"k", "pay", " pm_1 ")
    True
    >>> hmac_hex(b"k", "pay", "pm_1") == hmac_hex(b"other", "pay", "pm_1")
    False
    """
    material = f"{kind}:{normalize(value)}".encode("utf-8", "surrogatepass")
    return hmac.new(key, material, hashlib.sha256).hexdigest()


def _epoch(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0


class Watchlist:
    """Shared indicators indexed for O(1) look-ups per event.

    ``keys``: community key id -> key bytes (several during a rotation).
    """

    def __init__(self, keys: Mapping[str, bytes] | None = None, weight: float = 1.0,
                 cap: float = 2.0) -> None:
        if weight < 0.0 or cap <= 0.0:
            raise ValueError("weight must be >= 0 and cap > 0")
        self.keys = dict(keys or {})
        self.weight = weight
        self.cap = cap
        self.size = 0
        #: (kind, indicator id, weight) of the latest :meth:`evidence` call
        self.matched: list[tuple[str, str, float]] = []
        self._entries: dict[str, tuple[str, str]] = {}  # id -> (kind, index key)
        # index key -> {indicator id: (weight, valid_from, valid_until)}
        self._index: dict[str, dict[str, tuple[float, float, float]]] = {}
        self._nets: list[tuple[Any, str]] = []  # CIDRs other than /24 and /48
        self._has: set[str] = set()
        self._hashes: dict[tuple[str, str, str], str] = {}

    # ------------------------------------------------------------- content
    def upsert(self, record: Mapping[str, Any]) -> bool:
        """Add or replace one entry; False (ignored) when it is unusable here:
        unknown kind, a key id this member does not hold, a bad network."""
        rid = str(record.get("id", ""))
        kind = str(record.get("kind", ""))
        value = str(record.get("value", ""))
        if not rid or kind not in KINDS or not value:
            return False
        self.remove(rid)
        if kind in HASHED:
            key_id = str(record.get("key_id", ""))
            if key_id not in self.keys:
                return False
            index = f"{kind}:{key_id}:{value.lower()}"
        else:
            try:
                net = ipaddress.ip_network(value, strict=False)
            except ValueError:
                return False
            index = f"ip:{net}"
            if not ((net.version == 4 and net.prefixlen == 24)
                    or (net.version == 6 and net.prefixlen == 48)):
                self._nets.append((net, index))
        confidence = float(record.get("confidence", 50)) / 100.0
        confidence = min(1.0, max(0.0, confidence))
        marking = MARKING_WEIGHTS.get(str(record.get("tlp", "clear")).lower(), 0.5)
        w = KIND_WEIGHTS[kind] * confidence * marking
        until = _epoch(record.get("valid_until"))
        self._index.setdefault(index, {})[rid] = (w, _epoch(record.get("valid_from")),
                                                  until if until > 0.0 else float("inf"))
        self._entries[rid] = (kind, index)
        self._has.add(kind)
        self.size = len(self._entries)
        return True

    def load(self, records: Sequence[Mapping[str, Any]]) -> int:
        """Replace every entry with ``records``; the number usable here."""
        self._entries.clear()
        self._index.clear()
        self._nets = []
        self._has = set()
        self.size = 0
        usable = 0
        for record in records:
            if self.upsert(record):
                usable += 1
        return usable

    def remove(self, rid: str) -> None:
        entry = self._entries.pop(rid, None)
        if entry is None:
            return
        kind, index = entry
        held = self._index.get(index)
        if held is not None:
            held.pop(rid, None)
            if not held:
                del self._index[index]
                self._nets = [(n, i) for n, i in self._nets if i != index]
        self._has = {k for k, _ in self._entries.values()}
        self.size = len(self._entries)

    # ------------------------------------------------------------- look-up
    def _hash(self, key_id: str, kind: str, value: str) -> str:
        memo = (key_id, kind, value)
        h = self._hashes.get(memo)
        if h is None:
            if len(self._hashes) >= _CACHE_MAX:
                self._hashes.clear()
            h = hmac_hex(self.keys[key_id], kind, value)
            self._hashes[memo] = h
        return h

    def _best(self, index: str, t: float) -> tuple[float, str]:
        best = 0.0
        best_id = ""
        # valid_from is not a lower bound: replaying older logs against what
        # was shared since is a retro-hunt; only expired indicators stop counting
        for rid, (w, _start, until) in self._index.get(index, {}).items():
            if t <= until and w > best:
                best = w
                best_id = rid
        return best, best_id

    def evidence(self, event: Event, templates: Sequence[int] = ()) -> float:
        """The evidence term of one event (0.0 without a match); the matches
        are left in :attr:`matched`. ``templates``: the account's recent
        prompt-template fingerprints (the detector's ring)."""
        matched: list[tuple[str, str, float]] = []
        t = event.ts
        if self.size:
            wanted: list[tuple[str, str]] = []
            if "pay" in self._has and event.payment_fingerprint:
                wanted.append(("pay", event.payment_fingerprint))
            if "ua" in self._has and event.user_agent:
                wanted.append(("ua", event.user_agent))
            if "tmpl" in self._has:
                wanted.extend(("tmpl", f"{fp:08x}") for fp in set(templates) if fp)
            for kind, value in wanted:
                for key_id in self.keys:
                    w, rid = self._best(f"{kind}:{key_id}:{self._hash(key_id, kind, value)}", t)
                    if w > 0.0:
                        matched.append((kind, rid, w))
            if "ip" in self._has and event.ip:
                net = ip_prefix(event.ip)
                if net is not None:
                    w, rid = self._best(f"ip:{net}", t)
                    if w == 0.0 and self._nets:
                        w, rid = self._contained(event.ip, t)
                    if w > 0.0:
                        matched.append(("ip", rid, w))
        self.matched = matched
        if not matched:
            return 0.0
        per_kind: dict[str, float] = {}
        for kind, _, w in matched:
            if w > per_kind.get(kind, 0.0):
                per_kind[kind] = w
        return min(self.cap, self.weight * sum(per_kind.values()))

    def _contained(self, ip: str, t: float) -> tuple[float, str]:
        try:
            addr = ipaddress.ip_address(ip.strip().split("%", 1)[0])
        except ValueError:
            return 0.0, ""
        best = (0.0, "")
        for net, index in self._nets:
            if addr.version == net.version and addr in net:
                found = self._best(index, t)
                if found[0] > best[0]:
                    best = found
        return best


def mark_alert(alert: Alert, matched: Sequence[tuple[str, str, float]], term: float) -> Alert:
    """The firing alert with the shared indicators it matched in its details:
    reason ``shared_indicator``, the indicator ids, kinds and the term."""
    details = dict(alert.details)
    reasons = list(details.get("reasons") or [])
    if "shared_indicator" not in reasons:
        reasons.append("shared_indicator")
    details["reasons"] = reasons
    details["shared_indicator"] = {
        "term": round(term, 3),
        "matches": [{"kind": k, "indicator": rid, "weight": round(w, 3)}
                    for k, rid, w in sorted(set(matched))][:8],
    }
    return replace(alert, details=details)
