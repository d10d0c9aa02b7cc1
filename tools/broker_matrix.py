"""Compatibility matrix for the embedded Kafka-compatible broker (issue 10).

Every check is a function ``check_x(broker) -> dict`` that runs against an
already started :class:`~streams.broker.embedded.EmbeddedBroker` and returns a result
with ``status`` (``pass`` | ``fail`` | ``skip`` | ``not claimed``), ``detail``
and, where it measures something, numbers (seconds, counts). Every wait inside
a check is bounded. ``tests/unit/test_broker_matrix.py`` runs the same checks
against the default broker in ``make test``;

    python -m tools.broker_matrix --kind tansu [--json] [--only a,b]

runs them against any kind and prints the table in ``docs/broker.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streams.broker.embedded import KINDS, EmbeddedBroker, kind_from_env

Result = dict[str, Any]

#: Consumer-group settings recommended for the embedded broker (issue 2).
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 1000
#: A consumer group must have its partitions within this many seconds.
JOIN_BOUND_S = 10.0
ALERTS_TOPIC = "distillwatch-alerts"


def _uid() -> str:
    return uuid.uuid4().hex[:10]


def _ok(detail: str = "", **metrics: Any) -> Result:
    return {"status": "pass", "detail": detail, **metrics}


def _fail(detail: str, **metrics: Any) -> Result:
    return {"status": "fail", "detail": detail, **metrics}


def _run_async(coro: Any, timeout: float) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def _create_topic(
    bootstrap: str, name: str, partitions: int = 1, configs: dict[str, str] | None = None
) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        admin.create_topics(
            [
                NewTopic(
                    name,
                    num_partitions=partitions,
                    replication_factor=1,
                    topic_configs=configs or {},
                )
            ]
        )
    finally:
        admin.close()


def _partition_count(bootstrap: str, topic: str) -> int | None:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        parts = consumer.partitions_for_topic(topic)
        return len(parts) if parts else None
    finally:
        consumer.close()


def _read_all(
    bootstrap: str, topic: str, idle_ms: int = 2000
) -> list[tuple[bytes | None, bytes | None, int, int]]:
    """Every record of ``topic`` from the start, no group: (key, value, partition, offset)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        consumer_timeout_ms=idle_ms,
        auto_offset_reset="earliest",
        request_timeout_ms=10000,
    )
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        return [(m.key, m.value, m.partition, m.offset) for m in consumer]
    finally:
        consumer.close()


# --------------------------------------------------------------------------- kafka-python


def check_kafka_python(broker: EmbeddedBroker) -> Result:
    """kafka-python: keyed produce, group consume with commit, committed offset visible."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    topic, group, n = f"mx-kp-{_uid()}", f"g-kp-{_uid()}", 20
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    try:
        for i in range(n):
            producer.send(topic, key=f"k{i % 4}".encode(), value=f"v{i}".encode())
        producer.flush(15)
    finally:
        producer.close(5)
    t0 = time.monotonic()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=int(JOIN_BOUND_S * 1000) + 5000,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
    )
    try:
        got = []
        first = None
        for msg in consumer:
            first = first or time.monotonic() - t0
            got.append(msg.value)
            if len(got) == n:
                break
        consumer.commit()
        parts = sorted(consumer.partitions_for_topic(topic) or ())
        committed = {p: consumer.committed(TopicPartition(topic, p)) for p in parts}
    finally:
        consumer.close()
    if len(got) != n:
        return _fail(f"group consumer read {len(got)}/{n}")
    if sum(c or 0 for c in committed.values()) != n:
        return _fail(f"committed offsets {committed} do not add up to the {n} records read")
    return _ok(
        f"{n} records produced to an auto-created topic ({len(parts)} partitions), "
        f"read by a group, offsets committed",
        first_record_s=round(first or 0.0, 2),
    )


# --------------------------------------------------------------------------- aiokafka


async def _aiokafka_roundtrip(
    bootstrap: str, producer_kwargs: dict[str, Any], n: int = 10
) -> Result:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = f"mx-aio-{_uid()}"
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, request_timeout_ms=10000, **producer_kwargs
    )
    await producer.start()
    try:
        for i in range(n):
            await producer.send_and_wait(topic, key=b"k", value=f"v{i}".encode())
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{_uid()}",
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
    )
    await consumer.start()
    try:
        got: list[bytes] = []
        while len(got) < n:
            batch = await consumer.getmany(timeout_ms=1000)
            got += [m.value for msgs in batch.values() for m in msgs]
    finally:
        await consumer.stop()
    if got != [f"v{i}".encode() for i in range(n)]:
        return _fail(f"read back {got!r}")
    return _ok(f"{n} records, in order, exactly once")


def check_aiokafka_plain(broker: EmbeddedBroker) -> Result:
    """aiokafka producer (acks=all) and group consumer."""
    try:
        return _run_async(_aiokafka_roundtrip(broker.bootstrap, {"acks": "all"}), 30)
    except Exception as exc:  # noqa: BLE001 - a failing check is a result
        return _fail(f"{type(exc).__name__}: {exc}")


def check_aiokafka_idempotent(broker: EmbeddedBroker) -> Result:
    """aiokafka idempotent producer (InitProducerId + sequence numbers)."""
    try:
        return _run_async(_aiokafka_roundtrip(broker.bootstrap, {"enable_idempotence": True}), 30)
    except Exception as exc:  # noqa: BLE001
        return _fail(f"{type(exc).__name__}: {exc}")


async def _aiokafka_transactions(bootstrap: str) -> Result:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = f"mx-txn-{_uid()}"
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id=f"tx-{_uid()}",
        request_timeout_ms=10000,
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed-1")
            await producer.send_and_wait(topic, b"committed-2")
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"aborted")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed-3")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{_uid()}",
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
    )
    await consumer.start()
    got: list[bytes] = []
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(got) < 3:
            batch = await consumer.getmany(timeout_ms=1000)
            got += [m.value for msgs in batch.values() for m in msgs]
        batch = await consumer.getmany(timeout_ms=1000)  # anything after the last commit?
        got += [m.value for msgs in batch.values() for m in msgs]
    finally:
        await consumer.stop()
    expected = [b"committed-1", b"committed-2", b"committed-3"]
    if got != expected:
        return _fail(f"read_committed consumer read {got!r}, expected {expected!r}")
    return _ok("commit, abort, commit; read_committed sees only the committed records")


def check_aiokafka_transactional(broker: EmbeddedBroker) -> Result:
    """aiokafka transactional producer + read_committed consumer (what exactly-once needs)."""
    try:
        return _run_async(_aiokafka_transactions(broker.bootstrap), 40)
    except Exception as exc:  # noqa: BLE001
        return _fail(f"{type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------- librdkafka


def check_confluent_producer(broker: EmbeddedBroker) -> Result:
    """confluent-kafka (librdkafka) idempotent producer writes an alert to distillwatch-alerts."""
    from confluent_kafka import Producer

    alert_id = _uid()
    reports: list[Any] = []
    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "enable.idempotence": True,
            "message.timeout.ms": 15000,
        }
    )
    producer.produce(
        ALERTS_TOPIC,
        key=b"acct-1",
        value=json.dumps(
            {"alert_id": alert_id, "status": "firing", "source": "confluent"}
        ).encode(),
        on_delivery=lambda err, msg: reports.append((err, msg)),
    )
    remaining = producer.flush(20)
    if remaining or not reports:
        return _fail(f"not delivered within 20 s ({remaining} in queue)")
    err, msg = reports[0]
    if err is not None:
        return _fail(f"delivery error: {err}")
    return _ok(
        f"delivered to {msg.topic()}[{msg.partition()}]@{msg.offset()} (idempotent)",
        librdkafka=_librdkafka_version(),
    )


def _librdkafka_version() -> str:
    from confluent_kafka import libversion

    return str(libversion()[0])


def check_confluent_group_consumer(broker: EmbeddedBroker) -> Result:
    """confluent-kafka group consumer reads an alert from distillwatch-alerts (the on-call path)."""
    from confluent_kafka import Consumer
    from kafka import KafkaProducer

    alert_id = _uid()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    try:
        producer.send(
            ALERTS_TOPIC,
            key=b"acct-2",
            value=json.dumps({"alert_id": alert_id, "status": "firing"}).encode(),
        )
        producer.flush(15)
    finally:
        producer.close(5)
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": f"oncall-{_uid()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS,
        }
    )
    t0 = time.monotonic()
    found = None
    try:
        consumer.subscribe([ALERTS_TOPIC])
        while time.monotonic() - t0 < 20:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                continue
            if json.loads(msg.value()).get("alert_id") == alert_id:
                found = time.monotonic() - t0
                consumer.commit(message=msg, asynchronous=False)
                break
    finally:
        consumer.close()
    if found is None:
        return _fail(f"group consumer read nothing of ours from {ALERTS_TOPIC} within 20 s")
    return _ok(
        f"read the alert from {ALERTS_TOPIC} and committed",
        first_record_s=round(found, 2),
        librdkafka=_librdkafka_version(),
    )


def check_kcat(broker: EmbeddedBroker) -> Result:
    """kcat (Debian package, its own librdkafka): metadata, produce, read distillwatch-alerts."""
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    if not kcat:
        return {
            "status": "skip",
            "detail": "kcat not installed (apt-get install kcat); "
            "the librdkafka check that always runs is confluent-kafka",
        }
    alert_id = _uid()
    run = lambda *args, **kw: subprocess.run(  # noqa: E731
        [kcat, "-b", broker.bootstrap, *args], capture_output=True, timeout=20, **kw
    )
    meta = run("-L", "-t", ALERTS_TOPIC)
    if meta.returncode != 0:
        return _fail(f"kcat -L: {meta.stderr.decode(errors='replace').strip()[:200]}")
    prod = run(
        "-P",
        "-t",
        ALERTS_TOPIC,
        "-k",
        "acct-3",
        input=json.dumps({"alert_id": alert_id, "status": "firing"}).encode(),
    )
    if prod.returncode != 0:
        return _fail(f"kcat -P: {prod.stderr.decode(errors='replace').strip()[:200]}")
    cons = run("-C", "-t", ALERTS_TOPIC, "-o", "beginning", "-e", "-q", "-f", "%k %s\n")
    if cons.returncode != 0 or alert_id.encode() not in cons.stdout:
        return _fail(
            f"kcat -C rc={cons.returncode}: {cons.stderr.decode(errors='replace').strip()[:200]}"
        )
    version = subprocess.run([kcat, "-V"], capture_output=True, timeout=5).stdout.decode()
    import re

    found = re.search(r"Version (\S+).*librdkafka (\S+)", version)
    lib = f"kcat {found.group(1)}, librdkafka {found.group(2)}" if found else "?"
    return _ok(
        f"metadata, produce, read {ALERTS_TOPIC} ({len(cons.stdout.splitlines())} records)",
        kcat=lib,
    )


# --------------------------------------------------------------------------- groups and topics


async def _join_times(bootstrap: str) -> Result:
    from aiokafka import AIOKafkaConsumer

    topic, group = f"mx-join-{_uid()}", f"g-join-{_uid()}"
    _create_topic(bootstrap, topic, partitions=4)

    def make() -> AIOKafkaConsumer:
        # as Faust configures its group consumer: manual commits, short session
        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        )

    first, second = make(), make()
    try:
        t0 = time.monotonic()
        await first.start()  # aiokafka >= 0.11 returns once the first assignment is done
        while not first.assignment():
            await first.getmany(timeout_ms=100)
        join1 = time.monotonic() - t0
        t0 = time.monotonic()
        await asyncio.gather(second.start(), _poll_until_split(first, second, 4))
        join2 = time.monotonic() - t0
    finally:
        await second.stop()
        await first.stop()
    status = "pass" if max(join1, join2) <= JOIN_BOUND_S else "fail"
    return {
        "status": status,
        "detail": f"aiokafka, manual commits, session {SESSION_TIMEOUT_MS / 1000:.0f} s, "
        f"heartbeat {HEARTBEAT_INTERVAL_MS / 1000:.0f} s: first member "
        f"{join1:.1f} s, rebalance to 2 members {join2:.1f} s "
        f"(bound {JOIN_BOUND_S:.0f} s)",
        "join_s": round(join1, 2),
        "rebalance_s": round(join2, 2),
    }


async def _poll_until_split(first: Any, second: Any, n_parts: int) -> None:
    """Keep ``first`` polling until the two members own all partitions between them."""
    while True:
        await first.getmany(timeout_ms=100)
        a, b = first.assignment(), second.assignment()
        if a and b and len(a | b) == n_parts and not (a & b):
            return


async def _autocommit_rebalance(bootstrap: str, wait: float) -> Result:
    from aiokafka import AIOKafkaConsumer

    topic, group = f"mx-ac-{_uid()}", f"g-ac-{_uid()}"
    _create_topic(bootstrap, topic, partitions=4)

    def make() -> AIOKafkaConsumer:  # aiokafka defaults: enable_auto_commit=True
        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        )

    first, second = make(), make()
    try:
        await first.start()
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(
                asyncio.gather(second.start(), _poll_until_split(first, second, 4)), wait
            )
        except TimeoutError:
            return _fail(
                f"a second auto-committing member never got partitions within {wait:.0f} s: "
                "OffsetCommit during the rebalance is answered ILLEGAL_GENERATION and "
                "aiokafka's auto-commit retries it forever instead of rejoining"
            )
        took = time.monotonic() - t0
    finally:
        await asyncio.wait_for(
            asyncio.gather(second.stop(), first.stop(), return_exceptions=True), 15
        )
    return _ok(
        f"a second auto-committing member joined; rebalance {took:.1f} s",
        rebalance_s=round(took, 2),
    )


def check_aiokafka_autocommit_rebalance(broker: EmbeddedBroker, wait: float = 20.0) -> Result:
    """aiokafka consumers with their default auto-commit: a second member joins (rebalance)."""
    try:
        return _run_async(_autocommit_rebalance(broker.bootstrap, wait), wait + 40)
    except Exception as exc:  # noqa: BLE001
        return _fail(f"{type(exc).__name__}: {exc}")


async def _fetch_size(bootstrap: str, records: int, size: int, limit: int) -> Result:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = f"mx-fetch-{_uid()}"
    _create_topic(bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20,
                                max_batch_size=256 * 1024)
    await producer.start()
    try:
        value = b"x" * size
        sends = [await producer.send(topic, value) for _ in range(records)]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest",
                                max_partition_fetch_bytes=limit, fetch_max_bytes=limit)
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=5000)
        got = sum(len(v) for v in batch.values())
    finally:
        await consumer.stop()
    # a broker may exceed the limit by one record batch (so that a large one
    # still makes progress), never by more
    allowed = limit // size + 256 * 1024 // size + 1
    detail = (f"one fetch with max_partition_fetch_bytes={limit:,} returned {got:,} records "
              f"of {size:,} B ({got * size / 1e6:.1f} MB) of {records:,}")
    if got > allowed:
        return _fail(detail + ": the fetch size limit is ignored, so a consumer with a "
                     "backlog holds the whole backlog in memory", returned=got)
    return _ok(detail, returned=got)


def check_fetch_size_limit(broker: EmbeddedBroker) -> Result:
    """A fetch returns about ``max_partition_fetch_bytes``, not the whole backlog."""
    try:
        return _run_async(_fetch_size(broker.bootstrap, 20_000, 1_000, 1_048_576), 60)
    except Exception as exc:  # noqa: BLE001
        return _fail(f"{type(exc).__name__}: {exc}")


async def _empty_fetch_wait(bootstrap: str, max_wait_ms: int) -> Result:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.consumer.fetcher import Fetcher

    from streams.kafka import fetch_pacing

    topic = f"mx-idle-{_uid()}"
    _create_topic(bootstrap, topic)
    sent: list[float] = []
    installed = Fetcher._proc_fetch_request

    async def counted(self: Any, *args: Any) -> Any:
        sent.append(time.monotonic())
        # aiokafka's own fetch, whether or not this process paces them: the
        # broker is measured here
        return await fetch_pacing.AIOKAFKA_PROC_FETCH_REQUEST(self, *args)

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", fetch_max_wait_ms=max_wait_ms)
    Fetcher._proc_fetch_request = counted  # type: ignore[method-assign]
    try:
        await consumer.start()
        await consumer.getmany(timeout_ms=3000)
        await asyncio.sleep(0.2)
    finally:
        Fetcher._proc_fetch_request = installed  # type: ignore[method-assign]
        await consumer.stop()
    # a long-polling broker holds each empty fetch for fetch_max_wait_ms
    per_s = (len(sent) - 1) / (sent[-1] - sent[0]) if len(sent) > 1 else 0.0
    bound = 2 * 1000 / max_wait_ms
    detail = (f"an idle aiokafka consumer (fetch_max_wait_ms={max_wait_ms}) sent "
              f"{per_s:,.1f} fetch requests/s for an empty topic (long polling: <= {bound:g})")
    if per_s > bound:
        return _fail(detail + ": empty fetches are answered at once, so an idle consumer "
                     "spins (the worker paces them: streams.kafka.fetch_pacing)",
                     fetches_per_s=round(per_s, 1))
    return _ok(detail, fetches_per_s=round(per_s, 1))


def check_fetch_max_wait(broker: EmbeddedBroker) -> Result:
    """An empty fetch is held for ``fetch_max_wait_ms`` (long polling)."""
    try:
        return _run_async(_empty_fetch_wait(broker.bootstrap, 500), 30)
    except Exception as exc:  # noqa: BLE001
        return _fail(f"{type(exc).__name__}: {exc}")


async def _persist_cost(bootstrap: str, stored_mb: int, seconds: float, pid: int) -> Result:
    from aiokafka import AIOKafkaProducer

    from streams.broker.embedded import cpu_seconds
    from streams.service.topics import delete_topics

    def cpu_s() -> float:
        used = cpu_seconds(pid)
        if used is None:
            raise RuntimeError("the broker process is gone")
        return used

    bulk, trickle = f"mx-bulk-{_uid()}", f"mx-trickle-{_uid()}"
    _create_topic(bootstrap, bulk, partitions=4)
    _create_topic(bootstrap, trickle)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5,
                                max_batch_size=1 << 20)
    await producer.start()
    try:
        sends = [await producer.send(bulk, b"x" * 1000, partition=i % 4)
                 for i in range(stored_mb * 1000)]
        await asyncio.gather(*sends)
        await asyncio.sleep(3)  # whatever the bulk load itself set off
        c0, t0 = cpu_s(), time.monotonic()
        while time.monotonic() - t0 < seconds:  # one small record every 0.1 s
            await (await producer.send(trickle, b"tick"))
            await asyncio.sleep(0.1)
        share = (cpu_s() - c0) / (time.monotonic() - t0)
    finally:
        await producer.stop()
        # a broker shared with other checks or tests must not keep paying for it
        delete_topics(bootstrap, [bulk, trickle])
    detail = (f"holding {stored_mb} MB, a trickle of 10 small records/s cost the broker "
              f"{share:.0%} of a core (bound {PERSIST_BOUND:.0%})")
    if share > PERSIST_BOUND:
        return _fail(detail + ": the persistence cost grows with what the broker holds, so "
                     "keep retention short on the embedded broker", cpu_share=round(share, 3))
    return _ok(detail, cpu_share=round(share, 3))


#: broker CPU share a trickle of writes may cost while 100 MB are stored
PERSIST_BOUND = 0.2


def check_persist_cost(broker: EmbeddedBroker) -> Result:
    """Small writes cost about the same whatever the broker already stores."""
    if broker.pid is None:
        return _fail("broker process unknown")
    try:
        return _run_async(_persist_cost(broker.bootstrap, 100, 5.0, broker.pid), 90)
    except Exception as exc:  # noqa: BLE001
        return _fail(f"{type(exc).__name__}: {exc}")


def check_group_join_time(broker: EmbeddedBroker) -> Result:
    """Consumer-group join and rebalance time with the embedded session settings."""
    try:
        return _run_async(_join_times(broker.bootstrap), 60)
    except Exception as exc:  # noqa: BLE001
        return _fail(f"{type(exc).__name__}: {exc}")


def check_topic_partitions(broker: EmbeddedBroker, partitions: int = 6) -> Result:
    """CreateTopics with N partitions; metadata shows N; a record lands in each partition."""
    from kafka import KafkaProducer

    topic = f"mx-parts-{_uid()}"
    _create_topic(broker.bootstrap, topic, partitions=partitions)
    seen = _partition_count(broker.bootstrap, topic)
    if seen != partitions:
        return _fail(f"created {partitions} partitions, metadata shows {seen}")
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    try:
        for p in range(partitions):
            producer.send(topic, value=f"p{p}".encode(), partition=p)
        producer.flush(15)
    finally:
        producer.close(5)
    records = _read_all(broker.bootstrap, topic)
    by_part = {p: v for _k, v, p, _o in records}
    if by_part != {p: f"p{p}".encode() for p in range(partitions)}:
        return _fail(f"per-partition read-back wrong: {by_part}")
    return _ok(f"{partitions} partitions created, one record read back from each")


# --------------------------------------------------------------------------- persistence


def _restart_scenario(kind: str, workdir: Path) -> Result:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    data_dir = workdir / "restart-data"
    topic, group = f"mx-restart-{_uid()}", f"g-restart-{_uid()}"
    first = EmbeddedBroker(kind=kind, data_dir=data_dir, log_path=workdir / "restart-1.log")
    port = first.port
    try:
        first.start()
        _create_topic(first.bootstrap, topic, partitions=3)
        producer = KafkaProducer(bootstrap_servers=first.bootstrap, acks="all")
        for i in range(30):
            producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=i % 3)
        producer.flush(15)
        producer.close(5)
        consumer = KafkaConsumer(
            bootstrap_servers=first.bootstrap, group_id=group, enable_auto_commit=False
        )
        from kafka.structs import OffsetAndMetadata

        offsets = {TopicPartition(topic, p): OffsetAndMetadata(4 + p, "", -1) for p in range(3)}
        consumer.commit(offsets)
        consumer.close()
    finally:
        first.stop()

    second = EmbeddedBroker(
        kind=kind, port=port, data_dir=data_dir, log_path=workdir / "restart-2.log"
    )
    problems: list[str] = []
    try:
        second.start()
        parts = _partition_count(second.bootstrap, topic)
        if parts != 3:
            problems.append(f"topic has {parts} partitions after restart (expected 3)")
        records = _read_all(second.bootstrap, topic, idle_ms=1500) if parts else []
        if len(records) != 30:
            problems.append(f"{len(records)}/30 records after restart")
        consumer = KafkaConsumer(
            bootstrap_servers=second.bootstrap, group_id=group, enable_auto_commit=False
        )
        committed = {p: consumer.committed(TopicPartition(topic, p)) for p in range(3)}
        consumer.close()
        if committed != {0: 4, 1: 5, 2: 6}:
            problems.append(
                f"committed offsets after restart {committed} (expected {{0: 4, 1: 5, 2: 6}})"
            )
        # hard crash: a record acknowledged ~1 s before SIGKILL must survive too
        if not problems:
            producer = KafkaProducer(bootstrap_servers=second.bootstrap, acks="all")
            producer.send(topic, key=b"late", value=b"after-restart", partition=0)
            producer.flush(15)
            producer.close(5)
            time.sleep(1.0)
            second.kill()
            second.stop()
            second = EmbeddedBroker(
                kind=kind, port=port, data_dir=data_dir, log_path=workdir / "restart-3.log"
            )
            second.start()
            records = _read_all(second.bootstrap, topic, idle_ms=1500)
            if len(records) != 31:
                problems.append(f"{len(records)}/31 records after SIGKILL + restart")
    finally:
        second.stop()
    if problems:
        return _fail("; ".join(problems))
    return _ok(
        "SIGTERM restart on the same data dir and port keeps the 3-partition topic, "
        "30 records and the group's committed offsets; a record acked 1 s before "
        "SIGKILL survives too"
    )


def check_restart_persistence(broker: EmbeddedBroker) -> Result:
    """Stop the broker, start a new one on the same data dir and port: topics, data, offsets."""
    with tempfile.TemporaryDirectory(prefix="dw-mx-restart-") as tmp:
        try:
            result = _restart_scenario(broker.kind, Path(tmp))
        except Exception as exc:  # noqa: BLE001
            result = _fail(f"{type(exc).__name__}: {exc}")
    if result["status"] != "pass" and not broker.persistent:
        return {"status": "not claimed", "detail": f"memory storage; observed: {result['detail']}"}
    return result


# --------------------------------------------------------------------------- compaction


def _claims_compaction(bootstrap: str, topic: str) -> tuple[bool, str]:
    """A broker that implements compaction rejects a keyless record on a compacted topic."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", retries=0, request_timeout_ms=5000
    )
    try:
        producer.send(topic, value=b"no key").get(10)
        return False, "a keyless record was accepted on a cleanup.policy=compact topic"
    except Exception as exc:  # noqa: BLE001
        return True, f"keyless record rejected ({type(exc).__name__})"
    finally:
        producer.close(5)


def check_compaction(broker: EmbeddedBroker) -> Result:
    """Log compaction, tested only if the broker claims it."""
    from kafka import KafkaProducer

    topic = f"mx-compact-{_uid()}"
    _create_topic(
        broker.bootstrap,
        topic,
        configs={
            "cleanup.policy": "compact",
            "segment.ms": "100",
            "min.cleanable.dirty.ratio": "0.01",
            "delete.retention.ms": "100",
            "min.compaction.lag.ms": "0",
        },
    )
    claimed, why = _claims_compaction(broker.bootstrap, topic)
    if not claimed:
        return {"status": "not claimed", "detail": why}
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    try:
        for version in range(10):
            for key in ("a", "b", "c"):
                producer.send(topic, key=key.encode(), value=f"{key}{version}".encode())
            producer.flush(15)
        producer.send(topic, key=b"c", value=None)  # tombstone
        producer.flush(15)
        produced = 31
        t0 = time.monotonic()
        records: list[Any] = []
        while time.monotonic() - t0 < 30:
            time.sleep(1.0)
            # roll the active segment: Kafka only cleans closed segments
            producer.send(topic, key=b"z", value=b"roll")
            producer.flush(15)
            produced += 1
            records = _read_all(broker.bootstrap, topic, idle_ms=800)
            latest: dict[bytes, bytes | None] = {}
            for k, v, _p, _o in records:
                latest[k] = v
            per_key = {k: sum(1 for r in records if r[0] == k) for k in (b"a", b"b", b"c")}
            if (
                per_key[b"a"] == 1
                and per_key[b"b"] == 1
                and latest.get(b"a") == b"a9"
                and latest.get(b"b") == b"b9"
            ):
                tomb = (
                    "tombstone for c removed"
                    if per_key[b"c"] == 0
                    else f"tombstone for c kept ({per_key[b'c']} record)"
                )
                return _ok(
                    f"{why}; {produced} records compacted to {len(records)} in "
                    f"{time.monotonic() - t0:.0f} s, latest value per key kept, {tomb}",
                    compacted_after_s=round(time.monotonic() - t0, 1),
                )
    finally:
        producer.close(5)
    return _fail(f"{why}, but not compacted within 30 s: {len(records)} records remain")


# --------------------------------------------------------------------------- Faust


_FAUST_APP = """
import os, faust

app = faust.App(
    os.environ["MX_APP_ID"],
    broker=os.environ["MX_BROKER"],
    store="memory://",
    web_enabled=False,
    datadir=os.environ["MX_DATADIR"],
    broker_session_timeout=6,
    broker_heartbeat_interval=1,
    topic_partitions=2,
    topic_replication_factor=1,
    autodiscover=False,
)


class Event(faust.Record, serializer="json"):
    account_id: str
    org: str


events = app.topic(os.environ["MX_IN"], value_type=Event, partitions=2)
out = app.topic(os.environ["MX_OUT"], value_serializer="json", partitions=1)
per_org = app.Table("per_org", default=int, partitions=2)


@app.agent(events)
async def count(stream):
    async for event in stream.group_by(Event.org, name="by-org"):
        per_org[event.org] += 1
        await out.send(key=event.org, value={"org": event.org, "count": per_org[event.org]})
"""


def _stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> float:
    t0 = time.monotonic()
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    return time.monotonic() - t0


def run_faust_worker_check(bootstrap: str, workdir: Path, timeout: float = 40.0) -> Result:
    """A minimal Faust app (table + group_by repartition) as a real worker subprocess.

    Six events for two orgs go in keyed by account; the worker must repartition
    them by org, count in a table (changelog topic), and emit acme=4, beta=2.
    """
    from kafka import KafkaProducer

    uid = _uid()
    in_topic, out_topic, app_id = f"mx-faust-in-{uid}", f"mx-faust-out-{uid}", f"mx-faust-{uid}"
    (workdir / "mxfaustapp.py").write_text(textwrap.dedent(_FAUST_APP))
    _create_topic(bootstrap, in_topic, partitions=2)
    _create_topic(bootstrap, out_topic, partitions=1)
    env = {
        **os.environ,
        "MX_APP_ID": app_id,
        "MX_BROKER": f"kafka://{bootstrap}",
        "MX_IN": in_topic,
        "MX_OUT": out_topic,
        "MX_DATADIR": str(workdir / "faust-data"),
        "PYTHONPATH": str(workdir) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    log_path = workdir / "faust-worker.log"
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "faust", "-A", "mxfaustapp", "worker", "-l", "info"],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    expected = {"acme": 4, "beta": 2}
    counts: dict[str, int] = {}
    stop_s = None
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        events = [
            ("u1", "acme"),
            ("u2", "acme"),
            ("u3", "beta"),
            ("u1", "acme"),
            ("u4", "beta"),
            ("u5", "acme"),
        ]
        for account, org in events:
            producer.send(
                in_topic,
                key=account.encode(),
                value=json.dumps({"account_id": account, "org": org}).encode(),
            )
        producer.flush(15)
        producer.close(5)
        while time.monotonic() - t0 < timeout and counts != expected and proc.poll() is None:
            for _k, v, _p, _o in _read_all(bootstrap, out_topic, idle_ms=500):
                if v:
                    doc = json.loads(v)
                    counts[doc["org"]] = max(counts.get(doc["org"], 0), doc["count"])
            time.sleep(0.5)
        output_s = time.monotonic() - t0
    finally:
        stop_s = _stop_process(proc)
    log_tail = log_path.read_text(errors="replace")[-1500:]
    if counts != expected:
        return _fail(
            f"worker output {counts}, expected {expected} within {timeout:.0f} s "
            f"(worker rc={proc.returncode}); log tail: {log_tail}"
        )
    topics = _topic_names(bootstrap)
    changelog = [t for t in topics if t.startswith(app_id) and t.endswith("-changelog")]
    repartition = [t for t in topics if "by-org" in t]
    if not changelog or not repartition:
        return _fail(f"expected a changelog and a repartition topic, found {topics}")
    return _ok(
        f"worker counted {expected} via group_by ({repartition[0]}) and a table "
        f"({changelog[0]}); stopped by SIGTERM in {stop_s:.1f} s",
        output_s=round(output_s, 1),
        stop_s=round(stop_s, 1),
    )


def _topic_names(bootstrap: str) -> list[str]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return sorted(consumer.topics())
    finally:
        consumer.close()


def check_faust_worker(broker: EmbeddedBroker) -> Result:
    """Faust worker subprocess: table, group_by repartition, expected output."""
    with tempfile.TemporaryDirectory(prefix="dw-mx-faust-") as tmp:
        try:
            return run_faust_worker_check(broker.bootstrap, Path(tmp))
        except Exception as exc:  # noqa: BLE001
            return _fail(f"{type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------- runner


CHECKS: dict[str, Callable[[EmbeddedBroker], Result]] = {
    "kafka_python": check_kafka_python,
    "aiokafka_plain": check_aiokafka_plain,
    "aiokafka_idempotent": check_aiokafka_idempotent,
    "aiokafka_transactional": check_aiokafka_transactional,
    "confluent_producer": check_confluent_producer,
    "confluent_group_consumer": check_confluent_group_consumer,
    "kcat": check_kcat,
    "group_join_time": check_group_join_time,
    "aiokafka_autocommit_rebalance": check_aiokafka_autocommit_rebalance,
    "fetch_size_limit": check_fetch_size_limit,
    "fetch_max_wait": check_fetch_max_wait,
    "persist_cost": check_persist_cost,
    "topic_partitions": check_topic_partitions,
    "restart_persistence": check_restart_persistence,
    "compaction": check_compaction,
    "faust_worker": check_faust_worker,
}


def run_matrix(kind: str, only: list[str] | None = None) -> dict[str, Any]:
    """Start a broker of ``kind``, run the checks, stop it; return every result."""
    names = only or list(CHECKS)
    results: dict[str, Result] = {}
    t_start = time.monotonic()
    broker = EmbeddedBroker(kind=kind)
    try:
        broker.start()
        startup_s = time.monotonic() - t_start
        for name in names:
            t0 = time.monotonic()
            try:
                result = CHECKS[name](broker)
            except Exception as exc:  # noqa: BLE001
                result = _fail(f"{type(exc).__name__}: {exc}")
            result["seconds"] = round(time.monotonic() - t0, 1)
            results[name] = result
            if not broker.alive():
                results[name]["detail"] += " [broker died]"
                broker.stop()
                broker = EmbeddedBroker(kind=kind)
                broker.start()
    finally:
        t0 = time.monotonic()
        broker.stop()
        stop_s = time.monotonic() - t0
    return {
        "kind": kind,
        "binary": broker.command()[0],
        "startup_s": round(startup_s, 2),
        "stop_s": round(stop_s, 2),
        "checks": results,
    }


def format_table(report: dict[str, Any]) -> str:
    lines = [
        f"kind={report['kind']} startup={report['startup_s']}s stop={report['stop_s']}s",
        f"{'check':<26} {'status':<12} {'secs':>5}  detail",
    ]
    for name, r in report["checks"].items():
        lines.append(
            f"{name:<26} {r['status']:<12} {r.get('seconds', 0):>5}  {r.get('detail', '')}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.broker_matrix", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--kind",
        choices=KINDS,
        default=None,
        help="broker implementation (default: $DISTILLWATCH_EMBEDDED_BROKER or noida)",
    )
    parser.add_argument(
        "--only", default="", help="comma-separated check names: " + ", ".join(CHECKS)
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    only = [n.strip() for n in args.only.split(",") if n.strip()] or None
    for name in only or []:
        if name not in CHECKS:
            parser.error(f"unknown check {name!r}")
    report = run_matrix(args.kind or kind_from_env(), only)
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return (
        0
        if all(r["status"] in ("pass", "skip", "not claimed") for r in report["checks"].values())
        else 1
    )


if __name__ == "__main__":
    raise SystemExit(main())
