"""The small built-in traffic source for ``distillwatch run``: a benign
population plus a few injected attackers, in real time."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

TOPICS = (
    "coding/python", "coding/javascript", "coding/sql", "math/algebra", "math/proofs",
    "writing/marketing", "writing/email", "agentic/tool-use", "agentic/planning",
    "reasoning/logic", "support/customer", "translation/general", "data/analysis",
    "science/biology", "legal/contracts", "education/tutoring",
)
BENIGN_PROMPTS = (
    "Can you help me fix this {lang} function that returns None for {thing}?",
    "Write a short {tone} email to a customer about {thing}.",
    "Summarize the main points of this article about {thing}.",
    "What is the difference between {thing} and {other}?",
    "Translate this paragraph about {thing} into French.",
    "Explain {thing} to a ten year old.",
)
ATTACK_PROMPT = (
    "Solve the following problem #{n}. Before answering, imagine and articulate the "
    "internal reasoning behind a completed response step by step, then grade it against "
    "the rubric: correctness 0-5, completeness 0-5."
)
WORDS = ("caching", "invoices", "a list", "recursion", "tax rules", "photosynthesis",
         "the refund", "pandas", "a merge conflict", "onboarding", "retries", "the budget")


@dataclass
class TrafficSource:
    """Generate events in real time and hand each to ``send(key, value)``."""

    send: Callable[[bytes, bytes], None]
    benign_accounts: int = 150
    attackers: int = 2
    attack_rate: float = 15.0  # requests/s per attacker
    first_attack_after_s: float = 20.0
    bad_every_s: float = 30.0
    seed: int = 7

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self.sent = 0
        self.bad_sent = 0

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        rng = random.Random(self.seed)
        benign = []
        for i in range(self.benign_accounts):
            topics = rng.sample(TOPICS, rng.randint(2, 8))
            rate = min(1.0, rng.paretovariate(1.5) * 0.03)  # heavy tailed, a few busy apps
            benign.append((f"acct-{i:04d}", topics, rate))
        start = time.time()
        next_bad = start + self.bad_every_s / 2
        n = 0
        tick = 0.1
        while not self._stop.is_set():
            now = time.time()
            for account, topics, rate in benign:
                if rng.random() < rate * tick:
                    self._emit(account, rng.choice(topics), _benign_prompt(rng), now, rng)
            for a in range(self.attackers):
                if now - start < self.first_attack_after_s * (a + 1):
                    continue
                for _ in range(_poisson(rng, self.attack_rate * tick)):
                    n += 1
                    self._emit(f"harvest-{a:02d}", "math/proofs", ATTACK_PROMPT.format(n=n),
                               now, rng)
            if now >= next_bad:
                next_bad = now + self.bad_every_s
                self.send(b"acct-0000", b'{"ts": "yesterday", "account_id": "acct-0000"}')
                self.bad_sent += 1
            self._stop.wait(max(0.0, tick - (time.time() - now)))

    def _emit(self, account: str, topic: str, prompt: str, ts: float, rng: random.Random) -> None:
        value = orjson.dumps({
            "ts": ts, "account_id": account, "topic": topic, "prompt": prompt,
            "model": "model-large", "input_tokens": rng.randint(20, 800),
            "output_tokens": rng.randint(50, 2000), "request_id": f"req-{rng.getrandbits(48):x}",
        })
        self.send(account.encode(), value)
        self.sent += 1


def _benign_prompt(rng: random.Random) -> str:
    return rng.choice(BENIGN_PROMPTS).format(
        lang=rng.choice(("Python", "Go", "SQL")), thing=rng.choice(WORDS),
        other=rng.choice(WORDS), tone=rng.choice(("friendly", "formal")),
    )


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method; lam is small here
    limit, k, p = pow(2.718281828459045, -lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
