"""The worker's web views on a live worker: health, readiness, Prometheus
metrics, per-account view (table_route), recent alerts page."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from tests.attack import benign_events, extractor_events
from tests.conftest import consume_until, produce

pytestmark = pytest.mark.integration


def _get(port: int, path: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


def test_views_on_a_live_worker(broker, worker_factory):
    worker = worker_factory().start()
    port = int(worker.env["DISTILLWATCH_WEB_PORT"])
    worker.wait_log("partitions_assigned", timeout=45)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _get(port, "/ready")[0] != 200:
        time.sleep(0.3)
    assert _get(port, "/ready")[0] == 200

    produce(broker, worker.events_topic, benign_events(accounts=10, per_account=5))
    produce(broker, worker.events_topic, [(b"acct-x", b"nope")])
    produce(broker, worker.events_topic, extractor_events("harvester-web"))
    consume_until(broker, worker.alerts_topic,
                  lambda rs: any(r.get("account_id") == "harvester-web" for r in rs), 15)

    deadline = time.monotonic() + 20  # the alert comes early; let the backlog drain
    while time.monotonic() < deadline and json.loads(_get(port, "/health")[2])["events"] < 950:
        time.sleep(0.3)
    status, _, body = _get(port, "/health")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok" and health["events"] == 950
    assert health["assignments"] == 1  # one worker, no rebalance

    status, ctype, text = _get(port, "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    assert "distillwatch_events_processed_total " in text
    assert 'distillwatch_events_rejected_total{reason="not JSON"} 1' in text
    assert 'distillwatch_alerts_total{detector="' in text and 'status="firing"' in text
    assert 'distillwatch_processing_seconds_bucket{le="+Inf"}' in text
    assert "distillwatch_consumer_lag{partition=" in text
    assert "distillwatch_accounts_tracked " in text
    assert "distillwatch_partition_assignments_total 1" in text
    # per-stage timings (streams.service.stages): every stage timed on a live worker
    for stage in ("decode", "validate", "account", "summaries", "cluster"):
        line = [x for x in text.splitlines()
                if x.startswith(f'distillwatch_stage_seconds_total{{stage="{stage}"}} ')]
        assert line and float(line[0].split()[-1]) > 0, stage

    status, _, body = _get(port, "/accounts/harvester-web/")
    account = json.loads(body)
    assert status == 200 and account["tracked"] is True and account["events"] >= 900
    assert account["score"] >= 0.5 and "rate_per_min" in account
    assert "articulate" not in body  # no prompt text
    assert _get(port, "/accounts/nobody-here/")[0] == 404

    status, _, body = _get(port, "/alerts.json")
    recent = json.loads(body)["alerts"]
    assert any(a.get("account_id") == "harvester-web" for a in recent)
    status, ctype, page = _get(port, "/alerts/")
    assert status == 200 and ctype.startswith("text/html") and "/alerts.json" in page
