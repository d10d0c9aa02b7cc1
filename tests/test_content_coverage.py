"""Blindness is visible (issue 18): the share of events carrying prompt and
topic on /health and /metrics, a ``content_missing`` warning once per blind
episode of a partition, and the same shares in replay's summary."""

from __future__ import annotations

import urllib.request

import orjson
import pytest

from streams.cli import main
from streams.service.coverage import ContentCoverage
from tests.conftest import produce
from tests.reliability import try_health, wait_until

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


def _events(account: str, n: int, start: float, step: float, **fields):  # type: ignore[no-untyped-def]
    return [(account.encode(), orjson.dumps({"ts": start + i * step, "account_id": account,
                                             "input_tokens": 20, "output_tokens": 300,
                                             **fields}))
            for i in range(n)]


@pytest.mark.integration
def test_worker_reports_content_shares_and_warns(broker, worker_factory):
    worker = worker_factory(DISTILLWATCH_PARTITIONS="1").start()
    worker.wait_log("partitions_assigned", timeout=45)
    port = int(worker.env["DISTILLWATCH_WEB_PORT"])
    with_content = _events("acct-c", 20, T0, 30.0, topic="coding/python", prompt="hello there")
    # then 90 minutes of event time of metadata only (a gateway that logs no text)
    blind = _events("acct-m", 91, T0 + 600, 60.0)
    produce(broker, worker.events_topic, with_content + blind)
    record = worker.wait_log("content_missing", timeout=30)
    assert record["level"] == "warning" and record["partition"] == 0
    assert record["events"] >= 60
    health = wait_until(lambda: (h := try_health(port)) and h["events"] >= 111 and h, 20)
    content = health["content"]
    assert content["events"] == 111
    assert content["prompt_share"] == round(20 / 111, 4)
    assert content["topic_share"] == round(20 / 111, 4)
    assert content["partitions_without_content"] == 1
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    assert f'distillwatch_content_share{{field="prompt"}} {20 / 111}' in text
    assert "distillwatch_partitions_without_content 1.0" in text
    # more blind events: still one warning for the episode
    produce(broker, worker.events_topic, _events("acct-m", 30, T0 + 600 + 91 * 60, 60.0))
    wait_until(lambda: (h := try_health(port)) and h["events"] >= 141, 20)
    assert sum(r.get("event") == "content_missing" for r in worker.log_records()) == 1
    worker.stop()


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
