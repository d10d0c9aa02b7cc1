"""``distillwatch score-series``: the volume model over a ``timestamp,value`` CSV."""

from __future__ import annotations

import argparse
import csv
import math
import sys
from typing import Any

from detectors.series import VolumeSeriesScorer


def cmd_score_series(args: argparse.Namespace) -> int:
    scorer = VolumeSeriesScorer(half_life=args.half_life, z_lo=args.z_lo, z_hi=args.z_hi,
                                ph_threshold=args.ph_threshold)
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
            except (IndexError, ValueError) as exc:
                bad += 1
                print(f"{args.csv}:{lineno}: skipped ({exc})", file=sys.stderr)
                continue
            rows += 1
            writer.writerow([row[0], row[1], f"{scorer.learn_one(value):.4f}"])
    print(f"scored {rows} rows -> {args.out}" + (f"; {bad} bad row(s) skipped" if bad else ""))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("score-series",
                              help="score a timestamp,value CSV with the volume model")
    p.add_argument("csv", metavar="CSV")
    p.add_argument("--out", required=True, metavar="CSV")
    p.add_argument("--half-life", type=float, default=48.0, help="baseline half-life, buckets")
    p.add_argument("--z-lo", type=float, default=3.0)
    p.add_argument("--z-hi", type=float, default=6.0)
    p.add_argument("--ph-threshold", type=float, default=2.0,
                   help="Page-Hinkley threshold for level shifts (log scale)")
    p.set_defaults(func=cmd_score_series)
