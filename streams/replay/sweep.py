"""``distillwatch replay ... --sweep GRID.toml``: a grid over detector config
parameters, each setting replayed in its own process, a metrics table, and the
best setting written as a ready config file.

GRID.toml::

    [grid]
    "score.fire_threshold" = [0.75, 0.8, 0.85]
    "evidence.template_lo" = [0.25, 0.3]

    [objective]
    fp_budget = 0.005   # benign false-positive rate a setting may not exceed
"""

from __future__ import annotations

import argparse
import copy
import itertools
import os
import sys
import tomllib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from streams.errors import ConfigError


def load_grid(path: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Expand a grid file into settings ``{dotted.key: value}`` and the objective."""
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"sweep grid {path}: {exc}") from None
    grid = doc.get("grid")
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(f"sweep grid {path}: needs a non-empty [grid] table")
    keys = sorted(grid)
    for key in keys:
        if not isinstance(grid[key], list) or not grid[key]:
            raise ConfigError(f"sweep grid {path}: {key!r} must be a non-empty list of values")
    settings = [dict(zip(keys, combo, strict=True))
                for combo in itertools.product(*(grid[k] for k in keys))]
    return settings, dict(doc.get("objective", {}))


def apply_setting(base: dict[str, Any], setting: dict[str, Any]) -> dict[str, Any]:
    """Base config mapping with ``section.key`` overrides applied."""
    out = copy.deepcopy(base)
    for dotted, value in setting.items():
        section, _, key = dotted.rpartition(".")
        target = out
        for part in filter(None, section.split(".")):
            target = target.setdefault(part, {})
        target[key] = value
    return out


def _run_one(job: tuple[list[str], dict[str, Any], list[dict[str, Any]], dict[str, str], int,
                        float]) -> dict[str, Any]:
    files, config, labels, kinds, partitions, lateness = job
    from simulator.evaluate import score_alerts
    from streams.replay.replayer import replay_files

    result = replay_files(files, config, partitions=partitions, lateness_s=lateness,
                          show_progress=False)
    all_kinds = dict(kinds)
    for account in result.seen_accounts:
        all_kinds.setdefault(account, "benign")
    scored = score_alerts(result.alerts, labels, all_kinds)
    return {"metrics": scored, "events_per_s": result.events_per_s}


def summarize(metrics: dict[str, Any]) -> dict[str, float]:
    attacks = metrics.get("attacks", {})
    recalls = [row["recall"] for row in attacks.values()]
    delays = [row["delay_median_s"] for row in attacks.values()
              if row.get("delay_median_s") is not None]
    return {
        "mean_recall": sum(recalls) / len(recalls) if recalls else 0.0,
        "min_recall": min(recalls) if recalls else 0.0,
        "fp_rate": metrics["benign"]["overall"]["fp_rate"],
        "median_delay_s": sorted(delays)[len(delays) // 2] if delays else float("inf"),
    }


def best_index(summaries: list[dict[str, float]], fp_budget: float) -> int:
    """Highest mean recall within the FP budget; ties: lower FP, then lower delay."""
    def key(i: int) -> tuple[float, ...]:
        s = summaries[i]
        within = s["fp_rate"] <= fp_budget
        return (within, s["mean_recall"], s["min_recall"], -s["fp_rate"], -s["median_delay_s"])
    return max(range(len(summaries)), key=key)


def to_toml(mapping: dict[str, Any]) -> str:
    """Write a two-level config mapping as TOML (the detector config's shape)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise ConfigError(f"cannot write {v!r} to TOML")

    lines: list[str] = []
    for key in sorted(k for k, v in mapping.items() if not isinstance(v, dict)):
        lines.append(f"{key} = {value(mapping[key])}")
    for section in sorted(k for k, v in mapping.items() if isinstance(v, dict)):
        lines.append(f"\n[{section}]")
        for key in sorted(mapping[section]):
            lines.append(f"{key} = {value(mapping[section][key])}")
    return "\n".join(lines).lstrip("\n") + "\n"


def run_sweep(args: argparse.Namespace) -> int:
    from streams.replay.cli import load_config, load_labels
    from streams.service.detection import detector_config

    if not args.labels:
        raise ConfigError("--sweep needs --labels to score each setting")
    settings, objective = load_grid(args.sweep)
    fp_budget = float(objective.get("fp_budget", 0.005))
    base = load_config(args.config)
    labels = load_labels(args.labels)
    kinds: dict[str, str] = {}
    if args.truth:
        import orjson

        for line in Path(args.truth).read_bytes().splitlines():
            if line.strip():
                obj = orjson.loads(line)
                kinds[obj["account_id"]] = obj.get("kind", "benign")
    configs = [apply_setting(base, s) for s in settings]
    for config in configs:  # fail fast, before any process starts, on a bad key or value
        detector_config(config)
    jobs = args.jobs or min(len(configs), os.cpu_count() or 1)
    work = [([str(f) for f in args.files], c, labels, kinds, args.partitions, args.lateness)
            for c in configs]
    print(f"sweep: {len(configs)} settings over {len(args.files)} file(s), {jobs} process(es)",
          file=sys.stderr)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(_run_one, work))
    summaries = [summarize(r["metrics"]) for r in results]
    best = best_index(summaries, fp_budget)
    keys = sorted(settings[0])
    header = " | ".join(keys) + " | mean recall | min recall | benign FP | median delay"
    print(header)
    print("-" * len(header))
    for i, (setting, s) in enumerate(zip(settings, summaries, strict=True)):
        mark = "  <- best" if i == best else ""
        delay = "-" if s["median_delay_s"] == float("inf") else f"{s['median_delay_s']:.0f}s"
        print(" | ".join(str(setting[k]) for k in keys)
              + f" | {s['mean_recall']:.3f} | {s['min_recall']:.3f} | {100 * s['fp_rate']:.2f}%"
              + f" | {delay}{mark}")
    # the complete effective configuration, so the file is ready to deploy as is
    effective = detector_config(configs[best]).to_mapping()
    Path(args.best_config_out).write_text(
        "# best setting of a distillwatch sweep over " + args.sweep + "\n"
        + "# " + ", ".join(f"{k}={settings[best][k]}" for k in keys) + "\n"
        + to_toml(effective)
    )
    print(f"best setting -> {args.best_config_out}")
    if args.metrics_out:
        import orjson

        Path(args.metrics_out).write_bytes(orjson.dumps(
            [{"setting": s, "summary": m, "metrics": r["metrics"]}
             for s, m, r in zip(settings, summaries, results, strict=True)],
            option=orjson.OPT_INDENT_2,
        ))
    return 0
