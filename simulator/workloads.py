"""Benign workloads that exist in production (the ``production`` mix).

Kinds (``account_kinds`` values; FP is reported per kind), on top of the
classic kinds of :mod:`simulator.population`:

``assistant_reseller``
    A general-purpose assistant or reseller: many end users behind one
    account. High volume (100..800/h at peak), diurnal over two time zones,
    a broad Zipf-like topic mix over every topic, several languages, many API
    keys, the end users' greetings around their questions.
``rag_wrapper``
    A RAG or wrapper app: a long fixed instruction block (100..1,500
    characters: header, rules, sometimes a worked example) and a fixed suffix
    around varied content (retrieved passages + the end user's question).
``llm_judge``
    An evaluation pipeline using the model as a judge: real rubric prompts
    (FastChat MT-bench judge prompts) filled with questions and answers;
    a low background rate plus 1..4 bursty evaluation runs a day of 200..2,000
    requests in 10..60 minutes, mostly on the most capable model.
``edtech_tutor``
    An ed-tech tutor: step-by-step explanations of students' questions,
    20..150/h in school hours (weekdays), established, accounts of one org
    sharing its card and range.
``multilingual``
    Ordinary customers writing in Chinese, Japanese, Korean, Thai, Russian or
    Arabic (real corpus text; Arabic is synthetic, see ``corpus.py``).
``org_product``
    Organisations whose accounts run the same product: shared templates,
    shared verbatim prompts (health checks, examples), one card, one office
    range, one user agent, one system prompt.
``metadata_gateway``
    Customers behind a gateway that logs no prompt and no topic.

Every account of the production mix also gets a gateway profile
(:mod:`simulator.gateway`).
"""

from __future__ import annotations

import math
import random

from simulator import corpus as C
from simulator import phrasebook as P
from simulator import topics as T
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
from simulator.gateway import Gateway, benign_gateway, fingerprint
from simulator.population import Timeline, build_regular, model_choice, new_identity, pick_tz

PRODUCTION_KINDS: tuple[str, ...] = (
    "assistant_reseller",
    "rag_wrapper",
    "llm_judge",
    "edtech_tutor",
    "multilingual",
    "org_product",
    "metadata_gateway",
)
PRODUCTION_SHARES: dict[str, float] = {
    "assistant_reseller": 0.02,
    "rag_wrapper": 0.04,
    "llm_judge": 0.015,
    "edtech_tutor": 0.01,
    "multilingual": 0.06,
    "org_product": 0.05,
    "metadata_gateway": 0.03,
}
# Languages of ordinary (non-multilingual) accounts in real-text mode.
WESTERN_LANGS: tuple[tuple[str, float], ...] = (
    ("en", 0.82), ("de", 0.04), ("es", 0.04), ("fr", 0.03), ("pt", 0.02), ("it", 0.02),
    ("nl", 0.01), ("hi", 0.02),
)
MULTILINGUAL_LANGS: tuple[tuple[str, float], ...] = (
    ("zh", 0.25), ("ja", 0.22), ("ko", 0.15), ("ru", 0.15), ("th", 0.1), ("ar", 0.13),
)
# Which topics an app of each wrapper / product serves.
APP_TOPICS: dict[str, tuple[str, ...]] = {
    "support_rag": ("support/customer-service", "support/troubleshooting"),
    "legal_summariser": ("business/legal",),
    "ecommerce_copy": ("writing/marketing",),
    "internal_search": ("coding/devops", "business/hr", "support/troubleshooting"),
    "translation_wrapper": ("data/translation",),
    "meeting_notes": ("data/summarization",),
    "helpdesk": ("support/troubleshooting",),
    "sales_assistant": ("writing/email", "business/strategy"),
    "analytics_copilot": ("coding/sql", "data/extraction"),
    "content_studio": ("writing/social-media", "writing/marketing"),
}


def _weighted(rng: random.Random, pairs: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in pairs], weights=[w for _, w in pairs])[0]


def zipf_mix(rng: random.Random, s: float = 1.0) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Every topic, Zipf-weighted in an order close to population popularity."""
    order = sorted(T.TOPICS, key=lambda t: -T.TAXONOMY[t][0] * rng.lognormvariate(0, 0.5))
    return tuple(order), tuple(1.0 / (i + 1) ** s for i in range(len(order)))


def _mix(topics: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    return topics, tuple(1.0 for _ in topics)


def school_hours(ts: float, tz: float) -> float:
    """Ed-tech traffic: weekdays 8..16 local (homework peak 15..18), little at night
    and on weekends (the run starts on a Monday)."""
    local = ts / HOUR + tz
    h = local % 24.0
    weekday = int(local // 24.0) % 7 < 5
    if 8 <= h < 16:
        v = 1.0
    elif 16 <= h < 21:
        v = 0.7
    elif 6 <= h < 8:
        v = 0.2
    else:
        v = 0.03
    return v if weekday else 0.25 * v


def wrapper_prefix(rng: random.Random, app: dict) -> str:
    """The app's fixed instruction block: header + rules (+ example), 100..1,500 characters."""
    target = log_uniform(rng, 100, 1500)
    parts = [app["header"]]
    rules = list(app["rules"])
    k = rng.randint(1, len(rules))
    for r in rules[:k]:
        if len("\n".join(parts)) >= target:
            break
        parts.append(f"- {r}")
    if app.get("example") and len("\n".join(parts)) + len(app["example"]) <= 1500 \
            and rng.random() < 0.5:
        parts.append(app["example"])
    while len("\n".join(parts)) < 100 and len(parts) <= len(rules):
        parts.append(f"- {rules[len(parts) - 1]}")
    while len("\n".join(parts)) > 1500 and len(parts) > 1:
        parts.pop()
    return "\n".join(parts)


def build_reseller(rng: random.Random, acct: Account, tl: Timeline) -> Account:
    peak = log_uniform(rng, 100, 800)
    tz2 = pick_tz(rng)
    tz, amp = acct.tz, rng.uniform(0.5, 0.85)

    def rate(t: float) -> float:
        return peak * 0.5 * (diurnal(t, tz, amp) + diurnal(t, tz2, amp))

    times = poisson_times(rng, tl.t0, tl.t1, rate)
    topics, weights = zipf_mix(rng, rng.uniform(0.8, 1.2))
    acct.times = [(quantize(t), 0) for t in times]
    acct.phases = [[(tl.t0, Behaviour(topics, weights, "reseller"))]]
    acct.models = [(tl.t0, ModelChoice((0.3, 0.55, 0.15)))]
    acct.api_keys = tuple(f"key_{hexid(rng, 8)}" for _ in range(rng.randint(5, 20)))
    acct.ip_hosts = tuple(rng.randint(2, 254) for _ in range(rng.randint(4, 12)))
    langs = ["en"] + rng.sample([x for x in C.languages() if x != "en"], rng.randint(2, 5))
    acct.langs = tuple(langs)
    acct.lang_weights = (3.0,) + tuple(1.0 / (i + 1) for i in range(len(langs) - 1))
    acct.gateway = benign_gateway(rng, app=True)
    acct.predates, acct.rates = True, {0: rate}
    return acct


def build_rag_wrapper(rng: random.Random, acct: Account, tl: Timeline) -> Account:
    app = rng.choice(P.document("wrappers.json")["apps"])
    prefix = wrapper_prefix(rng, app)
    peak = log_uniform(rng, 20, 600)
    tz, amp = acct.tz, rng.uniform(0.3, 0.8)

    def rate(t: float) -> float:
        return peak * diurnal(t, tz, amp)

    times = poisson_times(rng, tl.t0, tl.t1, rate)
    topics = APP_TOPICS[app["name"]]
    params = {
        "prefix": prefix,
        "suffix": rng.choice(app["suffixes"]),
        "layout": app["layout"],
        "app": app["name"],
    }
    acct.times = [(quantize(t), 0) for t in times]
    acct.phases = [[(tl.t0, Behaviour(*_mix(topics), "wrapper", params=params))]]
    acct.models = [(tl.t0, ModelChoice(rng.choice(((0.6, 0.35, 0.05), (0.1, 0.8, 0.1)))))]
    acct.gateway = benign_gateway(rng, app=True)
    acct.gateway.system_prompts = (fingerprint(rng),)
    acct.predates, acct.rates = True, {0: rate}
    return acct


def build_judge(rng: random.Random, acct: Account, tl: Timeline) -> Account:
    pool = C.judge_templates()
    en = [t for t in pool if t["lang"] == "en"]
    other = [t for t in pool if t["lang"] != "en"]
    k = rng.randint(1, 3)
    templates = tuple(rng.sample(en, k)) if rng.random() < 0.8 else tuple(rng.sample(other, k))
    base = log_uniform(rng, 2, 20)
    tz = acct.tz

    def steady(t: float) -> float:
        return base * diurnal(t, tz, 0.7)

    times = [(quantize(t), 0) for t in poisson_times(rng, tl.t0, tl.t1, steady)]
    per_day = rng.randint(1, 4)
    n_runs = max(1, round(tl.hours / 24 * per_day))
    for _ in range(n_runs):
        s = rng.uniform(tl.t0, tl.t1 - 0.25 * HOUR)
        n = int(log_uniform(rng, 200, 2000))
        dur = rng.uniform(600, 3600)
        rate = n / dur * HOUR
        times.extend(
            (quantize(t), 0)
            for t in poisson_times(rng, s, min(tl.t1, s + dur), lambda _t, r=rate: r)
        )
    topics, weights = zipf_mix(rng, 1.5)
    acct.times = sorted(times)
    acct.phases = [[(tl.t0, Behaviour(topics, weights, "judge", params={"templates": templates}))]]
    acct.models = [(tl.t0, ModelChoice((0.85, 0.1, 0.05)))]
    acct.gateway = benign_gateway(rng, app=True)
    acct.gateway.max_tokens, acct.gateway.max_tokens_weights = (1024, 2048), (0.5, 0.5)
    acct.predates, acct.rates = True, {0: steady}
    acct.bursts = (0, float(per_day), (200.0, 2000.0), (600.0, 3600.0))
    return acct


def build_tutor(rng: random.Random, acct: Account, tl: Timeline) -> Account:
    peak = log_uniform(rng, 20, 150)
    tz = acct.tz

    def rate(t: float) -> float:
        return peak * school_hours(t, tz)

    times = poisson_times(rng, tl.t0, tl.t1, rate)
    topics = ("math/algebra", "math/geometry", "math/statistics", "science/physics",
              "science/chemistry", "science/biology", "coding/python", "education/tutoring")
    weights = tuple(rng.gammavariate(1.0, 1.0) + 0.1 for _ in topics)
    lang = "en" if rng.random() < 0.75 else rng.choice(("es", "de", "ja"))
    framing = rng.choice(P.by_lang("tutor.tsv").get(lang) or P.by_lang("tutor.tsv")["en"])
    params = {"grade": rng.randint(5, 12), "framing": framing}
    acct.times = [(quantize(t), 0) for t in times]
    acct.phases = [[(tl.t0, Behaviour(topics, weights, "tutor", params=params))]]
    acct.models = [(tl.t0, ModelChoice((0.5, 0.45, 0.05)))]
    acct.langs, acct.lang_weights = (lang,), (1.0,)
    acct.gateway = benign_gateway(rng, app=True, long_form=True)
    acct.gateway.thinking = rng.choice((0.0, 0.3, 0.8))
    acct.predates, acct.rates = True, {0: rate}
    return acct


def build_multilingual(rng: random.Random, acct: Account, tl: Timeline) -> Account:
    build_regular(rng, acct, tl, median=4.0, join_prob=0.05)
    lang = _weighted(rng, MULTILINGUAL_LANGS)
    acct.langs, acct.lang_weights = (lang,), (1.0,)
    acct.gateway = benign_gateway(rng)
    return acct


def build_metadata(rng: random.Random, acct: Account, tl: Timeline) -> Account:
    heavy = rng.random() < 0.15
    build_regular(rng, acct, tl, median=60.0 if heavy else 5.0, join_prob=0.05)
    acct.phases = [[(tl.t0, Behaviour(("x",), (1.0,), "metadata",
                                      params={"long_share": rng.uniform(0.02, 0.3)}))]]
    acct.gateway = benign_gateway(rng, app=rng.random() < 0.5, long_form=rng.random() < 0.3)
    return acct


def org_product_members(
    rng: random.Random, tl: Timeline, new_id, count: int
) -> list[Account]:
    """Whole organisations running one product on several accounts."""
    products = P.document("products.json")["products"]
    out: list[Account] = []
    while count - len(out) >= 2:
        size = min(count - len(out), rng.randint(3, 12))
        prod = rng.choice(products)
        org = (f"org_{hexid(rng, 10)}", f"pm_{hexid(rng)}", random_prefix(rng),
               rng.choice(BENIGN_UAS))
        tz = pick_tz(rng)
        sysfp = fingerprint(rng)
        gw_proto = benign_gateway(rng, app=True)
        topics = APP_TOPICS[prod["name"]]
        for _ in range(size):
            a = new_identity(rng, new_id(rng), "org_product", org)
            a.tz = tz
            build_regular(rng, a, tl, median=12.0, join_prob=0.0)
            a.phases = [[(tl.t0, Behaviour(*_mix(topics), "product", params={"product": prod}))]]
            a.gateway = Gateway(**{**gw_proto.__dict__, "system_prompts": (sysfp,)})
            out.append(a)
    return out


def tutor_orgs(rng: random.Random, tl: Timeline, new_id, count: int) -> list[Account]:
    out: list[Account] = []
    while len(out) < count:
        size = min(count - len(out), rng.randint(2, 6))
        org = (f"org_{hexid(rng, 10)}", f"pm_{hexid(rng)}", random_prefix(rng),
               rng.choice(BENIGN_UAS))
        tz = pick_tz(rng)
        for _ in range(size):
            a = new_identity(rng, new_id(rng), "edtech_tutor", org)
            a.tz = tz
            out.append(build_tutor(rng, a, tl))
    return out


SINGLE_BUILDERS = {
    "assistant_reseller": build_reseller,
    "rag_wrapper": build_rag_wrapper,
    "llm_judge": build_judge,
    "multilingual": build_multilingual,
    "metadata_gateway": build_metadata,
}


def production_counts(n: int) -> dict[str, int]:
    return {k: max(1, int(round(n * s))) for k, s in PRODUCTION_SHARES.items()}


def production_population(seed: int, n: int, tl: Timeline, new_id, text: str) -> list[Account]:
    """``n`` benign accounts: the classic kinds plus the production workloads."""
    from simulator.population import benign_population

    counts = production_counts(n) if n >= 40 else {}
    classic = benign_population(seed, n - sum(counts.values()), tl, new_id)
    rng = random.Random(f"{seed}/benign-production")
    extra: list[Account] = []
    for kind, builder in SINGLE_BUILDERS.items():
        for _ in range(counts.get(kind, 0)):
            extra.append(builder(rng, new_identity(rng, new_id(rng), kind), tl))
    extra += org_product_members(rng, tl, new_id, counts.get("org_product", 0))
    extra += tutor_orgs(rng, tl, new_id, counts.get("edtech_tutor", 0))
    for a in classic:
        r = random.Random(f"{seed}/gateway/{a.account_id}")
        if text == "real":
            lang = _weighted(r, WESTERN_LANGS)
            a.langs, a.lang_weights = (lang,), (1.0,)
        a.gateway = benign_gateway(r, app=a.kind in ("narrow_app", "batch"))
    for a in classic + extra:
        a.text = text
    return classic + extra


__all__ = ["PRODUCTION_KINDS", "production_population", "model_choice", "math"]
