"""StreamProcessor: validation, dead letters, batches, checkpoints and restore,
without Faust."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import orjson

from detectors.engine import AccountState, Detector
from streams.service.processor import StreamProcessor, meta_key
from tests.attack import extractor_events

ROOT = Path(__file__).resolve().parent.parent
ALERT_SCHEMA = json.loads((ROOT / "schemas/alert.schema.json").read_text())


def make(lookup=None) -> StreamProcessor:
    return StreamProcessor(Detector, AccountState, lookup=lookup, max_message_bytes=10_000)


def feed(proc: StreamProcessor, messages, partition=0):
    alerts, dead = [], []
    for offset, (key, value) in enumerate(messages):
        out = proc.handle(value, key, "events", partition, offset)
        alerts += out.alerts
        dead += out.dead
    return alerts, dead


def test_attacker_alerts_and_records_match_schema():
    proc = make()
    alerts, dead = feed(proc, extractor_events("x", start=1771840800.0))
    assert not dead
    firing = [a for a in alerts if a.status == "firing"]
    assert len(firing) == 1 and firing[0].account_id == "x"
    record = firing[0].to_record(emitted_at=1771840900.0)
    jsonschema.validate(record, ALERT_SCHEMA)
    assert "articulate" not in orjson.dumps(record).decode()


def test_dead_letters_keep_original_bytes_and_source():
    proc = make()
    raw = b'{"ts": "nope", "account_id": "a"}'
    _, dead = feed(proc, [(b"a", raw)], partition=3)
    [d] = dead
    rec = d.to_record(1771840800.0)
    assert rec["reason"].startswith("ts:")
    assert rec["source"] == {"topic": "events", "partition": 3, "offset": 0, "item": None}
    import base64

    assert base64.b64decode(rec["value_b64"]) == raw
    assert proc.rejected == 1 and proc.processed == 0


def test_batch_with_one_bad_item():
    proc = make()
    batch = orjson.dumps([{"ts": 1771840800, "account_id": "a"}, {"ts": 1771840800},
                          {"ts": 1771840801, "account_id": "a"}])
    out = proc.handle(batch, b"a", "events", 0, 0)
    assert out.events == 2 and len(out.dead) == 1 and out.dead[0].item == 1
    assert orjson.loads(out.dead[0].value) == {"ts": 1771840800}


def test_key_must_match_account():
    proc = make()
    out = proc.handle(b'{"ts": 1771840800, "account_id": "a"}', None, "events", 0, 0)
    assert out.dead and "key does not match" in out.dead[0].reason


def test_checkpoint_and_restore_continue_identically():
    events = extractor_events("x", n=400, start=1771840800.0)
    # a straight run
    straight = make()
    alerts_straight, _ = feed(straight, events)
    # a run that checkpoints half way and resumes in a new processor from the table
    first = make()
    feed(first, events[:200])
    table: dict[bytes, bytes] = {}
    for _, key, value in first.checkpoint():
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    assert b"x" in table and meta_key(0) in table
    second = make(lookup=table.get)
    alerts_a, _ = feed(first, [])
    alerts_b = []
    for offset, (key, value) in enumerate(events[200:], start=200):
        alerts_b += second.handle(value, key, "events", 0, offset).alerts
    first_half = [a for a in alerts_straight if a.ts < orjson.loads(events[200][1])["ts"]]
    combined = [a.to_record() for a in first_half] + [a.to_record() for a in alerts_b]
    assert combined == [a.to_record() for a in alerts_straight]
    # nothing changed since the checkpoint: the next checkpoint writes nothing for it
    assert first.checkpoint() == []


def test_revoke_forgets_hot_state():
    proc = make()
    feed(proc, extractor_events("x", n=10, start=1771840800.0), partition=2)
    assert 2 in proc.runners
    proc.revoke([2])
    assert 2 not in proc.runners


def test_detector_bug_dead_letters_the_event_and_keeps_going():
    class Exploding(Detector):
        def process(self, state, event):
            if event.topic == "boom":
                raise ZeroDivisionError("float division by zero")
            return super().process(state, event)

    errors = []
    proc = StreamProcessor(Exploding, AccountState,
                           on_detector_error=lambda a, e: errors.append((a, type(e).__name__)))
    good = b'{"ts": 1771840800, "account_id": "a"}'
    bad = b'{"ts": 1771840801, "account_id": "a", "topic": "boom"}'
    out = [proc.handle(v, b"a", "events", 0, i) for i, v in enumerate((good, bad, good))]
    assert [o.events for o in out] == [1, 0, 1]
    assert out[1].dead[0].reason.startswith("detector error: ZeroDivisionError")
    assert out[1].dead[0].value == bad
    assert errors == [("a", "ZeroDivisionError")]
