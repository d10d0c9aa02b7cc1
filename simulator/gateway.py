"""Optional gateway fields of an event, and token counts consistent with the text.

A production gateway sends, where it knows them: ``model``, ``max_tokens``,
``stop_reason`` (``end_turn`` / ``max_tokens`` / ``stop_sequence``),
``thinking`` (extended reasoning requested), ``api_key_id``,
``system_prompt_fingerprint`` (hex digest of the system prompt), and input /
output token counts. Each account has a :class:`Gateway` profile; the
distributions overlap between benign and attacking accounts on purpose
(benign apps also use the most capable model, also request large outputs and
hit ``max_tokens``, also enable thinking), so no single field separates them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# The model line-up: the most capable first. ``lumen-4-pro`` is released mid-run.
TOP_MODEL = "lumen-3-pro"


@dataclass
class Gateway:
    """Per-account request profile (what its client code sets)."""

    max_tokens: tuple[int, ...] = (1024, 4096)
    max_tokens_weights: tuple[float, ...] = (0.5, 0.5)
    thinking: float = 0.0  # share of requests with extended thinking enabled
    stop_sequences: float = 0.0  # share of requests that set stop sequences (some end on one)
    system_prompts: tuple[str, ...] = ()  # fingerprints; () = no system prompt
    system_tokens: int = 0  # hidden system prompt length (tokens)
    output_scale: float = 1.0  # multiplies the drawn output length (verbose apps, harvesters)

    def pick_max_tokens(self, rng: random.Random) -> int:
        if len(self.max_tokens) == 1:
            return self.max_tokens[0]
        x = rng.random() * sum(self.max_tokens_weights)
        for v, w in zip(self.max_tokens, self.max_tokens_weights, strict=True):
            x -= w
            if x < 0:
                return v
        return self.max_tokens[-1]


def fingerprint(rng: random.Random) -> str:
    return f"{rng.getrandbits(64):016x}"


def benign_gateway(rng: random.Random, *, app: bool = False, long_form: bool = False) -> Gateway:
    """A plausible benign client profile; apps set a system prompt and fixed limits."""
    choices = (256, 512, 1024, 2048, 4096, 8192, 16000, 32000)
    k = rng.randint(1, 3)
    picks = tuple(sorted(rng.sample(choices[2:] if long_form else choices, k)))
    return Gateway(
        max_tokens=picks,
        max_tokens_weights=tuple(rng.random() + 0.1 for _ in picks),
        thinking=rng.choice((0.0, 0.0, 0.0, 0.05, 0.2, 0.6)),
        stop_sequences=rng.choice((0.0, 0.0, 0.3)) if app else 0.0,
        system_prompts=tuple(fingerprint(rng) for _ in range(rng.randint(1, 3)))
        if app or rng.random() < 0.4 else (),
        system_tokens=int(math.exp(rng.uniform(math.log(30), math.log(1500)))),
        output_scale=rng.uniform(0.7, 1.6),
    )


def attack_gateway(rng: random.Random, *, thinking: float = 0.3) -> Gateway:
    """A harvester's client: large limits (long answers are the product), often
    thinking, usually no system prompt."""
    picks = tuple(sorted(rng.sample((4096, 8192, 16000, 32000), rng.randint(1, 2))))
    return Gateway(
        max_tokens=picks,
        max_tokens_weights=tuple(1.0 for _ in picks),
        thinking=thinking,
        system_prompts=(fingerprint(rng),) if rng.random() < 0.3 else (),
        system_tokens=rng.randint(10, 200),
        output_scale=rng.uniform(1.0, 1.8),
    )


def estimate_tokens(text: str) -> int:
    """Rough tokenizer: ~4 ASCII characters per token, one token per character
    of 3-byte scripts (CJK, Thai, Indic), ~2 characters per token for 2-byte
    scripts (Cyrillic, Arabic, accented Latin).

    >>> estimate_tokens("abcdefgh"), estimate_tokens("你好世界"), estimate_tokens("привет")
    (2, 4, 3)
    """
    if text.isascii():
        return max(1, len(text) // 4)
    n_ascii = len(text.encode("ascii", "ignore"))
    n_non = len(text) - n_ascii
    # UTF-8: Cyrillic/Arabic/Hebrew take 2 bytes, CJK/Thai/Indic scripts 3
    n3 = max(0, min(n_non, len(text.encode("utf-8")) - n_ascii - 2 * n_non))
    return max(1, n_ascii // 4 + n3 + (n_non - n3) // 2)


def fields(
    rng: random.Random, gw: Gateway, prompt: str | None, long_out: bool, hidden_chars: int = 0
) -> dict[str, object]:
    """``max_tokens``, ``stop_reason``, ``thinking``, tokens and the system
    prompt fingerprint of one request."""
    max_tokens = gw.pick_max_tokens(rng)
    thinking = rng.random() < gw.thinking
    mu = 7.3 if long_out else 5.6
    out = math.exp(rng.gauss(mu, 0.7)) * gw.output_scale
    if thinking:
        out *= rng.uniform(1.5, 4.0)  # thinking tokens are billed as output
    if out >= max_tokens:
        output_tokens, stop = max_tokens, "max_tokens"
    else:
        output_tokens = max(1, int(out))
        stop = "stop_sequence" if rng.random() < gw.stop_sequences else "end_turn"
    if prompt is not None:
        input_tokens = estimate_tokens(prompt) + gw.system_tokens
    else:
        input_tokens = int(math.exp(rng.gauss(5.5, 1.0))) + gw.system_tokens + hidden_chars // 4
    ev: dict[str, object] = {
        "input_tokens": min(200_000, input_tokens),
        "output_tokens": output_tokens,
        "max_tokens": max_tokens,
        "stop_reason": stop,
        "thinking": thinking,
    }
    if gw.system_prompts:
        ev["system_prompt_fingerprint"] = gw.system_prompts[
            int(rng.random() * len(gw.system_prompts))
        ]
    return ev
