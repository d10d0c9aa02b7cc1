"""Dead-letter payload policy (issue 18): with ``dlq_payload=redacted`` no prompt
text reaches the dead-letter topic; with ``original`` the bytes are kept and
recoverable; the topic is created with a retention.

The parts on real servers or subprocesses: tests/integration/test_dlq_privacy_live.py."""

from __future__ import annotations

import base64

import orjson
import pytest

from streams.errors import ConfigError
from streams.service.processor import DeadLetter, redact_payload
from streams.settings import Settings

MARKER = "zq-marker-7f3a-do-not-keep"


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
