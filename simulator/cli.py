"""``distillwatch simulate`` and ``distillwatch evaluate``.

``simulate_arguments(parser)`` and ``evaluate_arguments(parser)`` add each
subcommand's arguments (each sets ``func``, which takes the parsed namespace and
returns an exit code; streams/cli.py's command table names them); ``main()`` runs them
standalone: ``python -m simulator.cli simulate --out events.jsonl.gz ...``.
"""

from __future__ import annotations

import argparse
import sys
import time

from simulator.attacks import FAMILIES

# Preset sizes of ``evaluate --scenario``: (hours, benign accounts).
SCENARIOS: dict[str, tuple[float, int]] = {"day": (24.0, 1200), "small": (6.0, 600)}


def _simulate(args: argparse.Namespace) -> int:
    from simulator.simulate import open_out, simulate, truth_path_for, write_events, write_jsonl

    t = time.perf_counter()
    sim = simulate(
        seed=args.seed,
        hours=args.hours,
        accounts=args.accounts,
        attacks=args.attacks,
        start=args.start,
        drop_topic=args.drop_topic,
        mix=args.mix,
        text=args.text,
        drop_fields=args.drop_fields,
    )
    with open_out(args.out) as out:
        n = write_events(sim.events, out, batch=args.batch)
    write_jsonl(sim.labels, args.labels)
    truth = args.truth or truth_path_for(args.labels)
    write_jsonl(sim.truth, truth)
    dt = time.perf_counter() - t
    attackers = sum(1 for r in sim.truth if not r["benign"])
    print(
        f"wrote {n} events of {len(sim.truth)} accounts ({attackers} attacking) to {args.out} "
        f"in {dt:.1f}s; labels {args.labels} ({len(sim.labels)}), account kinds {truth}",
        file=sys.stderr,
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from simulator.evaluate import BaselineConfig, evaluate, evaluate_seeds

    baselines = BaselineConfig(
        volume_threshold=args.volume_threshold,
        keyword_min_hits=args.keyword_min_hits,
        card_min_accounts=args.card_min_accounts,
    )
    if args.scenario:
        args.hours, args.accounts = SCENARIOS[args.scenario]
    if args.list_flagged:
        from simulator.evaluate import parse_seeds
        from simulator.flagged import check_seeds

        try:
            check_seeds([args.seed] if args.seeds is None else parse_seeds(args.seeds))
        except ValueError as exc:
            print(f"distillwatch evaluate: {exc}", file=sys.stderr)
            return 2
    t = time.perf_counter()
    if args.seeds is None:
        evaluate(
            hours=args.hours,
            seed=args.seed,
            accounts=args.accounts,
            attacks=args.attacks,
            config_path=args.config,
            json_path=args.json,
            partitions=args.partitions,
            drop_topic=args.drop_topic,
            out=sys.stdout,
            baselines=baselines,
            mix=args.mix,
            text=args.text,
            drop_fields=args.drop_fields,
            list_flagged=args.list_flagged,
            warmup_hours=args.warmup_hours,
        )
    else:
        evaluate_seeds(
            args.seeds,
            hours=args.hours,
            accounts=args.accounts,
            attacks=args.attacks,
            config_path=args.config,
            json_path=args.json,
            partitions=args.partitions,
            out=sys.stdout,
            baselines=baselines,
            mix=args.mix,
            text=args.text,
            drop_fields=args.drop_fields,
            list_flagged=args.list_flagged,
            warmup_hours=args.warmup_hours,
        )
    print(f"evaluate took {time.perf_counter() - t:.1f}s", file=sys.stderr)
    return 0


def _common(p: argparse.ArgumentParser, hours: float, accounts: int) -> None:
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    p.add_argument(
        "--mix",
        choices=("production", "classic"),
        default="production",
        help="production (default): every benign workload, every evasion and the gateway "
        "fields; classic: the issue-3 population and families only",
    )
    p.add_argument(
        "--text",
        choices=("real", "synthetic"),
        default="real",
        help="real (default): prompt text from the committed public corpora "
        "(simulator/corpora); synthetic: the template generators",
    )
    p.add_argument(
        "--drop-fields",
        default="",
        metavar="F1,F2",
        help="remove these fields from every event, e.g. 'prompt,topic' for a "
        "metadata-only gateway",
    )
    p.add_argument(
        "--drop-topic",
        type=float,
        default=0.0,
        metavar="P",
        help="share of events sent without 'topic' (text-only producers; default 0)",
    )
    p.add_argument(
        "--hours", type=float, default=hours, help=f"simulated hours (default {hours:g})"
    )
    p.add_argument(
        "--accounts",
        type=int,
        default=accounts,
        help=f"benign accounts; attack accounts come on top (default {accounts})",
    )
    p.add_argument(
        "--attacks",
        default="all",
        help="comma list of families with optional counts, e.g. 'extractor:3,hydra:1'; "
        f"'all' (default: every family of the mix) or 'none'. Families: {', '.join(FAMILIES)}",
    )


def simulate_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``distillwatch simulate`` (the command table: streams/cli.py)."""
    p.description = "Simulate labelled API traffic (benign population + attacks)."
    _common(p, 24.0, 1000)
    p.add_argument("--out", required=True, help="events file (.jsonl or .jsonl.gz)")
    p.add_argument("--labels", required=True, help="labels JSONL: one line per attacking account")
    p.add_argument(
        "--truth",
        default=None,
        help="every account's kind, JSONL (default: <labels>.accounts.jsonl)",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        help="write JSON arrays of N events per line (the batched-message form)",
    )
    p.add_argument("--start", default="2026-03-02T00:00:00Z", help="RFC 3339 start of the run")
    p.set_defaults(func=_simulate)


def evaluate_arguments(e: argparse.ArgumentParser) -> None:
    """The arguments of ``distillwatch evaluate`` (the command table: streams/cli.py)."""
    e.description = (
        "Simulate, replay through distillwatch and the baselines an operator "
        "would write first (a learned volume threshold, a keyword rule, a shared-card rule), "
        "print one side-by-side table; with --seeds, over several seeds."
    )
    _common(e, 24.0, 1200)
    e.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        default=None,
        help="preset size: day = 24 h, 1,200 benign accounts (the reported numbers); "
        "small = 6 h, 600 accounts (every family and kind; the CI's held-out check). "
        "Overrides --hours and --accounts",
    )
    e.add_argument(
        "--seeds",
        default=None,
        metavar="SPEC",
        help="run several seeds and summarise (mean and worst recall per family, FP per "
        "benign kind): '0-4', '10-14', '0,2,5-6'. Convention: tune on 0-2, report 10-14",
    )
    e.add_argument(
        "--volume-threshold",
        type=float,
        default=None,
        help="volume baseline: requests per trailing hour (default: learned, the population's "
        "99th percentile of hourly counts over the first 10%% of the run, at most 2 h)",
    )
    e.add_argument(
        "--keyword-min-hits",
        type=int,
        default=20,
        help="keyword baseline: reasoning-request prompts per trailing hour (default 20)",
    )
    e.add_argument(
        "--card-min-accounts",
        type=int,
        default=5,
        help="shared-card baseline: accounts on one payment fingerprint (default 5)",
    )
    e.add_argument(
        "--list-flagged",
        default=None,
        metavar="WHICH",
        help="after each seed, list distillwatch's flagged accounts with kind, stage "
        "(account/cluster/campaign), reasons, evidence and first alert time: 'benign', "
        "'all' or a comma list of kinds/families. A tuning aid: refused on the held-out "
        "seeds 10-14",
    )
    e.add_argument(
        "--warmup-hours",
        type=float,
        default=0.0,
        metavar="H",
        help="replay H hours of the established accounts' own ordinary traffic before the "
        "run (the history an always-on detector has; default 0: every account starts the "
        "run without history). The run's events are unchanged; pages in the warm-up count",
    )
    e.add_argument("--config", default=None, help="detector config TOML")
    e.add_argument("--json", default=None, help="also write the metrics as JSON here")
    e.add_argument("--partitions", type=int, default=8, help="replay partitions (default 8)")
    e.set_defaults(func=_evaluate)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    simulate_arguments(commands.add_parser("simulate"))
    evaluate_arguments(commands.add_parser("evaluate"))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
