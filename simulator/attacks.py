"""Attack families, each parameterised and grounded in a public source.

Sources (summarised in ``/work/shared/research/attack-signals.md``):

[A]  Anthropic, "Detecting and preventing distillation attacks", 23 Feb 2026:
     >16M exchanges via ~24,000 fraudulent accounts; synchronized traffic with
     shared payment methods and coordinated timing (load balancing); CoT
     harvesting ("imagine and articulate the internal reasoning behind a
     completed response ... step by step") and rubric grading; hundreds of
     accounts targeting agentic reasoning, tool use, coding, computer use,
     vision; one campaign moved about half its traffic to a newly released
     model within 24 hours; "hydra clusters" of proxy-reseller accounts (one
     >20,000 accounts) mixing distillation with unrelated customer traffic;
     "a prompt that is harmless alone, arriving in tens of thousands of
     variations ... all aimed at one narrow capability".
[G]  Google GTIG AI Threat Tracker, Feb 2026: one campaign >100,000 prompts,
     many non-English, "reasoning trace coercion".
[O]  OpenAI memo to a US House committee, Feb 2026: obfuscated third-party
     routers to mask the source; programmatic access.
[S]  attack-signals.md signal/evasion table (jitter vs 24/7 flatness; cover
     prompts vs template repetition; slow pivot vs cluster adoption) and the
     model-extraction literature: PRADA (Juuti et al., 2019) and stateful
     detection (Chen, Carlini, Wagner, 2020) — extraction queries that cover
     the input space systematically.

No public source gives rates; every rate below is a documented assumption,
chosen relative to the benign population (median ~3 requests/h at peak).

Families (``--attacks`` names):

``extractor``     one heavy account, malicious from its first request [A].
``hydra``         a synchronized, load-balanced campaign of accounts, each unremarkable [A].
``hydra_cover``   the same, each member also carrying unrelated customer traffic [A].
``sweep``         a systematic uniform sweep across every topic [S].
``takeover``      an established benign account that turns extractor mid-run [O][S].
``low_and_slow``  benign-looking rate, round the clock, narrow, templated [A][S].
``cot_coercion``  CoT harvesting and rubric grading, partly non-English [A][G].
``model_pivot``   an extractor moving ~half its traffic to the new model [A].
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from simulator import topics as T
from simulator.core import (
    MODEL_NEW,
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
from simulator.population import Timeline, build_regular, new_identity, pick_tz, topic_mix

CLASSIC_FAMILIES: tuple[str, ...] = (
    "extractor",
    "hydra",
    "hydra_cover",
    "sweep",
    "takeover",
    "low_and_slow",
    "cot_coercion",
    "model_pivot",
)
# Evasions of the production mix: built in :mod:`simulator.evasions`.
EVASION_FAMILIES: tuple[str, ...] = (
    "plain_harvest",
    "paraphrase_cot",
    "affix_extractor",
    "cover_extractor",
    "slow_pivot",
    "hydra_proxy",
)
FAMILIES: tuple[str, ...] = CLASSIC_FAMILIES + EVASION_FAMILIES
CAMPAIGN_FAMILIES: tuple[str, ...] = ("hydra", "hydra_cover", "hydra_proxy")
SINGLE_ACCOUNT_FAMILIES: tuple[str, ...] = tuple(f for f in FAMILIES if f not in CAMPAIGN_FAMILIES)

# Client fingerprints used by attack tooling: plausible, but rare in the benign population.
ATTACK_UAS: tuple[str, ...] = (
    "aiohttp/3.9.5",
    "python-httpx/0.27.0",
    "Go-http-client/2.0",
    "node-fetch/1.0",
)


@dataclass(frozen=True)
class Params:
    """Per-family parameters (all rates in requests/hour)."""

    # extractor [A]: heavy, narrow (1-2 high-value topics), templated, 24/7
    extractor_rate: tuple[float, float] = (400.0, 1500.0)
    extractor_elicitation: float = 0.6
    # hydra [A]: members, each at a benign-looking rate; shared cards / IP ranges / UA
    hydra_member_rate: tuple[float, float] = (8.0, 30.0)
    hydra_cards: int = 3
    hydra_prefixes: int = 2
    hydra_start_jitter_s: float = 300.0
    hydra_cover_share: float = 0.6  # share of a hydra_cover member's traffic that is cover
    # sweep [S]: uniform systematic cycle through every topic
    sweep_rate: tuple[float, float] = (150.0, 400.0)
    # takeover [O][S]: benign before, extractor after
    takeover_rate: tuple[float, float] = (300.0, 1200.0)
    takeover_new_infra: float = 0.5  # probability the new operator uses new IP / UA
    # low and slow [A][S]
    low_slow_rate: tuple[float, float] = (10.0, 30.0)
    low_slow_elicitation: float = 0.4
    # cot coercion [A][G]
    cot_rate: tuple[float, float] = (60.0, 250.0)
    cot_i18n_share: float = 0.4
    # model pivot [A]: about half the traffic to the new model within 24 h
    pivot_rate: tuple[float, float] = (100.0, 400.0)
    pivot_share: tuple[float, float] = (0.4, 0.6)


def default_counts(accounts: int, mix: str = "classic") -> dict[str, int]:
    """Accounts per single-account family, campaigns per hydra family; the
    ``classic`` mix has the classic families only, ``production`` all of them."""
    single = max(2, round(accounts / 100))
    campaigns = max(1, round(accounts / 500))
    fams = CLASSIC_FAMILIES if mix == "classic" else FAMILIES
    return {f: (campaigns if f in CAMPAIGN_FAMILIES else single) for f in fams}


def hydra_size(accounts: int) -> int:
    return max(8, min(60, accounts // 30))


def _start(rng: random.Random, tl: Timeline) -> float:
    return rng.uniform(tl.frac(0.1), tl.frac(0.65))


def _attacker(rng: random.Random, account_id: str, family: str) -> Account:
    a = new_identity(rng, account_id, family)
    a.user_agent = rng.choice(ATTACK_UAS) if rng.random() < 0.7 else a.user_agent
    a.tz = pick_tz(rng)
    return a


def _narrow_high_value(rng: random.Random, k: int) -> tuple[tuple[str, ...], tuple[float, ...]]:
    return topic_mix(rng, k, T.HIGH_VALUE, background=0.0)


def _templates(rng: random.Random) -> tuple[str, ...]:
    return (rng.choice(T.EXTRACTION_TEMPLATES), rng.choice(T.PLAIN_TEMPLATES))


def _flat(rate: float, jitter: float = 0.1) -> Callable[[float], float]:
    return lambda t: rate


def build_extractor(rng: random.Random, acct: Account, tl: Timeline, p: Params) -> Account:
    start = _start(rng, tl)
    rate = log_uniform(rng, *p.extractor_rate)
    topics, weights = _narrow_high_value(rng, rng.randint(1, 2))
    acct.times = [(quantize(t), 0) for t in poisson_times(rng, start, tl.t1, _flat(rate))]
    acct.phases = [
        [
            (
                tl.t0,
                Behaviour(
                    topics,
                    weights,
                    "templated",
                    templates=_templates(rng),
                    elicitation_share=p.extractor_elicitation,
                ),
            )
        ]
    ]
    acct.models = [(tl.t0, ModelChoice((0.9, 0.1, 0.0)))]
    acct.attack_sources, acct.attack_from = frozenset({0}), tl.t0
    return acct


def build_sweep(rng: random.Random, acct: Account, tl: Timeline, p: Params) -> Account:
    start = _start(rng, tl)
    rate = log_uniform(rng, *p.sweep_rate)
    acct.times = [(quantize(t), 0) for t in poisson_times(rng, start, tl.t1, _flat(rate))]
    acct.phases = [[(tl.t0, Behaviour(T.TOPICS, (1.0,) * len(T.TOPICS), "sweep"))]]
    acct.models = [(tl.t0, ModelChoice((1.0, 0.0, 0.0)))]
    acct.attack_sources, acct.attack_from = frozenset({0}), tl.t0
    return acct


def build_takeover(rng: random.Random, acct: Account, tl: Timeline, p: Params) -> Account:
    build_regular(rng, acct, tl, median=6.0, join_prob=0.0)
    turn = rng.uniform(tl.frac(0.3), tl.frac(0.7))
    acct.times = [x for x in acct.times if x[0] < turn]
    rate = log_uniform(rng, *p.takeover_rate)
    acct.times += [(quantize(t), 1) for t in poisson_times(rng, turn, tl.t1, _flat(rate))]
    topics, weights = _narrow_high_value(rng, rng.randint(1, 2))
    acct.phases.append(
        [
            (
                tl.t0,
                Behaviour(
                    topics,
                    weights,
                    "templated",
                    templates=_templates(rng),
                    elicitation_share=p.extractor_elicitation,
                ),
            )
        ]
    )
    if rng.random() < p.takeover_new_infra:  # new operator, routed through new infrastructure [O]
        acct.ip_prefixes = acct.ip_prefixes + (random_prefix(rng),)
    acct.attack_sources, acct.attack_from = frozenset({1}), turn
    return acct


def build_low_and_slow(rng: random.Random, acct: Account, tl: Timeline, p: Params) -> Account:
    start = _start(rng, tl)
    rate = log_uniform(rng, *p.low_slow_rate)
    topics, weights = _narrow_high_value(rng, 1)
    acct.times = [(quantize(t), 0) for t in poisson_times(rng, start, tl.t1, _flat(rate))]
    acct.phases = [
        [
            (
                tl.t0,
                Behaviour(
                    topics,
                    weights,
                    "templated",
                    templates=_templates(rng),
                    elicitation_share=p.low_slow_elicitation,
                ),
            )
        ]
    ]
    acct.models = [(tl.t0, ModelChoice((0.3, 0.7, 0.0)))]
    acct.attack_sources, acct.attack_from = frozenset({0}), tl.t0
    return acct


def build_cot(rng: random.Random, acct: Account, tl: Timeline, p: Params) -> Account:
    start = _start(rng, tl)
    rate = log_uniform(rng, *p.cot_rate)
    topics, weights = topic_mix(rng, rng.randint(2, 4), T.REASONING_TOPICS, background=0.0)
    acct.times = [(quantize(t), 0) for t in poisson_times(rng, start, tl.t1, _flat(rate))]
    acct.phases = [[(tl.t0, Behaviour(topics, weights, "cot", i18n_share=p.cot_i18n_share))]]
    acct.models = [(tl.t0, ModelChoice((1.0, 0.0, 0.0)))]
    acct.attack_sources, acct.attack_from = frozenset({0}), tl.t0
    return acct


def build_pivot(rng: random.Random, acct: Account, tl: Timeline, p: Params) -> Account:
    start = rng.uniform(tl.frac(0.05), max(tl.frac(0.05), tl.release - 0.1 * (tl.t1 - tl.t0)))
    rate = log_uniform(rng, *p.pivot_rate)
    topics, weights = _narrow_high_value(rng, rng.randint(1, 2))
    acct.times = [(quantize(t), 0) for t in poisson_times(rng, start, tl.t1, _flat(rate))]
    acct.phases = [
        [
            (
                tl.t0,
                Behaviour(
                    topics, weights, "templated", templates=_templates(rng), elicitation_share=0.5
                ),
            )
        ]
    ]
    pivot = tl.release + rng.uniform(0.0, 0.1) * (tl.t1 - tl.t0)
    ramp = rng.uniform(0.05, 0.15) * (tl.t1 - tl.t0)
    acct.models = [(tl.t0, ModelChoice((0.9, 0.1, 0.0), pivot, rng.uniform(*p.pivot_share), ramp))]
    acct.attack_sources, acct.attack_from = frozenset({0}), tl.t0
    acct.pivot_ts = pivot  # type: ignore[attr-defined]
    return acct


def build_hydra(
    rng: random.Random, ids: list[str], tl: Timeline, p: Params, family: str, campaign: str
) -> list[Account]:
    """One campaign. Aggregate traffic is one load-balanced stream spread over
    the members (coordinated timing, [A]); members start within a few minutes
    of each other; a few shared cards, a couple of /24 ranges, one client."""
    start = _start(rng, tl)
    cards = [f"pm_{hexid(rng)}" for _ in range(p.hydra_cards)]
    prefixes = [random_prefix(rng) for _ in range(p.hydra_prefixes)]
    ua = rng.choice(ATTACK_UAS)
    topics, weights = _narrow_high_value(rng, 1)
    behaviour = Behaviour(
        topics, weights, "templated", templates=_templates(rng), elicitation_share=0.5
    )
    members: list[Account] = []
    for aid in ids:
        a = new_identity(rng, aid, family)
        a.payment = rng.choice(cards)
        a.ip_prefixes = (rng.choice(prefixes),)
        a.ip_hosts = tuple(rng.randint(2, 254) for _ in range(4))
        a.user_agent = ua
        a.phases = [[(tl.t0, behaviour)]]
        a.models = [(tl.t0, ModelChoice((0.8, 0.2, 0.0)))]
        a.attack_sources, a.attack_from = frozenset({0}), tl.t0
        members.append(a)
    joins = [start + rng.uniform(0, p.hydra_start_jitter_s) for _ in members]
    member_rate = log_uniform(rng, *p.hydra_member_rate)
    total = member_rate * len(members)
    per_member: list[list[tuple[float, int]]] = [[] for _ in members]
    for t in poisson_times(rng, start, tl.t1, _flat(total)):
        for _ in range(32):  # load balancing over the members that have started
            i = rng.randrange(len(members))
            if joins[i] <= t:
                per_member[i].append((quantize(t), 0))
                break
    for a, times in zip(members, per_member, strict=True):
        if family == "hydra_cover":
            # unrelated customers of the proxy reseller: diurnal, broad, varied [A]
            cover_rate = member_rate * p.hydra_cover_share / (1.0 - p.hydra_cover_share)
            tz = pick_tz(rng)
            cover = poisson_times(
                rng, tl.t0, tl.t1, lambda t, tz=tz, r=cover_rate: r * diurnal(t, tz, 0.8)
            )
            times = sorted(times + [(quantize(t), 1) for t in cover])
            a.phases.append([(tl.t0, Behaviour(*topic_mix(rng, rng.randint(5, 15)), "human"))])
        a.times = times
    return members


SINGLE_BUILDERS = {
    "extractor": build_extractor,
    "sweep": build_sweep,
    "takeover": build_takeover,
    "low_and_slow": build_low_and_slow,
    "cot_coercion": build_cot,
    "model_pivot": build_pivot,
}

__all__ = ["FAMILIES", "SINGLE_ACCOUNT_FAMILIES", "CAMPAIGN_FAMILIES", "Params", "MODEL_NEW"]
