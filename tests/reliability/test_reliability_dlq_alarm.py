"""The dead-letter alarm (issue 21): a burst of 100% malformed events (a
producer shipping a broken schema) raises one ``pipeline`` alert on the
alerts topic and turns ``/ready`` not-ready with the reason; both clear once
good traffic resumes."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import jsonschema
import pytest

from tests.helpers.attack import benign_events
from tests.helpers.broker import consume_until, produce
from tests.helpers.reliability import wait_until

pytestmark = pytest.mark.integration
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas"
                     / "alert.schema.json").read_text())


def _ready(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read())
        except ValueError:
            return exc.code, {}
    except OSError:
        return 0, {}


def _pipeline(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("detector") == "pipeline"]


def test_a_burst_of_malformed_events_alerts_once_and_clears(broker, worker_factory):
    worker = worker_factory().start()
    worker.wait_log("partitions_assigned", timeout=45)
    port = int(worker.env["DISTILLWATCH_WEB_PORT"])
    assert wait_until(lambda: _ready(port)[0] == 200, timeout=30), _ready(port)
    start = time.time() - 3600
    produce(broker, worker.events_topic, benign_events(accounts=20, per_account=20, start=start))
    # a producer ships a schema change: every event is now rejected
    bad = [(f"acct-{i}".encode(), b'{"account":"acct-%d","when":"now"}' % i) for i in range(700)]
    burst_at = time.monotonic()
    produce(broker, worker.events_topic, bad)
    not_ready = wait_until(lambda: (r := _ready(port))[0] == 503 and r[1], timeout=30)
    alarm_s = time.monotonic() - burst_at
    assert not_ready and "dead-lettered" in not_ready["reason"], not_ready
    firing = consume_until(broker, worker.alerts_topic, lambda rs: bool(_pipeline(rs)),
                           timeout=20)
    assert len(_pipeline(firing)) == 1, _pipeline(firing)

    # good traffic resumes: the share falls, the alert resolves, /ready is 200 again
    good_at = time.monotonic()
    produce(broker, worker.events_topic,
            benign_events(accounts=60, per_account=25, seed=3, start=start + 600))
    assert wait_until(lambda: _ready(port)[0] == 200, timeout=45), _ready(port)
    clear_s = time.monotonic() - good_at
    alerts = consume_until(broker, worker.alerts_topic, lambda rs: len(_pipeline(rs)) >= 2,
                           timeout=20)
    pipeline = _pipeline(alerts)
    assert [a["status"] for a in pipeline] == ["firing", "resolved"], pipeline
    assert pipeline[0]["dedup_key"] == pipeline[1]["dedup_key"]
    assert pipeline[0]["dedup_key"].startswith(f"pipeline:{worker.name}@")
    assert pipeline[0]["alert_id"] != pipeline[1]["alert_id"]
    assert pipeline[0]["episode_start"] == pipeline[1]["episode_start"]
    for record in pipeline:
        jsonschema.validate(record, SCHEMA)
    logged = [r for r in worker.log_records() if r.get("event") == "dead_letter_alarm"]
    assert len(logged) == 1, logged
    # the pipeline alert is on /alerts.json too, and the share is on /metrics
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        text = resp.read().decode()
    assert "distillwatch_dead_letter_alarm 0" in text
    print(f"\n100% malformed burst: /ready 503 and one pipeline alert {alarm_s:.1f}s after "
          f"the burst was published; resolved and ready {clear_s:.1f}s after good traffic "
          f"resumed ({pipeline[0]['details']['dead_lettered']} of "
          f"{pipeline[0]['details']['events']} at the alarm)")
