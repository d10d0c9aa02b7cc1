"""The batched-message form end to end through the CLIs: ``distillwatch
simulate --batch N`` writes JSON arrays, and ``distillwatch publish --batch N``
turns a log into messages that each carry a JSON array of one account's events
(the agent accepting both forms is ``test_service_integration``'s)."""

from __future__ import annotations

import time

import orjson
import pytest

from streams.cli import main


def _simulate(tmp_path, name, *extra):
    out = tmp_path / f"{name}.jsonl"
    rc = main(["simulate", "--hours", "0.05", "--accounts", "20", "--seed", "3",
               "--out", str(out), "--labels", str(tmp_path / f"{name}-labels.jsonl"), *extra])
    assert rc == 0
    return out


def test_simulate_batch_writes_arrays_of_the_same_events(tmp_path):
    plain = _simulate(tmp_path, "plain")
    batched = _simulate(tmp_path, "batched", "--batch", "7")
    events = [orjson.loads(line) for line in plain.read_bytes().splitlines()]
    lines = [orjson.loads(line) for line in batched.read_bytes().splitlines()]
    assert all(isinstance(line, list) and 1 <= len(line) <= 7 for line in lines)
    assert all(len(line) == 7 for line in lines[:-1])
    assert [e for line in lines for e in line] == events


def _publish_and_check(tmp_path, broker, source):
    from kafka import KafkaConsumer

    n_events = sum(len(v) if isinstance(v := orjson.loads(line), list) else 1
                   for line in source.read_bytes().splitlines())
    topic = f"batch-cli-{time.monotonic_ns()}"
    rc = main(["publish", str(source), "--broker", broker.url, "--topic", topic, "--max",
               "--batch", "10", "--no-progress"])
    assert rc == 0
    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=2000,
                             group_id=None)
    try:
        messages = list(consumer)
    finally:
        consumer.close()
    assert messages
    seen = 0
    for m in messages:
        items = orjson.loads(m.value)
        assert isinstance(items, list) and 1 <= len(items) <= 10
        assert {item["account_id"].encode() for item in items} == {m.key}
        seen += len(items)
    assert seen == n_events
    assert any(len(orjson.loads(m.value)) > 1 for m in messages)


@pytest.mark.integration
def test_publish_batch_sends_one_accounts_events_per_array(tmp_path, broker):
    _publish_and_check(tmp_path, broker, _simulate(tmp_path, "src"))


@pytest.mark.integration
def test_publish_reads_a_batched_log_file(tmp_path, broker):
    _publish_and_check(tmp_path, broker, _simulate(tmp_path, "src", "--batch", "5"))
