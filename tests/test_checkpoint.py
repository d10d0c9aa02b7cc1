"""streams.service.checkpoint: the agents are held while state is written, the commit
runs only after every state record is acknowledged, and unacknowledged
records are sent again (before newer values of the same key) next time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.errors import ProducerStalled
from streams.service.checkpoint import Checkpointer


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


def test_commit_waits_for_an_agent_in_the_middle_of_an_event():
    """Faust acknowledges an event only after the agent's body returns, and
    the body awaits its alert sends after applying the event. State collected
    during those sends would hold an event the commit does not cover (applied
    twice after a restart): the commit waits until the agent leaves it."""
    async def run() -> None:
        applied: list[int] = []  # events in the hot state
        acked: list[int] = []  # events Faust acknowledged (the commit covers these)
        seen: list[tuple[list[int], list[int]]] = []  # (state collected, offsets committed)

        def collect() -> list[Any]:
            seen.append((list(applied), []))
            return [("cl", 0, b"k", str(len(applied)).encode())]

        cp = Checkpointer(collect, FakeClient().send, timeout_s=5)

        async def agent() -> None:
            for i in range(3):
                if cp.paused:
                    await cp.wait()
                cp.enter()
                try:
                    applied.append(i)
                    await asyncio.sleep(0.05)  # its alerts are being sent
                finally:
                    cp.leave()
                acked.append(i)  # Faust's ack, right after the body

        async def commit() -> bool:
            seen[-1][1].extend(acked)
            return True

        task = asyncio.create_task(agent())
        await asyncio.sleep(0.01)  # the agent is inside event 0
        assert await cp.commit(commit) is True
        assert seen == [([0], [0])]  # not ([0], []): state and offsets agree
        await task
        assert applied == acked == [0, 1, 2]

    asyncio.run(run())


def test_an_agent_stuck_inside_an_event_skips_the_commit():
    async def run() -> None:
        collected: list[int] = []
        cp = Checkpointer(lambda: collected.append(1) or [], FakeClient().send, timeout_s=0.1)
        cp.enter()  # e.g. an alert send that never completes
        commits: list[int] = []

        async def commit() -> bool:
            commits.append(1)
            return True

        with pytest.raises(ProducerStalled, match="did not finish its event within 0.1s"):
            await cp.commit(commit)
        assert collected == [] and commits == [] and not cp.paused
        cp.leave()
        assert await cp.commit(commit) is True and collected == [1] and commits == [1]

    asyncio.run(run())
