"""Linkage keys: what accounts of one operator share (payment fingerprint,
IPv4 /24 or IPv6 /48, org, client fingerprint, system prompt, repeated prompt
templates, a MinHash bucket of the dominant topics), spelled ``<kind>:<value>``,
and the counting of prompt fingerprints shared across members (with its C
kernel, ``detectors/_fpcount.c``)."""

from __future__ import annotations

import hashlib
import ipaddress
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any, Final

from detectors.schema import Event

KINDS: Final = ("pay", "ip", "org", "ua", "sys", "tmpl", "lsh")


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
    (tests/oracles/test_cluster_oracle.py compares both with plain counting).

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


# ip_prefix's answers by address text ("" for None): a summary asks for its
# event's address every time, and an IPv6 address through ``ipaddress`` (run
# as interpreted Python) cost ~11k instructions. Bounded: cleared when full,
# and only texts as long as an address (with a zone) are kept.
_PREFIXES: dict[str, str] = {}
_PREFIXES_MAX: Final = 65_536
_PREFIX_TEXT_MAX: Final = 64


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
    known = _PREFIXES.get(ip)
    if known is not None:
        return known or None
    net = _ip_prefix(ip)
    if len(ip) <= _PREFIX_TEXT_MAX:
        if len(_PREFIXES) >= _PREFIXES_MAX:
            _PREFIXES.clear()
        _PREFIXES[ip] = net or ""
    return net


def _ip_prefix(ip: str) -> str | None:
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
            return _ip_prefix(str(mapped))
        return str(ipaddress.IPv6Network((addr, 48), strict=False))
    return _ip_prefix(str(addr))


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


def identity_keys(event: Event) -> list[str]:
    """The identity linkage keys of one request (payer, network range, org):
    one operator's, unlike behaviour keys (client, template, topic mix) that
    unrelated accounts share. Account alerts carry them, so the campaign stage
    can tell which campaign an account belongs to before a cluster names it.

    >>> identity_keys(Event(1e9, "a", ip="198.51.100.9", payment_fingerprint="pm_1"))
    ['pay:pm_1', 'ip:198.51.100.0/24']
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
    return keys


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
    keys = identity_keys(event)
    ua = _norm(event.user_agent)
    if ua:
        keys.append(f"ua:{ua}")
    sysfp = _norm(getattr(event, "system_prompt_fingerprint", None))
    if sysfp:  # accounts running one system prompt (the same app, or the same harvester)
        keys.append(f"sys:{sysfp}")
    keys.extend([f"tmpl:{fp:08x}" for fp in template_fps])
    keys.extend([f"lsh:{s}" for s in lsh])
    return keys
