"""Pace empty fetches: a broker that answers an empty fetch at once must not
make the consumer spin.

A Kafka broker holds a fetch that finds no data for up to the client's
``fetch_max_wait_ms`` (long polling), so an idle consumer sends a couple of
fetch requests a second. The embedded noida-db 0.2.3 answers at once instead
(``tools.broker_matrix`` check ``fetch_max_wait``): aiokafka's fetcher,
which sends the next request as soon as the last one returns, then loops
thousands of times a second. Measured here: an idle worker used 90% of a core,
and under load the loop took the GIL from the agent (the fetcher was 23% of
the worker's GIL samples at 3.2k events/s, the same share as the no-op
agent's fetcher at twice the rate), because the summaries partitions are empty
most of the time.

:func:`install` wraps aiokafka's ``Fetcher._proc_fetch_request``: a fetch that
brought no records and came back sooner than ``min_interval_s`` waits out the
rest of that interval before the fetcher may send the next request to that
node. A broker that long-polls returns empty fetches only after
``fetch_max_wait_ms`` (hundreds of ms), far above the interval, so the wrapper
never waits there. The cost on a broker that does not: a record produced to an
idle partition is fetched at most ``min_interval_s`` later.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

# aiokafka ships no type information: Fetcher is Any to mypy
from aiokafka.consumer.fetcher import Fetcher  # type: ignore[import-untyped]

#: aiokafka's own method, as imported
AIOKAFKA_PROC_FETCH_REQUEST = Fetcher._proc_fetch_request


def install(min_interval_s: float) -> None:
    """Pace every aiokafka consumer of this process (Faust's included).

    ``min_interval_s`` <= 0 restores aiokafka's own behaviour. Calling it again
    replaces the interval.
    """
    if min_interval_s <= 0:
        Fetcher._proc_fetch_request = AIOKAFKA_PROC_FETCH_REQUEST
        return

    async def paced(self: Any, assignment: Any, node_id: int, request: Any) -> bool:
        started = time.monotonic()
        has_records: bool = await AIOKAFKA_PROC_FETCH_REQUEST(self, assignment, node_id, request)
        if not has_records and assignment.active:
            rest = min_interval_s - (time.monotonic() - started)
            if rest > 0:
                try:
                    await asyncio.sleep(rest)
                except asyncio.CancelledError:
                    # as aiokafka's own method: the fetcher cancels its fetch
                    # tasks on close or reassignment and awaits them, expecting
                    # a result, not the exception (else the consumer's stop
                    # raises and the worker exits with an error)
                    return False
        return has_records

    paced.min_interval_s = min_interval_s  # type: ignore[attr-defined]
    Fetcher._proc_fetch_request = paced


def installed_interval() -> float:
    """The interval in force (0.0: aiokafka's own behaviour)."""
    return float(getattr(Fetcher._proc_fetch_request, "min_interval_s", 0.0))
