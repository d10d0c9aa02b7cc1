"""``distillwatch enforce``: a reference consumer of the actions topic for the
API-gateway team to copy.

It folds the topic with :class:`detectors.response.ActionLedger`, keeps only
approved actions in force (not rejected, lifted or past ``effective_until``),
and applies them to an in-memory policy: a token bucket per throttled account
(rate refills, burst = size, like API Gateway's), sets of accounts that must
verify, get answers without extended reasoning or are suspended, and blocked
payment fingerprints. ``--demo`` then sends a burst of requests from every
affected account through it and prints what the gateway would do.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from detectors.response import ActionLedger, parse_ts


class TokenBucket:
    """``rate_per_min`` tokens per minute, at most ``burst`` saved.

    >>> b = TokenBucket(rate_per_min=60, burst=2, now=0.0)
    >>> [b.take(0.0), b.take(0.0), b.take(0.0), b.take(1.0)]
    [True, True, False, True]
    """

    def __init__(self, rate_per_min: float, burst: float, now: float) -> None:
        if rate_per_min <= 0 or burst < 1:
            raise ValueError("rate_per_min must be > 0 and burst >= 1")
        self.rate_per_min = rate_per_min
        self.burst = burst
        self._tokens = float(burst)
        self._at = now

    def take(self, now: float) -> bool:
        self._tokens = min(self.burst,
                           self._tokens + max(0.0, now - self._at) * self.rate_per_min / 60.0)
        self._at = max(self._at, now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass
class Gateway:
    """What the gateway enforces now; :meth:`request` decides one request."""

    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    verify: set[str] = field(default_factory=set)
    degrade: set[str] = field(default_factory=set)
    suspended: set[str] = field(default_factory=set)
    blocked_payments: set[str] = field(default_factory=set)
    applied: list[str] = field(default_factory=list)

    def apply(self, active: Iterable[tuple[dict[str, Any], dict[str, Any]]],
              now: float) -> None:
        for proposal, approval in active:
            data = proposal["data"]
            scope = data.get("scope", {})
            accounts = [str(a) for a in scope.get("accounts") or []]
            what = data["action"]
            until = approval["data"].get("effective_until", data.get("expires_at"))
            if what == "throttle":
                rate = float(data["params"]["rate_per_min"])
                burst = float(data["params"].get("burst", 1))
                for a in accounts:
                    current = self.buckets.get(a)
                    if current is None or current.rate_per_min > rate:  # the strictest wins
                        self.buckets[a] = TokenBucket(rate, burst, now)
            elif what == "require_verification":
                self.verify.update(accounts)
            elif what == "degrade_reasoning":
                self.degrade.update(accounts)
            elif what == "suspend_key":
                self.suspended.update(accounts)
            elif what == "block_payment_fingerprint":
                key = str(scope.get("id", ""))
                self.blocked_payments.add(key.split(":", 1)[1] if ":" in key else key)
            target = (f"{len(accounts)} account(s)" if accounts else scope.get("id"))
            self.applied.append(f"{what} {target} ({scope.get('kind')} {scope.get('id')}) "
                                f"until {until}, action {data['action_id']}")

    def request(self, account: str, now: float, payment_fingerprint: str | None = None) -> str:
        """``allow``, ``allow_degraded``, ``challenge`` (step-up verification),
        ``429`` (throttled) or ``403`` (suspended, blocked payment)."""
        if account in self.suspended:
            return "403"
        if payment_fingerprint is not None and payment_fingerprint in self.blocked_payments:
            return "403"
        if account in self.verify:
            return "challenge"
        bucket = self.buckets.get(account)
        if bucket is not None and not bucket.take(now):
            return "429"
        return "allow_degraded" if account in self.degrade else "allow"


def gateway_from(ledger: ActionLedger, now: float) -> Gateway:
    gw = Gateway()
    gw.apply(ledger.active(now), now)
    return gw


def demo(gw: Gateway, now: float, requests: int = 20) -> dict[str, dict[str, int]]:
    """A burst of ``requests`` in one second from every affected account."""
    out: dict[str, dict[str, int]] = {}
    accounts = sorted(set(gw.buckets) | gw.verify | gw.degrade | gw.suspended)
    for account in accounts:
        counts: dict[str, int] = {}
        for i in range(requests):
            verdict = gw.request(account, now + i / requests)
            counts[verdict] = counts.get(verdict, 0) + 1
        out[account] = counts
    return out


def cmd_enforce(args: argparse.Namespace) -> int:
    from streams.response.actions import load_ledger
    from streams.settings import Settings

    settings = Settings.load({"broker": args.broker})
    while True:
        now = time.time()
        ledger = load_ledger(settings)
        gw = gateway_from(ledger, now)
        print(f"{len(ledger.proposals)} actions on {settings.actions_topic}: "
              f"{len(ledger.pending())} pending, {len(gw.applied)} approved and in force")
        for line in gw.applied:
            print(f"  apply: {line}")
        if args.demo:
            for account, counts in demo(gw, now, args.requests).items():
                text = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
                print(f"  demo: {account}: {args.requests} requests in 1 s -> {text}")
        if not args.follow:
            return 0
        time.sleep(args.follow)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "enforce", help="reference gateway consumer: apply approved actions in memory")
    p.add_argument("--broker", help="kafka://HOST:PORT (env DISTILLWATCH_BROKER)")
    p.add_argument("--demo", action="store_true",
                   help="send a burst of requests from each affected account and print "
                        "what the gateway would answer")
    p.add_argument("--requests", type=int, default=20, help="burst size of --demo")
    p.add_argument("--follow", type=float, default=0.0, metavar="S",
                   help="re-read the topic every S seconds")
    p.set_defaults(func=cmd_enforce)


__all__ = ["Gateway", "TokenBucket", "cmd_enforce", "demo", "gateway_from", "parse_ts"]
