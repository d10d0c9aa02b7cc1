"""Plain, obviously-correct definitions of what ``detectors/cluster/`` computes
with hand-optimised code, written from their specification and importing
nothing from the package they check.

- :func:`shared_fingerprints`: the fingerprints carried at least ``need``
  times (the module has a C kernel, ``detectors/_fpcount.c``, and a
  set-before-Counter shortcut).
- :func:`topic_signature`: MinHash buckets of the dominant topics (the module
  memoises them).
- :func:`ranked_fingerprints`: an account's prompt fingerprints by repeat
  count (the module counts runs of a sorted list).
- :func:`summary_values`: what a summary carries, read from
  ``Detector.features()`` (the module reads the lean
  ``Detector.summary_features``).
- :func:`bloom_bits` / :func:`hll_registers` and :func:`hll_estimate`: the
  sketches' bits, registers and estimate (the module writes its loops out).
- :func:`fingerprint_counts`, :func:`bottom_k_victim`, :func:`core`: what the
  cluster detector's incremental bookkeeping (``Cluster._fpc``, ``_hot``,
  ``_top``, ``_oldest``, ``_evict``, ``ClusterDetector._cannot_score``) must
  agree with, recomputed from the sampled members.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any


def account_hash(account_id: str) -> int:
    """BLAKE2b-64 of the UTF-8 id, little-endian."""
    digest = hashlib.blake2b(account_id.encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "little")


def shared_fingerprints(fps: Sequence[Sequence[int]], need: int) -> set[int]:
    counts = Counter(fp for group in fps for fp in group)
    return {fp for fp, n in counts.items() if n >= need}


def topic_signature(top_topics: Sequence[Sequence[Any]], bands: int = 2,
                    min_share: float = 0.15) -> list[str]:
    """Band ``b``: the minimum over the dominant topic names of CRC-32 seeded
    with ``(b + 1) * 0x9E3779B1``; the dominant names are those with at least
    ``min_share`` (else the first topic)."""
    names = [str(t[0]) for t in top_topics if t and float(t[1]) >= min_share]
    if not names and top_topics:
        names = [str(top_topics[0][0])]
    if not names:
        return []
    out = []
    for b in range(bands):
        seed = ((b + 1) * 0x9E3779B1) & 0xFFFFFFFF
        lowest = min(zlib.crc32(n.encode("utf-8", "surrogatepass"), seed) for n in names)
        out.append(f"{b}-{lowest:08x}")
    return out


def ranked_fingerprints(anchors: Iterable[int], max_template_keys: int,
                        max_fps: int, common: Any = None) -> tuple[list[int], list[int]]:
    """``(repeated, carried)``: fingerprints by count, most first, ties to the
    smaller; 0 is an empty slot; fingerprints ``common(fp)`` says the population
    shares are left out. ``repeated`` are those of the first
    ``max_template_keys`` seen at least twice; ``carried`` the first ``max_fps``."""
    counts = Counter(fp for fp in anchors if fp and not (common and common(fp)))
    ranked = sorted(counts, key=lambda fp: (-counts[fp], fp))
    repeated = [fp for fp in ranked[:max_template_keys] if counts[fp] >= 2]
    return repeated, ranked[:max_fps]


def summary_values(detector: Any, state: Any, ts: float) -> dict[str, Any]:
    """The behaviour a summary carries, from the detector's full feature dict."""
    feats = detector.features(state, ts)
    return {
        "top_topics": tuple((str(n), round(float(s), 4)) for n, s in
                            list(feats.get("top_topics", ()))[:3]),
        "template": float(feats.get("template_repetition", 0.0)),
        "elicitation": float(feats.get("elicitation_share", 0.0)),
        "flatness": float(feats.get("hour_flatness", 0.0)),
        "rate": float(feats.get("rate_per_min", 0.0)),
        "events": int(feats.get("events", 0)),
        "score": round(float(getattr(state, "score", 0.0)), 4),
        "first_ts": float(getattr(state, "first_ts", ts)),
    }


def bloom_bits(hashes: Iterable[int], bits: int, k: int) -> set[int]:
    """Bit positions set by double hashing: ``(h1 + i * h2) % bits``,
    ``h1`` the low 32 bits, ``h2`` the high 32 bits made odd."""
    out = set()
    for h in hashes:
        for i in range(k):
            out.add(((h & 0xFFFFFFFF) + i * ((h >> 32) | 1)) % bits)
    return out


def hll_registers(hashes: Iterable[int], p: int) -> list[int]:
    """Register ``h >> (64 - p)`` keeps the largest rank (position of the
    first 1 bit, from 1) of the remaining ``64 - p`` bits (all zero: ``65 - p``)."""
    reg = [0] * (1 << p)
    for h in hashes:
        idx = h >> (64 - p)
        rest = format(h & ((1 << (64 - p)) - 1), f"0{64 - p}b")
        rank = rest.index("1") + 1 if "1" in rest else 64 - p + 1
        reg[idx] = max(reg[idx], rank)
    return reg


def hll_estimate(reg: Sequence[int]) -> int:
    """Flajolet et al. (2007), with linear counting for small cardinalities."""
    m = len(reg)
    alpha = 0.7213 / (1.0 + 1.079 / m)
    est = alpha * m * m / sum(2.0 ** -r for r in reg)
    zeros = reg.count(0)
    if est <= 2.5 * m and zeros:
        est = m * math.log(m / zeros)
    return int(round(est))


def fingerprint_counts(fps: Iterable[Sequence[int]]) -> Counter[int]:
    return Counter(fp for group in fps for fp in group)


def bottom_k_victim(members: Sequence[tuple[str, int]]) -> tuple[int, str]:
    """``(hash, account)`` a full bottom-k sample gives up first: the largest
    hash, the earliest member (in sample order) carrying it."""
    top = max(h for _, h in members)
    return top, next(a for a, h in members if h == top)


def core(members: Sequence[tuple[str, Any]], t: float, kind: str, min_members: int,
         member_ttl_s: float, shared_fp_share: float) -> list[str]:
    """The accounts of a cluster's coordinated core at ``t``: its active members
    (a summary within ``member_ttl_s``) that carry a fingerprint shared by at
    least ``max(min_members, ceil(shared_fp_share * active))`` of them; for
    ``tmpl:`` keys, every active member. Fewer than ``min_members``: none."""
    active = [(a, m) for a, m in members if m.last_ts >= t - member_ttl_s]
    if kind == "tmpl":
        found = [a for a, _ in active]
    else:
        need = max(min_members, math.ceil(shared_fp_share * len(active)))
        shared = shared_fingerprints([m.fps for _, m in active], need)
        found = [a for a, m in active if shared & set(m.fps)]
    return sorted(found) if len(found) >= min_members else []
