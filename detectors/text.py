"""Prompt-text features: template fingerprints, reasoning elicitation, online topics.

Everything here is deterministic across processes (``zlib.crc32``, never the
salted built-in ``hash`` of a ``str``) and bounded in cost: only the first and
last few hundred characters of a prompt are looked at, so a 200 kB prompt costs
the same as a short one. No prompt text leaves this module: callers get 32-bit
fingerprints and flags.

Template fingerprints. A prompt is normalised (lower case, digits removed,
punctuation to spaces, whitespace collapsed) and the first and the last
``words`` words are hashed separately. Prompts generated from one template share
the template's fixed head or fixed tail while the slot in between varies, so a
repeat of either fingerprint within an account's recent prompts marks a
near-duplicate. This is a normalised-skeleton hash, chosen over SimHash/MinHash
because it costs two C-level hashes instead of one per shingle, which keeps the
detector above 50k events/s in pure Python.

Speed. ``make`` compiles this module with mypyc and builds the C kernels of
``_textscan.c`` (normalise a window and look its words up in one pass; search
the marker phrases), which take the prompt features from 11 to 3.6 µs per
event on the benchmark data. Without them the Python below gives the same
results; :data:`TEXT_SCAN` says which runs.

Reasoning elicitation. A compiled pattern for the phrasing public reports
describe (Anthropic, Feb 2026: "imagine and articulate the internal reasoning
behind a completed response ... step by step"; rubric-based grading, the model
as reward model; Google GTIG 2026: "reasoning trace coercion").
"""

from __future__ import annotations

import string
import zlib
from collections.abc import Callable
from typing import Final

HEAD_CHARS: Final = 320
TAIL_CHARS: Final = 320

# Normalisation works on UTF-8 bytes: ``bytes.translate`` with a 256-byte table
# is several times faster than ``str.translate`` with a dict. Non-ASCII bytes
# pass through unchanged (no case folding outside ASCII).
_PUNCT: Final = string.punctuation.encode()
_TABLE: Final = bytes.maketrans(_PUNCT, b" " * len(_PUNCT))
_DIGITS: Final = string.digits.encode()
# the same, with ASCII upper case folded in (``bytes.lower`` folds only ASCII)
_NORM: Final = bytes.maketrans(
    _PUNCT + string.ascii_uppercase.encode(),
    b" " * len(_PUNCT) + string.ascii_lowercase.encode(),
)

# Reasoning elicitation: single-word markers (checked as a set), phrases that
# need their neighbours, and markers in scripts written without spaces.
_ELICIT_WORDS: Final = frozenset(
    w.encode()
    for w in (
        "reasoning rubric grader grading razonamiento raciocínio raisonnement"
        " рассуждений рассуждения"
    ).split()
)
_ELICIT_PHRASES: Final = tuple(
    p.encode()
    for p in (
        "step by step",
        "chain of thought",
        "thought process",
        "think through",
        "show your work",
        "on a scale",
        "reward model",
        "grade the",
        "grade this",
        "grade each",
        "paso a paso",
        "passo a passo",
        "étape par étape",
        "шаг за шагом",
    )
)
_ELICIT_TRIGGERS: Final = frozenset(
    w.encode()
    for w in "step chain thought think show scale reward grade paso passo étape шаг".split()
)
_ELICIT_ANY: Final = _ELICIT_WORDS | _ELICIT_TRIGGERS
_ELICIT_CJK: Final = tuple(p.encode() for p in ("一步一步", "逐步", "推理", "思考过程", "段階的"))


def _crc(data: bytes) -> int:
    return zlib.crc32(data)


def fingerprint_topic(topic: str) -> int:
    """A stable 32-bit id for a topic name (the same in every process).

    >>> fingerprint_topic("coding/python") == fingerprint_topic("coding/python")
    True
    >>> fingerprint_topic("coding/python")
    1226336913
    """
    return _crc(topic.encode("utf-8", "surrogatepass")) or 1


def normalized_words(text: str) -> list[bytes]:
    """ASCII lower case, digits dropped, punctuation to spaces, split on whitespace.

    >>> normalized_words("Solve #12: x+3 = 7, STEP-by-step!")
    [b'solve', b'x', b'step', b'by', b'step']
    """
    data = text.encode("utf-8", "surrogatepass").lower().translate(_TABLE, _DIGITS)
    return data.split()


def is_elicitation(words: list[bytes], text: bytes) -> bool:
    """Whether normalised words ask for written-out reasoning or grading.

    >>> w = normalized_words("Grade this answer, then explain STEP by step.")
    >>> is_elicitation(w, b" ".join(w))
    True
    >>> w = normalized_words("Summarize this email in three bullets.")
    >>> is_elicitation(w, b" ".join(w))
    False
    """
    hits = _ELICIT_ANY.intersection(words)
    if hits:
        if not _ELICIT_WORDS.isdisjoint(hits):
            return True
        for phrase in _ELICIT_PHRASES:
            if phrase in text:
                return True
    if not text.isascii():
        for marker in _ELICIT_CJK:
            if marker in text:
                return True
    return False


# The vocabulary of the window scan: the strong words first, then the triggers
# that only gate the phrase search (the two sets are disjoint).
_SCAN_VOCAB: Final = tuple(sorted(_ELICIT_WORDS)) + tuple(sorted(_ELICIT_TRIGGERS - _ELICIT_WORDS))
_SCAN_STRONG: Final = len(_ELICIT_WORDS)

_ScanFn = Callable[[bytes, bytes, bytes, tuple[bytes, ...], int], tuple[bytes, int]]
_FindFn = Callable[[bytes, tuple[bytes, ...]], bool]


def _kernels() -> tuple[_ScanFn | None, _FindFn | None]:
    """The C kernels, when ``python -m streams.native build`` compiled them."""
    try:
        from detectors import _textscan
    except ImportError:
        return None, None
    return _textscan.scan, _textscan.find_any


# Final: the compiled module reads them as C statics, not from the module dict
_KERNELS: Final = _kernels()
_C_SCAN: Final = _KERNELS[0]
_C_FIND: Final = _KERNELS[1]

#: whether the window scan runs in C (``detectors/_textscan.c``) or in Python
TEXT_SCAN: Final = "c" if _C_SCAN is not None else "python"


def scan_window(data: bytes) -> tuple[bytes, int]:
    """Normalised text of a UTF-8 window and how its words bear on elicitation.

    The text is :func:`normalized_words` joined by single spaces. The level is
    2 when a word is an elicitation word on its own (``rubric``), 1 when a
    word only makes a marker phrase worth looking for (``step``), else 0.
    The C kernel and this Python give the same results (pinned by
    tests/test_detectors_core.py on hostile input).

    >>> scan_window("Grade the RUBRIC, step 2!".encode())
    (b'grade the rubric step', 2)
    >>> scan_window(b"  think  it over ")
    (b'think it over', 1)
    >>> scan_window(b"rubrics")
    (b'rubrics', 0)
    """
    if _C_SCAN is not None:
        return _C_SCAN(data, _NORM, _DIGITS, _SCAN_VOCAB, _SCAN_STRONG)
    words = data.translate(_NORM, _DIGITS).split()
    level = 0
    if not _ELICIT_ANY.isdisjoint(words):
        level = 1 if _ELICIT_WORDS.isdisjoint(words) else 2
    return b" ".join(words), level


def find_any(text: bytes, needles: tuple[bytes, ...]) -> bool:
    """Whether any of ``needles`` occurs in ``text`` (C kernel when compiled).

    >>> find_any(b"think step by step", _ELICIT_PHRASES), find_any(b"steps", _ELICIT_PHRASES)
    (True, False)
    """
    if _C_FIND is not None:
        return _C_FIND(text, needles)
    for needle in needles:
        if needle in text:
            return True
    return False


def topic_words(text: bytes) -> list[bytes]:
    """The words of a normalised head text that :meth:`TextTopics.assign` reads.

    >>> topic_words(b"how do i reverse a list")
    [b'how', b'do', b'i', b'reverse', b'a', b'list']
    """
    return text.split(None, TextTopics.WORDS)[: TextTopics.WORDS]


def prompt_features(prompt: str, span: int = 80) -> tuple[int, int, bool, bytes]:
    """Head fingerprint, tail fingerprint, elicitation flag and the head text.

    The fingerprints hash the first and the last ``span`` bytes of the
    normalised text (bytes rather than words, so that scripts written without
    spaces work too). Two prompts from one template with a fixed part of at
    least ``span`` normalised characters share a head or a tail fingerprint; an
    app's short fixed instruction followed by varied content does not. The
    fingerprints are never 0. Elicitation is looked for in the first and last
    ``HEAD_CHARS`` characters. The head text is the normalised first
    ``HEAD_CHARS`` characters (:func:`topic_words` splits it for topics).

    >>> t = "You are a strict grader. Score the candidate answer against the rubric below, "
    >>> t += "step by step, then output JSON. Question: "
    >>> a = prompt_features(t + "42 apples in Rust.")
    >>> b = prompt_features(t + "7 pears in Go.")
    >>> a[0] == b[0], a[1] == b[1], a[2]
    (True, False, True)
    >>> c = prompt_features("Fix grammar: " + "the cat sat on the mat " * 5)
    >>> d = prompt_features("Fix grammar: " + "a dog ran in the park " * 5)
    >>> c[0] == d[0]
    False
    >>> prompt_features("")[2:]
    (False, b'')
    """
    # Same result as normalising with :func:`normalized_words` and asking
    # :func:`is_elicitation` (pinned by tests/test_detectors_core.py against
    # that reference), in fewer passes: one scan per window does case folding,
    # punctuation and the word look-ups, and the marker phrases are searched
    # in head and tail separately (no marker contains " | ").
    if len(prompt) > HEAD_CHARS:
        head_text, level = scan_window(prompt[:HEAD_CHARS].encode("utf-8", "surrogatepass"))
        tail_text, tail_level = scan_window(
            prompt[-TAIL_CHARS:].encode("utf-8", "surrogatepass")
        )
        if tail_level > level:
            level = tail_level
    else:
        head_text, level = scan_window(prompt.encode("utf-8", "surrogatepass"))
        tail_text = head_text
    elicit = level == 2
    if level == 1:
        elicit = find_any(head_text, _ELICIT_PHRASES) or (
            tail_text is not head_text and find_any(tail_text, _ELICIT_PHRASES)
        )
    if not elicit and not prompt.isascii():
        elicit = find_any(head_text, _ELICIT_CJK) or (
            tail_text is not head_text and find_any(tail_text, _ELICIT_CJK)
        )
    head = zlib.crc32(head_text[:span]) or 1
    tail = zlib.crc32(tail_text[-span:], 0x5A5A) or 1
    return head, tail, elicit, head_text


_STOP: Final = frozenset(
    w.encode()
    for w in (
        "the a an and or of to in on for with is are be this that it as at by from what how"
        " can you me my i your we our please write give make about into using use which when"
        " why who does do not need want would could should will"
    ).split()
)


class TextTopics:
    """Assigns a topic to a prompt that arrives without one, online and bounded.

    Keyword voting over an inverted index learned from the stream: each content
    word of a prompt's head votes for the topic it was first seen with; the
    winner (ties to the lowest id) is the topic. A prompt whose words are all new
    opens a new topic while fewer than ``max_topics`` exist, otherwise it goes to
    a bucket chosen by a stable hash of its first content word. The vocabulary
    holds at most ``max_words`` words. Deterministic for a given event order.
    Topic ids have the top bit set so they never collide with named topics'
    ids in practice (names hash anywhere in 32 bits; the chance is 2**-32 per pair).

    Examples
    --------
    >>> tt = TextTopics(max_topics=8)
    >>> a = tt.assign(normalized_words("How do I reverse a linked list in Python"))
    >>> b = tt.assign(normalized_words("Reverse a linked list recursively"))
    >>> c = tt.assign(normalized_words("Best soup recipes for winter evenings"))
    >>> a == b, a == c, tt.name(a)
    (True, False, 'auto/0')
    """

    __slots__ = ("max_topics", "max_words", "_vocab", "_n")

    FLAG: Final = 0x80000000
    #: how many leading words of a prompt's head vote
    WORDS: Final = 24

    def __init__(self, max_topics: int = 64, max_words: int = 50_000) -> None:
        self.max_topics = max_topics
        self.max_words = max_words
        self._vocab: dict[bytes, int] = {}
        self._n = 0

    def assign(self, words: list[bytes]) -> int:
        content = [w for w in words[: self.WORDS] if len(w) > 2 and w not in _STOP][:12]
        vocab = self._vocab
        votes: dict[int, int] = {}
        for w in content:
            t = vocab.get(w)
            if t is not None:
                votes[t] = votes.get(t, 0) + 1
        if votes:
            # most votes, ties to the lowest id
            topic = -1
            best = 0
            for t, c in votes.items():
                if c > best or (c == best and t < topic):
                    topic = t
                    best = c
        elif self._n < self.max_topics:
            topic = self.FLAG | self._n
            self._n += 1
        elif content:
            topic = self.FLAG | (_crc(content[0]) % self.max_topics)
        else:
            topic = self.FLAG
        if len(vocab) < self.max_words:
            for w in content:
                if w not in vocab:
                    vocab[w] = topic
        return topic

    def name(self, topic: int) -> str:
        return f"auto/{topic & ~self.FLAG}"

    def to_json(self) -> list[object]:
        return [self._n, sorted((k.decode("latin-1"), v) for k, v in self._vocab.items())]

    def load_json(self, data: list[object]) -> None:
        n, items = data
        assert isinstance(n, int) and isinstance(items, list)
        self._n = n
        self._vocab = {str(k).encode("latin-1"): int(v) for k, v in items}
