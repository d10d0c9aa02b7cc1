"""On-call integration: payload mapping, the forwarder against a real local
HTTP server (retries, permanent rejections, duplicates, commit after
delivery), and tail.

Here the parts on real servers or subprocesses; the pure ones: tests/unit/test_oncall.py."""

from __future__ import annotations

import json
import threading
import uuid

import orjson
import pytest

from streams.cli import main
from tests.helpers.broker import produce
from tests.helpers.oncall import T0, Recorder, record


@pytest.fixture
def server():
    srv = Recorder()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


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
    from tests.helpers.broker import consume_until

    dead = consume_until(broker, f"{topic}-forward-dlq", lambda rs: len(rs) >= 1, timeout=10)
    assert len(dead) == 1 and dead[0]["reason"].startswith("unreadable")


def test_a_misconfigured_target_stops_delivery_without_committing(broker, server):
    """The start-up check passes, then every alert gets 405: the forwarder
    exits 3 at the first one and commits nothing; per-alert rejections (422)
    go to the forwarder's dead-letter topic and delivery goes on."""
    from tests.helpers.reliability import group_offsets

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
    from tests.helpers.broker import consume_until

    dead = consume_until(broker, f"{topic}-forward-dlq", lambda rs: len(rs) >= 1, timeout=10)
    assert [d["status"] for d in dead] == [422]
    assert orjson.loads(__import__("base64").b64decode(dead[0]["value_b64"]))["alert_id"] \
        == msgs[0]["alert_id"]


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
