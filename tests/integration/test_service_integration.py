"""The always-on service end to end, on the real embedded broker: events
produced with kafka-python reach the agent, an attacker yields an alert within
10 s, malformed input lands on the dead-letter topic with its reason while the
worker keeps processing, and SIGTERM stops the worker within 10 s."""

from __future__ import annotations

import base64
import time

import orjson
import pytest

from tests.helpers.attack import benign_events, extractor_events
from tests.helpers.broker import consume_until, produce

pytestmark = pytest.mark.integration


def test_attacker_alert_and_dead_letters(broker, worker_factory):
    worker = worker_factory(DISTILLWATCH_MAX_MESSAGE_BYTES="65536").start()
    worker.wait_log("partitions_assigned", timeout=45)

    produce(broker, worker.events_topic, benign_events())
    malformed = [
        (b"acct-x", b"this is not json"),
        (b"acct-x", b"[1, 2"),
        (b"acct-x", b'"just a string"'),
        (b"acct-x", b'{"ts": 1771840800}'),
        (b"acct-x", b'{"ts": "yesterday", "account_id": "acct-x"}'),
        (b"acct-x", b'{"ts": 1771840800, "account_id": 42}'),
        (b"someone-else", b'{"ts": 1771840800, "account_id": "acct-x"}'),
        (b"acct-x", b'{"ts": 1771840800, "account_id": "acct-x", "pad": "'
         + b"x" * 100_000 + b'"}'),
    ]
    produce(broker, worker.events_topic, malformed)
    attack = extractor_events("harvester-1")
    produce(broker, worker.events_topic, attack)
    produced_at = time.monotonic()

    alerts = consume_until(
        broker, worker.alerts_topic,
        lambda rs: any(r.get("account_id") == "harvester-1" and r["status"] == "firing"
                       for r in rs),
        timeout=10,
    )
    elapsed = time.monotonic() - produced_at
    firing = [r for r in alerts if r.get("account_id") == "harvester-1"]
    assert firing, f"no alert within 10 s\n{worker.log_tail()}"
    assert elapsed <= 10.0
    alert = firing[0]
    assert alert["dedup_key"] == f"{alert['detector']}:harvester-1"
    assert alert["severity"] in ("critical", "error", "warning", "info")
    assert 0.0 <= alert["score"] <= 1.0 and len(alert["summary"]) <= 120
    assert alert["ts"].endswith("Z") and alert["emitted_at"].endswith("Z")
    assert "imagine and articulate" not in orjson.dumps(alert).decode()  # prompts never leak
    assert not [r for r in alerts if str(r.get("account_id", "")).startswith("benign-")]

    dead = consume_until(broker, worker.dlq_topic, lambda rs: len(rs) >= len(malformed), 10)
    assert len(dead) == len(malformed), dead
    by_offset = sorted(dead, key=lambda r: r["source"]["offset"])
    originals = {value for _, value in malformed}
    for record in by_offset:
        assert record["reason"]
        assert record["source"]["topic"] == worker.events_topic
        assert isinstance(record["source"]["partition"], int)
        assert isinstance(record["source"]["offset"], int)
        assert base64.b64decode(record["value_b64"]) in originals
    reasons = " | ".join(r["reason"] for r in dead)
    for fragment in ("not JSON", "expected JSON object", "account_id: missing",
                     "not RFC 3339", "account_id: expected string", "key does not match",
                     "exceeds limit"):
        assert fragment in reasons, reasons

    # the worker kept going after the bad messages: a second attacker still alerts
    produce(broker, worker.events_topic, extractor_events("harvester-2"))
    alerts = consume_until(
        broker, worker.alerts_topic,
        lambda rs: any(r.get("account_id") == "harvester-2" for r in rs), timeout=10,
    )
    assert any(r.get("account_id") == "harvester-2" for r in alerts), worker.log_tail()
    rejected = [r for r in worker.log_records() if r.get("event") == "event_rejected"]
    assert len(rejected) == len(malformed)  # logged once each
    assert all("prompt" not in r for r in rejected)

    took = worker.terminate()
    assert took < 10.0
    assert worker.proc.returncode == 0, worker.log_tail()


def test_batched_messages(broker, worker_factory):
    worker = worker_factory().start()
    worker.wait_log("partitions_assigned", timeout=45)
    attack = extractor_events("batcher")
    batches = []
    for i in range(0, len(attack), 100):
        chunk = [orjson.loads(v) for _, v in attack[i:i + 100]]
        batches.append((b"batcher", orjson.dumps(chunk)))
    last_ts = orjson.loads(attack[-1][1])["ts"]
    bad_item = [{"ts": last_ts + 1, "account_id": "batcher"}, {"ts": last_ts + 1}]
    batches.append((b"batcher", orjson.dumps(bad_item)))
    produce(broker, worker.events_topic, batches)
    alerts = consume_until(
        broker, worker.alerts_topic, lambda rs: any(r.get("account_id") == "batcher" for r in rs),
        timeout=15,
    )
    assert any(r.get("account_id") == "batcher" for r in alerts), worker.log_tail()
    dead = consume_until(broker, worker.dlq_topic, lambda rs: len(rs) >= 1, 10)
    assert len(dead) == 1 and dead[0]["source"]["item"] == 1
    assert dead[0]["reason"] == "account_id: missing"


def test_compressed_record_batches(broker, worker_factory):
    """Producers on real clusters compress their record batches. Every codec
    Kafka defines is decoded: before aiokafka's codecs were installed, one lz4
    batch crashed the worker's fetcher (UnsupportedCodecError) and the worker
    exited. The attack is split over four producers, one per codec, into the
    same topic; every event counts and the account still alerts."""
    import asyncio
    import json
    import urllib.request

    from aiokafka import AIOKafkaProducer

    worker = worker_factory().start()
    worker.wait_log("partitions_assigned", timeout=45)
    attack = extractor_events("squeezer", n=800)
    codecs = ("gzip", "snappy", "lz4", "zstd")

    async def send(codec: str, messages: list[tuple[bytes, bytes]]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=20,
                                    compression_type=codec)
        await producer.start()
        try:
            for key, value in messages:
                await producer.send(worker.events_topic, key=key, value=value)
            await producer.flush()
        finally:
            await producer.stop()

    share = len(attack) // len(codecs)
    for i, codec in enumerate(codecs):  # in order: the account's events arrive in time order
        asyncio.run(send(codec, attack[i * share:(i + 1) * share]))

    alerts = consume_until(
        broker, worker.alerts_topic,
        lambda rs: any(r.get("account_id") == "squeezer" for r in rs), timeout=15,
    )
    assert any(r.get("account_id") == "squeezer" for r in alerts), worker.log_tail()
    url = f"http://127.0.0.1:{worker.env['DISTILLWATCH_WEB_PORT']}/health"
    deadline = time.monotonic() + 15
    health: dict[str, object] = {}
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                health = json.loads(response.read())
        except OSError:  # a worker that died: the assertions below show its log
            if worker.proc is not None and worker.proc.poll() is not None:
                break
        if health.get("events") == len(attack):
            break
        time.sleep(0.3)
    assert health.get("events") == len(attack), (health, worker.log_tail())
    assert health.get("rejected") == 0
    assert worker.proc is not None and worker.proc.poll() is None, worker.log_tail()
    assert "UnsupportedCodecError" not in worker.log_tail(200)
