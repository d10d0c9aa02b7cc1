"""A warm-up before the run: the history an always-on detector has of its
established customers.

In production the detector runs for weeks, so an account that was active
before a run's first event arrives with its history in its state. A run that
starts every account from nothing makes each established account look as if
it had no past: own-baseline evidence (a burst against its own rate, topics
new to it) cannot exist, and an account first seen at the run's start cannot
be told from one created then. ``add_warmup`` gives every account that
predates the run (``Account.predates``, set by the builders of established
kinds) ``hours`` of its own ordinary traffic before the run's start, drawn
from the same processes its builder drew the run from: each steady source's
rate at that time of day (``Account.rates``, diurnal or school hours) and its
bursts (``Account.bursts``: batch jobs, evaluation runs) at their daily
frequency. A source whose traffic changes during the run (a product change,
a slow pivot, a takeover) had its first behaviour before: the warm-up renders
with the behaviour the run starts with. Attack sources get no warm-up, and
accounts first seen in the run (new ramps, mid-run joiners, attackers' fresh
accounts) get none.

The warm-up is replayed through the same detectors before the run (the
events of :meth:`simulator.simulate._Events.__iter__`); the run's own events
are the same bytes with or without it. Pages during the warm-up are pages:
evaluation counts them (as benign pages on benign accounts).

>>> import random
>>> from simulator.core import Account
>>> a = Account("a", "regular", "", "", ("10.0.0",), "ua", ("k",), predates=True)
>>> a.rates = {0: lambda t: 60.0}
>>> add_warmup([a], t0=0.0, hours=2.0, seed=1) == len(a.warm)
True
>>> 90 < len(a.warm) < 150, all(-7200.0 <= t < 0.0 for t, _ in a.warm)
(True, True)
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from simulator.core import HOUR, Account, log_uniform, poisson_times, quantize


def add_warmup(accounts: Iterable[Account], t0: float, hours: float, seed: int | str = 0) -> int:
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
        rng = random.Random(f"{seed}/warmup-times/{a.account_id}")
        warm: list[tuple[float, int]] = []
        for source, rate in sorted(a.rates.items()):
            if source not in a.attack_sources:
                warm.extend((quantize(t), source) for t in poisson_times(rng, w0, t0, rate))
        if a.bursts is not None:
            source, per_day, size, dur = a.bursts
            for _ in range(round(hours / 24.0 * per_day)):
                s = rng.uniform(w0, t0 - 0.25 * HOUR)
                n = log_uniform(rng, *size)
                d = rng.uniform(*dur)
                r = n / d * HOUR
                warm.extend((quantize(t), source)
                            for t in poisson_times(rng, s, min(t0, s + d), lambda _t, r=r: r))
        warm.sort()
        a.warm = warm
        total += len(warm)
    return total


__all__ = ["add_warmup"]
