"""Hostile input (issue 8): hypothesis-generated bad messages interleaved with
good ones, produced to a live worker in one round. Every bad one lands in the
dead-letter topic with a reason and its original bytes, every good one is
processed (the worker's /health ``events`` counter), the worker stays up.
Also: an event months older than the account's previous one is processed,
not dead-lettered (the detector once divided by zero on it)."""

from __future__ import annotations

import base64
import time

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.helpers.broker import consume_until, produce
from tests.helpers.reliability import health, try_health, wait_until

pytestmark = pytest.mark.integration

T0 = 1771840800.0
MAX_BYTES = 65536
MAX_BATCH = 50


def _obj(account: str, **fields) -> dict:
    return {"ts": T0, "account_id": account, **fields}


@st.composite
def bad_message(draw) -> tuple[bytes, bytes, str]:
    """(key, value, kind): invalid by construction, whatever hypothesis draws."""
    acct = "hostile-" + draw(st.text("abcdefgh0123456789", min_size=1, max_size=8))
    key = acct.encode()
    kind = draw(st.sampled_from([
        "random_bytes", "invalid_utf8", "deep_nesting", "huge_account_id", "huge_field",
        "nan", "infinity", "wrong_type", "ts_range", "oversize", "key_mismatch",
        "not_object", "batch_too_big", "missing_field", "empty_account",
    ]))
    if kind == "random_bytes":  # 0xff can start no JSON document
        value = b"\xff" + draw(st.binary(max_size=200))
    elif kind == "invalid_utf8":
        junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80"]))
        value = b'{"ts": 1771840800, "account_id": "' + key + junk + b'"}'
    elif kind == "deep_nesting":
        depth = draw(st.integers(1100, 5000))
        value = (b'{"ts": 1771840800, "account_id": "' + key + b'", "x": '
                 + b"[" * depth + b"]" * depth + b"}")
    elif kind == "huge_account_id":
        long_id = acct + "x" * draw(st.integers(300, 5000))
        key = long_id.encode()
        value = orjson.dumps(_obj(long_id))
    elif kind == "huge_field":
        field = draw(st.sampled_from(["model", "topic", "user_agent", "ip", "request_id"]))
        value = orjson.dumps(_obj(acct, **{field: "y" * draw(st.integers(1100, 20000))}))
    elif kind == "nan":
        value = b'{"ts": NaN, "account_id": "' + key + b'"}'
    elif kind == "infinity":
        which = draw(st.sampled_from([b"Infinity", b"-Infinity", b"1e999"]))
        value = b'{"ts": ' + which + b', "account_id": "' + key + b'"}'
    elif kind == "wrong_type":
        field, bad = draw(st.sampled_from([
            ("ts", True), ("ts", [T0]), ("ts", {"s": T0}), ("account_id", 42),
            ("input_tokens", "lots"), ("output_tokens", -5), ("input_tokens", 10**12),
            ("prompt", 5), ("model", ["m"]), ("topic", {"a": 1}),
        ]))
        obj = _obj(acct)
        obj[field] = bad
        value = orjson.dumps(obj)
    elif kind == "ts_range":
        ts = draw(st.sampled_from([0, 100, 9.4e8, 4.2e9, 5e15, -1, "1999-12-31T23:59:59Z",
                                   "2100-01-02T00:00:00Z", "yesterday"]))
        value = orjson.dumps({"ts": ts, "account_id": acct})
    elif kind == "oversize":
        value = orjson.dumps(_obj(acct, pad="z" * (MAX_BYTES + draw(st.integers(1, 5000)))))
    elif kind == "key_mismatch":
        key = draw(st.sampled_from([b"someone-else", b"", acct.upper().encode() + b"!"]))
        value = orjson.dumps(_obj(acct))
    elif kind == "not_object":
        value = draw(st.sampled_from([b"42", b'"str"', b"null", b"true", b"[]", b"[1, 2]"]))
    elif kind == "batch_too_big":
        value = orjson.dumps([_obj(acct)] * (MAX_BATCH + draw(st.integers(1, 20))))
    elif kind == "missing_field":
        value = orjson.dumps(draw(st.sampled_from([{"ts": T0}, {"account_id": acct}, {}])))
    else:  # empty_account
        key = b""
        value = orjson.dumps(_obj(""))
    return key, value, kind


def _generate(n: int) -> list[tuple[bytes, bytes, str]]:
    """``n`` bad messages, deterministic (fixed seed), outside any test loop."""
    out: list[tuple[bytes, bytes, str]] = []

    @settings(derandomize=True, max_examples=n, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), deadline=None)
    @given(bad_message())
    def collect(message: tuple[bytes, bytes, str]) -> None:
        out.append(message)

    collect()
    return out[:n]


def test_hostile_input_is_dead_lettered_and_good_input_processed(broker, worker_factory):
    bad = _generate(150)
    kinds = {k for _, _, k in bad}
    assert len(kinds) >= 12, kinds
    good = []
    for i in range(300):
        acct = f"good-{i % 25:02d}"
        good.append((acct.encode(), orjson.dumps({
            "ts": T0 + i, "account_id": acct, "topic": "coding/python",
            "prompt": "héllo \u2028 wörld \x00 " * (i % 4), "input_tokens": i,
        })))
    # interleave: a good one, a bad one, ...
    stream: list[tuple[bytes, bytes]] = []
    for i in range(max(len(good), len(bad))):
        if i < len(good):
            stream.append(good[i])
        if i < len(bad):
            stream.append(bad[i][:2])

    worker = worker_factory(DISTILLWATCH_MAX_MESSAGE_BYTES=str(MAX_BYTES),
                            DISTILLWATCH_MAX_BATCH_EVENTS=str(MAX_BATCH)).start()
    worker.wait_log("partitions_assigned", timeout=45)
    port = int(worker.env["DISTILLWATCH_WEB_PORT"])
    started = time.monotonic()
    produce(broker, worker.events_topic, stream)

    done = wait_until(lambda: (h := try_health(port)) and h["events"] + h["rejected"]
                      >= len(stream) and h, timeout=60)
    assert done, worker.log_tail()
    took = time.monotonic() - started
    h = health(port)
    assert h["events"] == len(good), h
    assert h["rejected"] >= len(bad), h  # a bad batch dead-letters each bad item
    assert worker.proc.poll() is None  # still up

    dead = consume_until(broker, worker.dlq_topic, lambda rs: len(rs) >= h["rejected"], 20)
    assert len(dead) == h["rejected"]
    # every bad message has at least one dead letter (by its source offset)
    assert len({(r["source"]["partition"], r["source"]["offset"]) for r in dead}) == len(bad)
    originals = {v for _, v, _ in bad}
    for record in dead:
        assert record["reason"], record
        assert not record["reason"].startswith("detector error"), record["reason"]
        assert record["source"]["topic"] == worker.events_topic
        raw = base64.b64decode(record["value_b64"])
        assert raw in originals or record["source"]["item"] is not None
    reasons = sorted({r["reason"].split(":")[0] for r in dead})
    print(f"\n{len(bad)} bad ({len(kinds)} kinds) + {len(good)} good in {took:.1f}s; "
          f"DLQ reasons: {reasons}")
    # the worker still detects after all that
    assert worker.terminate() < 10.0 and worker.proc.returncode == 0, worker.log_tail()


def test_event_months_out_of_order_is_processed(broker, worker_factory):
    worker = worker_factory().start()
    worker.wait_log("partitions_assigned", timeout=45)
    port = int(worker.env["DISTILLWATCH_WEB_PORT"])
    acct = "time-traveller"
    events = [(acct.encode(), orjson.dumps({
        "ts": T0 + i * 5, "account_id": acct, "topic": "math/algebra",
        "prompt": f"solve {i}", "input_tokens": 10, "output_tokens": 20,
    })) for i in range(50)]
    old = T0 - 120 * 86400  # four months before the previous event
    events += [(acct.encode(), orjson.dumps({"ts": old + k, "account_id": acct,
                                             "topic": "math/algebra", "prompt": "late"}))
               for k in range(3)]
    events += [(acct.encode(), orjson.dumps({"ts": T0 + 300 + k, "account_id": acct}))
               for k in range(5)]
    produce(broker, worker.events_topic, events)
    h = wait_until(lambda: (x := try_health(port)) and x["events"] + x["rejected"]
                   >= len(events) and x, timeout=30)
    assert h, worker.log_tail()
    dead = consume_until(broker, worker.dlq_topic, lambda rs: False, timeout=2)
    assert worker.proc.poll() is None
    assert not dead, f"valid out-of-order events were dead-lettered: {[r['reason'] for r in dead]}"
    assert h["events"] == len(events), h
    assert worker.terminate() < 10.0
