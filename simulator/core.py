"""Account behaviour, event-time generation and the event merge.

Each simulated account owns

- a sorted list of ``(ts, source)`` request times, drawn up front from a
  non-homogeneous Poisson process (piecewise-constant rate per 10-minute slot:
  exact for a piecewise-constant intensity), and
- per ``source`` a list of behaviour *phases* ``(t_from, Behaviour)``: what a
  request sent at ``ts`` looks like (topic, prompt, model, tokens).

Event contents are drawn lazily while the accounts' streams are merged in
event-time order, each account from its own ``random.Random`` seeded from
``(seed, account_id)``, so output is byte-identical for a seed and memory stays
bounded (timestamps only).
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from simulator import styles as S
from simulator import topics as T
from simulator.gateway import Gateway
from simulator.gateway import fields as gateway_fields

HOUR = 3600.0
SLOT = 600.0

MODELS_BASE: tuple[str, ...] = ("lumen-3-pro", "lumen-3-flash", "lumen-3-mini")
MODEL_NEW = "lumen-4-pro"  # released mid-run

# Relative request intensity of human-driven traffic by local hour (0..23):
# quiet nights, a working-day plateau, a smaller evening shoulder.
DIURNAL: tuple[float, ...] = (
    0.10,
    0.07,
    0.05,
    0.05,
    0.06,
    0.10,
    0.22,
    0.45,
    0.75,
    0.95,
    1.00,
    1.00,
    0.92,
    0.95,
    1.00,
    0.98,
    0.90,
    0.75,
    0.55,
    0.45,
    0.40,
    0.35,
    0.25,
    0.16,
)
# UTC offsets (hours) of the benign population and their weights.
TIMEZONES: tuple[tuple[float, float], ...] = (
    (-8.0, 0.22),
    (-5.0, 0.25),
    (0.0, 0.12),
    (1.0, 0.15),
    (5.5, 0.08),
    (8.0, 0.12),
    (9.0, 0.06),
)

BENIGN_UAS: tuple[str, ...] = (
    "lumen-python/1.40.0",
    "lumen-python/1.38.2",
    "lumen-python/1.40.0",
    "lumen-node/4.12.1",
    "lumen-node/4.11.0",
    "lumen-go/0.9.3",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "langchain/0.2.11 lumen-python/1.40.0",
    "llamaindex/0.10.50",
    "okhttp/4.12.0",
    "PostmanRuntime/7.37.0",
)
IP_FIRST_OCTETS = (23, 34, 45, 52, 63, 81, 91, 103, 115, 142, 151, 176, 185, 203, 212)


def diurnal(ts: float, tz: float, amplitude: float) -> float:
    """Intensity multiplier in (0, 1] at ``ts`` for an account in UTC offset ``tz``.

    ``amplitude`` 0 is flat round-the-clock traffic, 1 the full human profile.

    >>> round(diurnal(3 * 3600, 0.0, 1.0), 2), round(diurnal(11 * 3600, 0.0, 1.0), 2)
    (0.05, 1.0)
    >>> diurnal(3 * 3600, 0.0, 0.0)
    1.0
    """
    h = ((ts / HOUR) + tz) % 24.0
    i = int(h)
    frac = h - i
    v = DIURNAL[i] * (1.0 - frac) + DIURNAL[(i + 1) % 24] * frac
    return (1.0 - amplitude) + amplitude * v


def poisson_times(
    rng: random.Random, t0: float, t1: float, rate_per_hour: Callable[[float], float]
) -> list[float]:
    """Arrival times in ``[t0, t1)`` of a Poisson process with a slot-wise constant rate."""
    out: list[float] = []
    s = t0
    while s < t1:
        e = min(t1, (s // SLOT + 1) * SLOT)
        lam = rate_per_hour((s + e) / 2.0) / HOUR
        if lam > 0:
            t = s + rng.expovariate(lam)
            while t < e:
                out.append(t)
                t += rng.expovariate(lam)
        s = e
    return out


def log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def hexid(rng: random.Random, n: int = 12) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def random_prefix(rng: random.Random) -> str:
    return f"{T.ch(rng, IP_FIRST_OCTETS)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}"


# ---------------------------------------------------------------- behaviour ---


@dataclass
class Behaviour:
    """What one request looks like, given its time.

    ``style``: ``human`` (varied prompts), ``app`` (fixed short prefix + long
    varied content, ``prefixes``), ``templated`` (long fixed templates + short
    payload), ``cot`` (CoT harvesting / rubric grading, optional non-English),
    ``sweep`` (systematic cycle through every topic).
    """

    topics: tuple[str, ...]
    weights: tuple[float, ...]
    style: str = "human"
    prefixes: tuple[str, ...] = ()
    templates: tuple[str, ...] = ()
    elicitation_share: float = 0.0  # share of templated prompts drawn from elicitation templates
    i18n_share: float = 0.0
    human_share: float = 0.0  # share of requests that are ordinary varied prompts anyway
    params: dict[str, Any] = field(default_factory=dict)  # style-specific (``simulator.styles``)
    _cum: list[float] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        total = 0.0
        self._cum = []
        for w in self.weights:
            total += w
            self._cum.append(total)

    def pick_topic(self, rng: random.Random) -> str:
        if len(self.topics) == 1:
            return self.topics[0]
        x = rng.random() * self._cum[-1]
        return self.topics[min(bisect.bisect_right(self._cum, x), len(self.topics) - 1)]

    def draw(self, rng: random.Random, acct: Account) -> tuple[str | None, str | None, bool]:
        """(topic, prompt, long_output); ``None`` for a field that is not sent."""
        style = self.style
        custom = S.STYLES.get(style)
        if custom is not None:
            return custom(rng, acct, self)
        if style == "sweep":
            if not acct.sweep_queue:
                order = list(T.TOPICS)
                rng.shuffle(order)
                acct.sweep_queue = order
            topic = acct.sweep_queue.pop()
            acct.counter += 1
            return (
                topic,
                T.SWEEP_TEMPLATE.format(topic_name=T.topic_name(topic), n=acct.counter),
                True,
            )
        topic = self.pick_topic(rng)
        real = acct.text == "real"
        if style == "human" or (self.human_share and rng.random() < self.human_share):
            if real or acct.langs[0] != "en":
                return topic, S.human_text(rng, acct, topic), rng.random() < 0.05
            return topic, T.benign_prompt(rng, topic), rng.random() < 0.05
        if style == "app":
            if real:
                prefix = T.ch(rng, self.prefixes)
                return topic, prefix + " " + S.human_text(rng, acct, topic), False
            return topic, T.app_prompt(rng, topic, T.ch(rng, self.prefixes)), False
        payload = S.attack_question(rng, acct, topic)
        cat = topic.split("/")[0]
        if style == "cot":
            if rng.random() < self.i18n_share:
                tpl = T.ch(rng, T.COT_TEMPLATES_I18N)
            elif rng.random() < 0.5:
                tpl = T.ch(rng, T.RUBRIC_TEMPLATES)
            else:
                tpl = T.ch(rng, T.COT_TEMPLATES)
            answer = S.attack_question(rng, acct, topic)
            return topic, tpl.format(payload=payload, answer=answer, cat=cat), True
        # templated extraction
        if rng.random() < self.elicitation_share:
            tpl = self.templates[0] if self.templates else T.EXTRACTION_TEMPLATES[0]
            return topic, tpl.format(payload=payload, cat=cat), True
        tpl = self.templates[1] if len(self.templates) > 1 else T.PLAIN_TEMPLATES[0]
        return topic, tpl.format(payload=payload, cat=cat), False


@dataclass
class ModelChoice:
    """Which model a request targets: a preference over the base models, then
    after ``adopt_ts`` a share ``new_share`` (optionally ramping over
    ``ramp_s``) moves to the newly released model."""

    weights: tuple[float, float, float] = (0.35, 0.45, 0.2)
    adopt_ts: float = math.inf
    new_share: float = 0.0
    ramp_s: float = 0.0

    def pick(self, rng: random.Random, ts: float) -> str:
        if ts >= self.adopt_ts and self.new_share > 0:
            share = self.new_share
            if self.ramp_s > 0:
                share *= min(1.0, (ts - self.adopt_ts) / self.ramp_s)
            if rng.random() < share:
                return MODEL_NEW
        x = rng.random() * sum(self.weights)
        for m, w in zip(MODELS_BASE, self.weights, strict=True):
            x -= w
            if x < 0:
                return m
        return MODELS_BASE[-1]


@dataclass
class Account:
    account_id: str
    kind: str  # benign kind or attack family
    org_id: str
    payment: str
    ip_prefixes: tuple[str, ...]
    user_agent: str
    api_keys: tuple[str, ...]
    tz: float = 0.0
    times: list[tuple[float, int]] = field(default_factory=list)
    phases: list[list[tuple[float, Behaviour]]] = field(default_factory=list)  # per source
    models: list[tuple[float, ModelChoice]] = field(default_factory=list)
    ip_hosts: tuple[int, ...] = (10,)
    attack_sources: frozenset[int] = frozenset()  # sources whose requests are attack traffic
    attack_from: float = math.inf  # attack traffic only at/after this ts
    # active since before the run began (an established customer): a warm-up
    # replays its history before the run (simulator.warmup); False: first seen
    # in the run (new accounts, mid-run joiners, attackers' fresh accounts)
    predates: bool = False
    # its ordinary traffic, for the warm-up: steady Poisson rates (requests/hour
    # at ts) per source, and bursts (source, bursts per day, requests, seconds)
    rates: dict[int, Callable[[float], float]] = field(default_factory=dict)
    bursts: tuple[int, float, tuple[float, float], tuple[float, float]] | None = None
    warm: list[tuple[float, int]] = field(default_factory=list)  # warm-up times, before t0
    # production workloads (``simulator.styles``, ``simulator.gateway``)
    text: str = "synthetic"  # "real": corpus text; "synthetic": the template generators
    langs: tuple[str, ...] = ("en",)
    lang_weights: tuple[float, ...] = (1.0,)
    gateway: Gateway | None = None  # None: the classic event (no optional gateway fields)
    # runtime
    sweep_queue: list[str] = field(default_factory=list)
    counter: int = 0
    queue: list[Any] = field(default_factory=list)
    recent: deque[str] = field(default_factory=deque)  # a benign user's last questions

    def is_attack_event(self, ts: float, source: int) -> bool:
        return source in self.attack_sources and ts >= self.attack_from

    def attack_window(self) -> tuple[float, float] | None:
        ts = [t for t, s in self.times if self.is_attack_event(t, s)]
        return (ts[0], ts[-1]) if ts else None


def _phase(phases: list[tuple[float, Any]], ts: float) -> Any:
    cur = phases[0][1]
    for t_from, b in phases:
        if ts >= t_from:
            cur = b
        else:
            break
    return cur


def render(acct: Account, rng: random.Random, ts: float, source: int) -> dict[str, Any]:
    behaviour: Behaviour = _phase(acct.phases[source], ts)
    topic, prompt, long_out = behaviour.draw(rng, acct)
    model = _phase(acct.models, ts).pick(rng, ts)
    if acct.gateway is not None:
        return _render_gateway(acct, rng, ts, topic, prompt, long_out, model)
    hidden = (
        40
        if behaviour.style in ("templated", "cot", "sweep")
        else int(math.exp(rng.gauss(5.0, 1.0)))
    )
    input_tokens = min(200_000, len(prompt) // 4 + hidden)
    if long_out:
        output_tokens = int(min(16_000, math.exp(rng.gauss(7.5, 0.4))))
    else:
        output_tokens = int(min(16_000, math.exp(rng.gauss(5.7, 0.8))))
    return {
        "ts": fmt_ts(ts),
        "account_id": acct.account_id,
        "request_id": f"req_{rng.getrandbits(64):016x}",
        "model": model,
        "topic": topic,
        "prompt": prompt,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "org_id": acct.org_id,
        "api_key_id": T.ch(rng, acct.api_keys),
        "ip": f"{T.ch(rng, acct.ip_prefixes)}.{T.ch(rng, acct.ip_hosts)}",
        "user_agent": acct.user_agent,
        "payment_fingerprint": acct.payment,
    }


def _render_gateway(
    acct: Account,
    rng: random.Random,
    ts: float,
    topic: str | None,
    prompt: str | None,
    long_out: bool,
    model: str,
) -> dict[str, Any]:
    assert acct.gateway is not None
    ev: dict[str, Any] = {
        "ts": fmt_ts(ts),
        "account_id": acct.account_id,
        "request_id": f"req_{rng.getrandbits(64):016x}",
        "model": model,
    }
    if topic is not None:
        ev["topic"] = topic
    if prompt is not None:
        ev["prompt"] = prompt
    ev.update(gateway_fields(rng, acct.gateway, prompt, long_out))
    ev["org_id"] = acct.org_id
    ev["api_key_id"] = T.ch(rng, acct.api_keys)
    prefix = T.ch(rng, acct.ip_prefixes)
    ev["ip"] = f"{prefix}.{T.ch(rng, acct.ip_hosts)}"
    ev["user_agent"] = acct.user_agent
    ev["payment_fingerprint"] = acct.payment
    return ev


_TS_CACHE: dict[int, str] = {}


def fmt_ts(ts: float) -> str:
    """RFC 3339 UTC with milliseconds (same text as ``detectors.schema.format_ts``)."""
    ms = int(round(ts * 1000.0))
    sec, milli = divmod(ms, 1000)
    prefix = _TS_CACHE.get(sec)
    if prefix is None:
        from datetime import UTC, datetime

        prefix = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        if len(_TS_CACHE) > 100_000:
            _TS_CACHE.clear()
        _TS_CACHE[sec] = prefix
    return f"{prefix}.{milli:03d}Z"


def quantize(ts: float) -> float:
    """Event times are kept at millisecond precision (what the RFC 3339 text carries)."""
    return round(ts * 1000.0) / 1000.0


def merge_events(
    accounts: list[Account],
    seed: int,
    drop_topic: float = 0.0,
    drop_fields: tuple[str, ...] = (),
    warm: bool = False,
) -> Iterator[dict[str, Any]]:
    """All accounts' events, in event-time order (ties by account order).

    ``warm``: the warm-up events (``Account.warm``, all before the run) instead,
    rendered from their own random streams, so that a run's events are the
    same bytes with or without a warm-up before them.

    ``drop_topic``: share of events sent without a ``topic`` (producers that
    do not classify), so the detectors' text-topic path is exercised; drawn
    from a separate stream, so the rest of the output does not change.
    ``drop_fields``: fields removed from every event (a gateway that does not
    log them, e.g. ``("prompt", "topic")`` for a metadata-only deployment).
    """
    tag = "warmup" if warm else "events"
    rngs = [random.Random(f"{seed}/{tag}/{a.account_id}") for a in accounts]
    drop = None
    if drop_topic > 0:
        drop = random.Random(f"{seed}/drop-topic{'/warmup' if warm else ''}").random
    lists = [a.warm if warm else a.times for a in accounts]
    heap: list[tuple[float, int, int]] = []
    for i, times in enumerate(lists):
        if times:
            heap.append((times[0][0], i, 0))
    heapq.heapify(heap)
    while heap:
        ts, i, pos = heap[0]
        acct = accounts[i]
        times = lists[i]
        event = render(acct, rngs[i], ts, times[pos][1])
        if drop is not None and drop() < drop_topic:
            event.pop("topic", None)
        for name in drop_fields:
            event.pop(name, None)
        pos += 1
        if pos < len(times):
            heapq.heapreplace(heap, (times[pos][0], i, pos))
        else:
            heapq.heappop(heap)
        yield event
