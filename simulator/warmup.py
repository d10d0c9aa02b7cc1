"""A warm-up before the run: the history an always-on detector has of its
established customers.

In production the detector runs for weeks, so an account that was active
before a run's first event arrives with its history in its state. A run that
starts every account from nothing makes each established account look as if
it had no past: own-baseline evidence (a burst against its own rate, topics
new to it) cannot exist, and an account first seen at the run's start cannot
be told from one created then. ``add_warmup`` gives every account that
predates the run (``Account.predates``, set by the builders of established
kinds) ``hours`` of its own ordinary traffic before the run's start: each of
its sources' steady traffic from the run's start until the source first
changes (a phase change, the start of the account's attack traffic, the run's
end) repeated back in time. Attack sources get none, and accounts first seen
in the run (new ramps, mid-run joiners, fresh attack accounts) get none.

The warm-up is replayed through the same detectors before the run (the
events of :meth:`simulator.simulate._Events.__iter__`); the run's own events
are the same bytes with or without it. Pages during the warm-up are pages:
evaluation counts them (as benign pages on benign accounts).

>>> from simulator.core import Account, Behaviour
>>> a = Account("a", "regular", "", "", ("10.0.0",), "ua", ("k",), predates=True)
>>> a.times = [(100.0, 0), (1900.0, 0), (3000.0, 0)]
>>> a.phases = [[(0.0, Behaviour(("x",), (1.0,), "human"))]]
>>> _ = add_warmup([a], t0=0.0, t1=3600.0, hours=2.0)
>>> [t for t, _ in a.warm]
[-7100.0, -5300.0, -4200.0, -3500.0, -1700.0, -600.0]
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from simulator.core import HOUR, Account

#: shortest steady segment worth repeating (a source that changes sooner has no warm-up)
MIN_SEGMENT_S = 900.0


def _segment_end(acct: Account, source: int, t0: float, t1: float) -> float:
    """When the source's steady traffic from ``t0`` first changes."""
    end = t1
    if acct.attack_sources and acct.attack_from < end:
        end = acct.attack_from
    if source < len(acct.phases):
        for t_from, _ in acct.phases[source]:
            if t0 < t_from < end:
                end = t_from
                break
    return end


def add_warmup(accounts: Iterable[Account], t0: float, t1: float, hours: float) -> int:
    """Fill ``Account.warm`` (times in ``[t0 - hours, t0)``) of every account
    that predates the run; returns the number of warm-up events."""
    if hours < 0:
        raise ValueError("warm-up hours must be >= 0")
    w0 = t0 - hours * HOUR
    total = 0
    for a in accounts:
        a.warm = []
        if not a.predates or hours == 0:
            continue
        warm: list[tuple[float, int]] = []
        for source in sorted({s for _, s in a.times}):
            if source in a.attack_sources and a.attack_from <= t0:
                continue
            end = _segment_end(a, source, t0, t1)
            span = end - t0
            seg = [t for t, s in a.times if s == source and t0 <= t < end]
            if span < MIN_SEGMENT_S or not seg:
                continue
            for k in range(1, math.ceil((t0 - w0) / span) + 1):
                warm.extend((round((t - k * span) * 1000.0) / 1000.0, source)
                            for t in seg if t - k * span >= w0)
        warm.sort()
        a.warm = warm
        total += len(warm)
    return total


__all__ = ["MIN_SEGMENT_S", "add_warmup"]
