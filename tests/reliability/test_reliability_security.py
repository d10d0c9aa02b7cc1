"""Privacy and security (issue 8) against a running worker: prompt text never
reaches alerts, logs or web views (fingerprints only); the web server listens
on loopback only; web request parameters are size-limited. Plus configuration
tests for every security protocol (SASL/TLS for real clusters)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from streams.service.app import faust_config, faust_credentials
from streams.service.topics import kafka_python_security
from streams.settings import Settings
from tests.helpers.attack import extractor_events
from tests.helpers.broker import consume_until, produce
from tests.helpers.reliability import try_health, wait_until

MARKER = "QZX-SECRET-PROMPT-7731"


def _listening(pid: int, port: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) listening on ``port``."""
    found = []
    for name in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{name}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            addr, hexport = fields[1].rsplit(":", 1)
            if int(hexport, 16) == port and fields[3] == "0A":  # LISTEN
                found.append(addr)
    return found


@pytest.mark.integration
def test_prompts_never_leak_and_web_binds_loopback(broker, worker_factory):
    worker = worker_factory().start()
    worker.wait_log("partitions_assigned", timeout=45)
    port = int(worker.env["DISTILLWATCH_WEB_PORT"])
    events = []
    for key, value in extractor_events("leaky", n=600):
        obj = orjson.loads(value)
        obj["prompt"] = f"{MARKER} " + obj["prompt"]
        events.append((key, orjson.dumps(obj)))
    produce(broker, worker.events_topic, events)
    assert wait_until(lambda: (h := try_health(port)) and h["events"] >= len(events), 30)
    alerts = consume_until(broker, worker.alerts_topic,
                           lambda rs: any(r.get("account_id") == "leaky" for r in rs), 10)
    assert any(r.get("account_id") == "leaky" for r in alerts)
    raw_alerts = json.dumps(alerts)
    assert MARKER not in raw_alerts and "imagine and articulate" not in raw_alerts
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/leaky/", timeout=5) as r:
        view = r.read().decode()
    assert '"tracked":true' in view.replace(" ", "") and MARKER not in view
    for path in ("/alerts.json", "/metrics", "/health"):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            assert MARKER not in r.read().decode(), path

    # web request parameters are bounded
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/{'a' * 5000}/", timeout=5)
    assert exc.value.code in (400, 414), exc.value.code

    # the web server listens on 127.0.0.1 only (0100007F), never on a wildcard
    addrs = _listening(worker.proc.pid, port)
    assert addrs and set(addrs) == {"0100007F"}, addrs

    worker.terminate()
    assert MARKER not in worker.log_path.read_text()


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_security_protocols_reach_both_clients(protocol, mechanism, tmp_path):
    env = {"DISTILLWATCH_BROKER": "kafka://k1:9093,k2:9093",
           "DISTILLWATCH_SECURITY_PROTOCOL": protocol, "DISTILLWATCH_SASL_MECHANISM": mechanism}
    if protocol.startswith("SASL"):
        env |= {"DISTILLWATCH_SASL_USERNAME": "svc", "DISTILLWATCH_SASL_PASSWORD": "pw-123"}
    s = Settings.load(env=env)
    kp = kafka_python_security(s)
    creds = faust_credentials(s)
    assert kp["security_protocol"] == protocol
    if protocol == "PLAINTEXT":
        assert creds is None and set(kp) == {"security_protocol"}
    if protocol.startswith("SASL"):
        assert kp["sasl_mechanism"] == mechanism and kp["sasl_plain_password"] == "pw-123"
        assert creds.mechanism.value == mechanism and creds.username == "svc"
        assert (creds.ssl_context is not None) == protocol.endswith("SSL")
    elif protocol == "SSL":
        assert creds.context is not None
    assert "pw-123" not in repr(s) and "pw-123" not in json.dumps(s.redacted(), default=str)
    conf = faust_config(s)
    assert conf["web_bind"] == "127.0.0.1" and conf["web_host"] == "127.0.0.1"


def test_size_limits_are_settings_with_safe_defaults():
    s = Settings.load(env={})
    assert s.max_message_bytes == 1_048_576 and s.max_batch_events == 10_000
    assert s.max_prompt_chars == 200_000
    for name in ("MAX_MESSAGE_BYTES", "MAX_BATCH_EVENTS", "MAX_PROMPT_CHARS"):
        with pytest.raises(Exception, match=name.lower()):
            Settings.load(env={f"DISTILLWATCH_{name}": "0"})
