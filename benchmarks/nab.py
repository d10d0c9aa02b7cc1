"""The Numenta Anomaly Benchmark (NAB) with NAB's own scorer.

Runs :class:`detectors.seasonal.SeasonalSeriesScorer` (what
``distillwatch score-series`` runs) over every series under ``<NAB>/data``,
writes the scores in NAB's results format (``results/distillwatch/<family>/
distillwatch_<file>.csv``) and runs NAB's ``run.py --optimize --score
--normalize`` for the detector, then prints the three normalised profile
scores. NAB is not a dependency of this project and its data is not in this
repository: pass a checkout (``git clone https://github.com/numenta/NAB``) and a
Python that has NAB's requirements (pandas < 2, numpy < 2, simplejson,
python-dateutil) in its own virtualenv::

    python -m benchmarks.nab /path/to/NAB --nab-python /path/to/nab-venv/bin/python

``--families artificialNoAnomaly,artificialWithAnomaly,realKnownCause`` scores
only those families (NAB's null baseline is then re-run on the same subset, so
the normalised score is comparable): the subset the parameters were chosen on
(docs/nab.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from detectors.seasonal import SeasonalSeriesScorer
from streams.replay.score_series import parse_time

DETECTOR = "distillwatch"
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
# Published normalised standard scores (NAB's results/final_results.json and README)
ANCHORS = {"HTM (numenta)": 70.5, "Random Cut Forest": 51.7, "Twitter ADVec": 47.1,
           "windowed Gaussian": 39.6}


# Decimals of the scores written for NAB's run.py.
DECIMALS = 6


def score_file(path: Path, params: dict[str, Any]) -> list[tuple[str, str, float]]:
    """The scores of one series as written for ``run.py`` (``DECIMALS``
    decimals), so that the quick scorer sweeps the very numbers ``run.py``
    is given: at full precision a threshold can split reports that differ
    below 1e-6 (periodic reports of the same spike, docs/nab.md), which the
    written files cannot, and the quick scorer said 73.9 on the tuning group
    where ``run.py`` says 71.9."""
    scorer = SeasonalSeriesScorer(**params)
    out = []
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            s = scorer.learn_one(float(row["value"]), parse_time(row["timestamp"]))
            out.append((row["timestamp"], row["value"], float(f"{s:.{DECIMALS}f}")))
    return out


def write_results(nab: Path, root: Path, files: list[str], params: dict[str, Any]) -> None:
    labels = json.loads((nab / "labels" / "combined_labels.json").read_text())
    for rel in files:
        scored = score_file(nab / "data" / rel, params)
        anomalies = set(labels.get(rel, []))
        family, name = rel.split("/")
        dst = root / "results" / DETECTOR / family / f"{DETECTOR}_{name}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        with dst.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["timestamp", "value", "anomaly_score", "label"])
            for ts, value, s in scored:
                w.writerow([ts, value, f"{s:.{DECIMALS}f}", int(ts in anomalies)])


def _run_nab(nab_python: str, nab: Path, root: Path, detectors: str, extra: list[str]) -> None:
    cmd = [nab_python, str(nab / "run.py"), "-d", detectors, "--skipConfirmation", "-n", "1",
           "--dataDir", str(root / "data"), "--windowsFile", str(root / "windows.json"),
           "--resultsDir", str(root / "results"), "--profilesFile",
           str(nab / "config" / "profiles.json"), "-t", str(root / "thresholds.json"), *extra]
    # run.py opens the thresholds file relative to the working directory
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
        raise SystemExit(f"NAB's run.py failed ({proc.returncode}): {' '.join(cmd)}")


def run(nab: Path, nab_python: str, families: list[str] | None, params: dict[str, Any],
        workdir: Path, null_cache: Path | None = None) -> dict[str, float]:
    """Score, optimise and normalise; returns the normalised score per profile."""
    windows = json.loads((nab / "labels" / "combined_windows.json").read_text())
    files = sorted(k for k in windows if families is None or k.split("/")[0] in families)
    if not files:
        raise SystemExit(f"no NAB series under {nab / 'data'} for families {families}")
    root = workdir
    (root / "data").mkdir(parents=True, exist_ok=True)
    for rel in files:  # a data dir of links: NAB's corpus reader walks it
        link = root / "data" / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            os.symlink(nab / "data" / rel, link)
    (root / "windows.json").write_text(json.dumps({k: windows[k] for k in files}))
    (root / "thresholds.json").write_text("{}")
    if families is None:  # the published null baseline, for the whole corpus
        shutil.copytree(nab / "results" / "null", root / "results" / "null", dirs_exist_ok=True)
    elif null_cache is not None and (null_cache / "null").is_dir():
        shutil.copytree(null_cache / "null", root / "results" / "null", dirs_exist_ok=True)
    else:
        _run_nab(nab_python, nab, root, "null", ["--detect", "--optimize", "--score"])
        if null_cache is not None:
            shutil.copytree(root / "results" / "null", null_cache / "null", dirs_exist_ok=True)
    write_results(nab, root, files, params)
    _run_nab(nab_python, nab, root, DETECTOR, ["--optimize", "--score", "--normalize"])
    final = json.loads((root / "results" / "final_results.json").read_text())[DETECTOR]
    return {p: round(float(final[p]), 2) for p in PROFILES}


TUNING = ("artificialNoAnomaly", "artificialWithAnomaly", "realKnownCause")
HELD_OUT = ("realAWSCloudwatch", "realAdExchange", "realTraffic", "realTweets")


def _sweeps(nab: Path, files: list[str], scored: dict[str, list[tuple[str, str, float]]],
            fixed: dict[str, float] | None = None) -> dict[str, tuple[float, float]]:
    """Per profile: (normalised score, threshold) at the best threshold over
    ``files``, or at the threshold ``fixed[profile]`` (the largest swept
    threshold not above it)."""
    sys.path.insert(0, str(nab))
    try:
        from nab.sweeper import Sweeper  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(nab))
    windows = json.loads((nab / "labels" / "combined_windows.json").read_text())
    profiles = json.loads((nab / "config" / "profiles.json").read_text())
    n_windows = sum(len(windows[rel]) for rel in files)
    out = {}
    for profile in PROFILES:
        cost = profiles[profile]["CostMatrix"]
        sweeper = Sweeper(probationPercent=0.15, costMatrix=cost)
        rows = []
        for rel in files:
            ts = [parse_time(t) for t, _, _ in scored[rel]]
            lims = [(parse_time(a), parse_time(b)) for a, b in windows[rel]]
            rows.extend(sweeper.calcSweepScore(ts, [s for _, _, s in scored[rel]], lims, rel))
        by_threshold = sweeper.calcScoreByThreshold(rows)
        if fixed is None:
            best = max(by_threshold, key=lambda r: r.score)
        else:
            below = [r for r in by_threshold if r.threshold <= fixed[profile]]
            best = max(below, key=lambda r: r.threshold) if below else \
                min(by_threshold, key=lambda r: r.threshold)
        base = -cost["fnWeight"] * n_windows
        out[profile] = (round(100 * (best.score - base) / (n_windows * cost["tpWeight"] - base),
                              2), float(best.threshold))
    return out


def quick_scores(nab: Path, families: list[str] | None, params: dict[str, Any]
                 ) -> dict[str, float]:
    """For tuning only: NAB's own sweep (``nab.sweeper``, pure Python, imported
    from the checkout) over the best corpus-wide threshold, as its optimiser
    does, normalised against the null detector (nothing detected). Seconds
    instead of a minute; the reported numbers come from :func:`run`."""
    windows = json.loads((nab / "labels" / "combined_windows.json").read_text())
    files = sorted(k for k in windows if families is None or k.split("/")[0] in families)
    scored = {rel: score_file(nab / "data" / rel, params) for rel in files}
    return {p: score for p, (score, _) in _sweeps(nab, files, scored).items()}


def split_scores(nab: Path, params: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The tuning protocol's report (quick scorer): the tuning group, the
    held-out group at its own best threshold (as NAB scores every detector) and
    at the threshold chosen on the tuning group (what an operator who tuned on
    the tuning group would have run), and all 58 series."""
    windows = json.loads((nab / "labels" / "combined_windows.json").read_text())
    files = sorted(windows)
    scored = {rel: score_file(nab / "data" / rel, params) for rel in files}
    tuning = [f for f in files if f.split("/")[0] in TUNING]
    held = [f for f in files if f.split("/")[0] in HELD_OUT]
    tuned = _sweeps(nab, tuning, scored)
    rows = {"tuning": tuned, "held_out": _sweeps(nab, held, scored),
            "held_out_at_tuning_threshold": _sweeps(
                nab, held, scored, {p: t for p, (_, t) in tuned.items()}),
            "all": _sweeps(nab, files, scored)}
    return {name: {p: score for p, (score, _) in row.items()} for name, row in rows.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.nab", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("nab", type=Path, help="a checkout of numenta/NAB")
    ap.add_argument("--nab-python", default=sys.executable,
                    help="a Python with NAB's requirements (default: this one)")
    ap.add_argument("--families", help="comma-separated NAB families (default: all 58 series)")
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="a SeasonalSeriesScorer parameter (repeatable; default: its defaults)")
    ap.add_argument("--null-cache", type=Path,
                    help="with --families: keep NAB's null baseline for the subset here")
    ap.add_argument("--keep", type=Path, help="write NAB's results here instead of a temp dir")
    ap.add_argument("--split", action="store_true",
                    help="quick scorer only (no run.py): the tuning group, the held-out group "
                         "(at its own and at the tuning group's threshold) and all 58")
    args = ap.parse_args(argv)
    nab = args.nab.resolve()
    if not (nab / "run.py").is_file() or not (nab / "labels" / "combined_windows.json").is_file():
        ap.error(f"{nab} is not a NAB checkout (no run.py / labels/combined_windows.json)")
    params: dict[str, Any] = {}
    for item in args.param:
        name, _, value = item.partition("=")
        params[name] = value.lower() == "true" if value.lower() in ("true", "false") \
            else float(value)
    families = args.families.split(",") if args.families else None
    if args.split:
        print(json.dumps({"detector": DETECTOR, "params": params,
                          "quick_scores": split_scores(nab, params)}, indent=1))
        return 0
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        scores = run(nab, args.nab_python, families, params, args.keep.resolve(),
                     args.null_cache)
    else:
        with tempfile.TemporaryDirectory(prefix="dw-nab-") as tmp:
            scores = run(nab, args.nab_python, families, params, Path(tmp), args.null_cache)
    print(json.dumps({"detector": DETECTOR, "families": families or "all", "params": params,
                      "scores": scores}))
    if families is None:
        for name, score in ANCHORS.items():
            print(f"  anchor {name}: standard {score}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
