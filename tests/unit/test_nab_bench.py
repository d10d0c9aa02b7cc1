"""benchmarks/nab.py: the quick scorer sweeps the scores exactly as they are
written for NAB's run.py (docs/nab.md: at full precision a threshold could
split periodic reports that differ below 1e-6, which the written files cannot,
and the quick scorer overstated the tuning group by 2 points)."""

from __future__ import annotations

import csv
import json
import random

from benchmarks.nab import score_file, write_results


def _series(path, n: int = 600) -> None:
    rng = random.Random(5)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value"])
        for i in range(n):
            v = 20.0 if i % 100 == 0 else 1.0 + rng.gauss(0, 0.1)  # periodic spikes
            w.writerow([f"2014-04-{1 + i // 288:02d} {i % 288 // 12:02d}:{i % 12 * 5:02d}:00",
                        f"{v:.3f}"])


def test_quick_scores_are_the_written_scores(tmp_path):
    nab = tmp_path / "NAB"
    (nab / "data" / "fam").mkdir(parents=True)
    (nab / "labels").mkdir()
    (nab / "labels" / "combined_labels.json").write_text(json.dumps({"fam/x.csv": []}))
    _series(nab / "data" / "fam" / "x.csv")
    scored = score_file(nab / "data" / "fam" / "x.csv", {})
    reports = [s for _, _, s in scored if s > 0.0]
    assert reports  # the spikes are reported
    # no more digits than run.py is given: a sweep cannot split what it cannot see
    assert all(s == float(f"{s:.6f}") for _, _, s in scored)
    write_results(nab, tmp_path / "out", ["fam/x.csv"], {})
    out = tmp_path / "out" / "results" / "distillwatch" / "fam" / "distillwatch_x.csv"
    with out.open() as fh:
        written = [float(row["anomaly_score"]) for row in csv.DictReader(fh)]
    assert written == [s for _, _, s in scored]
