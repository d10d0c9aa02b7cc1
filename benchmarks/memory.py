"""Resident memory per account of the detection core (issue 3: <= 4 KB at 100k).

Feeds ``n`` accounts a few events each (topic, prompt, tokens) through one
:class:`~detectors.runner.PartitionRunner`, then reports the growth of RSS and
of ``tracemalloc``-traced memory divided by ``n``. The events are generated
lazily so that they are not counted.

    .venv/bin/python -m benchmarks.memory            # 10k and 100k accounts
"""

from __future__ import annotations

import gc
import resource
import sys
import tracemalloc
from collections.abc import Iterator

from detectors.engine import Detector
from detectors.runner import PartitionRunner
from detectors.schema import Event

TOPICS = ("coding/python", "math/algebra", "writing/email", "data/extraction", "support/refunds")


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:  # not Linux: peak RSS is the best we have
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _events(n_accounts: int, per_account: int) -> Iterator[Event]:
    t0 = 1_772_409_600.0
    for k in range(per_account):
        for i in range(n_accounts):
            yield Event(
                ts=t0 + k * 30.0 + i * 1e-4,
                account_id=f"acct_{i:08x}",
                topic=TOPICS[(i + k) % len(TOPICS)],
                prompt=f"Request {k} from account {i}: please summarize item {i * 7 + k}.",
                input_tokens=200 + k,
                output_tokens=400,
            )


def measure(n_accounts: int, per_account: int = 4, trace: bool = False) -> dict[str, float]:
    """Bytes per account after ``per_account`` events each.

    RSS is measured without tracing (``tracemalloc`` adds its own per-block
    bookkeeping to RSS); with ``trace=True`` the traced Python allocations are
    reported instead.
    """
    gc.collect()
    if trace:
        tracemalloc.start()
    rss0 = _rss_bytes()
    traced0 = tracemalloc.get_traced_memory()[0] if trace else 0
    runner = PartitionRunner(Detector())
    for event in _events(n_accounts, per_account):
        runner.process(event)
    gc.collect()
    rss1 = _rss_bytes()
    traced1 = tracemalloc.get_traced_memory()[0] if trace else 0
    if trace:
        tracemalloc.stop()
    assert len(runner.states) == n_accounts
    key = "traced_bytes_per_account" if trace else "rss_bytes_per_account"
    return {
        "accounts": n_accounts,
        "events_per_account": per_account,
        key: round(((traced1 - traced0) if trace else (rss1 - rss0)) / n_accounts, 1),
        "encoded_state_bytes": len(next(iter(runner.states.values())).encode()),
    }


def main() -> None:
    for n in (10_000, 100_000):
        print(measure(n))
        print(measure(n, trace=True))


if __name__ == "__main__":
    main()
