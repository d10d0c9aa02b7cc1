"""score-series: the seasonal volume model on a synthetic series with an
injected level shift and spike (and the superseded VolumeSeriesScorer, kept as
the model tests/unit/test_seasonal.py shows failing on daily cycles)."""

from __future__ import annotations

import csv
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.errors import InvalidConfig
from detectors.series import VolumeSeriesScorer
from streams.cli import main


def _series(seed: int = 7) -> list[float]:
    rng = random.Random(seed)
    base = [200 + rng.gauss(0, 15) for _ in range(300)]
    spike = [1500.0]
    calm = [200 + rng.gauss(0, 15) for _ in range(100)]
    shifted = [600 + rng.gauss(0, 30) for _ in range(200)]
    return base + spike + calm + shifted


def test_cli_scores_spike_and_level_shift(tmp_path, capsys):
    values = _series()
    src = tmp_path / "requests.csv"
    with src.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value"])
        for i, v in enumerate(values):
            w.writerow([f"2026-02-23T{i // 60:02d}:{i % 60:02d}:00Z", f"{v:.2f}"])
        w.writerow(["2026-02-23T23:59:00Z", "not-a-number"])
    out = tmp_path / "scored.csv"
    assert main(["score-series", str(src), "--out", str(out)]) == 0
    assert "1 bad row" in capsys.readouterr().out
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score"]
    scores = [float(r["anomaly_score"]) for r in rows]
    assert len(scores) == len(values) and all(0.0 <= s <= 1.0 for s in scores)
    assert max(scores[20:300]) < 0.3            # calm baseline
    assert scores[300] > 0.7                     # the spike
    assert max(scores[305:400]) < 0.3            # the spike did not drag the baseline
    # by default an anomaly is reported at its onset only: the level shift,
    # a weaker surprise 100 rows after the spike, is not reported again
    assert max(scores[480:600]) < 0.3
    # scoring every row on its own (--suppress 0), the level shift shows
    out0 = tmp_path / "scored0.csv"
    assert main(["score-series", str(src), "--out", str(out0), "--suppress", "0"]) == 0
    scores0 = [float(r["anomaly_score"]) for r in csv.DictReader(out0.open())]
    assert max(scores0[400:406]) > 0.6
    assert scores0[300] == scores[300] and max(scores0[20:300]) < 0.3


def test_rejects_bad_header(tmp_path):
    src = tmp_path / "x.csv"
    src.write_text("time,count\n1,2\n")
    assert main(["score-series", str(src), "--out", str(tmp_path / "o.csv")]) == 2


def test_cli_bad_option_is_refused_with_its_rule(tmp_path, capsys):
    src = tmp_path / "x.csv"
    src.write_text("timestamp,value\n1,2\n")
    out = tmp_path / "o.csv"
    assert main(["score-series", str(src), "--out", str(out), "--report-growth", "0.5"]) == 2
    assert "report_growth" in capsys.readouterr().err and not out.exists()


def test_invalid_parameters_name_the_rule():
    with pytest.raises(InvalidConfig, match="z_lo < z_hi"):
        VolumeSeriesScorer(z_lo=5, z_hi=4)
    with pytest.raises(InvalidConfig, match="half_life"):
        VolumeSeriesScorer(half_life=0)


@given(st.lists(st.floats(min_value=0, max_value=1e12, allow_nan=False), max_size=300))
def test_scores_always_in_unit_interval(values):
    scorer = VolumeSeriesScorer()
    for v in values:
        s = scorer.learn_one(v)
        assert 0.0 <= s <= 1.0 and math.isfinite(s)
