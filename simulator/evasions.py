"""Attack families that evade the obvious signals (the ``production`` mix).

``plain_harvest``   heavy, new account, narrow (one or two capability areas),
                    raw attack-pool questions each asked exactly once, no
                    reasoning request, no wrapper; stops when its question list
                    is exhausted (a harvester pulling a benchmark-sized set).
``paraphrase_cot``  reasoning elicitation paraphrased without the obvious
                    keywords (``phrases/elicitation.tsv``), in many languages and
                    capitalisations, placed mid-prompt.
``affix_extractor`` the extractor's templated requests with a random prefix
                    and suffix on every request (defeats first/last-characters
                    fingerprints).
``cover_extractor`` an extractor whose account also carries 50..75% varied,
                    broad cover traffic at a human rhythm.
``slow_pivot``      an established, broad account whose mix drifts over
                    3..8 hours towards one high-value capability while its rate
                    grows; attack traffic from the start of the pivot.
``hydra_proxy``     a synchronized campaign behind residential proxies: every
                    member has its own card, its own /24 per request, a common
                    benign client; members share only behaviour (timing,
                    topic, one frame around attack-pool questions).

Sources as in :mod:`simulator.attacks` ([A] synchronized traffic and proxy
resellers, [G] non-English reasoning-trace coercion, [S] evasion table).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from simulator import corpus as C
from simulator import topics as T
from simulator.attacks import EVASION_FAMILIES, _flat, _narrow_high_value, _start, _templates
from simulator.core import (
    BENIGN_UAS,
    HOUR,
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
from simulator.gateway import attack_gateway
from simulator.population import Timeline, build_regular, new_identity, pick_tz, topic_mix

# Frames a proxy campaign wraps its questions in (one per campaign); plain
# instructions, no reasoning keywords.
PROXY_FRAMES: tuple[str, ...] = (
    "{q}\n\nAnswer thoroughly and completely.",
    "Question: {q}\nAnswer:",
    "{q}\nPlease give a complete, well-structured answer with all details.",
)


@dataclass(frozen=True)
class EvasionParams:
    """Rates in requests/hour (documented assumptions, relative to the benign
    median of ~3/h; see :class:`simulator.attacks.Params`)."""

    plain_rate: tuple[float, float] = (120.0, 400.0)
    plain_categories: tuple[str, ...] = ("math", "coding", "reasoning", "stem")
    paraphrase_rate: tuple[float, float] = (60.0, 250.0)
    affix_rate: tuple[float, float] = (300.0, 1200.0)
    cover_attack_rate: tuple[float, float] = (60.0, 300.0)
    cover_share: tuple[float, float] = (0.5, 0.75)
    pivot_rate: tuple[float, float] = (80.0, 300.0)
    pivot_hours: tuple[float, float] = (3.0, 8.0)
    proxy_member_rate: tuple[float, float] = (8.0, 30.0)
    proxy_start_jitter_s: float = 300.0


def _langs(rng: random.Random, acct: Account, multilingual: bool) -> None:
    if multilingual:
        langs = ["en"] + rng.sample([x for x in C.languages() if x != "en"], rng.randint(2, 6))
        acct.langs = tuple(langs)
        acct.lang_weights = (2.0,) + tuple(1.0 for _ in langs[1:])


def build_plain_harvest(rng: random.Random, acct: Account, tl: Timeline, p: EvasionParams
                        ) -> Account:
    start = _start(rng, tl)
    rate = log_uniform(rng, *p.plain_rate)
    cats = tuple(rng.sample(p.plain_categories, rng.randint(1, 2)))
    if acct.text == "real":
        questions = [q for q in C.pool("attack") if q.cat in cats]
        rng.shuffle(questions)
    else:
        # synthetic: slot-filled payloads, each distinct
        topics, _ = _narrow_high_value(rng, 2)
        seen: set[str] = set()
        questions = []
        while len(questions) < 3000:
            t = rng.choice(topics)
            text = T.attack_payload(rng, t)
            if text not in seen:
                seen.add(text)
                cat = t.split("/")[0]
                questions.append(C.Prompt(f"syn:{len(questions)}", "en",
                                          cat if cat in C.CATEGORY_TOPICS else "reasoning", text))
    times = poisson_times(rng, start, tl.t1, _flat(rate))[: len(questions)]
    acct.times = [(quantize(t), 0) for t in times]
    acct.phases = [[(tl.t0, Behaviour(("x",), (1.0,), "plain_harvest",
                                      params={"questions": questions[: len(times)]}))]]
    acct.models = [(tl.t0, ModelChoice((0.8, 0.2, 0.0)))]
    acct.gateway = attack_gateway(rng, thinking=rng.choice((0.0, 0.0, 0.5)))
    acct.attack_sources, acct.attack_from = frozenset({0}), tl.t0
    return acct


def build_paraphrase_cot(rng: random.Random, acct: Account, tl: Timeline, p: EvasionParams
                         ) -> Account:
    start = _start(rng, tl)
    rate = log_uniform(rng, *p.paraphrase_rate)
    topics, weights = topic_mix(rng, rng.randint(2, 4), T.REASONING_TOPICS, background=0.0)
    _langs(rng, acct, multilingual=True)
    acct.times = [(quantize(t), 0) for t in poisson_times(rng, start, tl.t1, _flat(rate))]
    acct.phases = [[(tl.t0, Behaviour(topics, weights, "paraphrase_cot"))]]
    acct.models = [(tl.t0, ModelChoice((1.0, 0.0, 0.0)))]
    acct.gateway = attack_gateway(rng)
    acct.attack_sources, acct.attack_from = frozenset({0}), tl.t0
    return acct


def build_affix_extractor(rng: random.Random, acct: Account, tl: Timeline, p: EvasionParams
                          ) -> Account:
    start = _start(rng, tl)
    rate = log_uniform(rng, *p.affix_rate)
    topics, weights = _narrow_high_value(rng, rng.randint(1, 2))
    acct.times = [(quantize(t), 0) for t in poisson_times(rng, start, tl.t1, _flat(rate))]
    acct.phases = [[(tl.t0, Behaviour(topics, weights, "affixed", templates=_templates(rng),
                                      elicitation_share=0.5))]]
    acct.models = [(tl.t0, ModelChoice((0.9, 0.1, 0.0)))]
    acct.gateway = attack_gateway(rng)
    acct.attack_sources, acct.attack_from = frozenset({0}), tl.t0
    return acct


def build_cover_extractor(rng: random.Random, acct: Account, tl: Timeline, p: EvasionParams
                          ) -> Account:
    start = _start(rng, tl)
    rate = log_uniform(rng, *p.cover_attack_rate)
    share = rng.uniform(*p.cover_share)
    cover_rate = rate * share / (1.0 - share)
    tz = acct.tz
    attack = [(quantize(t), 0) for t in poisson_times(rng, start, tl.t1, _flat(rate))]
    cover = [(quantize(t), 1) for t in poisson_times(
        rng, tl.t0, tl.t1, lambda t: cover_rate * diurnal(t, tz, 0.6))]
    topics, weights = _narrow_high_value(rng, rng.randint(1, 2))
    acct.times = sorted(attack + cover)
    acct.phases = [
        [(tl.t0, Behaviour(topics, weights, "templated", templates=_templates(rng),
                           elicitation_share=0.3))],
        [(tl.t0, Behaviour(*topic_mix(rng, rng.randint(6, 15)), "human"))],
    ]
    acct.models = [(tl.t0, ModelChoice((0.7, 0.3, 0.0)))]
    acct.gateway = attack_gateway(rng)
    acct.attack_sources, acct.attack_from = frozenset({0}), start
    return acct


def build_slow_pivot(rng: random.Random, acct: Account, tl: Timeline, p: EvasionParams
                     ) -> Account:
    """Established and broad; over ``pivot_hours`` the mix moves, hour by hour,
    to raw attack-pool questions on one high-value topic while the rate grows."""
    build_regular(rng, acct, tl, median=6.0, join_prob=0.0)
    broad = Behaviour(*topic_mix(rng, rng.randint(5, 12)), "human")
    acct.phases = [[(tl.t0, broad)]]
    start = rng.uniform(tl.frac(0.2), tl.frac(0.5))
    span = rng.uniform(*p.pivot_hours) * HOUR
    rate = log_uniform(rng, *p.pivot_rate)
    acct.times = [x for x in acct.times if x[0] < start]
    base = acct.phases[0][0][1]
    (target,), _ = _narrow_high_value(rng, 1)
    steps = max(2, int(span // HOUR))
    phases = []
    for i in range(steps + 1):
        share = 0.9 * i / steps  # hour by hour towards the target capability
        phases.append((start + span * i / steps, Behaviour(
            base.topics, base.weights, "pivot", params={"target": target, "share": share})))
    tz = acct.tz

    def r(t: float) -> float:
        f = min(1.0, max(0.0, (t - start) / span))
        return (1.0 - f) * 6.0 * diurnal(t, tz, 0.8) + f * rate

    acct.times += [(quantize(t), 1) for t in poisson_times(rng, start, tl.t1, r)]
    acct.phases.append(phases)
    acct.gateway = attack_gateway(rng, thinking=0.1)
    acct.attack_sources, acct.attack_from = frozenset({1}), start
    return acct


def build_hydra_proxy(
    rng: random.Random, ids: list[str], tl: Timeline, p: EvasionParams, campaign: str
) -> list[Account]:
    start = _start(rng, tl)
    topics, weights = _narrow_high_value(rng, 1)
    behaviour = Behaviour(topics, weights, "shared_frame",
                          params={"frame": rng.choice(PROXY_FRAMES)})
    ua = rng.choice(BENIGN_UAS)
    members: list[Account] = []
    for aid in ids:
        a = new_identity(rng, aid, "hydra_proxy")
        a.ip_prefixes = tuple(random_prefix(rng) for _ in range(rng.randint(3, 8)))
        a.ip_hosts = tuple(rng.randint(2, 254) for _ in range(8))
        a.user_agent = ua
        a.org_id = f"org_{hexid(rng, 10)}"
        a.tz = pick_tz(rng)
        a.phases = [[(tl.t0, behaviour)]]
        a.models = [(tl.t0, ModelChoice((0.8, 0.2, 0.0)))]
        a.gateway = attack_gateway(rng)
        a.attack_sources, a.attack_from = frozenset({0}), tl.t0
        members.append(a)
    joins = [start + rng.uniform(0, p.proxy_start_jitter_s) for _ in members]
    member_rate = log_uniform(rng, *p.proxy_member_rate)
    per_member: list[list[tuple[float, int]]] = [[] for _ in members]
    for t in poisson_times(rng, start, tl.t1, _flat(member_rate * len(members))):
        for _ in range(32):
            i = rng.randrange(len(members))
            if joins[i] <= t:
                per_member[i].append((quantize(t), 0))
                break
    for a, times in zip(members, per_member, strict=True):
        a.times = times
    return members


SINGLE_BUILDERS = {
    "plain_harvest": build_plain_harvest,
    "paraphrase_cot": build_paraphrase_cot,
    "affix_extractor": build_affix_extractor,
    "cover_extractor": build_cover_extractor,
    "slow_pivot": build_slow_pivot,
}


def new_attacker(rng: random.Random, account_id: str, family: str, text: str) -> Account:
    from simulator.attacks import _attacker

    a = _attacker(rng, account_id, family)
    a.text = text
    return a


__all__ = ["EVASION_FAMILIES", "EvasionParams", "SINGLE_BUILDERS", "build_hydra_proxy",
           "new_attacker", "new_identity"]
