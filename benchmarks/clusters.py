"""Memory and throughput of the cluster stage at scale.

100,000 accounts (``--accounts``), each sending summaries with six linkage
keys; 20,000 of them (``--hydra``) form one proxy-reseller campaign sharing a
few cards, a handful of /24 ranges, one client and a template; the rest are
benign: mostly their own card, range and org, a dozen common clients. Every
account sends ``--rounds`` summaries (one per 5 minutes of event time).

    python -m benchmarks.clusters [--accounts 100000] [--hydra 20000] [--rounds 3]

Prints resident memory of the stage (tracemalloc), entries held, the largest
cluster's sample size and HyperLogLog estimate, and summaries/s.
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc

from detectors.cluster import AccountSummary, ClusterDetector, ClusterStage, topic_signature

T0 = 1_771_840_800.0
UAS = [f"lumen-python/1.{i}.0" for i in range(12)]
TOPICS = [f"cat{i}/topic{j}" for i in range(12) for j in range(8)]


def summaries(accounts: int, hydra: int, rounds: int, seed: int = 0) -> list[AccountSummary]:
    rng = random.Random(seed)
    out = []
    tpl = 0x1234ABCD
    for r in range(rounds):
        for i in range(accounts):
            ts = T0 + r * 300 + (i / accounts) * 299
            acct = f"acct-{i:06d}"
            if i < hydra:
                top = (("coding/rust", 0.9),)
                keys = (f"pay:pm_h{i % 5}", f"ip:203.0.{i % 8}.0/24", "ua:python-httpx/0.27.0",
                        f"org:org_h{i}", f"tmpl:{tpl:08x}",
                        *(f"lsh:{s}" for s in topic_signature(top, 1)))
                s = AccountSummary(acct, ts, T0 + 3600 + rng.uniform(0, 300), keys, top,
                                   (tpl, rng.getrandbits(32)), 0.8, 0.5, 0.4, 0.3, 0.5, 30)
            else:
                topic = rng.choice(TOPICS)
                top = ((topic, 0.5),)
                org = i // 10 if i % 3 == 0 else i  # a third of accounts in 10-account orgs
                keys = (f"pay:pm_{org}", f"ip:10.{org % 250}.{org // 250 % 250}.0/24",
                        f"org:org_{org}", f"ua:{rng.choice(UAS)}",
                        *(f"lsh:{s}" for s in topic_signature(top, 1)))
                s = AccountSummary(acct, ts, T0, keys, top,
                                   tuple(rng.getrandbits(32) for _ in range(8)),
                                   0.05, 0.01, 0.4, 0.1, 0.05, 30)
            out.append(s)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--hydra", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=8)
    args = ap.parse_args(argv)
    stream = summaries(args.accounts, args.hydra, args.rounds)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    stage = ClusterStage(ClusterDetector, args.partitions)
    started = time.perf_counter()
    alerts = 0
    members = 0
    for s in stream:
        for a in stage.process(s):
            alerts += 1
            members += a.detector == "cluster_member"
    elapsed = time.perf_counter() - started
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    clusters = sum(d.sizes()[0] for d in stage.detectors)
    singles = sum(d.sizes()[1] for d in stage.detectors)
    biggest = max(
        (c for d in stage.detectors for c in d._clusters.values()), key=lambda c: c.count()
    )
    print(f"{len(stream):,} summaries ({args.accounts:,} accounts, {args.rounds} rounds, "
          f"{args.hydra:,}-account campaign) in {elapsed:.1f}s = "
          f"{len(stream) / elapsed:,.0f} summaries/s (tracemalloc on)")
    print(f"memory: {(current - base) / 2**20:.1f} MiB held, peak {(peak - base) / 2**20:.1f} MiB")
    print(f"entries: {clusters:,} clusters, {singles:,} single-account keys")
    print(f"largest: {biggest.key} sample {len(biggest.members)} members, "
          f"HyperLogLog {biggest.count():,}")
    print(f"alerts: {alerts:,} ({members:,} cluster_member)")


if __name__ == "__main__":
    main()
