"""``distillwatch score-series``: the seasonal volume model over a
``timestamp,value`` CSV (the model the account engine's rate evidence and
``benchmarks/nab.py`` use: :class:`detectors.seasonal.SeasonalSeriesScorer`)."""

from __future__ import annotations

import argparse
import csv
import math
import sys
from datetime import UTC, datetime

from detectors.errors import InvalidConfig
from detectors.seasonal import SeasonalSeriesScorer


def parse_time(text: str) -> float:
    """Epoch seconds from an ISO 8601 timestamp (naive means UTC) or a number
    (epoch seconds; milliseconds when >= 1e11)."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        dt = datetime.fromisoformat(text)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
    if not math.isfinite(value):
        raise ValueError("timestamp not finite")
    return value / 1000.0 if abs(value) >= 1e11 else value


def cmd_score_series(args: argparse.Namespace) -> int:
    try:
        scorer = SeasonalSeriesScorer(half_life=args.half_life, z_lo=args.z_lo,
                                      z_hi=args.z_hi, ph_threshold=args.ph_threshold,
                                      suppress=args.suppress, report_growth=args.report_growth,
                                      log=not args.linear, weekly=not args.no_weekly)
    except InvalidConfig as exc:  # a bad option: say which, no traceback
        print(f"score-series: {exc}", file=sys.stderr)
        return 2
    bad = 0
    rows = 0
    with open(args.csv, newline="") as src, open(args.out, "w", newline="") as dst:
        reader = csv.reader(src)
        writer = csv.writer(dst)
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header[:2]] != ["timestamp", "value"]:
            print(f"{args.csv}:1: expected a header 'timestamp,value'", file=sys.stderr)
            return 2
        writer.writerow(["timestamp", "value", "anomaly_score"])
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                value = float(row[1])
                if not math.isfinite(value):
                    raise ValueError("not finite")
                t = parse_time(row[0])
            except (IndexError, ValueError) as exc:
                bad += 1
                print(f"{args.csv}:{lineno}: skipped ({exc})", file=sys.stderr)
                continue
            rows += 1
            writer.writerow([row[0], row[1], f"{scorer.learn_one(value, t):.4f}"])
    print(f"scored {rows} rows -> {args.out}" + (f"; {bad} bad row(s) skipped" if bad else ""))
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``distillwatch score-series`` (the command table: streams/cli.py)."""
    d = SeasonalSeriesScorer()
    p.description = (
        "Score each row of a timestamp,value CSV (ISO 8601 or epoch timestamps, "
        "UTC when naive) with the seasonal volume model: the value against what this time of "
        "the day and week usually brings. A score is reported at the onset of an anomaly; "
        "docs/nab.md has its NAB scores.")
    p.add_argument("csv", metavar="CSV")
    p.add_argument("--out", required=True, metavar="CSV")
    p.add_argument("--half-life", type=float, default=d.half_life,
                   help="short baseline half-life, rows (default %(default)s)")
    p.add_argument("--z-lo", type=float, default=d.z_lo)
    p.add_argument("--z-hi", type=float, default=d.z_hi)
    p.add_argument("--ph-threshold", type=float, default=d.ph_threshold,
                   help="Page-Hinkley threshold for level shifts, in deviations (0: off)")
    p.add_argument("--suppress", type=float, default=d.suppress,
                   help="per-row decay of the remembered surprise (0: score every row on "
                        "its own, not only onsets; default %(default)s)")
    p.add_argument("--report-growth", type=float, default=d.report_growth,
                   help="growth of a rising surprise over its last report before it is "
                        "reported again (1: every new high; default %(default)s)")
    p.add_argument("--linear", action="store_true",
                   help="score the values themselves, not log1p(value)")
    p.add_argument("--no-weekly", action="store_true",
                   help="one daily profile instead of weekdays and weekends apart")
    p.set_defaults(func=cmd_score_series)
