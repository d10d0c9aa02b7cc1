"""Commit only what has really been sent.

Faust commits offsets after ``producer.flush()``, but its producer buffer's
``flush`` returns as soon as 0.1 s pass without a message leaving the buffer,
even with messages still in it (``faust.transport.producer.ProducerBuffer.
flush_atmost``). On a slow broker the worker could then commit offsets whose
changelog records (checkpointed state), alerts or summaries were not yet
handed to the Kafka client, and a crash right after would lose them.
:func:`flush_completely` makes the buffer's ``flush`` wait until the buffer
is empty, for at most ``timeout_s``, and raise :class:`ProducerStalled`
otherwise, which aborts that commit (at-least-once: the events are simply
processed again after a restart, or committed at the next checkpoint).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from streams.errors import ProducerStalled


def install(producer: Any, timeout_s: float) -> bool:
    """:func:`flush_completely` on a Faust producer's buffer; False when this
    Faust's producer has no ``buffer`` (commits then flush as Faust does)."""
    buffer = getattr(producer, "buffer", None)
    if buffer is None:
        return False
    flush_completely(buffer, timeout_s)
    return True


def flush_completely(buffer: Any, timeout_s: float,
                     clock: Callable[[], float] = time.monotonic) -> None:
    """Wrap ``buffer.flush`` (a Faust ``ProducerBuffer``) in place; idempotent."""
    if getattr(buffer, "_dw_flush_completely", False):
        return
    original: Callable[[], Awaitable[None]] = buffer.flush

    async def flush() -> None:
        deadline = clock() + timeout_s
        while True:
            await original()
            if not buffer.size:
                return
            if clock() >= deadline:
                raise ProducerStalled(
                    f"{buffer.size} message(s) still unsent after {timeout_s:g}s; "
                    "commit skipped"
                )

    buffer.flush = flush
    buffer._dw_flush_completely = True
