"""streams.kafka.flush: a commit waits until the producer buffer is really empty."""

from __future__ import annotations

import asyncio

import pytest

from streams.errors import ProducerStalled
from streams.kafka.flush import flush_completely


class SlowBuffer:
    """Like Faust's ProducerBuffer.flush: returns after a quiet spell even
    with messages left; here one message leaves per call."""

    def __init__(self, size: int, stuck: bool = False) -> None:
        self.size = size
        self.stuck = stuck
        self.calls = 0

    async def flush(self) -> None:
        self.calls += 1
        await asyncio.sleep(0)
        if self.size and not self.stuck:
            self.size -= 1


def test_flush_waits_until_the_buffer_is_empty() -> None:
    buffer = SlowBuffer(5)
    flush_completely(buffer, timeout_s=10)
    flush_completely(buffer, timeout_s=10)  # idempotent: wrapped once
    asyncio.run(buffer.flush())
    assert buffer.size == 0 and buffer.calls == 5


def test_a_stalled_buffer_aborts_the_commit_after_the_timeout() -> None:
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    buffer = SlowBuffer(3, stuck=True)
    flush_completely(buffer, timeout_s=5, clock=clock)
    with pytest.raises(ProducerStalled, match="3 message"):
        asyncio.run(buffer.flush())
    assert buffer.calls >= 4


def test_an_empty_buffer_returns_at_once() -> None:
    buffer = SlowBuffer(0)
    flush_completely(buffer, timeout_s=1)
    asyncio.run(buffer.flush())
    assert buffer.calls == 1
