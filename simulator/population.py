"""The benign population: kinds, sizes, rhythms, organisations.

Benign kinds (``account_kinds`` values; FP is reported per kind):

``regular``
    Heavy-tailed request rate (lognormal, median ~3/h at the daily peak, a few
    hundred/h in the tail), diurnal in one of several time zones, topic mix
    from one topic to fifteen drawn by population popularity, varied prompts.
    About 12% join mid-stream.
``narrow_app``
    Hard negative: a single-use-case product (support summariser, invoice
    extractor ...) — 100..1500 requests/h, one or two topics, a fixed short
    instruction + long varied user content, softer diurnal cycle, stable.
``batch``
    Hard negative: an ordinary account that also runs batch jobs: bursts of
    300..3000 requests within 10..40 minutes on its usual topics.
``product_change``
    Hard negative: the topic mix shifts once (often towards a high-value topic,
    e.g. the product adds an agent feature) and the rate grows 1..3x.
``new_ramp``
    Hard negative: joins mid-stream and ramps up over 2..8 h to 20..400/h.
``org_member``
    Hard negative: accounts of one organisation sharing payment fingerprint,
    office IP /24, user agent and org id; diverse topics, diurnal.
``fast_adopter``
    Hard negative for ``model_pivot``: moves most of its traffic to the newly
    released model within a couple of hours of the release.

The benign look-alikes are the list in ``attack-signals.md`` ("Benign
look-alikes (must not page anyone)") and issue 3.
"""

from __future__ import annotations

import math
import random

from simulator import topics as T
from simulator.core import (
    BENIGN_UAS,
    HOUR,
    TIMEZONES,
    Account,
    Behaviour,
    ModelChoice,
    diurnal,
    hexid,
    log_uniform,
    poisson_times,
    quantize,
    random_prefix,
)

BENIGN_KINDS: tuple[str, ...] = (
    "regular",
    "narrow_app",
    "batch",
    "product_change",
    "new_ramp",
    "org_member",
    "fast_adopter",
)
# Shares of the benign population (org members come in whole organisations).
KIND_SHARES: dict[str, float] = {
    "narrow_app": 0.03,
    "batch": 0.04,
    "product_change": 0.04,
    "new_ramp": 0.05,
    "org_member": 0.15,
    "fast_adopter": 0.03,
}


class Timeline:
    """Run-wide times: start, end, release of the new model."""

    def __init__(self, start: float, hours: float) -> None:
        self.t0 = start
        self.hours = hours
        self.t1 = start + hours * HOUR
        self.release = start + 0.4 * hours * HOUR

    def frac(self, f: float) -> float:
        return self.t0 + f * (self.t1 - self.t0)


def pick_tz(rng: random.Random) -> float:
    return rng.choices([tz for tz, _ in TIMEZONES], weights=[w for _, w in TIMEZONES])[0]


def topic_mix(
    rng: random.Random, k: int, pool: tuple[str, ...] = T.TOPICS, background: float = 0.03
) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """``k`` core topics drawn by popularity, gamma weights, plus a small
    background mass spread over the whole population mix."""
    pop = {t: T.TAXONOMY[t][0] for t in pool}
    chosen: list[str] = []
    cands = list(pool)
    for _ in range(min(k, len(cands))):
        t = rng.choices(cands, weights=[pop[c] for c in cands])[0]
        chosen.append(t)
        cands.remove(t)
    w = [rng.gammavariate(1.0, 1.0) + 0.05 for _ in chosen]
    s = sum(w)
    weights = {t: (1.0 - background) * x / s for t, x in zip(chosen, w, strict=True)}
    if background > 0:
        total_pop = sum(T.POPULARITY)
        for t, p in zip(T.TOPICS, T.POPULARITY, strict=True):
            weights[t] = weights.get(t, 0.0) + background * p / total_pop
    return tuple(weights), tuple(weights.values())


def breadth(rng: random.Random) -> int:
    """Number of core topics of an ordinary account: narrow to broad."""
    r = rng.random()
    if r < 0.15:
        return 1
    if r < 0.35:
        return 2
    if r < 0.55:
        return 3
    if r < 0.80:
        return rng.randint(4, 6)
    return rng.randint(7, 15)


def model_choice(rng: random.Random, tl: Timeline, fast: bool = False) -> ModelChoice:
    w = (rng.gammavariate(1.5, 1), rng.gammavariate(2.0, 1), rng.gammavariate(0.8, 1) + 0.01)
    if fast:
        return ModelChoice(
            w, tl.release + rng.uniform(0, 2 * HOUR), rng.uniform(0.6, 0.95), rng.uniform(0, HOUR)
        )
    # gradual adoption: half the accounts adopt, exponential waiting time, mean 30 h
    if rng.random() < 0.5:
        return ModelChoice(
            w, tl.release + rng.expovariate(1 / (30 * HOUR)), rng.uniform(0.2, 0.6), 2 * HOUR
        )
    return ModelChoice(w)


def new_identity(
    rng: random.Random, account_id: str, kind: str, org: tuple | None = None
) -> Account:
    if org is None:
        org_id, payment, prefix, ua = (
            f"org_{hexid(rng, 10)}",
            f"pm_{hexid(rng)}",
            random_prefix(rng),
            None,
        )
    else:
        org_id, payment, prefix, ua = org
    return Account(
        account_id=account_id,
        kind=kind,
        org_id=org_id,
        payment=payment,
        ip_prefixes=(prefix,),
        ip_hosts=tuple(rng.randint(2, 254) for _ in range(rng.randint(1, 3))),
        user_agent=ua or rng.choice(BENIGN_UAS),
        api_keys=tuple(f"key_{hexid(rng, 8)}" for _ in range(rng.randint(1, 3))),
        tz=pick_tz(rng),
    )


def regular_rate(
    rng: random.Random, median: float = 3.0, sigma: float = 1.2, cap: float = 400.0
) -> float:
    return min(cap, rng.lognormvariate(math.log(median), sigma))


def build_regular(
    rng: random.Random,
    acct: Account,
    tl: Timeline,
    *,
    median: float = 3.0,
    join_prob: float = 0.12,
    fast: bool = False,
) -> Account:
    peak = regular_rate(rng, median)
    amp = rng.uniform(0.75, 1.0)
    join = tl.t0 if rng.random() >= join_prob else rng.uniform(tl.t0, max(tl.t0, tl.t1 - HOUR))
    tz = acct.tz

    def rate(t: float) -> float:
        return peak * diurnal(t, tz, amp)

    times = poisson_times(rng, join, tl.t1, rate)
    topics, weights = topic_mix(rng, breadth(rng))
    acct.times = [(quantize(t), 0) for t in times]
    acct.phases = [[(tl.t0, Behaviour(topics, weights, "human"))]]
    acct.models = [(tl.t0, model_choice(rng, tl, fast))]
    acct.predates = join == tl.t0
    acct.rates = {0: rate}
    return acct


def build_narrow_app(rng: random.Random, acct: Account, tl: Timeline) -> Account:
    cat = rng.choice(sorted(T.APP_PREFIXES))
    pool = tuple(t for t in T.TOPICS if t.startswith(cat + "/"))
    k = rng.choice((1, 1, 2))
    topics, weights = topic_mix(rng, k, pool, background=0.0)
    peak = log_uniform(rng, 100, 1500)
    amp = rng.uniform(0.3, 0.7)
    tz = acct.tz

    def rate(t: float) -> float:
        return peak * diurnal(t, tz, amp)

    times = poisson_times(rng, tl.t0, tl.t1, rate)
    prefixes = tuple(
        rng.sample(T.APP_PREFIXES[cat], min(len(T.APP_PREFIXES[cat]), rng.randint(1, 2)))
    )
    acct.times = [(quantize(t), 0) for t in times]
    acct.phases = [[(tl.t0, Behaviour(topics, weights, "app", prefixes=prefixes))]]
    acct.models = [(tl.t0, ModelChoice(weights=(0.1, 0.8, 0.1)))]
    acct.predates, acct.rates = True, {0: rate}
    return acct


def build_batch(rng: random.Random, acct: Account, tl: Timeline) -> Account:
    build_regular(rng, acct, tl, median=10.0, join_prob=0.0)
    beh = acct.phases[0][0][1]
    # the job's topics: the account's own top topics
    top = sorted(zip(beh.weights, beh.topics, strict=True), reverse=True)[:2]
    cat = top[0][1].split("/")[0]
    prefixes = T.APP_PREFIXES.get(cat, T.APP_PREFIXES["data"])
    job = Behaviour(
        tuple(t for _, t in top), tuple(w for w, _ in top), "app", prefixes=prefixes[:1]
    )
    per_day = rng.randint(1, 3)
    n_bursts = max(1, round(tl.hours / 24 * per_day))
    bursts: list[tuple[float, int]] = []
    first = rng.uniform(tl.frac(0.1), tl.frac(0.75))
    for b in range(n_bursts):
        s = first + b * (tl.t1 - tl.t0) / n_bursts
        if s >= tl.t1:
            s -= tl.t1 - tl.t0
        n = int(log_uniform(rng, 300, 3000))
        dur = rng.uniform(600, 2400)
        rate = n / dur * HOUR
        bursts.extend(
            (quantize(t), 1)
            for t in poisson_times(rng, s, min(tl.t1, s + dur), lambda _t, r=rate: r)
        )
    acct.times = sorted(acct.times + bursts)
    acct.phases.append([(tl.t0, job)])
    acct.bursts = (1, float(per_day), (300.0, 3000.0), (600.0, 2400.0))
    return acct


def build_product_change(rng: random.Random, acct: Account, tl: Timeline) -> Account:
    peak = regular_rate(rng, 8.0, 1.0)
    amp = rng.uniform(0.7, 1.0)
    change = rng.uniform(tl.frac(0.3), tl.frac(0.8))
    growth = rng.uniform(1.0, 3.0)
    tz = acct.tz

    def rate(t: float) -> float:
        return peak * diurnal(t, tz, amp) * (growth if t >= change else 1.0)

    times = poisson_times(rng, tl.t0, tl.t1, rate)
    a = topic_mix(rng, rng.randint(1, 4))
    pool = T.HIGH_VALUE if rng.random() < 0.5 else T.TOPICS
    b = topic_mix(rng, rng.randint(1, 3), pool)
    acct.times = [(quantize(t), 0) for t in times]
    acct.phases = [[(tl.t0, Behaviour(*a, "human")), (change, Behaviour(*b, "human"))]]
    acct.models = [(tl.t0, model_choice(rng, tl))]
    acct.predates, acct.rates = True, {0: rate}
    return acct


def build_new_ramp(rng: random.Random, acct: Account, tl: Timeline) -> Account:
    join = rng.uniform(tl.t0, tl.frac(0.7))
    target = log_uniform(rng, 20, 400)
    ramp = rng.uniform(2, 8) * HOUR
    amp = rng.uniform(0.6, 1.0)
    tz = acct.tz

    def rate(t: float) -> float:
        x = (t - join) / ramp
        return target * diurnal(t, tz, amp) / (1.0 + math.exp(-8.0 * (x - 0.5)))

    times = poisson_times(rng, join, tl.t1, rate)
    topics, weights = topic_mix(rng, rng.randint(1, 4))
    acct.times = [(quantize(t), 0) for t in times]
    acct.phases = [[(tl.t0, Behaviour(topics, weights, "human"))]]
    acct.models = [(tl.t0, model_choice(rng, tl))]
    return acct


def benign_population(seed: int, n: int, tl: Timeline, new_id) -> list[Account]:
    """``n`` benign accounts; ``new_id(rng)`` mints opaque account ids."""
    rng = random.Random(f"{seed}/benign")
    counts = {k: int(round(n * s)) for k, s in KIND_SHARES.items()}
    accounts: list[Account] = []
    # organisations: sizes 3..30 (heavy-ish), until the org share is filled
    left = counts.pop("org_member")
    while left >= 3:
        size = min(left, max(3, int(rng.paretovariate(1.3) * 3)), 30)
        org = (
            f"org_{hexid(rng, 10)}",
            f"pm_{hexid(rng)}",
            random_prefix(rng),
            rng.choice(BENIGN_UAS),
        )
        tz = pick_tz(rng)
        for _ in range(size):
            a = new_identity(rng, new_id(rng), "org_member", org)
            a.tz = tz
            accounts.append(build_regular(rng, a, tl, median=4.0, join_prob=0.05))
        left -= size
    builders = {
        "narrow_app": build_narrow_app,
        "batch": build_batch,
        "product_change": build_product_change,
        "new_ramp": build_new_ramp,
        "fast_adopter": lambda r, a, t: build_regular(
            r, a, t, median=6.0, join_prob=0.0, fast=True
        ),
    }
    for kind, builder in builders.items():
        for _ in range(counts[kind]):
            accounts.append(builder(rng, new_identity(rng, new_id(rng), kind), tl))
    while len(accounts) < n:
        accounts.append(build_regular(rng, new_identity(rng, new_id(rng), "regular"), tl))
    return accounts[:n] if len(accounts) > n else accounts
