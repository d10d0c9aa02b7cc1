"""Dead-letter payload policy (issue 18): with ``dlq_payload=redacted`` no prompt
text reaches the dead-letter topic; with ``original`` the bytes are kept and
recoverable; the topic is created with a retention."""

from __future__ import annotations

import base64
import uuid

import orjson
import pytest

from streams.errors import ConfigError
from streams.service.processor import DeadLetter, redact_payload
from streams.settings import Settings
from tests.conftest import produce

MARKER = "zq-marker-7f3a-do-not-keep"


def _raw_records(broker, topic: str, n: int, timeout: float = 20.0) -> list[bytes]:
    """The dead-letter topic's raw bytes (not decoded: the test looks for the
    marker anywhere in what the broker holds)."""
    import time

    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=300,
                             group_id=None)
    out: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(out) < n:
            out.extend(m.value for m in consumer)
    finally:
        consumer.close()
    return out


def _bad_messages() -> list[tuple[bytes, bytes]]:
    return [
        # valid JSON, rejected (no account_id): the prompt must not be kept
        (b"acct-m", orjson.dumps({"ts": 1771840800, "prompt": f"tell me {MARKER} now",
                                  "topic": f"about {MARKER}"})),
        # not JSON at all
        (b"acct-m", f"garbage {MARKER} garbage".encode()),
        # one bad item of a batch
        (b"acct-m", orjson.dumps([
            {"ts": 1771840800, "account_id": "acct-m", "prompt": "fine"},
            {"ts": "yesterday", "account_id": "acct-m", "prompt": MARKER},
        ])),
        # a prompt beyond the size limit, in an unknown field too
        (b"acct-m", orjson.dumps({"ts": 1771840800, "account_id": 42,
                                  "notes": MARKER * 3})),
    ]


@pytest.mark.integration
@pytest.mark.parametrize("policy", ["redacted", "original"])
def test_dead_letter_payload_policy(broker, worker_factory, policy):
    worker = worker_factory(DISTILLWATCH_DLQ_PAYLOAD=policy).start()
    worker.wait_log("partitions_assigned", timeout=45)
    bad = _bad_messages()
    produce(broker, worker.events_topic, bad)
    raw = _raw_records(broker, worker.dlq_topic, len(bad))
    assert len(raw) == len(bad), worker.log_tail()
    records = [orjson.loads(r) for r in raw]
    if policy == "redacted":
        for blob in raw:
            assert MARKER.encode() not in blob
            assert base64.b64encode(MARKER.encode())[:20] not in blob
        for rec in records:
            assert rec["payload"] == "redacted" and "value_b64" not in rec
            assert rec["value_redacted"]["sha256"] and rec["value_redacted"]["len"] > 0
        by_json = [r["value_redacted"]["json"] for r in records]
        assert None in by_json  # the non-JSON message: bytes dropped
        kept = next(j for j in by_json if isinstance(j, dict) and "prompt" in j)
        assert kept["ts"] == 1771840800  # identifiers and numbers stay
        assert kept["prompt"]["redacted"] and kept["prompt"]["len"] == len(f"tell me {MARKER} now")
    else:
        recovered = [base64.b64decode(r["value_b64"]) for r in records]
        assert all(MARKER.encode() in v for v in recovered)
        assert {v for v in recovered} <= {v for _, v in bad} | {
            orjson.dumps(orjson.loads(bad[2][1])[1])}
    # never in the worker's log either
    assert MARKER not in worker.log_path.read_text(errors="replace")
    worker.stop()


def test_redaction_unit():
    rec = DeadLetter("r", orjson.dumps({"account_id": "a", "prompt": MARKER,
                                        "user_agent": MARKER, "nested": {"x": [MARKER]},
                                        "model": "m" * 300}),
                     b"a", "t", 0, 1).to_record(0.0, "redacted")
    blob = orjson.dumps(rec)
    assert MARKER.encode() not in blob and b"m" * 300 not in blob
    assert rec["value_redacted"]["json"]["account_id"] == "a"
    assert redact_payload(None) is None
    orig = DeadLetter("r", b"x", None, "t", 0, 1).to_record(0.0)
    assert base64.b64decode(orig["value_b64"]) == b"x"


def test_settings_validate_policy():
    assert Settings().dlq_payload == "original" and Settings().dlq_retention_s == 604_800.0
    with pytest.raises(ConfigError, match="dlq_payload must be one of"):
        Settings(dlq_payload="maybe")
    with pytest.raises(ConfigError, match="dlq_retention_s must be >= 0"):
        Settings(dlq_retention_s=-1)
    s = Settings.load(env={"DISTILLWATCH_DLQ_PAYLOAD": "redacted"})
    assert s.dlq_payload == "redacted"


@pytest.mark.integration
def test_dlq_topic_created_with_retention(broker):
    from streams.service.topics import ensure_topics
    from tests.test_topics import _configs

    app = f"dlqret-{uuid.uuid4().hex[:8]}"
    settings = Settings.load(env={}, overrides={
        "broker": broker.url, "app_id": app, "events_topic": f"{app}-events",
        "alerts_topic": f"{app}-alerts", "dlq_topic": f"{app}-dlq", "partitions": 1,
        "dlq_retention_s": 3600})
    ensure_topics(settings)
    assert _configs(broker.bootstrap, [settings.dlq_topic])[settings.dlq_topic][
        "retention.ms"] == "3600000"
