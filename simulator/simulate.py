"""``simulate()``: labelled, deterministic API traffic, and its writers.

>>> sim = simulate(seed=1, hours=1, accounts=20, attacks="extractor:1")
>>> events, labels, kinds = sim
>>> [l["attack"] for l in labels], sorted(set(kinds.values()))[:2]
(['extractor'], ['batch', 'extractor'])
>>> first = next(iter(events)); sorted(first)[:3]
['account_id', 'api_key_id', 'input_tokens']
"""

from __future__ import annotations

import gzip
import hashlib
import io
import random
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO, Any

import orjson

from simulator import attacks as A
from simulator.core import Account, fmt_ts, merge_events
from simulator.population import Timeline, benign_population

DEFAULT_START = "2026-03-02T00:00:00Z"  # a Monday, 00:00 UTC


def parse_start(start: str | float) -> float:
    if isinstance(start, (int, float)):
        return float(start)
    return datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp()


def parse_attacks(
    spec: str | Iterable[str] | dict[str, int] | None, accounts: int
) -> dict[str, int]:
    """``"all"`` / ``None`` (default counts), ``"none"``, or ``"extractor:3,hydra,sweep:0"``.

    A family without a count gets its default count (scaled with ``accounts``;
    for hydra families the count is the number of campaigns).

    >>> parse_attacks("extractor:3,hydra", 1000)
    {'extractor': 3, 'hydra': 2}
    >>> parse_attacks("none", 1000)
    {}
    """
    defaults = A.default_counts(accounts)
    if spec is None or spec == "all":
        return defaults
    if isinstance(spec, dict):
        items = [f"{k}:{v}" for k, v in spec.items()]
    elif isinstance(spec, str):
        items = [x.strip() for x in spec.split(",") if x.strip()]
    else:
        items = list(spec)
    if items == ["none"]:
        return {}
    out: dict[str, int] = {}
    for item in items:
        name, _, count = item.partition(":")
        if name == "all":
            out.update(defaults)
            continue
        if name not in A.FAMILIES:
            raise ValueError(f"unknown attack family {name!r}; known: {', '.join(A.FAMILIES)}")
        n = int(count) if count else defaults[name]
        if n < 0:
            raise ValueError(f"negative count for {name}")
        if n:
            out[name] = n
    return out


class Simulation(tuple):
    """``(events, labels, account_kinds)`` with the full ``truth`` records and
    the ``accounts`` themselves as attributes."""

    events: Iterable[dict[str, Any]]
    labels: list[dict[str, Any]]
    account_kinds: dict[str, str]
    truth: list[dict[str, Any]]
    accounts: list[Account]
    timeline: Timeline

    def __new__(cls, events, labels, kinds, truth, accounts, timeline):  # type: ignore[no-untyped-def]
        obj = super().__new__(cls, (events, labels, kinds))
        obj.events, obj.labels, obj.account_kinds = events, labels, kinds
        obj.truth, obj.accounts, obj.timeline = truth, accounts, timeline
        return obj


class _Events:
    """Re-iterable event stream (each iteration regenerates identically)."""

    def __init__(self, accounts: list[Account], seed: int, drop_topic: float = 0.0) -> None:
        self.accounts, self.seed, self.drop_topic = accounts, seed, drop_topic

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for a in self.accounts:
            a.sweep_queue, a.counter = [], 0
        return merge_events(self.accounts, self.seed, self.drop_topic)

    def __len__(self) -> int:
        return sum(len(a.times) for a in self.accounts)


def simulate(
    seed: int = 0,
    hours: float = 24.0,
    accounts: int = 1000,
    attacks: str | Iterable[str] | dict[str, int] | None = None,
    start: str | float = DEFAULT_START,
    params: A.Params | None = None,
    drop_topic: float = 0.0,
) -> Simulation:
    """Simulate ``hours`` of traffic of ``accounts`` benign accounts plus attacks.

    Returns ``(events, labels, account_kinds)``: a re-iterable of event dicts in
    event-time order (the product's event schema, ``ts`` as RFC 3339), one
    label per attacking account (``account_id, attack, start, end`` and
    ``campaign`` for hydra members), and every account's kind (benign kind or
    attack family). Attack accounts come on top of ``accounts``.
    ``drop_topic`` omits ``topic`` from that share of events (text-only producers).
    """
    if not 0.0 <= drop_topic <= 1.0:
        raise ValueError("drop_topic must be in [0, 1]")
    if hours <= 0:
        raise ValueError("hours must be > 0")
    if accounts < 0:
        raise ValueError("accounts must be >= 0")
    p = params or A.Params()
    tl = Timeline(parse_start(start), hours)
    counts = parse_attacks(attacks, accounts)

    def new_id(rng: random.Random) -> str:
        return f"acct_{hexid16(rng)}"

    benign = benign_population(seed, accounts, tl, new_id)
    attackers: list[Account] = []
    campaigns: dict[str, str] = {}
    for family in A.FAMILIES:
        n = counts.get(family, 0)
        if not n:
            continue
        rng = random.Random(f"{seed}/attack/{family}")
        if family in A.CAMPAIGN_FAMILIES:
            for c in range(n):
                campaign = f"{family}-{c + 1}"
                ids = [new_id(rng) for _ in range(A.hydra_size(accounts))]
                for m in A.build_hydra(rng, ids, tl, p, family, campaign):
                    campaigns[m.account_id] = campaign
                    attackers.append(m)
        else:
            build = A.SINGLE_BUILDERS[family]
            for _ in range(n):
                acct = A._attacker(rng, new_id(rng), family)
                attackers.append(build(rng, acct, tl, p))
    everyone = benign + attackers
    # opaque, deterministic order: by account id
    everyone.sort(key=lambda a: a.account_id)
    labels: list[dict[str, Any]] = []
    truth: list[dict[str, Any]] = []
    for a in everyone:
        rec: dict[str, Any] = {
            "account_id": a.account_id,
            "kind": a.kind,
            "benign": a.kind not in A.FAMILIES,
            "org_id": a.org_id,
        }
        if a.kind in A.FAMILIES:
            window = a.attack_window()
            if window is None:  # no attack traffic fell inside the run
                rec["benign"] = False
                truth.append(rec)
                continue
            label: dict[str, Any] = {
                "account_id": a.account_id,
                "attack": a.kind,
                "start": fmt_ts(window[0]),
                "end": fmt_ts(window[1]),
            }
            if a.account_id in campaigns:
                label["campaign"] = campaigns[a.account_id]
                rec["campaign"] = campaigns[a.account_id]
            if hasattr(a, "pivot_ts"):
                label["pivot"] = fmt_ts(a.pivot_ts)
            labels.append(label)
        truth.append(rec)
    labels.sort(key=lambda r: (r["attack"], r.get("campaign", ""), r["start"], r["account_id"]))
    kinds = {a.account_id: a.kind for a in everyone}
    return Simulation(_Events(everyone, seed, drop_topic), labels, kinds, truth, everyone, tl)


def hexid16(rng: random.Random) -> str:
    return hashlib.blake2b(rng.getrandbits(64).to_bytes(8, "big"), digest_size=6).hexdigest()


# ------------------------------------------------------------------ writers ---


def open_out(path: str) -> IO[bytes]:
    """Binary output; ``.gz`` paths are gzipped reproducibly (no name, mtime 0)."""
    raw = open(path, "wb")  # noqa: SIM115
    if path.endswith(".gz"):
        return gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)  # type: ignore[return-value]
    return raw


def write_events(events: Iterable[dict[str, Any]], out: IO[bytes], batch: int | None = None) -> int:
    """One JSON object per line, or JSON arrays of ``batch`` events per line."""
    n = 0
    buf = io.BytesIO()
    if batch and batch > 1:
        chunk: list[dict[str, Any]] = []
        for ev in events:
            chunk.append(ev)
            if len(chunk) == batch:
                buf.write(orjson.dumps(chunk) + b"\n")
                n += len(chunk)
                chunk = []
                if buf.tell() > 1 << 20:
                    out.write(buf.getvalue())
                    buf = io.BytesIO()
        if chunk:
            buf.write(orjson.dumps(chunk) + b"\n")
            n += len(chunk)
    else:
        for ev in events:
            buf.write(orjson.dumps(ev))
            buf.write(b"\n")
            n += 1
            if n % 4096 == 0:
                out.write(buf.getvalue())
                buf = io.BytesIO()
    out.write(buf.getvalue())
    return n


def write_jsonl(records: Iterable[dict[str, Any]], path: str) -> None:
    with open(path, "wb") as f:
        for r in records:
            f.write(orjson.dumps(r) + b"\n")


def read_jsonl(path: str) -> list[dict[str, Any]]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:  # type: ignore[operator]
        return [orjson.loads(line) for line in f if line.strip()]


def truth_path_for(labels_path: str) -> str:
    """Default path of the per-account truth file next to the labels."""
    stem = labels_path[:-6] if labels_path.endswith(".jsonl") else labels_path
    return stem + ".accounts.jsonl"
