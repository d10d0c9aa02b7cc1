"""Blindness is visible (issue 18): the share of events carrying prompt and
topic on /health and /metrics, a ``content_missing`` warning once per blind
episode of a partition, and the same shares in replay's summary.

Here the parts on real servers or subprocesses; the pure ones:
tests/unit/test_content_coverage.py."""

from __future__ import annotations

import urllib.request

import orjson

from tests.helpers.broker import produce
from tests.helpers.reliability import try_health, wait_until

T0 = 1771840800.0


def _events(account: str, n: int, start: float, step: float, **fields):  # type: ignore[no-untyped-def]
    return [(account.encode(), orjson.dumps({"ts": start + i * step, "account_id": account,
                                             "input_tokens": 20, "output_tokens": 300,
                                             **fields}))
            for i in range(n)]


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
