"""Bench workloads that our detector did not shape.

``shared_keys``: the simulator's population (diurnal accounts with real-text
prompts, hard negatives, hydra campaigns) where a large part of the benign
accounts belong to a few big organisations that share one card, one office
/24, one org id and one client: the linkage structure real traffic has
(companies, shared offices, resellers) and the one that made the cluster
stage's cost per event grow with the number of accounts sharing a key
(issue 19).

    .venv/bin/python -m benchmarks.workloads ACCOUNTS HOURS OUT.jsonl.gz
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from detectors.schema import Event, parse_event

#: sizes of the big organisations, as shares of the benign accounts
BIG_ORG_SHARES: tuple[float, ...] = (0.25, 0.12, 0.05)


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
    rng = random.Random(f"{seed}/big-orgs")
    benign = sorted(r["account_id"] for r in sim.truth if r["benign"])
    rng.shuffle(benign)
    org_of: dict[str, tuple[str, str, str, str]] = {}
    at = 0
    for i, share in enumerate(org_shares):
        size = int(len(benign) * share)
        org = (
            f"org_big{i}_{seed}",
            f"pm_big{i}_{seed:04d}",
            f"10.{40 + i}.{seed % 250}",
            "python-httpx/0.27.0",
        )
        for acct in benign[at : at + size]:
            org_of[acct] = org
        at += size
    for ev in sim.events:
        org = org_of.get(ev["account_id"])
        if org is not None:
            ev = dict(ev)
            ev["org_id"], ev["payment_fingerprint"], prefix, ev["user_agent"] = org
            host = ev.get("ip", "0.0.0.1").rsplit(".", 1)[-1]
            ev["ip"] = f"{prefix}.{host if host.isdigit() else 1}"
        yield ev


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

    n, hrs, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    with gzip.open(out, "wb", compresslevel=3) as fh:
        for d in shared_keys_dicts(accounts=n, hours=hrs):
            fh.write(orjson.dumps(d) + b"\n")
