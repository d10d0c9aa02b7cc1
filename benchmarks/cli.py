"""``distillwatch bench`` (registered by ``streams.cli``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def cmd_bench(args: argparse.Namespace) -> int:
    from benchmarks.bench import SECTIONS, Profile, compare, run, table
    from benchmarks.workloads import WORKLOADS

    workloads = [w.strip() for w in args.workload.split(",") if w.strip()]
    unknown_w = [w for w in workloads if w not in WORKLOADS]
    if not workloads or unknown_w:
        print(f"distillwatch bench: unknown workload(s) {unknown_w}; "
              f"choose from {','.join(WORKLOADS)}", file=sys.stderr)
        return 2
    if args.latency_rate is not None and args.latency_rate <= 0:
        print("distillwatch bench: --latency-rate must be > 0", file=sys.stderr)
        return 2
    sections = tuple(args.only.split(",")) if args.only else SECTIONS
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        print(f"distillwatch bench: unknown section(s) {sorted(unknown)}; "
              f"choose from {','.join(SECTIONS)}", file=sys.stderr)
        return 2
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    by_workload: dict[str, Any] = {}
    for workload in workloads:
        profile = Profile.quick(workload) if args.quick else Profile.full(workload)
        if args.seed is not None:
            profile.seed = args.seed
        if args.latency_rate is not None:
            profile.latency_rate = args.latency_rate
        results = run(profile, sections=sections, say=say)
        by_workload[workload] = results
        w = WORKLOADS[workload]
        print(f"\n## workload {workload}: {w.description} "
              f"({profile.accounts:,} benign accounts, {profile.hours:g} h)\n")
        print(table(results))
        load = ", ".join(f"{x:.1f}" for x in results.get("loadavg_start", ()))
        load_end = ", ".join(f"{x:.1f}" for x in results.get("loadavg_end", ()))
        print(f"\n(run took {results['elapsed_s']} s; machine: {results['machine']}; "
              f"load average {load} at the start, {load_end} at the end)")
    if len(by_workload) > 1:
        print("\n## side by side\n")
        print(compare(by_workload))
    if args.json:
        out = by_workload[workloads[0]] if len(workloads) == 1 else {"workloads": by_workload}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``distillwatch bench`` (the command table: streams/cli.py)."""
    p.description = (
        "Start an embedded broker, generate deterministic simulator traffic and "
                    "measure, side by side: raw aiokafka, a no-op Faust agent, the worker "
                    "(single and batched messages), replay, the detectors alone, event→alert "
                    "latency, memory per "
                    "account, and one vs two workers."
    )
    p.add_argument("--quick", action="store_true", help="small sizes, one repeat (< 1 min)")
    p.add_argument("--json", metavar="PATH", help="also write all figures as JSON here")
    p.add_argument("--seed", type=int, default=None, help="simulator seed (default 7)")
    p.add_argument("--workload", default="realistic,classic", metavar="NAMES",
                   help="comma list of workloads, each run in full and printed as its own "
                        "table, then side by side: realistic (production mix, real text, "
                        "big shared-key organisations, 10k accounts), realistic-100k, "
                        "classic (the earlier figures' data), shared-keys "
                        "(default realistic,classic)")
    p.add_argument("--only", metavar="SECTIONS",
                   help="comma list of sections to run (raw,noop,single,batched,replay,"
                        "detectors,latency,memory,scaleout)")
    p.add_argument("--latency-rate", type=float, default=None, metavar="EV_PER_S",
                   help="rate of the latency section (default: half of the single-event "
                        "worker's maximum measured in the same run, or 1,000 without it)")
    p.set_defaults(func=cmd_bench)
