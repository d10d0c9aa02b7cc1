"""Bench workloads, including ones our detector did not shape (issue 19).

``classic``
    The simulator's classic population (issue 3): 0.5 h of 1,000 benign
    accounts plus every attack family; the workload of the earlier figures.
``realistic``
    The simulator's production mix (``mix="production"``, ``text="real"``:
    real-corpus prompts, organisations running one product, resellers, RAG
    wrappers, LLM judges, metadata-only gateways, evasive campaigns) at
    10,000 benign accounts, where besides the simulator's own organisations
    (3..30 accounts) three big ones hold 4%, 2% and 1% of the benign accounts
    (400, 200 and 100 at 10k) and share one card, one office /24, one org id
    and one client: the linkage structure of companies, shared offices and
    resellers, which made the cluster stage's cost per event grow with the
    number of accounts sharing a key.
``realistic-100k``
    The same at 100,000 benign accounts (big organisations of 4,000, 2,000
    and 1,000), over a shorter window: generating it takes minutes.
``shared-keys``
    The classic population over a day with the big organisations (25%, 12%
    and 5% of the benign accounts): the workload issue 19's profile came from.

    .venv/bin/python -m benchmarks.workloads WORKLOAD ACCOUNTS HOURS OUT.jsonl.gz
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from detectors.schema import Event, parse_event

#: sizes of the big organisations, as shares of the benign accounts
BIG_ORG_SHARES: tuple[float, ...] = (0.25, 0.12, 0.05)
REALISTIC_ORG_SHARES: tuple[float, ...] = (0.04, 0.02, 0.01)


@dataclass(frozen=True)
class Workload:
    """A named bench workload and its sizes (full run, ``--quick`` run)."""

    name: str
    accounts: int
    hours: float
    quick_accounts: int
    quick_hours: float
    description: str


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("realistic", 10_000, 0.5, 1_000, 0.25,
                 "production mix, real text, big shared-key organisations"),
        Workload("realistic-100k", 100_000, 0.05, 10_000, 0.05,
                 "production mix, real text, big shared-key organisations"),
        Workload("classic", 1_000, 0.5, 200, 0.25, "classic population, synthetic text"),
        Workload("shared-keys", 1_200, 24.0, 300, 2.0,
                 "classic population, big shared-key organisations, one day"),
    )
}


def big_orgs(events: Iterable[dict[str, Any]], benign: Sequence[str], seed: int,
             org_shares: Sequence[float]) -> Iterator[dict[str, Any]]:
    """``events`` with a share of the ``benign`` accounts moved into big
    organisations: one card, one /24 (each account keeps its host part), one
    org id and one client per organisation."""
    rng = random.Random(f"{seed}/big-orgs")
    accounts = sorted(benign)
    rng.shuffle(accounts)
    org_of: dict[str, tuple[str, str, str, str]] = {}
    at = 0
    for i, share in enumerate(org_shares):
        size = int(len(accounts) * share)
        org: tuple[str, str, str, str] = (
            f"org_big{i}_{seed}",
            f"pm_big{i}_{seed:04d}",
            f"10.{40 + i}.{seed % 250}",
            "python-httpx/0.27.0",
        )
        for acct in accounts[at : at + size]:
            org_of[acct] = org
        at += size
    for ev in events:
        found = org_of.get(ev["account_id"])
        if found is not None:
            ev = dict(ev)
            ev["org_id"], ev["payment_fingerprint"], prefix, ev["user_agent"] = found
            host = str(ev.get("ip") or "0.0.0.1").rsplit(".", 1)[-1]
            ev["ip"] = f"{prefix}.{host if host.isdigit() else 1}"
        yield ev


def workload_dicts(name: str, seed: int, accounts: int, hours: float,
                   attacks: str | None = "all") -> Iterator[dict[str, Any]]:
    """The events (dicts, in time order) of workload ``name`` at these sizes."""
    from simulator.simulate import simulate

    if name not in WORKLOADS:
        raise ValueError(f"unknown workload {name!r}; known: {', '.join(WORKLOADS)}")
    if name == "classic":
        yield from simulate(seed=seed, hours=hours, accounts=accounts, attacks=attacks).events
        return
    if name == "shared-keys":
        yield from shared_keys_dicts(seed, accounts, hours)
        return
    sim = simulate(seed=seed, hours=hours, accounts=accounts, attacks=attacks,
                   mix="production", text="real")
    benign = [r["account_id"] for r in sim.truth if r["benign"]]
    yield from big_orgs(sim.events, benign, seed, REALISTIC_ORG_SHARES)


def shared_keys_dicts(
    seed: int = 0,
    accounts: int = 1200,
    hours: float = 6.0,
    org_shares: Sequence[float] = BIG_ORG_SHARES,
    attacks: str = "hydra:2",
) -> Iterator[dict[str, Any]]:
    """Simulator events (dicts, in time order) with big shared-key organisations."""
    from simulator.simulate import simulate

    sim = simulate(seed=seed, hours=hours, accounts=accounts, attacks=attacks)
    benign = [r["account_id"] for r in sim.truth if r["benign"]]
    yield from big_orgs(sim.events, benign, seed, org_shares)


def shared_keys_events(
    seed: int = 0,
    accounts: int = 1200,
    hours: float = 6.0,
    org_shares: Sequence[float] = BIG_ORG_SHARES,
) -> list[Event]:
    """:func:`shared_keys_dicts` parsed into events."""
    return [parse_event(d) for d in shared_keys_dicts(seed, accounts, hours, org_shares)]


if __name__ == "__main__":
    import gzip

    import orjson

    which, n, hrs, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    with gzip.open(out, "wb", compresslevel=3) as fh:
        for d in workload_dicts(which, 0, n, hrs):
            fh.write(orjson.dumps(d) + b"\n")
