"""Blindness is visible (issue 18): the share of events carrying prompt and
topic on /health and /metrics, a ``content_missing`` warning once per blind
episode of a partition, and the same shares in replay's summary.

The parts on real servers or subprocesses: tests/integration/test_content_coverage_live.py."""

from __future__ import annotations

import orjson
import pytest

from streams.cli import main
from streams.service.coverage import ContentCoverage

T0 = 1771840800.0


def test_one_notice_per_episode():
    cov = ContentCoverage(blind_after_s=3600.0)
    for i in range(200):  # 200 min without content: one notice, not one per event
        cov.observe(1, T0 + 60 * i, prompt=False, topic=False)
    assert [n["partition"] for n in cov.take_notices()] == [1]
    assert cov.take_notices() == []
    cov.observe(1, T0 + 12_001, prompt=False, topic=True)   # content returns: episode over
    for i in range(59):
        cov.observe(1, T0 + 12_060 + 60 * i, prompt=False, topic=False)
    assert cov.take_notices() == []                           # 58 min: not yet
    cov.observe(1, T0 + 12_060 + 3600, prompt=False, topic=False)
    assert len(cov.take_notices()) == 1                       # a new episode warns again
    cov.observe(2, T0, prompt=True, topic=False)              # other partitions are their own
    rep = cov.report()
    assert rep["events"] == 262 and rep["topic_share"] == round(1 / 262, 4)
    with pytest.raises(ValueError):
        ContentCoverage(blind_after_s=0)


def test_replay_summary_shows_shares(tmp_path, capsys):
    log = tmp_path / "events.jsonl"
    lines = [{"ts": T0 + i, "account_id": "a", "prompt": "x"} for i in range(3)]
    lines += [{"ts": T0 + 10 + i, "account_id": "b", "topic": "t"} for i in range(1)]
    lines += [{"ts": T0 + 20 + i, "account_id": "c"} for i in range(4)]
    log.write_bytes(b"\n".join(orjson.dumps(x) for x in lines) + b"\n")
    metrics = tmp_path / "m.json"
    assert main(["replay", str(log), "--alerts-out", str(tmp_path / "a.jsonl"),
                 "--metrics-out", str(metrics), "--jobs", "1", "--no-progress"]) == 0
    assert "content: prompt on 37.5% of events, topic on 12.5%" in capsys.readouterr().out
    m = orjson.loads(metrics.read_bytes())
    assert m["prompt_share"] == 0.375 and m["topic_share"] == 0.125
