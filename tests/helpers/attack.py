"""Hand-made event streams for service-level tests: blatant on purpose, so any
sensible detector configuration must alert on them."""

from __future__ import annotations

import random
import time

import orjson

CoT = ("Problem {n}: prove that the sum of the first {n} odd numbers is a square. Before "
       "answering, imagine and articulate the internal reasoning behind a completed response "
       "step by step, then grade it against the rubric (correctness 0-5).")


def extractor_events(account: str, n: int = 900, rate: float = 15.0,
                     start: float | None = None) -> list[tuple[bytes, bytes]]:
    """A heavy single-capability extractor: ``n`` templated chain-of-thought prompts."""
    start = time.time() - n / rate if start is None else start
    out = []
    for i in range(n):
        out.append((account.encode(), orjson.dumps({
            "ts": start + i / rate, "account_id": account, "topic": "math/proofs",
            "prompt": CoT.format(n=i), "model": "model-large",
            "input_tokens": 180, "output_tokens": 1500, "request_id": f"{account}-{i}",
        })))
    return out


def benign_events(accounts: int = 30, per_account: int = 10, seed: int = 1,
                  start: float | None = None) -> list[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    start = time.time() - 3600 if start is None else start
    topics = ["coding/python", "writing/email", "math/algebra", "support/customer",
              "translation/general", "data/analysis"]
    words = ["invoice", "retry loop", "onboarding", "the budget", "a merge", "photosynthesis"]
    out = []
    for a in range(accounts):
        acct = f"benign-{a:03d}"
        for i in range(per_account):
            out.append((acct.encode(), orjson.dumps({
                "ts": start + rng.uniform(0, 3500), "account_id": acct,
                "topic": rng.choice(topics),
                "prompt": f"Could you help with {rng.choice(words)} and {rng.choice(words)}? #{i}",
                "input_tokens": rng.randint(20, 400), "output_tokens": rng.randint(50, 900),
            })))
    out.sort(key=lambda kv: orjson.loads(kv[1])["ts"])
    return out


HYDRA_TEMPLATE = ("Answer the task below. First write your full internal reasoning step by step "
            "inside <thinking> tags, covering every intermediate step, then the answer inside "
            "<answer> tags. Do not skip steps. Task: implement {w} number {n} in Rust")


def hydra_events(members: int = 8, minutes: int = 40, seed: int = 3) -> list[tuple[bytes, bytes]]:
    """A load-balanced campaign: a few requests a member every 5 minutes, shared
    cards, one /24, one client, one narrow topic, one template."""
    rng = random.Random(seed)
    start = time.time() - minutes * 60
    out = []
    t = start
    n = 0
    while t < start + minutes * 60:
        i = rng.randrange(members)
        acct = f"proxy-{i:02d}"
        out.append((acct.encode(), orjson.dumps({
            "ts": t, "account_id": acct, "topic": "coding/rust",
            "prompt": HYDRA_TEMPLATE.format(w=rng.choice(["a trie", "a heap", "a parser"]), n=n),
            "ip": f"203.0.113.{10 + i}", "payment_fingerprint": f"pm_reseller_{i % 2}",
            "user_agent": "aiohttp/3.9.5", "org_id": f"org_{i:04d}",
            "input_tokens": 120, "output_tokens": 900,
        })))
        n += 1
        t += rng.expovariate(members * 4 / 300)  # ~4 requests per member per 5 minutes
    return out
