"""Event schema parsing: unit tests and hostile input (hypothesis)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.errors import InvalidEvent
from detectors.schema import decode_message, format_ts, parse_event, parse_ts

ROOT = Path(__file__).resolve().parents[2]
EVENT_SCHEMA = json.loads((ROOT / "schemas/event.schema.json").read_text())


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-02-23T10:00:00Z", 1771840800.0),
        ("2026-02-23T11:00:00+01:00", 1771840800.0),
        ("2026-02-23T10:00:00.5Z", 1771840800.5),
        (1771840800, 1771840800.0),
        (1771840800.25, 1771840800.25),
        (1771840800000, 1771840800.0),
    ],
)
def test_parse_ts_forms(value, expected):
    assert parse_ts(value) == expected


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("yesterday", "not RFC 3339"),
        ("2026-02-23T10:00:00", "lacks a UTC offset"),
        (True, "boolean"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (-5, "outside"),
        (1e16, "outside"),
        (None, "missing"),
        ([1], "expected string or number"),
    ],
)
def test_parse_ts_rejects(value, fragment):
    with pytest.raises(InvalidEvent, match=fragment):
        parse_ts(value)


def test_format_ts_roundtrip():
    for ts in (1771840800.0, 1771840800.999, 1771840800.9996):
        assert abs(parse_ts(format_ts(ts)) - ts) < 0.001


def test_optional_fields_and_unknown_fields():
    event = parse_event({
        "ts": 1771840800, "account_id": "a", "topic": None, "input_tokens": 12.0,
        "output_tokens": 3, "extra": {"kept": "ignored"}, "ip": "10.0.0.1",
    })
    assert event.topic is None and event.input_tokens == 12 and event.ip == "10.0.0.1"


@pytest.mark.parametrize(
    "obj, fragment",
    [
        ([], "expected JSON object, got array"),
        ({"ts": 1771840800, "account_id": ""}, "empty"),
        ({"ts": 1771840800, "account_id": "a\x00b"}, "non-printable"),
        ({"ts": 1771840800, "account_id": "x" * 300}, "longer than"),
        ({"ts": 1771840800, "account_id": "a", "input_tokens": -1}, "outside"),
        ({"ts": 1771840800, "account_id": "a", "input_tokens": "12"}, "integer"),
        ({"ts": 1771840800, "account_id": "a", "topic": 5}, "topic: expected string"),
        ({"ts": 1771840800, "account_id": "a", "prompt": "x" * 300_001}, "prompt"),
    ],
)
def test_parse_event_rejects(obj, fragment):
    with pytest.raises(InvalidEvent, match=fragment):
        parse_event(obj, max_prompt_chars=300_000)


def test_decode_message_limits():
    with pytest.raises(InvalidEvent, match="exceeds limit"):
        decode_message(b"{}" + b" " * 100, max_bytes=50)
    with pytest.raises(InvalidEvent, match="empty batch"):
        decode_message(b"[]")
    with pytest.raises(InvalidEvent, match="batch of 3"):
        decode_message(b"[{},{},{}]", max_batch=2)
    with pytest.raises(InvalidEvent, match="null value"):
        decode_message(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidEvent, match="not JSON"):
        decode_message(b"\xff\xfe invalid utf-8")
    with pytest.raises(InvalidEvent, match="not JSON"):
        decode_message(b'{"ts": NaN, "account_id": "a"}')


def test_valid_events_match_the_shipped_json_schema():
    for obj in (
        {"ts": "2026-02-23T10:00:00Z", "account_id": "a"},
        {"ts": 1771840800, "account_id": "a", "topic": "coding/python", "prompt": "hi",
         "input_tokens": 3, "output_tokens": 4, "model": "m", "org_id": "o", "ip": "1.2.3.4"},
    ):
        parse_event(obj)
        jsonschema.validate(obj, EVENT_SCHEMA)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children,
                                                                       max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_never_crash(raw):
    try:
        for item in decode_message(raw):
            try:
                parse_event(item)
            except InvalidEvent:
                pass
    except InvalidEvent as exc:
        assert exc.reason


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(
    st.sampled_from(["ts", "account_id", "topic", "prompt", "input_tokens", "output_tokens",
                     "model", "ip", "other"]),
    json_values, max_size=9,
))
def test_hostile_objects_either_parse_or_raise_invalid_event(obj):
    try:
        event = parse_event(obj)
    except InvalidEvent as exc:
        assert exc.reason
        return
    assert isinstance(event.account_id, str) and event.account_id.strip()
    assert math.isfinite(event.ts)
    assert orjson.loads(orjson.dumps(obj)) is not None
