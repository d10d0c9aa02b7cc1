"""``distillwatch replay``: historic logs through the live detection path."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from streams.errors import ConfigError
from streams.settings import Settings


def load_config(path: str | None) -> dict[str, Any]:
    return Settings.load({"detector_config": path}, env={}).detector_mapping() if path else {}


def load_labels(path: str) -> list[dict[str, Any]]:
    """Attack labels: JSONL ``{"account_id", "attack", "start", "end"}``."""
    from detectors.errors import InvalidEvent
    from detectors.schema import parse_ts

    labels = []
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
                label = dict(obj)
                label["start"] = parse_ts(obj["start"])
                label["end"] = parse_ts(obj["end"])
                if not isinstance(obj["account_id"], str) or not isinstance(obj["attack"], str):
                    raise KeyError("account_id/attack")
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, InvalidEvent) as exc:
                raise ConfigError(f"{path}:{lineno}: not a label line ({exc})") from None
            labels.append(label)
    return labels


def write_jsonl(path: str, records: list[dict[str, Any]]) -> None:
    with open(path, "wb") as fh:
        for record in records:
            fh.write(orjson.dumps(record))
            fh.write(b"\n")


def cmd_replay(args: argparse.Namespace) -> int:
    from streams.replay.replayer import replay_files

    if args.sweep:
        from streams.replay.sweep import run_sweep

        return run_sweep(args)
    config = load_config(args.config)
    settings = Settings.load(env={})
    if args.jobs < 0:
        raise ConfigError(f"--jobs must be >= 0, got {args.jobs}")
    jobs = args.jobs or min(os.cpu_count() or 1, args.partitions)
    watchlist = None
    if args.watchlist:
        from streams.response.indicators import load_watchlist_file, watchlist_for

        watchlist = watchlist_for(Settings.load())  # the community key from the environment
        usable = watchlist.load(load_watchlist_file(args.watchlist))
        sys.stderr.write(f"watchlist: {usable} usable shared indicators from {args.watchlist}\n")
    result = replay_files(
        args.files, config, partitions=args.partitions, lateness_s=args.lateness,
        sweep_interval_s=settings.sweep_interval_s,
        show_progress=None if args.progress is None else args.progress,
        jobs=jobs, watchlist=watchlist,
    )
    records = [a.to_record() for a in result.alerts]
    write_jsonl(args.alerts_out, records)
    if args.actions_out:
        from streams.service.detection import response_policy

        policy = response_policy(config)  # the same pure mapping the worker applies
        write_jsonl(args.actions_out, [x for r in records for x in policy.propose(r)])
    st = result.stats
    firing = sum(1 for a in result.alerts if a.status == "firing")
    out = sys.stdout
    out.write(
        f"replayed {st.events:,} events from {len(args.files)} file(s) in "
        f"{result.elapsed_s:.1f}s ({result.events_per_s:,.0f} events/s); "
        f"{firing} firing / {len(result.alerts) - firing} resolved alerts -> {args.alerts_out}\n"
    )
    if st.events:
        prompt_share = st.with_prompt / st.events
        topic_share = st.with_topic / st.events
        out.write(f"content: prompt on {prompt_share:.1%} of events, topic on {topic_share:.1%}"
                  + (" (no content: most families cannot fire; see docs/privacy.md)"
                     if not st.with_prompt and not st.with_topic else "") + "\n")
    procs = jobs if result.replayer is None else 1  # (a watchlist replays in one process)
    if result.stages is not None and st.events:
        out.write(result.stages.line(st.events)
                  + (f", {procs} processes: CPU time\n" if procs > 1 else "\n"))
    if st.bad or st.late:
        out.write(f"{st.bad} bad line(s), {st.late} event(s) beyond the {args.lateness:.0f}s "
                  "lateness allowance (processed on arrival)\n")
        for sample in st.bad_samples:
            out.write(f"  {sample}\n")
        if st.bad > len(st.bad_samples):
            out.write(f"  ... and {st.bad - len(st.bad_samples)} more\n")
    metrics: dict[str, Any] = {
        "events": st.events, "bad_lines": st.bad, "late_events": st.late,
        "alerts_firing": firing, "alerts_resolved": len(result.alerts) - firing,
        "accounts_tracked": result.accounts, "elapsed_s": round(result.elapsed_s, 3),
        "events_per_s": round(result.events_per_s, 1),
        "prompt_share": round(st.with_prompt / st.events, 4) if st.events else None,
        "topic_share": round(st.with_topic / st.events, 4) if st.events else None,
    }
    if result.stages is not None:
        metrics["stages"] = result.stages.report(st.events,
                                                 result.elapsed_s if procs == 1 else None)
        metrics["stages"]["processes"] = procs
    if args.labels:
        from simulator.evaluate import format_table, score_alerts

        labels = load_labels(args.labels)
        scored = score_alerts(result.alerts, labels, _account_kinds(args, labels, result))
        metrics["detection"] = scored
        out.write(format_table({"distillwatch": scored}, systems=["distillwatch"]) + "\n")
    if args.metrics_out:
        Path(args.metrics_out).write_bytes(orjson.dumps(metrics, option=orjson.OPT_INDENT_2))
    if args.report:
        from streams.replay.report import build_report

        build_report(args, config, result, metrics)
        out.write(f"report -> {args.report}\n")
    return 0


def _account_kinds(args: argparse.Namespace, labels: list[dict[str, Any]],
                   result: Any) -> dict[str, str]:
    """Every account seen, as ``attack:<family>`` or ``benign[:kind]``.

    Benign kinds come from ``--truth`` (the simulator's account list) when given.
    """
    kinds: dict[str, str] = {}
    if args.truth:
        with open(args.truth, "rb") as fh:
            for line in fh:
                if line.strip():
                    obj = orjson.loads(line)
                    kinds[obj["account_id"]] = obj.get("kind", "benign")
    for account in result.seen_accounts:
        kinds.setdefault(account, "benign")
    return kinds


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "replay", help="run historic JSONL(.gz) logs through the live detection path",
        description="Replay historic event logs (JSONL or gzip JSONL, merged in event-time "
        "order) through exactly the detection code the live agents run.",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--alerts-out", required=True, metavar="PATH", help="alerts as JSONL")
    p.add_argument("--config", metavar="PATH", help="detector TOML (as the live service)")
    p.add_argument("--watchlist", metavar="PATH",
                   help="shared indicators (indicators pull --out JSONL, or a STIX bundle); "
                        "hashed ones need DISTILLWATCH_SHARING_KEY")
    p.add_argument("--actions-out", metavar="PATH",
                   help="the response actions the policy would propose, as JSONL")
    p.add_argument("--labels", metavar="PATH", help="attack labels JSONL for metrics")
    p.add_argument("--truth", metavar="PATH",
                   help="all accounts with their kinds (simulator output) for per-kind FP")
    p.add_argument("--metrics-out", metavar="PATH", help="metrics as JSON")
    p.add_argument("--report", metavar="PATH", help="self-contained HTML report")
    p.add_argument("--sweep", metavar="GRID.toml", help="parameter grid to sweep")
    p.add_argument("--best-config-out", metavar="PATH", default="best-config.toml",
                   help="with --sweep: where to write the best setting")
    p.add_argument("--jobs", type=int, default=0, metavar="N",
                   help="parallel processes (0: one per core): with --sweep, settings run "
                        "at once; otherwise the partitions are split across processes "
                        "(same output as --jobs 1)")
    p.add_argument("--lateness", type=float, default=300.0, metavar="S",
                   help="out-of-order tolerance in event-time seconds (default 300)")
    p.add_argument("--partitions", type=int, default=Settings().partitions,
                   help="partitions of the live events topic (default %(default)s)")
    p.add_argument("--progress", dest="progress", action="store_true", default=None)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=cmd_replay)
