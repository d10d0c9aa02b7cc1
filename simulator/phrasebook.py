"""Readers for the hand-written lists in ``simulator/phrases/``.

Kept apart from the corpora (real text) and from ``detectors/`` (which must
never mirror them; see ``phrases/README.md``).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

PHRASES = Path(__file__).resolve().parent / "phrases"


@cache
def lines(name: str) -> tuple[str, ...]:
    """Non-empty, non-comment lines of a phrase file; ``\\n`` escapes are expanded."""
    out = []
    for raw in (PHRASES / name).read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        out.append(raw.replace("\\n", "\n"))
    return tuple(out)


@cache
def table(name: str) -> tuple[tuple[str, str], ...]:
    """``lang<TAB>text`` rows."""
    rows = []
    for line in lines(name):
        lang, _, text = line.partition("\t")
        if not text:
            raise ValueError(f"{name}: expected 'lang<TAB>text', got {line!r}")
        rows.append((lang.strip(), text))
    return tuple(rows)


@cache
def by_lang(name: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for lang, text in table(name):
        out.setdefault(lang, []).append(text)
    return {k: tuple(v) for k, v in out.items()}


@cache
def document(name: str) -> Any:
    return json.loads((PHRASES / name).read_text(encoding="utf-8"))
