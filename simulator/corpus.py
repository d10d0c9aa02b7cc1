"""Real prompt text: the committed samples under ``simulator/corpora/``.

Loaded once per process from the gzipped JSONL files (never downloaded; see
``corpora/ATTRIBUTION.md`` for sources and licences). Every prompt is assigned
to one of two disjoint pools by a hash of its id, so attackers and benign
accounts never draw the same question:

- ``attack``: questions attackers harvest (``plain_harvest``, payloads of the
  templated families in real-text mode, ``paraphrase_cot``, ``hydra_proxy``);
- ``benign``: what benign accounts ask.

The split is deterministic (``blake2b(id) % 2``) and independent of the seed,
so a question is in the same pool in every run.

Arabic: no openly licensed Arabic prompt set was available, so Arabic text
comes from ``phrases/arabic_synthetic.txt`` (hand-written, marked
``synthetic``); Urdu (Arabic script) is real.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from simulator import phrasebook

CORPORA = Path(__file__).resolve().parent / "corpora"

# Taxonomy category -> corpus categories whose questions fit it.
TOPIC_CATEGORIES: dict[str, tuple[str, ...]] = {
    "coding": ("coding",),
    "math": ("math",),
    "reasoning": ("reasoning",),
    "agentic": ("reasoning", "coding"),
    "vision": ("extraction",),
    "data": ("extraction",),
    "writing": ("writing",),
    "creative": ("writing", "roleplay"),
    "education": ("stem", "humanities"),
    "science": ("stem",),
    "health": ("general", "stem"),
    "business": ("humanities", "writing", "extraction"),
    "lifestyle": ("general", "roleplay"),
    "support": ("general", "extraction"),
}
# Corpus category -> a taxonomy topic an upstream classifier would label it with.
CATEGORY_TOPICS: dict[str, tuple[str, ...]] = {
    "coding": ("coding/python", "coding/debugging", "coding/javascript", "coding/sql"),
    "math": ("math/algebra", "math/statistics", "math/geometry", "math/calculus"),
    "reasoning": ("reasoning/logic-puzzles", "reasoning/planning"),
    "extraction": ("data/extraction",),
    "writing": ("writing/email", "writing/marketing", "writing/fiction", "writing/editing"),
    "roleplay": ("creative/roleplay",),
    "stem": ("science/physics", "science/biology", "science/chemistry"),
    "humanities": ("education/tutoring", "business/strategy"),
    "general": ("lifestyle/travel", "lifestyle/advice", "health/medical-info"),
}


@dataclass(frozen=True)
class Prompt:
    id: str
    lang: str
    cat: str
    text: str
    synthetic: bool = False
    role: str = ""  # "attack" or "benign" (:func:`pool_of`)


def _read(name: str) -> list[dict]:
    with gzip.open(CORPORA / name, "rb") as f:
        return [json.loads(line) for line in f if line.strip()]


def pool_of(prompt_id: str) -> str:
    """``attack`` or ``benign``: the fixed, seed-independent split."""
    h = hashlib.blake2b(prompt_id.encode(), digest_size=2).digest()
    return "attack" if h[0] & 1 else "benign"


@cache
def prompts() -> tuple[Prompt, ...]:
    out = [
        Prompt(r["id"], r["lang"], r["cat"], r["text"], role=pool_of(r["id"]))
        for r in _read("prompts.jsonl.gz")
    ]
    for i, text in enumerate(phrasebook.lines("arabic_synthetic.txt")):
        pid = f"ar-synthetic:{i}:0"
        out.append(Prompt(pid, "ar", "general", text, synthetic=True, role=pool_of(pid)))
    return tuple(out)


@cache
def pool(
    role: str, lang: str | None = None, cats: tuple[str, ...] | None = None
) -> tuple[Prompt, ...]:
    """Prompts of one pool, optionally of one language and some categories.

    Falls back to every category of the language when fewer than 8 match."""
    base = [p for p in prompts() if p.role == role and (lang is None or p.lang == lang)]
    if cats:
        sel = [p for p in base if p.cat in cats]
        if len(sel) >= 8:
            return tuple(sel)
    return tuple(base)


_SENT = re.compile(r"(?<=[.?!。？！])\s*")


@cache
def sentences(role: str, lang: str) -> tuple[str, ...]:
    """Real sentences in one language: those of one pool's prompts, plus (for
    the benign pool) those of the reference answers, which users paste as
    context. Benign accounts recombine them with questions so that a small
    corpus does not make them repeat themselves."""
    texts = [p.text for p in pool(role, lang)]
    if role == "benign":
        texts += [a["text"] for a in answers() if a["lang"] == lang]
    out = []
    for text in texts:
        for sent in _SENT.split(text):
            sent = sent.strip()
            if 12 <= len(sent) <= 400 and "\n" not in sent:
                out.append(sent)
    return tuple(out)


@cache
def languages() -> tuple[str, ...]:
    return tuple(sorted({p.lang for p in prompts()}))


@cache
def judge_templates() -> tuple[dict, ...]:
    """LLM-as-judge rubric prompts (FastChat MT-bench and translations)."""
    return tuple(_read("judge.jsonl.gz"))


@cache
def answers() -> tuple[dict, ...]:
    """Reference answers, used to fill a judge prompt's answer slots."""
    return tuple(_read("answers.jsonl.gz"))
