"""On-call integration: payload mapping, the forwarder against a real local
HTTP server (retries, permanent rejections, duplicates, commit after
delivery), and tail."""

from __future__ import annotations

import http.server
import json
import threading
import uuid

import orjson
import pytest

from detectors.alerts import Alert
from streams.cli import main
from streams.oncall.forward import Forwarder
from streams.oncall.mappings import alertmanager_alert, pagerduty_event
from streams.settings import SecretStr
from tests.conftest import produce

T0 = 1771840800.0


def record(account="acct-1", status="firing", severity="error", score=0.93, start=T0,
           ts=None, detector="account"):
    alert = Alert(detector=detector, status=status, severity=severity, score=score,
                  ts=ts or start + 60, episode_start=start,
                  summary=f"{account}: distillation score {score}",
                  details={"reasons": ["template", "elicitation"], "rate_per_min": 300.0,
                           "top_topics": [["math/proofs", 1.0]]},
                  account_id=account)
    return alert.to_record(emitted_at=T0 + 61)


class Recorder(http.server.ThreadingHTTPServer):
    def __init__(self, answers=()):
        self.requests: list[dict] = []
        self.answers = list(answers)  # status codes to answer first, then 202
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/v2/enqueue"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the forwarder's start-up check (Alertmanager /-/ready)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"OK")

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server: Recorder = self.server  # type: ignore[assignment]
        status = server.answers.pop(0) if server.answers else 202
        server.requests.append({"status": status, "body": json.loads(body),
                                "headers": dict(self.headers)})
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b'{"status":"success"}')

    def log_message(self, *args):
        pass


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


@pytest.mark.integration
def test_forward_from_the_alerts_topic_commits_after_delivery(broker, server):
    topic = f"alerts-{uuid.uuid4().hex[:8]}"
    first = record("acct-1")
    msgs = [first, first, record("acct-2", severity="critical", score=0.99),
            record("acct-1", status="resolved", severity="info", ts=T0 + 900)]
    produce(broker, topic, [(m["dedup_key"].encode(), orjson.dumps(m)) for m in msgs]
            + [(b"x", b"not an alert")])
    args = ["forward", "--to", "alertmanager", "--url", server.url, "--broker", broker.url,
            "--topic", topic, "--group", f"g-{topic}", "--duration", "4"]
    assert main(args) == 0
    assert server.requests[0]["body"] == []  # the start-up check: an empty list of alerts
    bodies = [r["body"][0] for r in server.requests if r["body"]]
    assert len(bodies) == 3  # the repeated alert_id was delivered once
    assert [b["labels"]["subject"] for b in bodies] == ["acct-1", "acct-2", "acct-1"]
    assert "endsAt" in bodies[2]
    # a restarted forwarder resumes after the committed offsets: nothing is sent again
    assert main(args) == 0
    assert len([r for r in server.requests if r["body"]]) == 3
    # the record that is not an alert went to the forwarder's dead-letter topic
    from tests.conftest import consume_until

    dead = consume_until(broker, f"{topic}-forward-dlq", lambda rs: len(rs) >= 1, timeout=10)
    assert len(dead) == 1 and dead[0]["reason"].startswith("unreadable")


@pytest.mark.integration
def test_a_misconfigured_target_stops_delivery_without_committing(broker, server):
    """The start-up check passes, then every alert gets 405: the forwarder
    exits 3 at the first one and commits nothing; per-alert rejections (422)
    go to the forwarder's dead-letter topic and delivery goes on."""
    from tests.reliability import group_offsets

    topic = f"alerts-{uuid.uuid4().hex[:8]}"
    msgs = [record(f"acct-{i}") for i in range(4)]
    produce(broker, topic, [(m["dedup_key"].encode(), orjson.dumps(m)) for m in msgs])
    group = f"g-{topic}"
    args = ["forward", "--to", "alertmanager", "--url", server.url, "--broker", broker.url,
            "--topic", topic, "--group", group, "--duration", "4"]
    server.answers = [200, 405]  # the probe's empty POST, then the first alert
    assert main(args) == 3
    assert group_offsets(broker.bootstrap, group, topic)[0] == 0
    server.answers = [200, 422]  # the probe, then the first alert is refused
    assert main(args) == 0
    assert group_offsets(broker.bootstrap, group, topic) == (4, 4)
    from tests.conftest import consume_until

    dead = consume_until(broker, f"{topic}-forward-dlq", lambda rs: len(rs) >= 1, timeout=10)
    assert [d["status"] for d in dead] == [422]
    assert orjson.loads(__import__("base64").b64decode(dead[0]["value_b64"]))["alert_id"] \
        == msgs[0]["alert_id"]


@pytest.mark.integration
def test_tail_filters_and_renders(broker, capsys):
    topic = f"alerts-{uuid.uuid4().hex[:8]}"
    msgs = [record("acct-1", severity="warning"), record("acct-2", severity="critical")]
    produce(broker, topic, [(m["dedup_key"].encode(), orjson.dumps(m)) for m in msgs])
    import os

    os.environ["DISTILLWATCH_ALERTS_TOPIC"] = topic
    try:
        assert main(["tail", "--broker", broker.url, "--from-beginning", "--severity", "error",
                     "--duration", "3"]) == 0
        out = capsys.readouterr().out.strip().splitlines()
        assert len(out) == 1 and "account:acct-2" in out[0] and "critical" in out[0]
        assert main(["tail", "--broker", broker.url, "--from-beginning", "--json",
                     "--account", "acct-1", "--max", "1"]) == 0
        line = capsys.readouterr().out.strip()
        assert json.loads(line)["account_id"] == "acct-1"
    finally:
        del os.environ["DISTILLWATCH_ALERTS_TOPIC"]


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
