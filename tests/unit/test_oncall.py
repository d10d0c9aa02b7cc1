"""On-call integration: payload mapping, the forwarder against a real local
HTTP server (retries, permanent rejections, duplicates, commit after
delivery), and tail.

The parts on real servers or subprocesses: tests/integration/test_oncall_live.py."""

from __future__ import annotations

import threading

import pytest

from streams.oncall.forward import Forwarder
from streams.oncall.mappings import alertmanager_alert, pagerduty_event
from streams.settings import SecretStr
from tests.helpers.oncall import Recorder, record


@pytest.fixture
def server():
    srv = Recorder()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_pagerduty_mapping_follows_events_v2():
    firing = pagerduty_event(record(), "R" * 32, link="http://w:6066/accounts/acct-1/")
    assert firing["event_action"] == "trigger" and firing["routing_key"] == "R" * 32
    assert firing["dedup_key"] == "account:acct-1"
    p = firing["payload"]
    assert p["severity"] in ("critical", "error", "warning", "info")
    assert p["source"] == "acct-1" and len(p["summary"]) <= 1024
    assert p["custom_details"]["alert_id"] == record()["alert_id"]
    assert isinstance(p["custom_details"]["reasons"], str)  # JSON-simple values
    resolved = pagerduty_event(record(status="resolved", severity="info"), "R" * 32)
    assert resolved["event_action"] == "resolve" and resolved["dedup_key"] == "account:acct-1"
    assert "payload" not in resolved


def test_alertmanager_mapping_follows_api_v2():
    firing = alertmanager_alert(record())
    assert firing["labels"]["alertname"] == "DistillationSuspected"
    assert firing["labels"]["severity"] == "error" and "endsAt" not in firing
    assert firing["startsAt"] == record()["episode_start"]
    resolved = alertmanager_alert(record(status="resolved"))
    assert resolved["endsAt"] == record(status="resolved")["ts"]
    assert all(isinstance(v, str) for v in resolved["annotations"].values())


def test_forwarder_retries_then_delivers_once(server):
    server.answers = [503, 500]
    sleeps = []
    fwd = Forwarder("pagerduty", server.url, SecretStr("R" * 32), sleep=sleeps.append)
    rec = record()
    assert fwd.handle(rec) and fwd.handle(rec)  # the second is a duplicate
    assert [r["status"] for r in server.requests] == [503, 500, 202]
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] * 1.2  # exponential backoff
    assert fwd.counts == {"delivered": 1, "duplicates": 1, "rejected": 0, "retries": 2,
                          "dead_lettered": 0, "misconfigured": 0}
    assert server.requests[-1]["headers"]["Idempotency-Key"] == rec["alert_id"]


def test_forwarder_does_not_retry_per_alert_rejections(server):
    from streams.oncall.forward import DeliveryRejected

    for status in (400, 413, 422):
        server.answers = [status]
        fwd = Forwarder("webhook", server.url, sleep=lambda s: None)
        with pytest.raises(DeliveryRejected) as info:
            fwd.handle(record())
        assert info.value.status == status and fwd.counts["rejected"] == 1
    assert len(server.requests) == 3


def test_wrong_url_or_credentials_stop_delivery(server):
    from streams.oncall.forward import TargetMisconfigured

    for status in (401, 403, 404, 405, 410):
        server.answers = [status]
        fwd = Forwarder("webhook", server.url, sleep=lambda s: None)
        with pytest.raises(TargetMisconfigured, match=f"HTTP {status}"):
            fwd.handle(record())
        assert fwd.counts["misconfigured"] == 1 and fwd.counts["delivered"] == 0


def test_pagerduty_needs_a_routing_key():
    from streams.errors import ConfigError

    with pytest.raises(ConfigError, match="routing-key"):
        Forwarder("pagerduty", "http://x")


def test_forwarder_counters_are_served_on_loopback(server):
    import urllib.request

    from streams.broker.embedded import free_port
    from streams.oncall.forward import TargetMisconfigured, serve_metrics

    fwd = Forwarder("webhook", server.url, sleep=lambda s: None)
    server.answers = [405]
    with pytest.raises(TargetMisconfigured):
        fwd.handle(record())
    port = free_port()
    metrics = serve_metrics(port, fwd)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    finally:
        metrics.shutdown()
        metrics.server_close()
    assert "distillwatch_forward_misconfigured_total 1" in text
    assert "distillwatch_forward_delivered_total 0" in text
