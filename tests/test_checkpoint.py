"""streams.checkpoint: the agents are held while state is written, the commit
runs only after every state record is acknowledged, and unacknowledged
records are sent again (before newer values of the same key) next time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.checkpoint import Checkpointer
from streams.errors import ProducerStalled


class FakeClient:
    """Acknowledges each record after ``delay`` s, or fails it with ``error``."""

    def __init__(self, delay: float = 0.0, error: Exception | None = None) -> None:
        self.delay = delay
        self.error = error
        self.sent: list[tuple[str, int, bytes, bytes | None]] = []

    async def send(self, topic: str, partition: int, key: bytes, value: bytes | None) -> Any:
        self.sent.append((topic, partition, key, value))
        fut = asyncio.get_running_loop().create_future()

        def settle() -> None:
            if self.error is not None:
                fut.set_exception(self.error)
            else:
                fut.set_result(None)

        asyncio.get_running_loop().call_later(self.delay, settle)
        return fut


def test_agents_wait_while_state_is_written_and_commit_comes_after_every_ack():
    async def run() -> None:
        log: list[str] = []
        state = iter([[("cl", 0, b"a", b"1"), ("cl", 1, b"b", None)]])
        client = FakeClient(delay=0.05)
        observed: list[tuple[float, int]] = []
        cp = Checkpointer(lambda: next(state), client.send, timeout_s=5,
                          observe=lambda s, n: observed.append((s, n)))

        async def agent() -> None:
            # stands for the agent's loop: one event per turn, gated
            for i in range(1000):
                if cp.paused:
                    log.append("agent waits")
                    await cp.wait()
                log.append(f"event {i}")
                await asyncio.sleep(0.005)

        async def commit() -> bool:
            log.append(f"commit after {len(client.sent)} sends")
            return True

        task = asyncio.create_task(agent())
        await asyncio.sleep(0.02)
        assert await cp.commit(commit) is True
        waits = log.index("agent waits")
        commit_at = log.index("commit after 2 sends")
        # no event is applied between the start of the write and the commit
        assert waits < commit_at
        assert all(not line.startswith("event") for line in log[waits + 1:commit_at])
        assert not cp.paused
        await asyncio.sleep(0.02)
        assert log[-1].startswith("event")  # resumed
        task.cancel()
        assert observed and observed[0][1] == 2 and observed[0][0] >= 0.05
        assert cp.records_sent == 2

    asyncio.run(run())


@pytest.mark.parametrize("client, message", [
    (FakeClient(delay=10), "not acknowledged within 0.1s"),
    (FakeClient(error=ConnectionError("broker gone")), "ConnectionError: broker gone"),
])
def test_unacknowledged_state_skips_the_commit_and_is_resent_first(client, message):
    async def run() -> None:
        batches = iter([
            [("cl", 0, b"a", b"old"), ("cl", 0, b"b", b"1")],
            [("cl", 0, b"a", b"new"), ("cl", 2, b"c", b"2")],
        ])
        cp = Checkpointer(lambda: next(batches), client.send, timeout_s=0.1)
        commits: list[int] = []

        async def commit() -> bool:
            commits.append(1)
            return True

        with pytest.raises(ProducerStalled, match=message):
            await cp.commit(commit)
        assert commits == [] and not cp.paused
        # the broker is back: the skipped records go again, and a key's newer
        # value replaces its resent older one
        client.delay, client.error = 0.0, None
        client.sent.clear()
        assert await cp.commit(commit) is True
        assert commits == [1]
        assert client.sent == [("cl", 0, b"b", b"1"), ("cl", 0, b"a", b"new"),
                               ("cl", 2, b"c", b"2")]

    asyncio.run(run())


def test_concurrent_commits_run_one_after_the_other():
    """Faust's own commit (shutdown, rebalance) can meet the timer's: the
    second waits for the first, and the agents stay held until both end."""
    async def run() -> None:
        client = FakeClient(delay=0.05)
        cp = Checkpointer(lambda: [("cl", 0, b"k", b"v")], client.send, timeout_s=5)
        active = 0
        overlap = False

        async def commit() -> bool:
            nonlocal active, overlap
            active += 1
            overlap = overlap or active > 1
            await asyncio.sleep(0.01)
            active -= 1
            return True

        assert await asyncio.gather(cp.commit(commit), cp.commit(commit)) == [True, True]
        assert not overlap and not cp.paused and len(client.sent) == 2

    asyncio.run(run())
