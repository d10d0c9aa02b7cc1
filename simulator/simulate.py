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
from simulator import evasions as E
from simulator.core import Account, fmt_ts, merge_events
from simulator.gateway import attack_gateway
from simulator.population import Timeline, benign_population
from simulator.warmup import add_warmup
from simulator.workloads import production_population

DEFAULT_START = "2026-03-02T00:00:00Z"  # a Monday, 00:00 UTC


def parse_start(start: str | float) -> float:
    if isinstance(start, (int, float)):
        return float(start)
    return datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp()


def parse_attacks(
    spec: str | Iterable[str] | dict[str, int] | None, accounts: int, mix: str = "classic"
) -> dict[str, int]:
    """``"all"`` / ``None`` (default counts), ``"none"``, or ``"extractor:3,hydra,sweep:0"``.

    A family without a count gets its default count (scaled with ``accounts``;
    for hydra families the count is the number of campaigns).

    >>> parse_attacks("extractor:3,hydra", 1000)
    {'extractor': 3, 'hydra': 2}
    >>> parse_attacks("none", 1000)
    {}
    """
    defaults = A.default_counts(accounts, mix)
    all_defaults = A.default_counts(accounts, "production")
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
        n = int(count) if count else all_defaults[name]
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

    def __init__(
        self,
        accounts: list[Account],
        seed: int,
        drop_topic: float = 0.0,
        drop_fields: tuple[str, ...] = (),
    ) -> None:
        self.accounts, self.seed, self.drop_topic = accounts, seed, drop_topic
        self.drop_fields = drop_fields

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if any(a.warm for a in self.accounts):
            self._reset()
            yield from merge_events(self.accounts, self.seed, self.drop_topic,
                                    self.drop_fields, warm=True)
        # the run itself renders as without a warm-up (same bytes)
        self._reset()
        yield from merge_events(self.accounts, self.seed, self.drop_topic, self.drop_fields)

    def _reset(self) -> None:
        for a in self.accounts:
            a.sweep_queue, a.counter, a.queue = [], 0, []
            a.recent.clear()

    def __len__(self) -> int:
        return sum(len(a.times) + len(a.warm) for a in self.accounts)


def simulate(
    seed: int = 0,
    hours: float = 24.0,
    accounts: int = 1000,
    attacks: str | Iterable[str] | dict[str, int] | None = None,
    start: str | float = DEFAULT_START,
    params: A.Params | None = None,
    drop_topic: float = 0.0,
    *,
    mix: str = "classic",
    text: str = "synthetic",
    drop_fields: Iterable[str] | str = (),
    evasion_params: E.EvasionParams | None = None,
    warmup_hours: float = 0.0,
) -> Simulation:
    """Simulate ``hours`` of traffic of ``accounts`` benign accounts plus attacks.

    Returns ``(events, labels, account_kinds)``: a re-iterable of event dicts in
    event-time order (the product's event schema, ``ts`` as RFC 3339), one
    label per attacking account (``account_id, attack, start, end`` and
    ``campaign`` for hydra members), and every account's kind (benign kind or
    attack family). Attack accounts come on top of ``accounts``.
    ``drop_topic`` omits ``topic`` from that share of events (text-only producers).

    ``mix``: ``classic`` (the issue-3 population and families; the default of
    this function, which other modules' tests rely on) or ``production`` (adds
    the production workloads of :mod:`simulator.workloads`, the evasions of
    :mod:`simulator.evasions` and gateway fields on every event). ``text``:
    ``synthetic`` (template generators) or ``real`` (corpus text).
    ``drop_fields`` removes fields from every event (``"prompt,topic"``: a
    metadata-only gateway).
    ``warmup_hours``: that much ordinary traffic, before ``start``, of every
    account active since before the run (:mod:`simulator.warmup`: the history
    an always-on detector has); labels and the run's own events are unchanged.
    """
    drops = _checked(mix, text, drop_fields, drop_topic, hours, accounts)
    p = params or A.Params()
    ep = evasion_params or E.EvasionParams()
    tl = Timeline(parse_start(start), hours)
    counts = parse_attacks(attacks, accounts, mix)
    if mix == "production":
        benign = production_population(seed, accounts, tl, _new_account_id, text)
    else:
        benign = benign_population(seed, accounts, tl, _new_account_id)
        for a in benign:
            a.text = text
    attackers, campaigns = _attackers(seed, counts, accounts, tl, p, ep, text)
    if mix == "production":
        for a in attackers:
            if a.gateway is None:
                a.gateway = attack_gateway(random.Random(f"{seed}/gateway/{a.account_id}"))
    everyone = benign + attackers
    # opaque, deterministic order: by account id
    everyone.sort(key=lambda a: a.account_id)
    labels, truth = _labels_and_truth(everyone, campaigns, mix, text)
    kinds = {a.account_id: a.kind for a in everyone}
    add_warmup(everyone, tl.t0, warmup_hours, seed)
    return Simulation(
        _Events(everyone, seed, drop_topic, drops), labels, kinds, truth, everyone, tl
    )


def _checked(mix: str, text: str, drop_fields: Iterable[str] | str, drop_topic: float,
             hours: float, accounts: int) -> tuple[str, ...]:
    """Refuse bad arguments of :func:`simulate`; the fields to drop."""
    if mix not in MIXES:
        raise ValueError(f"mix must be one of {', '.join(MIXES)}")
    if text not in TEXT_MODES:
        raise ValueError(f"text must be one of {', '.join(TEXT_MODES)}")
    drops = parse_drop_fields(drop_fields)
    if not 0.0 <= drop_topic <= 1.0:
        raise ValueError("drop_topic must be in [0, 1]")
    if hours <= 0:
        raise ValueError("hours must be > 0")
    if accounts < 0:
        raise ValueError("accounts must be >= 0")
    return drops


def _new_account_id(rng: random.Random) -> str:
    return f"acct_{hexid16(rng)}"


def _attackers(seed: int, counts: dict[str, int], accounts: int, tl: Timeline, p: A.Params,
               ep: E.EvasionParams, text: str) -> tuple[list[Account], dict[str, str]]:
    """The attacking accounts of every family (each family from its own seeded
    generator) and the campaign of each hydra member."""
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
                ids = [_new_account_id(rng) for _ in range(A.hydra_size(accounts))]
                if family == "hydra_proxy":
                    members = E.build_hydra_proxy(rng, ids, tl, ep, campaign)
                else:
                    members = A.build_hydra(rng, ids, tl, p, family, campaign)
                for m in members:
                    m.text = text
                    campaigns[m.account_id] = campaign
                    attackers.append(m)
        elif family in E.SINGLE_BUILDERS:
            for _ in range(n):
                acct = A._attacker(rng, _new_account_id(rng), family)
                acct.text = text
                attackers.append(E.SINGLE_BUILDERS[family](rng, acct, tl, ep))
        else:
            build = A.SINGLE_BUILDERS[family]
            for _ in range(n):
                acct = A._attacker(rng, _new_account_id(rng), family)
                acct.text = text
                attackers.append(build(rng, acct, tl, p))
    return attackers, campaigns


def _labels_and_truth(everyone: list[Account], campaigns: dict[str, str], mix: str,
                      text: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One label per attacking account with traffic in the run (sorted), and
    every account's truth record, in the order of ``everyone``."""
    labels: list[dict[str, Any]] = []
    truth: list[dict[str, Any]] = []
    for a in everyone:
        rec: dict[str, Any] = {
            "account_id": a.account_id,
            "kind": a.kind,
            "benign": a.kind not in A.FAMILIES,
            "org_id": a.org_id,
        }
        if mix == "production":
            rec["langs"] = list(a.langs)
            if "ar" in a.langs:
                rec["text_source"] = "synthetic" if text == "real" else text
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
    return labels, truth


MIXES: tuple[str, ...] = ("classic", "production")
TEXT_MODES: tuple[str, ...] = ("synthetic", "real")
DROPPABLE: tuple[str, ...] = (
    "request_id", "model", "topic", "prompt", "input_tokens", "output_tokens", "org_id",
    "api_key_id", "ip", "user_agent", "payment_fingerprint", "max_tokens", "stop_reason",
    "thinking", "system_prompt_fingerprint",
)


def parse_drop_fields(spec: Iterable[str] | str | None) -> tuple[str, ...]:
    """``"prompt,topic"`` -> ``("prompt", "topic")``; ``ts`` and ``account_id``
    cannot be dropped (every event needs them).

    >>> parse_drop_fields("prompt, topic")
    ('prompt', 'topic')
    """
    if not spec:
        return ()
    items = [x.strip() for x in spec.split(",")] if isinstance(spec, str) else list(spec)
    out = []
    for name in items:
        if not name:
            continue
        if name not in DROPPABLE:
            raise ValueError(
                f"cannot drop field {name!r}; droppable: {', '.join(DROPPABLE)}"
            )
        if name not in out:
            out.append(name)
    return tuple(out)


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
