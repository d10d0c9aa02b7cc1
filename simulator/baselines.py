"""Baselines an operator would really write first, as streaming rules.

Each rule sees the events in order (``process(event)``) and keeps its firing
alerts in ``alerts`` (one per account per episode; an episode ends after
``quiet_s`` without the rule being true). None of them learns from the
labels; the only fitted number is the volume threshold, which is learned from
the *population's* traffic in the first hours (or given).

``VolumeRule``     more requests in the trailing hour than the population's
                   99th percentile of hourly request counts (per account-hour,
                   learned over the first ``learn_s`` seconds), plus the old
                   concentration branch (>= 300 requests in the hour, >= 90% on
                   one topic). Replaces the old static rule's 600-per-10-minutes
                   branch, which no simulated attack could reach.
``KeywordRule``    at least ``min_hits`` prompts in the trailing hour containing
                   one of a short list of reasoning-request phrases an operator
                   would write down (case-insensitive substring match).
``SharedCardRule`` ``min_accounts`` or more accounts seen on one payment
                   fingerprint: every one of them is paged (the crossing one
                   and any later one).

>>> rule = KeywordRule(min_hits=2)
>>> [bool(rule.process({"account_id": "a", "ts": t, "prompt": "Explain step by step"}))
...  for t in (0.0, 1.0, 2.0)]
[False, True, False]
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HOUR = 3600.0

# The keyword list of the baseline: what an operator writes on day one. Not
# the detector's list and not the simulator's phrase lists.
OPERATOR_KEYWORDS: tuple[str, ...] = (
    "step by step",
    "step-by-step",
    "explain your reasoning",
    "show your reasoning",
    "show your work",
    "chain of thought",
    "chain-of-thought",
    "think through",
    "your thought process",
)


@dataclass
class RuleAlert:
    account_id: str
    ts: float
    status: str = "firing"
    detector: str = "baseline"
    reason: str = ""


def _ts(ev: Mapping[str, Any]) -> float:
    v = ev["ts"]
    if isinstance(v, (int, float)):
        return float(v)
    from detectors.schema import parse_ts

    return parse_ts(v)


class _Episodes:
    """One alert per account per episode (``quiet_s`` without the rule true ends it)."""

    def __init__(self, name: str, quiet_s: float) -> None:
        self.name, self.quiet_s = name, quiet_s
        self.last_true: dict[str, float] = {}
        self.alerts: list[RuleAlert] = []

    def true(self, account_id: str, ts: float, reason: str) -> RuleAlert | None:
        last = self.last_true.get(account_id)
        self.last_true[account_id] = ts
        if last is not None and ts - last <= self.quiet_s:
            return None
        alert = RuleAlert(account_id, ts, detector=self.name, reason=reason)
        self.alerts.append(alert)
        return alert


def quantile_threshold(counts: list[int], q: float) -> float:
    """The ``q`` quantile (nearest rank) of per-account-hour request counts.

    >>> quantile_threshold(list(range(1, 101)), 0.99)
    99.0
    """
    if not counts:
        return math.inf
    xs = sorted(counts)
    return float(xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))])


class VolumeRule:
    """Trailing-hour volume above the population's p99, or topic concentration.

    ``threshold`` given: used from the first event. Otherwise the rule is
    silent for ``learn_s`` seconds from the first event while it counts
    requests per (account, clock hour); the threshold is then the ``quantile``
    of those counts (hours wholly inside the learning window only).
    """

    name = "volume"

    def __init__(
        self,
        threshold: float | None = None,
        *,
        quantile: float = 0.99,
        learn_s: float = 2 * HOUR,
        share_min_requests: int = 300,
        max_top_share: float = 0.9,
        quiet_s: float = 600.0,
    ) -> None:
        if not 0.0 < quantile < 1.0:
            raise ValueError("quantile must be in (0, 1)")
        if learn_s <= 0 and threshold is None:
            raise ValueError("learn_s must be > 0 when no threshold is given")
        self.threshold = threshold
        self.quantile, self.learn_s = quantile, learn_s
        self.share_min_requests, self.max_top_share = share_min_requests, max_top_share
        self._t0: float | None = None
        self._learn: Counter[tuple[str, int]] = Counter()
        self._hour: dict[str, deque[tuple[float, str]]] = defaultdict(deque)
        self._topics: dict[str, Counter[str]] = defaultdict(Counter)
        self._ep = _Episodes(self.name, quiet_s)
        self.alerts = self._ep.alerts

    def _fit(self) -> None:
        assert self._t0 is not None
        first = math.ceil(self._t0 / HOUR)
        last = math.floor((self._t0 + self.learn_s) / HOUR)  # hours [first, last)
        counts = [n for (_, h), n in self._learn.items() if first <= h < last]
        if not counts:  # a learning window shorter than one clock hour: scale up
            counts = [
                int(n * HOUR / self.learn_s) for n in self._learn.values()
            ]
        self.threshold = quantile_threshold(counts, self.quantile)
        self._learn.clear()

    def process(self, ev: Mapping[str, Any]) -> RuleAlert | None:
        ts, acct = _ts(ev), ev["account_id"]
        topic = ev.get("topic") or "unknown"
        if self._t0 is None:
            self._t0 = ts
        if self.threshold is None:
            if ts < self._t0 + self.learn_s:
                self._learn[(acct, int(ts // HOUR))] += 1
            else:
                self._fit()
        h, c = self._hour[acct], self._topics[acct]
        h.append((ts, topic))
        c[topic] += 1
        while h and h[0][0] <= ts - HOUR:
            c[h.popleft()[1]] -= 1
        if self.threshold is None:
            return None
        reason = ""
        if len(h) > self.threshold:
            reason = "volume"
        elif len(h) >= self.share_min_requests and c[topic] / len(h) >= self.max_top_share:
            reason = "concentration"
        return self._ep.true(acct, ts, reason) if reason else None


class KeywordRule:
    """``min_hits`` keyword prompts in the trailing hour."""

    name = "keyword"

    def __init__(
        self,
        keywords: tuple[str, ...] = OPERATOR_KEYWORDS,
        *,
        min_hits: int = 20,
        window_s: float = HOUR,
        quiet_s: float = 600.0,
    ) -> None:
        if min_hits < 1:
            raise ValueError("min_hits must be >= 1")
        self.keywords = tuple(k.lower() for k in keywords)
        self.min_hits, self.window_s = min_hits, window_s
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._ep = _Episodes(self.name, quiet_s)
        self.alerts = self._ep.alerts

    def matches(self, prompt: str | None) -> bool:
        if not prompt:
            return False
        low = prompt.lower()
        return any(k in low for k in self.keywords)

    def process(self, ev: Mapping[str, Any]) -> RuleAlert | None:
        if not self.matches(ev.get("prompt")):
            return None
        ts, acct = _ts(ev), ev["account_id"]
        q = self._hits[acct]
        q.append(ts)
        while q and q[0] <= ts - self.window_s:
            q.popleft()
        if len(q) >= self.min_hits:
            return self._ep.true(acct, ts, "keyword")
        return None


class SharedCardRule:
    """``min_accounts`` accounts on one payment fingerprint page them all."""

    name = "shared_card"

    def __init__(self, min_accounts: int = 5) -> None:
        if min_accounts < 2:
            raise ValueError("min_accounts must be >= 2")
        self.min_accounts = min_accounts
        self._cards: dict[str, list[str]] = defaultdict(list)
        self._paged: set[str] = set()
        self.alerts: list[RuleAlert] = []

    def process(self, ev: Mapping[str, Any]) -> list[RuleAlert]:
        card = ev.get("payment_fingerprint")
        if not card:
            return []
        acct = ev["account_id"]
        members = self._cards[card]
        if acct in members:
            return []
        members.append(acct)
        if len(members) < self.min_accounts:
            return []
        ts = _ts(ev)
        out = []
        for a in members:
            if a not in self._paged:
                self._paged.add(a)
                alert = RuleAlert(a, ts, detector=self.name, reason="shared_card")
                self.alerts.append(alert)
                out.append(alert)
        return out
