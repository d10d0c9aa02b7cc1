"""Coordinated multi-account ("hydra") detection: account summaries, linkage
keys and per-key cluster scoring.

Two stages, both pure logic (no Faust, Kafka, logging or clock):

1. :class:`SummaryEmitter` runs next to the per-account
   :class:`~detectors.engine.Detector` (one per events partition, through
   :class:`~detectors.runner.PartitionRunner`). At most once per account per
   ``interval_s`` of event time (and on first sight) it turns the account's
   features into an :class:`AccountSummary`: the account's *linkage keys*
   (payment fingerprint, IPv4 /24 or IPv6 /48, org, client fingerprint,
   repeated prompt-template fingerprints, a MinHash bucket of its dominant
   topics) and its *behaviour* (top topics, template fingerprints, first-seen
   time, hour-of-day flatness, elicitation share, rate, own score).
2. Summaries are repartitioned by linkage key (``<kind>:<value>``). One
   :class:`ClusterDetector` per partition of that stream keeps, per key, a
   bounded cluster: a capped sample of members with their latest behaviour, a
   HyperLogLog count of all distinct members, and the alert lifecycle. It
   scores how many accounts share the key and how similar and synchronized
   they are, and emits ``detector="cluster"`` alerts (``account_id`` None,
   ``accounts`` + ``account_count``, ``details["cluster_key"]``) plus one
   ``detector="cluster_member"`` alert per member account, referencing the
   cluster's ``dedup_key``.

Sharing alone never fires: the evidence is behaviour that the members have in
common *beyond the key they share* (a template fingerprint carried by many
members, one narrow topic, reasoning elicitation, synchronized starts,
round-the-clock flatness, members' own scores). An organisation whose accounts
share a card and an office range but write varied prompts on diverse topics
by day scores near zero.

Sources: Anthropic, "Detecting and preventing distillation attacks" (Feb
2026) -- hydra clusters of >20,000 proxy accounts, shared payment methods,
coordinated timing, one narrow capability; SynchroTrap (CCS 2014) and
CopyCatch (WWW 2013) for synchronized, lockstep groups.

>>> from detectors.schema import Event
>>> ip_prefix("203.0.113.77"), ip_prefix("2001:db8:abcd:12::1"), ip_prefix("nope")
('203.0.113.0/24', '2001:db8:abcd::/48', None)
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import math
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any, Final

import orjson
from mypy_extensions import mypyc_attr

from detectors.alerts import MAX_ACCOUNTS_LISTED, Alert, dedup_key, make_alert_id, severity_for
from detectors.errors import CorruptState
from detectors.partitioning import PartitionCache
from detectors.schema import Event, ValueObject

__all__ = [
    "AccountSummary",
    "BloomFilter",
    "ClusterDetector",
    "ClusterStage",
    "HyperLogLog",
    "SummaryEmitter",
    "account_hash",
    "ip_prefix",
    "linkage_keys",
    "shared_fingerprints",
    "topic_signature",
]

KINDS: Final = ("pay", "ip", "org", "ua", "sys", "tmpl", "lsh")
_VERSION: Final = 1
_U64: Final = float(2**64)


# ------------------------------------------------------------------ linkage ---


def _shared_kernel() -> Callable[[list[tuple[int, ...]], int], list[int] | None] | None:
    """The C kernel, when ``python -m tools.native build`` compiled it."""
    try:
        from detectors import _fpcount
    except ImportError:
        return None
    return _fpcount.shared


# Final: the compiled module reads it as a C static, not from the module dict
_C_SHARED: Final = _shared_kernel()


def shared_fingerprints(fps: list[tuple[int, ...]], need: int) -> set[int]:
    """The fingerprints carried at least ``need`` times over ``fps``.

    Every occurrence counts. The C kernel (``detectors/_fpcount.c``) counts
    without creating an object per fingerprint; this Python is the reference
    (tests/test_cluster.py compares the two).

    >>> sorted(shared_fingerprints([(1, 2), (2, 3), (2, 1)], 2))
    [1, 2]
    >>> shared_fingerprints([(1, 2), (3,)], 2)
    set()
    """
    if _C_SHARED is not None:
        found = _C_SHARED(fps, need)
        if found is not None:  # None: a value it does not take (the Python does)
            return set(found)
    carried = sum(map(len, fps))
    # A fingerprint carried ``need`` times repeats ``need - 1`` times: with
    # fewer repeats among all carried fingerprints, none is shared (the
    # common case; a set is cheaper than counting).
    if carried - len(set(chain.from_iterable(fps))) < need - 1:
        return set()
    counts = Counter(chain.from_iterable(fps))
    return {fp for fp, n in counts.items() if n >= need}


def account_hash(account_id: str) -> int:
    """A stable 64-bit hash of an account id (the same in every process).

    >>> account_hash("acct-1") == account_hash("acct-1"), 0 <= account_hash("x") < 2**64
    (True, True)
    """
    return int.from_bytes(
        hashlib.blake2b(account_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
        "little",
    )


def ip_prefix(ip: str | None) -> str | None:
    """The IPv4 /24 or IPv6 /48 network of an address, as text; None if unparseable.

    IPv4-mapped IPv6 addresses are treated as IPv4.

    >>> ip_prefix("10.1.2.3"), ip_prefix("::ffff:10.1.2.3"), ip_prefix("2001:DB8::1")
    ('10.1.2.0/24', '10.1.2.0/24', '2001:db8::/48')
    >>> ip_prefix(""), ip_prefix("10.1.2"), ip_prefix(None)
    (None, None, None)
    """
    if not ip:
        return None
    text = ip.strip()
    parts = text.split(".")
    if len(parts) == 4 and ":" not in text:
        try:
            octets = [int(p) for p in parts]
        except ValueError:
            return None
        if all([0 <= o <= 255 and p.isdigit() for o, p in zip(octets, parts, strict=True)]):
            return f"{octets[0]}.{octets[1]}.{octets[2]}.0/24"
        return None
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address):
        mapped = addr.ipv4_mapped
        if mapped is not None:
            return ip_prefix(str(mapped))
        return str(ipaddress.IPv6Network((addr, 48), strict=False))
    return ip_prefix(str(addr))


def _norm(value: str | None, limit: int = 200) -> str | None:
    if value is None:
        return None
    text = " ".join(value.split())[:limit]
    return text or None


def _h32(text: str, seed: int) -> int:
    return zlib.crc32(text.encode("utf-8", "surrogatepass"), seed * 0x9E3779B1 & 0xFFFFFFFF)


def topic_signature(
    top_topics: Sequence[Sequence[Any]], bands: int = 2, min_share: float = 0.15
) -> list[str]:
    """MinHash LSH buckets of an account's dominant topics.

    The dominant set is the topics with at least ``min_share`` of the account's
    recent traffic (at least the top one). Band ``b`` is the minimum of a
    seeded 32-bit hash over that set, so two accounts share band ``b`` with
    probability equal to the Jaccard similarity of their dominant sets, and the
    bucket does not depend on the order or the exact shares.

    >>> a = topic_signature([["coding/rust", 0.8], ["math/proofs", 0.1]])
    >>> b = topic_signature([["coding/rust", 0.6], ["writing/email", 0.05]])
    >>> a == b, len(a), a[0].startswith("0-")
    (True, 2, True)
    >>> topic_signature([["writing/email", 0.9]]) == a
    False
    >>> topic_signature([])
    []
    """
    names = [str(t[0]) for t in top_topics if t and float(t[1]) >= min_share]
    if not names and top_topics:
        names = [str(top_topics[0][0])]
    if not names:
        return []
    # the buckets depend only on the dominant names: memoised (bounded)
    memo = (bands, *names)
    sig = _SIGNATURES.get(memo)
    if sig is None:
        sig = tuple(f"{b}-{min(_h32(n, b + 1) for n in names):08x}" for b in range(bands))
        if len(_SIGNATURES) >= _SIGNATURES_MAX:
            _SIGNATURES.clear()
        _SIGNATURES[memo] = sig
    return list(sig)


_SIGNATURES: dict[tuple[Any, ...], tuple[str, ...]] = {}
_SIGNATURES_MAX: Final = 4096


def linkage_keys(
    event: Event, template_fps: Sequence[int] = (), lsh: Sequence[str] = ()
) -> list[str]:
    """The ``<kind>:<value>`` keys an account summary is repartitioned by.

    >>> ev = Event(1e9, "a", ip="198.51.100.9", payment_fingerprint="pm_1",
    ...            org_id="org_7", user_agent="aiohttp/3.9.5")
    >>> linkage_keys(ev, [0xdeadbeef], ["0-0000abcd"])  # doctest: +NORMALIZE_WHITESPACE
    ['pay:pm_1', 'ip:198.51.100.0/24', 'org:org_7', 'ua:aiohttp/3.9.5',
     'tmpl:deadbeef', 'lsh:0-0000abcd']
    """
    keys = []
    pay = _norm(event.payment_fingerprint)
    if pay:
        keys.append(f"pay:{pay}")
    net = ip_prefix(event.ip)
    if net:
        keys.append(f"ip:{net}")
    org = _norm(event.org_id)
    if org:
        keys.append(f"org:{org}")
    ua = _norm(event.user_agent)
    if ua:
        keys.append(f"ua:{ua}")
    sysfp = _norm(getattr(event, "system_prompt_fingerprint", None))
    if sysfp:  # accounts running one system prompt (the same app, or the same harvester)
        keys.append(f"sys:{sysfp}")
    keys.extend([f"tmpl:{fp:08x}" for fp in template_fps])
    keys.extend([f"lsh:{s}" for s in lsh])
    return keys


# ------------------------------------------------------------------ summary ---


_MAX_SUMMARY_KEYS: Final = 64
_MAX_SUMMARY_ITEMS: Final = 64
_MAX_SUMMARY_STR: Final = 1024


def _unit(x: float) -> bool:
    """In [0, 1] (shares, scores), allowing rounding just above 1."""
    return 0.0 <= x <= 1.0 + 1e-9


def _summary_problem(s: AccountSummary) -> str:
    """Why a decoded summary is unusable ('' when it is fine)."""
    if not 0 < len(s.account_id) <= _MAX_SUMMARY_STR:
        return "account_id must be 1..1024 characters"
    if not (math.isfinite(s.ts) and math.isfinite(s.first_ts)):
        return "times must be finite"
    if not 0 < len(s.keys) <= _MAX_SUMMARY_KEYS:
        return "keys: 1..64 keys of 1..1024 characters"
    for k in s.keys:
        if not 0 < len(k) <= _MAX_SUMMARY_STR:
            return "keys: 1..64 keys of 1..1024 characters"
    if len(s.top_topics) > _MAX_SUMMARY_ITEMS or len(s.fps) > _MAX_SUMMARY_ITEMS:
        return "too many topics or fingerprints"
    for n, share in s.top_topics:
        if not (_unit(share) and len(n) <= _MAX_SUMMARY_STR):
            return "topic shares must be in [0, 1]"
    for fp in s.fps:
        if not 0 <= fp < 1 << 64:
            return "fingerprints must be unsigned 64-bit integers"
    if not (_unit(s.template) and _unit(s.elicitation) and _unit(s.flatness)
            and _unit(s.score)):
        return "template, elicitation, flatness and score must be in [0, 1]"
    if not (math.isfinite(s.rate) and s.rate >= 0.0):
        return "rate must be finite and >= 0"
    if s.events < 0:
        return "events must be >= 0"
    return ""


#: the field names of :class:`AccountSummary`, in order
SUMMARY_FIELDS: Final = (
    "account_id", "ts", "first_ts", "keys", "top_topics", "fps", "template", "elicitation",
    "flatness", "rate", "score", "events",
)


class AccountSummary(ValueObject):
    """What stage 2 learns about one account, at one point in event time.

    ``fps`` are the distinct prompt fingerprints of the account's recent
    prompts (those repeated within the account first), never prompt text.

    A value object (:class:`detectors.schema.ValueObject`): the worker builds
    one per summary and decodes one per summaries partition it is sent to.

    >>> s = AccountSummary("a", 1e9 + 60, 1e9, ("pay:pm_1",), (("coding/go", 0.9),),
    ...                    (7, 9), 0.5, 0.25, 0.1, 2.5, 0.4, 12)
    >>> AccountSummary.decode(s.encode()) == s
    True
    """

    __slots__ = SUMMARY_FIELDS
    FIELDS = SUMMARY_FIELDS

    account_id: str
    ts: float
    first_ts: float
    keys: tuple[str, ...]
    top_topics: tuple[tuple[str, float], ...]
    fps: tuple[int, ...]
    template: float
    elicitation: float
    flatness: float
    rate: float
    score: float
    events: int

    def __init__(
        self,
        account_id: str,
        ts: float,
        first_ts: float,
        keys: tuple[str, ...],
        top_topics: tuple[tuple[str, float], ...] = (),
        fps: tuple[int, ...] = (),
        template: float = 0.0,
        elicitation: float = 0.0,
        flatness: float = 0.0,
        rate: float = 0.0,
        score: float = 0.0,
        events: int = 0,
    ) -> None:
        self.account_id = account_id
        self.ts = ts
        self.first_ts = first_ts
        self.keys = keys
        self.top_topics = top_topics
        self.fps = fps
        self.template = template
        self.elicitation = elicitation
        self.flatness = flatness
        self.rate = rate
        self.score = score
        self.events = events

    def _values(self) -> tuple[Any, ...]:
        return (self.account_id, self.ts, self.first_ts, self.keys, self.top_topics, self.fps,
                self.template, self.elicitation, self.flatness, self.rate, self.score,
                self.events)

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.account_id,
            "t": self.ts,
            "f": self.first_ts,
            "k": list(self.keys),
            "tt": [[n, s] for n, s in self.top_topics],
            "fp": list(self.fps),
            "tp": self.template,
            "el": self.elicitation,
            "fl": self.flatness,
            "r": self.rate,
            "s": self.score,
            "n": self.events,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> AccountSummary:
        """Inverse of :meth:`to_json`, validated: a summary read from Kafka is
        input like any other, and a value the cluster detector cannot handle
        (a negative rate, a NaN share, a 10 MB key) is rejected here with
        :class:`CorruptState` instead of failing deep inside it.

        >>> AccountSummary.from_json({"a": "x", "t": 1e9, "f": 1e9, "k": ["ua:y"], "r": -1})
        Traceback (most recent call last):
        ...
        detectors.errors.CorruptState: bad account summary: rate must be finite and >= 0
        """
        # list comprehensions, not generator expressions: compiled, a
        # generator object per field made this 5.5 us a summary (the worker
        # decodes each summary once per summaries partition it is sent to)
        try:
            summary = cls(
                str(obj["a"]),
                float(obj["t"]),
                float(obj["f"]),
                tuple([str(k) for k in obj["k"]]),
                tuple([(str(n), float(s)) for n, s in obj.get("tt", ())]),
                tuple([int(x) for x in obj.get("fp", ())]),
                float(obj.get("tp", 0.0)),
                float(obj.get("el", 0.0)),
                float(obj.get("fl", 0.0)),
                float(obj.get("r", 0.0)),
                float(obj.get("s", 0.0)),
                int(obj.get("n", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptState(f"bad account summary: {exc}") from None
        problem = _summary_problem(summary)
        if problem:
            raise CorruptState(f"bad account summary: {problem}")
        return summary

    def encode(self) -> bytes:
        return orjson.dumps(self.to_json())

    @classmethod
    def decode(cls, data: bytes) -> AccountSummary:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise CorruptState(f"bad account summary: {exc}") from None
        if not isinstance(obj, dict):
            raise CorruptState("bad account summary: not an object")
        return cls.from_json(obj)


class SummaryEmitter:
    """Stage 1: turns per-account state into :class:`AccountSummary` records
    at a bounded rate.

    An account emits on its first event and then on its first event in each
    new ``interval_s`` bucket of event time (``floor(ts / interval_s)``), so
    the rate is at most one summary per account per interval and the decision
    needs no state of its own: it compares the event time with the account's
    previous ``last_ts``, which the runner reads before the event is applied.
    The same input therefore yields the same summaries after a restart.

    Parameters
    ----------
    interval_s
        Event-time spacing of an account's summaries.
    max_template_keys
        How many of the account's repeated prompt fingerprints become ``tmpl:``
        linkage keys.
    max_fps
        How many prompt fingerprints a summary carries as behaviour.
    lsh_bands
        MinHash bands of the dominant-topic signature (``lsh:`` keys).
    topic_min_share
        Share a topic needs to count as dominant for the signature.

    Examples
    --------
    >>> from detectors.engine import Detector
    >>> det, em = Detector(), SummaryEmitter(interval_s=300)
    >>> state, _ = det.process(None, Event(1e9, "a", topic="coding/go", ip="10.0.0.1"))
    >>> s = em.maybe_emit(det, None, state, Event(1e9, "a", topic="coding/go", ip="10.0.0.1"))
    >>> s.keys[0], s.first_ts
    ('ip:10.0.0.0/24', 1000000000.0)
    >>> ev = Event(1e9 + 60, "a", topic="coding/go")
    >>> prev = state.last_ts; state, _ = det.process(state, ev)
    >>> em.maybe_emit(det, prev, state, ev) is None   # same 5-minute bucket
    True
    """

    def __init__(
        self,
        interval_s: float = 300.0,
        max_template_keys: int = 2,
        max_fps: int = 8,
        lsh_bands: int = 2,
        topic_min_share: float = 0.15,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        self.interval_s = interval_s
        self.max_template_keys = max_template_keys
        self.max_fps = max_fps
        self.lsh_bands = lsh_bands
        self.topic_min_share = topic_min_share

    def due(self, prev_last_ts: float | None, ts: float) -> bool:
        """Whether an event at ``ts`` after one at ``prev_last_ts`` emits."""
        if prev_last_ts is None:
            return True
        step = self.interval_s
        return ts // step > prev_last_ts // step

    def maybe_emit(
        self, detector: Any, prev_last_ts: float | None, state: Any, event: Event
    ) -> AccountSummary | None:
        if prev_last_ts is not None:  # as due()
            step = self.interval_s
            if not event.ts // step > prev_last_ts // step:
                return None
        return self.summarize(detector, state, event)

    def summarize(self, detector: Any, state: Any, event: Event) -> AccountSummary:
        ts = event.ts
        lean = getattr(detector, "summary_features", None)
        if lean is not None:
            # the six values a summary needs, not the whole features() dict
            # (about 3 us a summary less; same numbers, see its docstring)
            n_events, rate, top_list, tmpl, elic, flat = lean(state, ts)
        else:
            feats = detector.features(state, ts)
            get = feats.get
            top_list = feats.get("top_topics", ())[:3]
            n_events = get("events", 0)
            rate = get("rate_per_min", 0.0)
            tmpl = get("template_repetition", 0.0)
            elic = get("elicitation_share", 0.0)
            flat = get("hour_flatness", 0.0)
        # (-count, fingerprint) of the recent prompt fingerprints, most repeated
        # first, ties to the lower fingerprint; 0 is an empty ring slot
        ranked = []
        prev = n = 0
        for fp in sorted(getattr(state, "anchors", ())):
            if fp == prev:
                n += 1
                continue
            if prev:
                ranked.append((-n, prev))
            prev, n = fp, 1
        if prev:
            ranked.append((-n, prev))
        ranked.sort()
        repeated = [fp for n, fp in ranked[: self.max_template_keys] if n <= -2]
        top = tuple([(str(name), round(float(share), 4)) for name, share in top_list])
        lsh = topic_signature(top, self.lsh_bands, self.topic_min_share)
        return AccountSummary(
            event.account_id,
            ts,
            float(getattr(state, "first_ts", ts)),
            tuple(linkage_keys(event, repeated, lsh)),
            top,
            tuple([fp for _, fp in ranked[: self.max_fps]]),
            float(tmpl),
            float(elic),
            float(flat),
            float(rate),
            round(float(getattr(state, "score", 0.0)), 4),
            int(n_events),
        )


# ------------------------------------------------------------------ sketches ---


class HyperLogLog:
    """Distinct count in ``2**p`` one-byte registers (p=10: 1 KiB, ~3% error).

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


# ------------------------------------------------------------------ clusters ---


@dataclass(slots=True)
class Member:
    """The latest behaviour of one sampled member of a cluster."""

    h: int
    first_ts: float
    last_ts: float
    top: str
    top_share: float
    fps: tuple[int, ...]
    template: float
    elicitation: float
    flatness: float
    rate: float
    score: float
    keys: tuple[str, ...]

    def to_json(self) -> list[Any]:
        return [
            self.h,
            self.first_ts,
            self.last_ts,
            self.top,
            self.top_share,
            list(self.fps),
            self.template,
            self.elicitation,
            self.flatness,
            self.rate,
            self.score,
            list(self.keys),
        ]

    @classmethod
    def from_json(cls, v: Sequence[Any]) -> Member:
        return cls(
            int(v[0]),
            float(v[1]),
            float(v[2]),
            str(v[3]),
            float(v[4]),
            tuple(int(x) for x in v[5]),
            float(v[6]),
            float(v[7]),
            float(v[8]),
            float(v[9]),
            float(v[10]),
            tuple(str(k) for k in v[11]),
        )


class Cluster:
    """State of one linkage key with at least two distinct members.

    ``members`` is a capped sample (at most ``max_sample``): all members while
    the cluster is small, then a bottom-k sample by account hash whose stale
    members make room for active ones. ``hll`` counts every distinct member
    once the sample is full. ``alerted`` remembers (with a Bloom filter) which
    members already got a ``cluster_member`` alert in the open episode.
    """

    __slots__ = (
        "key",
        "members",
        "hll",
        "first_ts",
        "last_ts",
        "last_scored",
        "score",
        "episode_start",
        "last_hot",
        "peak",
        "alerted",
        "fire_sev",
        "evidence",
        "_evict",
        "_fpc",
        "_hot",
        "_top",
        "_oldest",
    )

    def __init__(self, key: str, ts: float) -> None:
        self.key = key
        self.members: dict[str, Member] = {}
        self.hll: HyperLogLog | None = None
        self.first_ts = ts
        self.last_ts = ts
        self.last_scored = 0.0
        self.score = 0.0
        self.episode_start = 0.0
        self.last_hot = 0.0
        self.peak = 0.0
        self.alerted: BloomFilter | None = None
        #: the open episode's firing severity ("": none, or restored from a
        #: state written before it was kept), repeated by its resolved record
        self.fire_sev = ""
        self.evidence: dict[str, Any] = {}
        # derived, not checkpointed: ``(hash, account_id)`` of the sampled member
        # with the largest hash, the first to go from a full sample (None: to find)
        self._evict: tuple[int, str] | None = None
        # derived, not checkpointed (rebuilt from the members when None): how
        # many times each prompt fingerprint occurs over the sampled members,
        # kept up to date by every change of the sample, so that whether a
        # coordinated core can exist is known without looking at the members
        # (ClusterDetector._cannot_score)
        self._fpc: dict[int, int] | None = None
        # how many fingerprints occur at least ``min_members`` times (exact)
        self._hot = 0
        # an upper bound of the largest count in ``_fpc`` (lowered when read)
        self._top = 0
        # a lower bound of the sampled members' last_ts (-inf: unknown), so
        # that a prune finds nothing stale without a scan
        self._oldest = -math.inf

    @property
    def kind(self) -> str:
        return self.key.partition(":")[0]

    def count(self) -> int:
        if self.hll is None:
            return len(self.members)
        return max(self.hll.count(), len(self.members))

    def to_json(self) -> dict[str, Any]:
        return {
            "v": _VERSION,
            "key": self.key,
            "m": {a: m.to_json() for a, m in sorted(self.members.items())},
            "hll": None if self.hll is None else self.hll.to_json(),
            "f": self.first_ts,
            "l": self.last_ts,
            "ls": self.last_scored,
            "s": self.score,
            "es": self.episode_start,
            "lh": self.last_hot,
            "pk": self.peak,
            "al": None if self.alerted is None else self.alerted.to_json(),
            # optional both ways (no version change): older readers ignore it,
            # older states lack it (their open episodes resolve without it)
            **({"fs": self.fire_sev} if self.fire_sev else {}),
            "ev": self.evidence,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Cluster:
        c = cls(str(obj["key"]), float(obj["f"]))
        c.members = {str(a): Member.from_json(v) for a, v in obj["m"].items()}
        c.hll = None if obj["hll"] is None else HyperLogLog.from_json(obj["hll"])
        c.last_ts = float(obj["l"])
        c.last_scored = float(obj["ls"])
        c.score = float(obj["s"])
        c.episode_start = float(obj["es"])
        c.last_hot = float(obj["lh"])
        c.peak = float(obj["pk"])
        c.alerted = None if obj["al"] is None else BloomFilter.from_json(obj["al"])
        c.fire_sev = str(obj.get("fs") or "")
        c.evidence = dict(obj.get("ev") or {})
        return c


# ``(summary, account hash, log2 rate)`` of the last summary a ClusterDetector
# saw: a summary is processed once per linkage key, by one detector per partition
_last_summary: list[tuple[Any, int, float]] = [(None, 0, 0.0)]


def _ramp(x: float, lo: float, hi: float) -> float:
    if x <= lo:
        return 0.0
    if x >= hi:
        return 1.0
    return (x - lo) / (hi - lo)


def encode_entry(entry: Cluster | tuple[int, float]) -> bytes:
    """Table value of one key: a cluster, or a single member ``(hash, last_ts)``."""
    if isinstance(entry, Cluster):
        return orjson.dumps(entry.to_json())
    return orjson.dumps({"v": _VERSION, "single": [entry[0], entry[1]]})


def decode_entry(data: bytes) -> Cluster | tuple[int, float]:
    """Inverse of :func:`encode_entry`; raises :class:`CorruptState`."""
    try:
        obj = orjson.loads(data)
        if not isinstance(obj, dict) or obj.get("v") != _VERSION:
            raise CorruptState("unknown cluster state version")
        if "single" in obj:
            h, ts = obj["single"]
            return int(h), float(ts)
        return Cluster.from_json(obj)
    except CorruptState:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise CorruptState(f"cannot decode cluster state: {exc}") from None


Loader = Callable[[str], "Cluster | tuple[int, float] | None"]


# (compiled by tools.native: tests and tools may still subclass it)
@mypyc_attr(allow_interpreted_subclasses=True)
class ClusterDetector:
    """Stage 2: per-linkage-key clusters of one partition of the summaries stream.

    Memory is bounded per key: a key seen from one account costs one small
    ``(account hash, last_ts)`` entry; from the second distinct account on it
    becomes a :class:`Cluster` with at most ``max_sample`` sampled members, a
    1 KiB HyperLogLog once the sample is full and, while it fires, a
    ``alert_bloom_bits`` Bloom filter. Keys idle for ``idle_ttl_s`` are
    dropped.

    Parameters
    ----------
    min_members
        Core members a cluster needs before it can score at all.
    full_members
        Core members at which the size factor reaches 1.
    max_sample
        Members kept per cluster (their latest behaviour).
    member_ttl_s
        A sampled member whose last summary is older counts as stale.
    shared_fp_share
        Share of active sampled members that must carry one prompt
        fingerprint for it to count as a shared template.
    sync_window_s
        Members whose first-seen times lie within this of the median started
        together.
    start_unknown_s
        Members first seen within this of the partition's first summary have an
        unknown start (everything is "new" when the service starts).
    fire_threshold, hot_threshold, quiet_period_s
        Alert lifecycle, as for accounts: fire once per episode at
        ``fire_threshold``; the episode stays open while updates score at least
        ``hot_threshold``; resolved after ``quiet_period_s`` without one.
    rescore_interval_s
        A large cluster is rescored at most this often (event time).
    idle_ttl_s
        Keys without a summary for this long are forgotten.
    sweep_interval_s
        Event-time spacing of resolution/expiry sweeps.

    Examples
    --------
    >>> det = ClusterDetector()
    >>> tpl = (0xabc,)
    >>> alerts = []
    >>> for i in range(8):
    ...     s = AccountSummary(f"h{i}", 1e9 + 7200 + 600 + i, 1e9 + 7200 + i * 20,
    ...                        ("ua:aiohttp/3.9.5",), (("coding/rust", 0.9),), tpl,
    ...                        0.8, 0.5, 0.3, 0.5, 0.6, 20)
    ...     alerts += det.process("ua:aiohttp/3.9.5", s)
    >>> det.process("ua:aiohttp/3.9.5", AccountSummary("b", 1e9, 1e9, ("ua:aiohttp/3.9.5",)))
    []
    >>> [(a.detector, a.status, a.account_count) for a in alerts][:2]
    [('cluster', 'firing', 4), ('cluster_member', 'firing', 0)]
    >>> sorted(a.account_id for a in alerts if a.detector == "cluster_member")[-2:]
    ['h6', 'h7']
    >>> alerts[1].details["cluster_dedup_key"]
    'cluster:ua:aiohttp/3.9.5'
    """

    name = "cluster"
    member_name = "cluster_member"

    def __init__(
        self,
        min_members: int = 3,
        full_members: int = 6,
        max_sample: int = 256,
        member_ttl_s: float = 7200.0,
        shared_fp_share: float = 0.3,
        sync_window_s: float = 900.0,
        start_unknown_s: float = 3600.0,
        fire_threshold: float = 0.85,
        hot_threshold: float = 0.6,
        quiet_period_s: float = 1800.0,
        rescore_interval_s: float = 60.0,
        idle_ttl_s: float = 6 * 3600.0,
        sweep_interval_s: float = 60.0,
        hll_p: int = 10,
        alert_bloom_bits: int = 1 << 18,
        severity: Mapping[str, float] | None = None,
    ) -> None:
        self.min_members = min_members
        self.full_members = full_members
        self.max_sample = max_sample
        self.member_ttl_s = member_ttl_s
        self.shared_fp_share = shared_fp_share
        self.sync_window_s = sync_window_s
        self.start_unknown_s = start_unknown_s
        self.fire_threshold = fire_threshold
        self.hot_threshold = hot_threshold
        self.quiet_period_s = quiet_period_s
        self.rescore_interval_s = rescore_interval_s
        self.idle_ttl_s = idle_ttl_s
        self.sweep_interval_s = sweep_interval_s
        self.hll_p = hll_p
        self.alert_bloom_bits = alert_bloom_bits
        self.severity = dict(severity or {"warning": 0.7, "error": 0.85, "critical": 0.95})
        # learned state: insertion order = least recently updated first
        self._clusters: dict[str, Cluster] = {}
        self._singles: dict[str, tuple[int, float]] = {}
        self._firing: set[str] = set()
        self._dirty: set[str] = set()
        self._removed: set[str] = set()
        self._stream_start = 0.0
        self._watermark = 0.0
        self._next_sweep = 0.0
        self._pop_log_rate = 0.0
        self._pop_n = 0
        self.loader: Loader | None = None
        # ``(cluster, episode_start, dedup key, alert id)`` of the last member alert
        self._episode_ids: tuple[Cluster | None, float, str, str] = (None, 0.0, "", "")
        # work counters (not checkpointed; see work()): summaries applied to a
        # key, full evaluations of a cluster, fingerprint-sharing checks
        self._n_applied = 0
        self._n_scored = 0
        self._n_core_checks = 0

    # -------------------------------------------------------------- process
    def process(self, key: str, summary: AccountSummary) -> list[Alert]:
        """Apply one summary routed by ``key``; return the alerts it causes."""
        t = summary.ts
        if not self._stream_start or t < self._stream_start:
            self._stream_start = t
        if self._pop_n < 1_000_000:
            self._pop_n += 1
        # a summary comes once per linkage key: its hash and log rate are kept
        last = _last_summary[0]  # one tuple, read and replaced whole (thread-safe)
        if last[0] is summary:
            h, lr = last[1], last[2]
        else:
            h = account_hash(summary.account_id)
            lr = math.log2(summary.rate + 1e-3)
            _last_summary[0] = (summary, h, lr)
        self._pop_log_rate += (lr - self._pop_log_rate) / min(self._pop_n, 5000)
        alerts = self._apply(key, summary, h)
        if t > self._watermark:
            self._watermark = t
            if t >= self._next_sweep:
                if self._next_sweep:
                    alerts.extend(self.sweep())
                step = self.sweep_interval_s
                self._next_sweep = (t // step + 1) * step
        return alerts

    def _apply(self, key: str, summary: AccountSummary, h: int) -> list[Alert]:
        self._n_applied += 1
        t = summary.ts
        clusters = self._clusters
        entry: Cluster | tuple[int, float] | None = clusters.pop(key, None)
        self._dirty.add(key)
        self._removed.discard(key)
        if entry is None:  # a single-account key, a checkpointed one, or a new one
            singles = self._singles
            entry = singles.pop(key, None)
            if entry is None and self.loader is not None:
                entry = self.loader(key)
            if entry is None or (isinstance(entry, tuple) and entry[0] == h):
                singles[key] = (h, max(t, entry[1]) if entry else t)
                return []
        if isinstance(entry, tuple):  # a second distinct account: promote
            cluster = Cluster(key, min(entry[1], t))
        else:
            cluster = entry
        clusters[key] = cluster  # most recently updated last
        if t > cluster.last_ts:
            cluster.last_ts = t
        self._observe(cluster, summary, h)
        return self._score_and_alert(cluster, summary, h)

    def _observe(self, c: Cluster, s: AccountSummary, h: int) -> None:
        top, share = s.top_topics[0] if s.top_topics else ("", 0.0)
        member = Member(
            h,
            s.first_ts,
            s.ts,
            top,
            share,
            s.fps,
            s.template,
            s.elicitation,
            s.flatness,
            s.rate,
            s.score,
            s.keys,
        )
        members = c.members
        if s.ts < c._oldest:
            c._oldest = s.ts
        old = members.get(s.account_id)
        if old is not None:
            member.first_ts = min(old.first_ts, s.first_ts)
            members[s.account_id] = member
            if c._fpc is not None and old.fps != s.fps:
                self._uncount(c, old.fps)
                self._count(c, s.fps)
            return
        if c.hll is not None:
            c.hll.add(h)
        if len(members) < self.max_sample:
            members[s.account_id] = member
            c._evict = None
            if c._fpc is not None:
                self._count(c, s.fps)
            return
        if c.hll is None:  # the sample just filled: count every member from now on
            c.hll = HyperLogLog(self.hll_p)
            for m in members.values():
                c.hll.add(m.h)
            c.hll.add(h)
        # full: bottom-k by account hash (stale members are pruned when scoring)
        evict = c._evict
        if evict is None:
            # the largest hash, and the first member (in sample order) carrying it
            hs = [m.h for m in members.values()]
            top_h = max(hs)
            evict = c._evict = (top_h, next(islice(members, hs.index(top_h), None)))
        if h >= evict[0]:
            return
        gone = members.pop(evict[1])
        members[s.account_id] = member
        c._evict = None
        if c._fpc is not None:
            self._uncount(c, gone.fps)
            self._count(c, s.fps)

    # Fingerprint counts over the sample (Cluster._fpc), kept exact by every
    # change of the sample: a summary costs a few dict updates, and whether any
    # fingerprint is shared widely enough for a core is known at once.
    def _count(self, c: Cluster, fps: tuple[int, ...]) -> None:
        fpc = c._fpc
        assert fpc is not None
        need = self.min_members
        for fp in fps:
            n = fpc.get(fp, 0) + 1
            fpc[fp] = n
            if n == need:
                c._hot += 1
            if n > c._top:
                c._top = n

    def _uncount(self, c: Cluster, fps: tuple[int, ...]) -> None:
        fpc = c._fpc
        assert fpc is not None
        need = self.min_members
        for fp in fps:
            n = fpc[fp]
            if n == need:
                c._hot -= 1
            if n == 1:
                del fpc[fp]
            else:
                fpc[fp] = n - 1

    def _counts(self, c: Cluster) -> dict[int, int]:
        """The cluster's fingerprint counts, built from the sample when unknown
        (a new or restored cluster)."""
        fpc = c._fpc
        if fpc is None:
            fpc = c._fpc = {}
            c._hot = c._top = 0
            for m in c.members.values():
                self._count(c, m.fps)
        return fpc

    def _prune(self, c: Cluster, t: float) -> None:
        """A full sample drops members without a summary for ``member_ttl_s``, so
        that active members (of a cluster whose accounts rotate) get the room."""
        if c.hll is None or len(c.members) < self.max_sample:
            return
        stale = t - self.member_ttl_s
        if c._oldest >= stale:  # a lower bound: nothing to drop, without a scan
            return
        for acct in [a for a, m in c.members.items() if m.last_ts < stale]:
            gone = c.members.pop(acct)
            c._evict = None
            if c._fpc is not None:
                self._uncount(c, gone.fps)
        c._oldest = min([m.last_ts for m in c.members.values()], default=math.inf)

    # -------------------------------------------------------------- scoring
    def _cannot_score(self, c: Cluster, t: float) -> bool:
        """Whether :meth:`evaluate` at ``t`` would find no core (score 0),
        known from the incremental counts without looking at the members.

        It relies on what :meth:`_core` requires of a core: outside ``tmpl:``
        keys, a fingerprint carried at least ``max(min_members,
        ceil(shared_fp_share * active))`` times by the active members, who are
        a subset of the sample; for ``tmpl:`` keys, ``min_members`` active
        members. Prunes first, as :meth:`_core` does, so the sample evolves as
        if every call had been a full evaluation (tests/test_cluster.py runs
        both ways and compares the alerts).
        """
        self._prune(c, t)
        members = c.members
        if len(members) < self.min_members:
            return True
        if c.kind == "tmpl":
            return False
        self._counts(c)
        if not c._hot:
            return True
        # some fingerprint reaches min_members: compare the largest count with
        # what the active members need (all active: no scan for the count)
        since = t - self.member_ttl_s
        if c._oldest >= since:
            n_active = len(members)
        else:
            seen = [m.last_ts for m in members.values()]
            c._oldest = min(seen)
            n_active = len([x for x in seen if x >= since])
        need = max(self.min_members, math.ceil(self.shared_fp_share * n_active))
        if c._top >= need:
            fpc = self._counts(c)
            c._top = max(fpc.values()) if fpc else 0  # lower the bound to the exact max
        return c._top < need

    def _core(self, c: Cluster, t: float) -> tuple[list[tuple[str, Member]], dict[str, Any]]:
        """Members sharing the cluster's common behaviour, and how they were chosen."""
        self._prune(c, t)
        since = t - self.member_ttl_s
        members = c.members
        kind = c.kind
        active = [(a, m) for a, m in members.items() if m.last_ts >= since]
        info: dict[str, Any] = {"active_sampled": len(active)}
        if not active:
            return [], info
        if kind == "tmpl":
            return active, info
        need = max(self.min_members, math.ceil(self.shared_fp_share * len(active)))
        fps = [m.fps for _, m in active]
        self._n_core_checks += 1
        shared = shared_fingerprints(fps, need)
        if not shared:
            # Sharing the key and a topic mix is what organisations do too: without
            # a template fingerprint in common there is no coordinated core.
            return [], info
        core = [am for am, f in zip(active, fps, strict=True) if not shared.isdisjoint(f)]
        info["shared_templates"] = sorted([f"{fp:08x}" for fp in shared])[:8]
        return core, info

    def evaluate(self, c: Cluster, t: float) -> tuple[float, dict[str, Any], list[str]]:
        """Score, evidence and core member ids of a cluster as of ``t``."""
        core, info = self._core(c, t)
        n_active = max(1, info["active_sampled"])
        total = c.count()
        n_core = len(core)
        est_core = n_core if c.hll is None else round(total * n_core / max(1, len(c.members)))
        ev: dict[str, Any] = {"members": total, "core_members": est_core, **info}
        if n_core < self.min_members:
            return 0.0, ev, []
        # comprehensions over the typed list, not map(attrgetter): compiled,
        # they read the members' fields natively (no generic getattr per item)
        ms: list[Member] = [m for _, m in core]
        k = float(n_core)
        kind = c.kind
        fp_share = n_core / n_active if "shared_templates" in info else 0.0
        tops: dict[str, int] = {}  # members with a top topic, in member order
        for m in ms:
            if m.top:
                tops[m.top] = tops.get(m.top, 0) + 1
        topic_agree = max(tops.values()) / k if tops else 0.0
        # medians: a few strong attackers must not make a mixed group look alike
        mean_top = _median_of([m.top_share for m in ms])
        elic = _median_of([m.elicitation for m in ms])
        tmpl = _median_of([m.template for m in ms])
        flat = _median_of([m.flatness for m in ms])
        own = _median_of([m.score for m in ms])
        agg_rate = sum([m.rate for m in ms]) / k * est_core
        start, unknown = self._stream_start, self.start_unknown_s
        known = sorted([m.first_ts for m in ms if m.first_ts - start >= unknown])
        sync = 0.0
        if len(known) >= self.min_members:
            med = known[len(known) // 2]
            window = self.sync_window_s
            within = len([x for x in known if abs(x - med) <= window])
            sync = within / len(known)
            ev["start_spread_s"] = round(known[-1] - known[0], 1)
        terms = {
            "shared_template": _ramp(fp_share, 0.3, 0.7),
            "one_topic": (0.0 if kind == "lsh" else _ramp(topic_agree, 0.6, 0.9))
            * _ramp(mean_top, 0.25, 0.6),
            "elicitation": _ramp(elic, 0.1, 0.4),
            "template": _ramp(tmpl, 0.2, 0.6),
            "synchronized": _ramp(sync, 0.6, 0.9),
            "round_the_clock": _ramp(flat, 0.75, 0.92),
            "member_scores": _ramp(own, 0.3, 0.8),
            "volume": _ramp(math.log2(agg_rate + 1e-3) - self._pop_log_rate, 4.0, 8.0),
        }
        # What one product run by many accounts shows too (an organisation's
        # accounts share its templates and topic): counts fully only with
        # behaviour beyond it (reasoning harvest, synchronized starts,
        # round-the-clock) or members' own evidence.
        z_product = (
            1.2 * terms["shared_template"] + 0.8 * terms["one_topic"] + 0.6 * terms["template"]
        )
        z_behaviour = (
            1.0 * terms["elicitation"]
            + 0.8 * terms["synchronized"]
            + 0.6 * terms["round_the_clock"]
        )
        # a declared organisation (most core members carry one org id) running
        # its product: the product and its reasoning requests are its business
        orgs: dict[str, int] = {}
        for m in ms:
            for key in m.keys:
                if key.startswith("org:"):
                    orgs[key] = orgs.get(key, 0) + 1
        org_share = max(orgs.values()) / k if orgs else 0.0
        if org_share >= 0.8:
            z_product *= 0.25
            z_behaviour -= 0.5 * terms["elicitation"]
            ev["declared_org_share"] = round(org_share, 3)
        x = (z_behaviour + terms["member_scores"]) / 1.0
        z_spec = z_behaviour + z_product * (0.35 + 0.65 * (x if x < 1.0 else 1.0))
        z_gen = 0.8 * terms["member_scores"] + 0.4 * terms["volume"]
        gate = min(1.0, z_spec / 1.5)
        size = _ramp(est_core, self.min_members - 1, self.full_members)
        z = size * (z_spec + z_gen * gate)
        score = 1.0 - math.exp(-z)
        ev.update(
            {
                "evidence": {n: round(v, 3) for n, v in terms.items()},
                "reasons": [n for n, v in terms.items() if v >= 0.5],
                "size_factor": round(size, 3),
                "median_elicitation": round(elic, 4),
                "median_template_repetition": round(tmpl, 4),
                "median_hour_flatness": round(flat, 4),
                "median_member_score": round(own, 4),
                "median_top_share": round(mean_top, 4),
                "top_topics": sorted(tops.items(), key=_by_count_then_name)[:3],
                "aggregate_rate_per_min": round(agg_rate, 2),
                "population_rate_per_min": round(math.pow(2.0, self._pop_log_rate), 3),
                "shared_keys": _shared_keys(ms, c.key),
            }
        )
        return score, ev, sorted([a for a, _ in core])

    def _score_and_alert(self, c: Cluster, s: AccountSummary, h: int) -> list[Alert]:
        t = s.ts
        alerts: list[Alert] = []
        firing = bool(c.episode_start)
        if len(c.members) > 32 and t - c.last_scored < self.rescore_interval_s:
            # big cluster, scored recently: only the member check while firing
            if firing and c.alerted is not None and h not in c.alerted:
                if self._matches(c, s):
                    alerts.append(self._member_alert(c, s.account_id, t))
                    c.alerted.add(h)
            return alerts
        if not firing and self._cannot_score(c, t):
            # no core can exist (the incremental counts say so): what a full
            # evaluation would record, without one
            c.last_scored = t
            c.score = 0.0
            return alerts
        self._n_scored += 1
        score, ev, core = self.evaluate(c, t)
        c.last_scored = t
        c.score = score
        if firing:
            if score >= self.hot_threshold:
                c.last_hot = t
            c.peak = max(c.peak, score)
            c.evidence = ev
            assert c.alerted is not None
            if s.account_id in core and h not in c.alerted:
                alerts.append(self._member_alert(c, s.account_id, t))
                c.alerted.add(h)
            return alerts
        if score >= self.fire_threshold:
            c.episode_start = c.last_hot = t
            c.peak = score
            c.evidence = ev
            self._firing.add(c.key)
            c.alerted = BloomFilter(self.alert_bloom_bits)
            alerts.append(self._fire(c, t, score, ev, core))
            for acct in core:
                alerts.append(self._member_alert(c, acct, t))
                c.alerted.add(account_hash(acct))
        return alerts

    def _matches(self, c: Cluster, s: AccountSummary) -> bool:
        """Whether a member seen between rescorings carries the cluster's shared template."""
        if c.kind == "tmpl":
            return True
        shared = c.evidence.get("shared_templates")
        if not shared:
            return False
        for fp in s.fps:
            if f"{fp:08x}" in shared:
                return True
        return False

    # --------------------------------------------------------------- alerts
    def _fire(
        self, c: Cluster, t: float, score: float, ev: dict[str, Any], core: list[str]
    ) -> Alert:
        count = int(ev["core_members"])
        details = {
            "cluster_key": c.key,
            "key_kind": c.kind,
            **ev,
            "member_alerts": f"{self.member_name}:<account_id>",
        }
        summary = (
            f"{count} accounts sharing {c.key[:50]}: coordinated score {score:.2f} "
            f"({', '.join(ev.get('reasons', [])) or 'combined'})"
        )
        c.fire_sev = severity_for(score, self.severity)
        return Alert(
            detector=self.name,
            status="firing",
            severity=c.fire_sev,
            score=score,
            ts=t,
            episode_start=c.episode_start,
            summary=summary,
            details=details,
            account_id=None,
            accounts=tuple(core[:MAX_ACCOUNTS_LISTED]),
            account_count=max(count, len(core)),
        )

    def _member_alert(self, c: Cluster, account_id: str, t: float) -> Alert:
        ids = self._episode_ids
        if ids[0] is not c or ids[1] != c.episode_start:
            # the cluster's dedup key and firing alert id, for all its members
            cluster_dedup = dedup_key(self.name, c.key)
            alert_id = make_alert_id(cluster_dedup, c.episode_start, "firing")
            ids = self._episode_ids = (c, c.episode_start, cluster_dedup, alert_id)
        return Alert(
            detector=self.member_name,
            status="firing",
            severity="warning",
            score=c.peak,
            ts=t,
            episode_start=c.episode_start,
            summary=f"{account_id[:40]}: member of coordinated cluster {c.key[:50]}",
            details={
                "cluster_key": c.key,
                "cluster_dedup_key": ids[2],
                "cluster_alert_id": ids[3],
                "cluster_score": round(c.peak, 4),
                "cluster_members": c.evidence.get("members", len(c.members)),
                "shared_keys": c.evidence.get("shared_keys", []),
            },
            account_id=account_id,
        )

    def _resolve(self, c: Cluster, t: float) -> Alert:
        alert = Alert(
            detector=self.name,
            status="resolved",
            severity="info",
            score=c.score,
            ts=t,
            episode_start=c.episode_start,
            summary=f"cluster {c.key[:60]}: quiet since the last coordinated activity",
            details={
                "cluster_key": c.key,
                "peak_score": round(c.peak, 4),
                "last_hot_ts": c.last_hot,
                "members": c.count(),
                "episode_duration_s": round(c.last_hot - c.episode_start, 1),
                **({"firing_severity": c.fire_sev} if c.fire_sev else {}),
            },
            account_id=None,
            accounts=tuple(sorted(c.members)[:MAX_ACCOUNTS_LISTED]),
            account_count=c.count(),
        )
        c.episode_start = c.last_hot = c.peak = 0.0
        c.alerted = None
        c.fire_sev = ""
        self._firing.discard(c.key)
        return alert

    # ------------------------------------------------------------ lifecycle
    def sweep(self) -> list[Alert]:
        """Resolve quiet episodes and forget idle keys, at the watermark."""
        wm = self._watermark
        alerts = []
        for key in sorted(self._firing):
            c = self._clusters.get(key)
            if c is None:
                self._firing.discard(key)
                continue
            if wm - c.last_hot >= self.quiet_period_s:
                alerts.append(self._resolve(c, c.last_hot + self.quiet_period_s))
                self._dirty.add(key)
        limit = wm - self.idle_ttl_s
        for table in (self._clusters, self._singles):
            while table:
                key = next(iter(table))
                entry = table[key]
                last = entry.last_ts if isinstance(entry, Cluster) else entry[1]
                if last >= limit or key in self._firing:
                    break
                del table[key]
                self._dirty.discard(key)
                self._removed.add(key)
        return alerts

    def take_dirty(self) -> tuple[list[tuple[str, bytes]], list[str]]:
        """Keys changed since the last call (encoded, to checkpoint), and keys forgotten."""
        changed = []
        for key in sorted(self._dirty):
            c = self._clusters.get(key)
            if c is not None:
                changed.append((key, encode_entry(c)))
                continue
            s = self._singles.get(key)
            if s is not None:
                changed.append((key, encode_entry(s)))
        removed = sorted(self._removed)
        self._dirty.clear()
        self._removed.clear()
        return changed, removed

    def restore_entry(self, key: str, entry: Cluster | tuple[int, float]) -> None:
        """Put a checkpointed key back into memory (after a restart)."""
        if isinstance(entry, Cluster):
            self._clusters[key] = entry
            if entry.episode_start:
                self._firing.add(key)
        else:
            self._singles[key] = entry

    def snapshot(self) -> bytes:
        """Partition-level state (watermark, sweep point, population rate) as JSON bytes."""
        return orjson.dumps(
            {
                "v": _VERSION,
                "start": self._stream_start,
                "wm": self._watermark,
                "next": self._next_sweep,
                "pop": self._pop_log_rate,
                "n": self._pop_n,
                "firing": sorted(self._firing),
            }
        )

    def restore(self, data: bytes) -> None:
        try:
            obj = orjson.loads(data)
            if obj.get("v") != _VERSION:
                raise CorruptState("unknown cluster snapshot version")
            self._stream_start = float(obj["start"])
            self._watermark = float(obj["wm"])
            self._next_sweep = float(obj["next"])
            self._pop_log_rate = float(obj["pop"])
            self._pop_n = int(obj["n"])
            firing = [str(k) for k in obj.get("firing", ())]
        except CorruptState:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CorruptState(f"cannot restore cluster snapshot: {exc}") from None
        if self.loader is not None:
            for key in firing:  # open episodes must be resolvable without new summaries
                entry = self.loader(key)
                if isinstance(entry, Cluster):
                    self.restore_entry(key, entry)

    # ------------------------------------------------------------ inspection
    def cluster(self, key: str) -> Cluster | None:
        return self._clusters.get(key)

    def sizes(self) -> tuple[int, int]:
        """``(clusters, single-account keys)`` held in memory."""
        return len(self._clusters), len(self._singles)

    def work(self) -> dict[str, int]:
        """Deterministic work counters since this detector was made:
        ``applied`` (a summary applied to one of its keys), ``scored`` (a full
        evaluation of a cluster) and ``core_checks`` (a count of the prompt
        fingerprints shared by a cluster's active members). Repeatable where
        timings are not: the measure of how much work the stage does."""
        return {
            "applied": self._n_applied,
            "scored": self._n_scored,
            "core_checks": self._n_core_checks,
        }


def _median_of(xs: list[float]) -> float:
    """The median of ``xs``, which it sorts in place (0.0 if empty)."""
    xs.sort()
    n = len(xs)
    if not n:
        return 0.0
    mid = n // 2
    return xs[mid] if n % 2 else 0.5 * (xs[mid - 1] + xs[mid])


def _by_count_then_name(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def _shared_keys(members: list[Member], own: str, limit: int = 8) -> list[str]:
    counts: dict[str, int] = {}
    for m in members:
        for key in m.keys:
            counts[key] = counts.get(key, 0) + 1
    need = max(2, math.ceil(len(members) / 2))
    keys = [k for k, n in counts.items() if n >= need or k == own]
    if own not in keys:
        keys.append(own)
    return sorted(keys, key=lambda k: (-counts.get(k, 0), k))[:limit]


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
