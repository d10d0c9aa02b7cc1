"""The machinery behind the broker fixtures (``tests/conftest.py`` registers
them): a worker run as a real ``distillwatch worker`` subprocess, and plain
kafka-python helpers to produce to, read from and inspect topics of the
embedded broker."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent.parent


class WorkerProcess:
    """A ``distillwatch worker`` subprocess with its own topics and log file."""

    def __init__(self, broker: Any, tmp: Path, name: str, env: dict[str, str]) -> None:
        self.broker = broker
        self.name = name
        self.tmp = tmp
        self.events_topic = f"{name}-events"
        self.alerts_topic = f"{name}-alerts"
        self.dlq_topic = f"{name}-dlq"
        self.actions_topic = f"{name}-actions"
        self.watchlist_topic = f"{name}-watchlist"
        self.log_path = tmp / f"{name}.log"
        self.env = {
            **os.environ,
            "DISTILLWATCH_BROKER": broker.url,
            "DISTILLWATCH_APP_ID": name,
            "DISTILLWATCH_EVENTS_TOPIC": self.events_topic,
            "DISTILLWATCH_ALERTS_TOPIC": self.alerts_topic,
            "DISTILLWATCH_DLQ_TOPIC": self.dlq_topic,
            "DISTILLWATCH_ACTIONS_TOPIC": self.actions_topic,
            "DISTILLWATCH_WATCHLIST_TOPIC": self.watchlist_topic,
            "DISTILLWATCH_PARTITIONS": "4",
            "DISTILLWATCH_DATA_DIR": str(tmp / name),
            "DISTILLWATCH_WEB_PORT": str(free_port()),
            "DISTILLWATCH_LOG_FORMAT": "json",
            "DISTILLWATCH_CHECKPOINT_INTERVAL_S": "1",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def settings(self) -> Any:
        from streams.settings import Settings

        return Settings.load(env=self.env)

    def start(self) -> WorkerProcess:
        from streams.service.topics import ensure_topics

        ensure_topics(self.settings)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        return self

    def wait_log(self, event: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.log_records():
                if record.get("event") == event:
                    return record
            assert self.proc is None or self.proc.poll() is None, self.log_tail()
            time.sleep(0.2)
        raise AssertionError(f"no {event!r} in worker log within {timeout}s:\n{self.log_tail()}")

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_bytes().splitlines():
            start = line.find(b"{")
            if start < 0:
                continue
            with contextlib.suppress(orjson.JSONDecodeError):
                out.append(orjson.loads(line[start:]))
        return out

    def log_tail(self, n: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> float:
        """Signal the worker; return how long it took to exit."""
        assert self.proc is not None
        start = time.monotonic()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return time.monotonic() - start

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.terminate(timeout=10.0)


def free_port() -> int:
    from streams.broker.embedded import free_port

    return free_port()


def produce(broker: Any, topic: str, messages: list[tuple[bytes | None, bytes | None]]) -> None:
    """Send (key, value) pairs with kafka-python and wait until acknowledged."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    for key, value in messages:
        producer.send(topic, key=key, value=value)
    producer.flush(30)
    producer.close()


def consume_until(
    broker: Any, topic: str, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float
) -> list[dict[str, Any]]:
    """Read ``topic`` from the start until ``predicate(records)`` or timeout."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
        consumer_timeout_ms=300, group_id=None,
    )
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for message in consumer:
                records.append(orjson.loads(message.value))
            if predicate(records):
                return records
    finally:
        consumer.close()
    return records


def read_raw(broker: Any, topic: str, timeout: float = 10.0,
             with_partition: bool = False) -> list[Any]:
    """The raw messages of ``topic`` as (key, value), or (partition, key, value)
    with ``with_partition`` (batch messages have no key): the bytes the broker
    holds, for tests that look for what must not be there."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=500,
                             group_id=None)
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not out:
            if with_partition:
                out.extend((m.partition, m.key, m.value) for m in consumer)
            else:
                out.extend((m.key, m.value) for m in consumer if m.key is not None)
    finally:
        consumer.close()
    return out


def topic_configs(bootstrap: str, topics: list[str]) -> dict[str, dict[str, str]]:
    """Each topic's configuration as the broker describes it."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics])
        # kafka-python 3: {"topic": {name: {config: {"value": ...}}}}
        return {topic: {k: v["value"] for k, v in described["topic"][topic].items()}
                for topic in topics}
    finally:
        admin.close()
