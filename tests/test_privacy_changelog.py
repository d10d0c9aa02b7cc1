"""No prompt text at rest: a live worker on the embedded broker is fed prompts
that carry marker strings (a made-up Latin word, a Cyrillic word, a Chinese
phrase, events without a topic so that topics are inferred from the text);
every byte the worker writes to its state changelogs and summaries topic, and
its log, is then searched for them.

Before issue 18 the topic-inference vocabulary (raw prompt words, whole CJK
prompt heads) was written into the account-state changelog with every
checkpoint; it now holds 32-bit hashes.
"""

from __future__ import annotations

import time

import orjson
import pytest

from tests.conftest import consume_until, produce

pytestmark = pytest.mark.integration

MARKERS = ("quixotrombulax", "зубрилкатест", "蓝鲸数据库迁移")


def _events(n: int = 120) -> list[tuple[bytes, bytes]]:
    start = time.time() - 3600
    out = []
    for i in range(n):
        acct = f"priv-{i % 6}"
        prompt = (f"Please explain the {MARKERS[0]} configuration of service {i}, "
                  f"{MARKERS[1]} edition; {MARKERS[2]}的步骤是什么？ Explain your reasoning "
                  "step by step.")
        out.append((acct.encode(), orjson.dumps({
            "ts": start + 10.0 * i, "account_id": acct, "prompt": prompt,
            "ip": "198.51.100.7", "input_tokens": 80, "output_tokens": 700,
        })))
    # one account whose prompt is nothing but a marker (a whole CJK "head")
    out.append((b"priv-cjk", orjson.dumps({
        "ts": start + 2000.0, "account_id": "priv-cjk", "prompt": MARKERS[2] * 3,
    })))
    return out


def _read_all(broker, topic: str, timeout: float = 10.0) -> list[bytes]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=500,
                             group_id=None)
    out: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not out:
            out.extend((m.key or b"") + b"\x00" + (m.value or b"") for m in consumer)
    finally:
        consumer.close()
    return out


def _absent(blob: bytes, where: str) -> None:
    for marker in MARKERS:
        for form in (marker, marker.upper(), marker.casefold()):
            for enc in ("utf-8", "latin-1", "utf-16-le"):
                try:
                    needle = form.encode(enc)
                except UnicodeEncodeError:
                    continue
                assert needle not in blob, f"{form!r} ({enc}) found in {where}"
        # the words as JSON escapes (orjson writes UTF-8, but a latin-1 round trip
        # of the old vocabulary would show as \\u escapes)
        assert marker.encode("unicode_escape") not in blob, where


def test_changelogs_summaries_and_logs_carry_no_prompt_words(broker, worker_factory):
    from streams.service.topics import changelog_topic, cluster_changelog_topic

    worker = worker_factory(DISTILLWATCH_SUMMARIES_TOPIC=f"sum-{time.monotonic_ns()}").start()
    worker.wait_log("partitions_assigned", timeout=45)
    produce(broker, worker.events_topic, _events())

    # the accounts ask for reasoning: wait until the detector has seen the events
    # (an alert) and a checkpoint or two has been written (interval 1 s)
    consume_until(broker, worker.alerts_topic, lambda rs: len(rs) > 0, timeout=40)
    time.sleep(4.0)
    state = _read_all(broker, changelog_topic(worker.settings))
    assert state, "no account-state changelog records"
    meta = [r for r in state if b"text_topics" in r]
    assert meta, "no detector snapshot (population models) in the changelog"
    _absent(b"".join(state), "account-state changelog")
    _absent(b"".join(_read_all(broker, cluster_changelog_topic(worker.settings), 3.0)),
            "cluster-state changelog")
    _absent(b"".join(_read_all(broker, worker.env["DISTILLWATCH_SUMMARIES_TOPIC"])),
            "summaries topic")
    _absent(b"".join(_read_all(broker, worker.alerts_topic)), "alerts topic")
    worker.terminate()
    _absent(worker.log_path.read_bytes(), "worker log")
