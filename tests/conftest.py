"""Shared fixtures: one embedded broker per test session, and workers run as
real subprocesses (``distillwatch worker``) against it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.alertmanager_server import alertmanager  # noqa: F401 - a fixture for every test

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from streams.broker.embedded import EmbeddedBroker

    b = EmbeddedBroker(data_dir=tmp_path_factory.mktemp("broker"))
    b.start()
    try:
        yield b
    finally:
        b.stop()


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
            "DISTILLWATCH_WEB_PORT": str(_free_port()),
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


def _free_port() -> int:
    from streams.broker.embedded import free_port

    return free_port()


@pytest.fixture
def worker_factory(broker: Any, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    workers: list[WorkerProcess] = []

    def make(name: str | None = None, **env: str) -> WorkerProcess:
        w = WorkerProcess(broker, tmp_path, name or f"dw-{uuid.uuid4().hex[:8]}", env)
        workers.append(w)
        return w

    yield make
    for w in workers:
        w.stop()


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
