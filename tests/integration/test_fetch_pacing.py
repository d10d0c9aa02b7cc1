"""Empty-fetch pacing (streams.kafka.fetch_pacing) against the embedded broker, which
answers empty fetches at once (broker matrix check ``fetch_max_wait``)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.consumer.fetcher import Fetcher

from streams.errors import ConfigError
from streams.kafka import fetch_pacing
from streams.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.serial]


@pytest.fixture
def pacing() -> Any:
    """Install/uninstall in this process only for the test, and count the
    fetch requests aiokafka sends."""
    sent: list[float] = []
    real = fetch_pacing.AIOKAFKA_PROC_FETCH_REQUEST

    async def counted(self: Any, *args: Any) -> Any:
        sent.append(time.monotonic())
        return await real(self, *args)

    fetch_pacing.AIOKAFKA_PROC_FETCH_REQUEST = counted
    try:
        yield sent
    finally:
        fetch_pacing.AIOKAFKA_PROC_FETCH_REQUEST = real
        Fetcher._proc_fetch_request = real  # type: ignore[method-assign]


async def _topic(bootstrap: str, partitions: int = 4) -> str:
    name = f"pacing-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()
    return name


async def _idle_fetch_rate(bootstrap: str, sent: list[float], seconds: float) -> float:
    topic = await _topic(bootstrap)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", fetch_max_wait_ms=500)
    await consumer.start()
    try:
        await consumer.getmany(timeout_ms=500)  # assignment and first fetches
        start = len(sent)
        t0 = time.monotonic()
        await consumer.getmany(timeout_ms=int(seconds * 1000))
        return (len(sent) - start) / (time.monotonic() - t0)
    finally:
        await consumer.stop()


def test_an_idle_consumer_sends_at_most_one_fetch_per_interval(broker, pacing):
    fetch_pacing.install(0.02)
    assert fetch_pacing.installed_interval() == 0.02
    rate = asyncio.run(_idle_fetch_rate(broker.bootstrap, pacing, 2.0))
    # one node, one request per 20 ms at most (the broker answers at once)
    assert 0 < rate <= 1 / 0.02 * 1.1, rate


def test_uninstalled_the_embedded_broker_makes_the_consumer_spin(broker, pacing):
    # the reason the pacing exists; if a noida-db release long-polls, this
    # fails and the README's broker matrix and fetch_pacing docs need updating
    fetch_pacing.install(0)
    assert fetch_pacing.installed_interval() == 0.0
    rate = asyncio.run(_idle_fetch_rate(broker.bootstrap, pacing, 1.0))
    assert rate > 200, rate


async def _bursts(bootstrap: str, bursts: int, per_burst: int, idle_s: float) -> list[float]:
    """Produce bursts separated by idle time; return, per burst, the seconds
    from its last send to its last record being consumed."""
    topic = await _topic(bootstrap)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await producer.start()
    await consumer.start()
    delays: list[float] = []
    received: list[bytes] = []
    try:
        for b in range(bursts):
            await asyncio.sleep(idle_s)  # every partition empty: paced fetches
            values = [f"{b}:{i}".encode() for i in range(per_burst)]
            for i, value in enumerate(values):
                await producer.send_and_wait(topic, value, key=str(i).encode())
            sent_at = time.monotonic()
            deadline = sent_at + 10
            while len(received) < (b + 1) * per_burst and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=100)
                for records in batch.values():
                    received.extend(r.value for r in records)
            delays.append(time.monotonic() - sent_at)
    finally:
        await consumer.stop()
        await producer.stop()
    expected = sorted(f"{b}:{i}".encode() for b in range(bursts) for i in range(per_burst))
    assert sorted(received) == expected  # nothing lost, nothing twice
    return delays


def test_records_after_idle_time_arrive_promptly_and_completely(broker, pacing):
    fetch_pacing.install(0.05)
    delays = asyncio.run(_bursts(broker.bootstrap, bursts=4, per_burst=50, idle_s=0.5))
    # a record on an idle partition waits at most one interval for its fetch
    # (plus scheduling on a shared machine); without pacing it is the same
    # order of magnitude, so this bound is about correctness, not speed
    assert max(delays) < 2.0, delays


def test_setting_bounds():
    assert Settings(empty_fetch_interval_s=0).empty_fetch_interval_s == 0
    with pytest.raises(ConfigError, match=r"empty_fetch_interval_s must be in \[0, 1\]"):
        Settings(empty_fetch_interval_s=2)
    with pytest.raises(ConfigError, match="empty_fetch_interval_s"):
        Settings(empty_fetch_interval_s=-0.1)


async def _stop_while_paced(bootstrap: str) -> None:
    topic = await _topic(bootstrap)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    await consumer.getmany(timeout_ms=300)  # now almost always inside a paced wait
    await asyncio.wait_for(consumer.stop(), 5)


def test_a_consumer_stops_cleanly_during_a_paced_wait(broker, pacing):
    # aiokafka's close() cancels and awaits the fetch tasks; a CancelledError
    # out of the wait made the worker's consumer thread fail on SIGTERM
    fetch_pacing.install(0.5)
    for _ in range(3):
        asyncio.run(_stop_while_paced(broker.bootstrap))
