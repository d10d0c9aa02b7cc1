"""Prompt-text features: template sketches, reasoning elicitation, online topics.

Everything here is deterministic across processes (``zlib.crc32``, never the
salted built-in ``hash`` of a ``str``) and bounded in cost: a prompt longer than
``2 * scan_chars`` characters is read as its first and last ``scan_chars``
characters (default 2,048 each), so a 200 kB prompt costs the same as a 4 kB
one, and anything in a prompt of up to 4 kB is seen wherever it sits. No
prompt text leaves this module: callers get hashes, counts and flags.

Normalisation (:func:`normalize`). Unicode NFKC (full-width forms, ligatures,
compatibility characters fold to their plain letters) and full case folding
(``"STRASSE"`` and ``"straße"`` agree; Greek, Cyrillic and Latin alike). ASCII
prompts take a fast path with the same result (NFKC leaves ASCII unchanged and
ASCII case folding is ``lower``).

Units (:func:`units`). Words are runs of letters (digits and punctuation
separate them and are dropped: slot values are usually numbers). Scripts written
without spaces (Chinese, Japanese kana and kanji, Thai, Lao, Khmer, Myanmar)
have no words to split on, so each of their characters is a unit and pairs of
neighbouring units are the shingles: character bigrams, the standard
segmentation-free representation for those scripts.

Template sketch (:func:`prompt_features`). One-permutation b-bit MinHash of the
prompt's shingles (neighbouring unit pairs): the shingle hashes are split into
16 bins by their low 4 bits and each bin keeps 8 bits of its smallest hash
(empty bins borrow the next non-empty bin, "densification"), 16 bytes per
prompt, kept as four 32-bit words. Two prompts agree in each bin with
probability about their Jaccard similarity, so a random word added at either
end (an evasion of head/tail fingerprints) moves the estimate by a few per cent
only. The caller also gets the number of distinct shingles, so that it can tell
a *short varied slot in a long fixed template* (a harvest) from a *long varied
content inside a fixed wrapper* (a RAG or wrapper app): the number of
shingles two prompts do not share is ``(1 - J) * size``.

Reasoning elicitation (:func:`elicitation`). Not a list of phrasings but a
co-occurrence of *concepts*: a word for a reasoning process (reasoning,
thought process, derivation, justification, étapes, рассуждение, 推理 ...)
together with a word asking to reveal or write it out (explain, show, walk
through, articulate, détaille, распиши, 说明 ...), or a grading word (rubric,
grade, score, 评分 ...) together with the thing graded (answer, response,
candidate, 回答 ...), anywhere in the scanned text, in any of about twenty
languages; plus a few idioms that carry the whole request on their own
("step by step", "chain of thought", 一步一步, шаг за шагом ...). A single
word never counts ("rubric", "grading", "reasoning" alone are ordinary).
The phrasing public reports describe: Anthropic, Feb 2026 ("imagine and
articulate the internal reasoning behind a completed response ... step by
step"; rubric-based grading, the model as a reward model); Google GTIG 2026
("reasoning trace coercion", many non-English prompts).

C kernel. ``detectors/_textkern.c`` (built by ``python -m tools.native
build``) computes :func:`prompt_features` with the same results, bit for bit
(``tests/unit/test_textkern.py``); the Python functions here are the reference and
run when it is not built.

Topics (:class:`TextTopics`). Content units vote for the topic their hash was
first seen with. The vocabulary holds 32-bit hashes, never words: the
detector's snapshot (the state changelog) carries no prompt text.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Callable
from typing import Any, Final

#: characters read at each end of a longer prompt
SCAN_CHARS: Final = 2048
#: bins of the template sketch (bytes per prompt)
SKETCH_BINS: Final = 16
#: 32-bit words of one sketch
SKETCH_WORDS: Final = SKETCH_BINS // 4

# Scripts written without spaces: each character is a unit.
_NOSPACE_RANGES: Final = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified
    (0xF900, 0xFAFF),  # CJK compatibility
)
_NOSPACE: Final = "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _NOSPACE_RANGES)
_UNIT_RE: Final = re.compile(f"[{_NOSPACE}]|[^\\W\\d_{_NOSPACE}]+")
_WORD_RE: Final = re.compile(r"[^\W\d_]+")
_NOSPACE_RE: Final = re.compile(f"[{_NOSPACE}]")
# ASCII: every byte that is not a letter separates units (as _UNIT_RE does)
_ASCII_SEP: Final = bytes(
    b if (0x61 <= b <= 0x7A or 0x41 <= b <= 0x5A or b >= 0x80) else 0x20 for b in range(256)
)


def _scanned(prompt: str, scan_chars: int) -> str:
    """The part of a prompt that is read: all of it, or both ends."""
    if len(prompt) > 2 * scan_chars:
        return prompt[:scan_chars] + "\n" + prompt[-scan_chars:]
    return prompt


def normalize(prompt: str, scan_chars: int = SCAN_CHARS) -> str:
    """NFKC + full case fold of the scanned part of a prompt.

    >>> normalize("ＳＴＥＰ ﬁle Straße ΣΊΣΥΦΟΣ")
    'step file strasse σίσυφοσ'
    >>> len(normalize("x" * 10_000, 100))
    201
    """
    prompt = _scanned(prompt, scan_chars)
    if prompt.isascii():
        return prompt.lower()
    return _nfkc_casefold(prompt)


def _nfkc_casefold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


# Characters that compose with the starter before them although they are
# starters themselves (canonical combining class 0), from the Unicode data of
# this version (tests/unit/test_textkern.py recomputes it); with another version the
# per-character normalisation of the C kernel is off (it normalises whole texts).
_STARTER_SECONDS_UNIDATA: Final = "14.0.0"
# ... and the combining marks that compose with a starter before them
_SECONDS: Final = frozenset((
    0x0300, 0x0301, 0x0302, 0x0303, 0x0304, 0x0306, 0x0307, 0x0308, 0x0309, 0x030A, 0x030B,
    0x030C, 0x030F, 0x0311, 0x0313, 0x0314, 0x031B, 0x0323, 0x0324, 0x0325, 0x0326, 0x0327,
    0x0328, 0x032D, 0x032E, 0x0330, 0x0331, 0x0338, 0x0342, 0x0345, 0x0653, 0x0654, 0x0655,
    0x093C, 0x0C56, 0x0DCA, 0x3099, 0x309A, 0x110BA,
))
_STARTER_SECONDS: Final = frozenset((
    0x09BE, 0x09D7, 0x0B3E, 0x0B56, 0x0B57, 0x0BBE, 0x0BD7, 0x0CC2, 0x0CD5, 0x0CD6, 0x0D3E,
    0x0D57, 0x0DCF, 0x0DDF, 0x102E, 0x1B35, 0x11127, 0x1133E, 0x11357, 0x114B0, 0x114BA,
    0x114BD, 0x115AF, 0x11930,
))


def _norm_char(ch: str) -> tuple[str, int, int] | None:
    """:func:`normalize` of one non-ASCII character and the combining classes
    of its compatibility decomposition's first and last characters, when a
    text's normalisation is the concatenation of its characters' (the C
    kernel's per-character table); None when the piece of text around ``ch``
    (from the normalisation boundary before it to the one after it: a
    character this function takes, of class 0 first) must go through
    :func:`_nfkc_casefold`.

    It is when the decomposition starts with a starter that composes with
    nothing before it, or is a combining mark that composes with nothing and is
    its own normalisation: then no composition crosses from one character's
    part to the next, and canonical reordering does not either as long as a
    mark never follows a mark of a higher class (the kernel checks that with
    the two classes). Case folding is per character anyway.

    >>> _norm_char("Ｓ"), _norm_char("ß"), _norm_char("\u094d")
    (('s', 0, 0), ('ss', 0, 0), ('\u094d', 9, 9))
    >>> _norm_char("\u0301"), _norm_char("\u1161")
    (None, None)
    """
    if unicodedata.unidata_version != _STARTER_SECONDS_UNIDATA:
        return None
    decomposed = unicodedata.normalize("NFKD", ch)
    first = ord(decomposed[0])
    if first in _SECONDS or first in _STARTER_SECONDS:
        return None
    for lo, hi in _JAMO_SECOND:
        if lo <= first <= hi:
            return None
    ccc = unicodedata.combining(chr(first))
    out = _nfkc_casefold(ch)
    if ccc and (decomposed != ch or out != ch):
        return None  # a mark: only one that is its own decomposition and normalisation
    return out, ccc, unicodedata.combining(decomposed[-1])


def units(text: str) -> list[str]:
    """Words of a normalised text; each character of a script without spaces.

    >>> units("explain 12 steps: 一步一步 推理, then ok")
    ['explain', 'steps', '一', '步', '一', '步', '推', '理', 'then', 'ok']
    """
    return _UNIT_RE.findall(text)


def normalized_words(text: str) -> list[str]:
    """Letters-only words of a prompt after :func:`normalize` (runs of a script
    without spaces stay whole here; :func:`units` splits them).

    >>> normalized_words("Solve #12: x+3 = 7, STEP-by-step!")
    ['solve', 'x', 'step', 'by', 'step']
    """
    return _WORD_RE.findall(normalize(text))


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


# ------------------------------------------------------------ elicitation ---
# Concept classes. Each entry is a word prefix (at least 3 characters) matched
# at the start of a word, or, in scripts without spaces, a substring. Classes:
#   R  a reasoning process or its parts       V  asking to reveal / write it out
#   G  grading, scoring, judging              A  the thing being graded
# An idiom (I) carries a whole request alone. Written from the concepts, in
# English, Spanish, Portuguese, French, Italian, German, Dutch, Polish,
# Russian, Ukrainian, Turkish, Indonesian, Vietnamese, Hindi, Arabic, Chinese,
# Japanese, Korean and Thai; tests/unit/test_text_unicode.py checks phrasings this
# table was not written from.
_CONCEPTS: Final = {
    "R": (
        "reasoning reasoned rationale thought thinking derivation deduction deductive"
        " justification justify workings scratchpad logic inner monologue"
        " razonamiento razonar pensamiento deducción justificación lógica"
        " raciocínio raciocinar pensamento dedução justificativa"
        " raisonnement raisonner pensée démarche déduction justification logique"
        " ragionamento ragionare pensiero deduzione giustificazione"
        " überlegung gedankengang denkprozess denkweise begründung herleitung"
        " redenering redeneer gedachtegang afleiding"
        " rozumowanie rozumowania uzasadnienie"
        " рассужд размышлен мышлени обоснован логик"
        " міркуван обґрунтуван"
        " akıl düşünce gerekçe çıkarım"
        " penalaran pemikiran alasan"
        " तर्क विचार"
        " استدلال تفكير منطق تبرير"
    ),
    "V": (
        "explain explanation show walk detail describe articulate outline spell elaborate"
        " verbalize verbalise reveal narrate expose trace unpack write"
        " explica explicar explique muestra mostrar describe detalla desarrolla"
        " mostre descreva detalhe demonstre"
        " explique expliquer montre montrer détaille détailler décris décrire expose"
        " spiega spiegare mostra descrivi dettaglia illustra"
        " erkläre erklären erläutere erläutern zeige zeigen beschreibe beschreiben"
        " darlegen"
        " toon beschrijf"
        " wyjaśnij pokaż opisz przedstaw"
        " объясни объясните покажи покажите опиши опишите распиши распишите изложи"
        " изложите приведи продемонстрируй поясни поясните"
        " поясни поясніть поясни опиши покажи"
        " açıkla göster anlat"
        " jelaskan tunjukkan uraikan"
        " समझाएं समझाइए बताएं दिखाएं"
        " اشرح وضح اعرض اكتب"
    ),
    "G": (
        "rubric grade grading grader score scoring rating evaluate evaluation assess"
        " judge criteria criterion"
        " rúbrica calificar califica puntúa puntuación evalúa"
        " avalie avaliar pontuação nota"
        " grille barème noter évaluer évalue"
        " valuta valutare punteggio"
        " bewerte bewerten benote punktzahl"
        " beoordeel"
        " oceń ocena"
        " оцени оцените оценк балл критери"
        " puanla değerlendir"
        " قيم قيّم معايير"
    ),
    "A": (
        "answer answers response responses candidate completion completions submission"
        " solution"
        " respuesta respuestas solución"
        " resposta respostas"
        " réponse réponses"
        " risposta risposte"
        " antwort antworten lösung"
        " antwoord"
        " odpowiedź"
        " ответ ответы решение"
        " cevap yanıt"
        " jawaban"
        " إجابة الإجابة"
    ),
}
_NOSPACE_CONCEPTS: Final = {
    "R": "推理 思路 思考 过程 過程 推論 推导 推導 考え方 理由 논리 추론 과정 사고 근거"
    " เหตุผล ความคิด กระบวนการ",
    "V": "解释 解釋 说明 說明 展示 写出 寫出 列出 説明 示して 書いて 解説 설명 보여 작성"
    " อธิบาย แสดง",
    "G": "评分 評分 打分 评估 評估 评价 評價 採点 評価 채점 평가 ประเมิน ให้คะแนน",
    "A": "答案 回答 答え 解答 답변 คำตอบ",
}
_IDIOMS: Final = (
    "step by step",
    "chain of thought",
    "stepwise",
    "show your work",
    "how you arrived",
    "how you got there",
    "think out loud",
    "think aloud",
    "show all your work",
    "paso a paso",
    "passo a passo",
    "passo dopo passo",
    "pas à pas",
    "étape par étape",
    "schritt für schritt",
    "stap voor stap",
    "krok po kroku",
    "шаг за шагом",
    "пошагово",
    "крок за кроком",
    "adım adım",
    "langkah demi langkah",
    "từng bước",
    "चरण दर चरण",
    "خطوة بخطوة",
    "一步一步",
    "一步步",
    "逐步",
    "段階的",
    "ステップバイステップ",
    "단계별",
    "차근차근",
    "ทีละขั้นตอน",
)


_KEY_LENGTHS: Final = (3, 4, 5, 6)
_MARKS_RE: Final = re.compile(r"[\u0300-\u036f]")


def _strip_marks(text: str) -> str:
    """Latin, Greek and Cyrillic words without their accents (``explícame`` is
    ``explicame``), so an accent a writer adds or drops does not hide a stem;
    other scripts' combining marks are left alone.

    >>> _strip_marks("explícame détaille ё")
    'explicame detaille е'
    """
    if text.isascii():
        return text
    return unicodedata.normalize("NFC", _MARKS_RE.sub("", unicodedata.normalize("NFD", text)))


# Hangul vowel and final jamo: letters that compose with the letter before them
# (the only letters that do; tests/unit/test_textkern.py checks it on the whole of
# Unicode)
_JAMO_SECOND: Final = ((0x1161, 0x1175), (0x11A8, 0x11C2))


def _strip_char(ch: str) -> str | None:
    """:func:`_strip_marks` of one letter, when a word's is the concatenation of
    its letters' (the C kernel's per-character table); None when a word holding
    ``ch`` must be stripped whole.

    It is when the letter's decomposition starts with a starter that composes
    with nothing before it: then neither canonical reordering nor composition
    crosses from one letter's part to the next. (Words hold no combining marks:
    marks separate units.)

    >>> _strip_char("é"), _strip_char("ж"), _strip_char("\u1161"), _strip_char("\u0301")
    ('e', 'ж', None, None)
    """
    first = ord(unicodedata.normalize("NFD", ch)[0])
    if unicodedata.combining(chr(first)) or 0x0300 <= first <= 0x036F:
        return None
    for lo, hi in _JAMO_SECOND:
        if lo <= first <= hi:
            return None
    return _strip_marks(ch)




def _prefix_tables() -> tuple[dict[str, tuple[tuple[str, str], ...]], ...]:
    """Per key length (3..6): the first characters of each concept entry ->
    ``(entry, class)`` pairs, so that a word is looked up four times, whatever
    the entries' lengths."""
    tables: list[dict[str, list[tuple[str, str]]]] = [{} for _ in _KEY_LENGTHS]
    for cls, words in _CONCEPTS.items():
        for w in words.split():
            w = _strip_marks(unicodedata.normalize("NFKC", w).casefold())
            i = min(len(w), _KEY_LENGTHS[-1]) - _KEY_LENGTHS[0]
            tables[i].setdefault(w[: _KEY_LENGTHS[i]], []).append((w, cls))
    return tuple({k: tuple(v) for k, v in t.items()} for t in tables)


_PREFIXES: Final = _prefix_tables()
_PREFIX_KEYS: Final = tuple(frozenset(t) for t in _PREFIXES)
_NOSPACE_MARKERS: Final = tuple(
    (m, cls) for cls, ms in _NOSPACE_CONCEPTS.items() for m in ms.split()
)


def elicitation(text: str, words: list[str] | None = None) -> bool:
    """Whether a normalised text asks for written-out reasoning or for grading.

    >>> elicitation(normalize("Grade this answer, then explain STEP by step."))
    True
    >>> elicitation(normalize("Summarize this email in three bullets."))
    False
    >>> elicitation(normalize("Our rubric for the essay contest is attached."))
    False
    >>> elicitation(normalize("Before the final line, spell out the reasoning you used."))
    True
    >>> elicitation(normalize("请详细说明你的推理"))
    True
    """
    for idiom in _IDIOMS:
        if idiom in text:
            return True
    if words is None:
        words = _WORD_RE.findall(text)
    seen = ""
    distinct = set(words)
    if not text.isascii():
        distinct = {_strip_marks(w) for w in distinct}
    for i, length in enumerate(_KEY_LENGTHS):
        keys = _PREFIX_KEYS[i].intersection([w[:length] for w in distinct])
        if keys:
            table = _PREFIXES[i]
            for key in keys:
                for entry, cls in table[key]:
                    if cls not in seen:
                        for w in distinct:
                            if w.startswith(entry):
                                seen += cls
                                break
    if not text.isascii():
        for marker, cls in _NOSPACE_MARKERS:
            if cls not in seen and marker in text:
                seen += cls
    return ("R" in seen and "V" in seen) or ("G" in seen and "A" in seen)


# ------------------------------------------------------------ template sketch ---


#: smallest shingle hashes of a prompt that make its anchor
ANCHORS: Final = 3


def sketch(shingles: set[int] | list[int]) -> tuple[int, int, int, int]:
    """One-permutation b-bit MinHash of 32-bit shingle hashes (a set, or a sorted
    list): 16 bins of 8 bits
    as four 32-bit words (never 0, so an empty ring slot never matches).

    >>> a = sketch({zlib.crc32(bytes([i, j])) for i in range(20) for j in range(3)})
    >>> a == sketch({zlib.crc32(bytes([i, j])) for i in range(20) for j in range(3)})
    True
    >>> len(a), all(a)
    (4, True)
    """
    bins = [-1] * SKETCH_BINS
    left = SKETCH_BINS
    for h in shingles if isinstance(shingles, list) else sorted(shingles):
        b = h & 15
        if bins[b] < 0:
            bins[b] = (h >> 4) & 0xFF
            left -= 1
            if not left:
                break
    if left == SKETCH_BINS:
        return (1, 1, 1, 1)
    if left:  # densify: an empty bin borrows the next non-empty bin's value
        for i in range(SKETCH_BINS):
            if bins[i] < 0:
                j = (i + 1) % SKETCH_BINS
                while bins[j] < 0:
                    j = (j + 1) % SKETCH_BINS
                bins[i] = bins[j]
    words = [
        (bins[4 * i] | bins[4 * i + 1] << 8 | bins[4 * i + 2] << 16 | bins[4 * i + 3] << 24) or 1
        for i in range(SKETCH_WORDS)
    ]
    return words[0], words[1], words[2], words[3]


_LOW: Final = 0x01010101


def agreement(a0: int, a1: int, a2: int, a3: int, b0: int, b1: int, b2: int, b3: int) -> int:
    """How many of the 16 bins two sketches share (an estimate of 16 x Jaccard).

    >>> agreement(0x01020304, 5, 6, 7, 0x01020304, 5, 6, 8)
    15
    """
    # A byte of x is non-zero iff its bins differ: fold each byte onto its low
    # bit, then add the four low bits up with one multiplication (their sum
    # lands in bits 24..31). Written out per word, without ``bit_count``:
    # compiled, a loop over a tuple of the words and the method call boxed
    # every word, 8 calls a prompt.
    x = a0 ^ b0
    x |= x >> 4
    x |= x >> 2
    x |= x >> 1
    y = x & _LOW
    x = a1 ^ b1
    x |= x >> 4
    x |= x >> 2
    x |= x >> 1
    y += x & _LOW
    x = a2 ^ b2
    x |= x >> 4
    x |= x >> 2
    x |= x >> 1
    y += x & _LOW
    x = a3 ^ b3
    x |= x >> 4
    x |= x >> 2
    x |= x >> 1
    y += x & _LOW
    # y: four byte counts of at most 4 each; sum them into bits 24..31
    return 16 - (((y * _LOW) >> 24) & 0xFF)


def prompt_features(
    prompt: str, scan_chars: int = SCAN_CHARS
) -> tuple[tuple[int, int, int, int], int, bool, list[int], int]:
    """Template sketch, distinct shingles, elicitation flag, topic-term hashes and
    the anchor: a hash of the prompt's ``ANCHORS`` smallest shingle hashes (a
    bottom-k sketch). Prompts made from one template have the same anchor when
    those smallest hashes all fall in its fixed part, in every account that uses
    the template, random affixes or not; two unrelated prompts have it only if
    they share all of them, so shingles common to everyone ("of the") do not
    link accounts. Never 0.

    >>> t = "You are a strict grader. Score the candidate answer against the rubric below, "
    >>> t += "then output JSON with a single integer field. Question: "
    >>> a = prompt_features("zq " + t + "42 apples in Rust.")
    >>> b = prompt_features(t + "7 pears in Go. kx")
    >>> agreement(*a[0], *b[0]) >= 11, a[2]
    (True, True)
    >>> c = prompt_features("Fix grammar: " + "the cat sat on the mat today " * 3)
    >>> d = prompt_features("Fix grammar: " + "a dog ran in the park yesterday " * 3)
    >>> agreement(*c[0], *d[0]) <= 6
    True
    >>> prompt_features("")
    ((1, 1, 1, 1), 0, False, [], 1)
    """
    if _C_FEATURES_RAW is not None:
        return _C_FEATURES_RAW(_scanned(prompt, scan_chars))
    return _features(normalize(prompt, scan_chars))


def _features(text: str) -> tuple[tuple[int, int, int, int], int, bool, list[int], int]:
    """:func:`prompt_features` of a normalised text (the reference of the C kernel)."""
    if text.isascii():
        # the same units as the regular expression, several times faster
        enc = text.encode("ascii").translate(_ASCII_SEP).split()
        us = [b.decode("ascii") for b in enc]
    else:
        us = _UNIT_RE.findall(text)
        enc = [u.encode("utf-8", "surrogatepass") for u in us]
    if not enc:
        return (1, 1, 1, 1), 0, False, [], 1
    if len(enc) > 1:
        shingles = set(map(zlib.crc32, map(b" ".join, zip(enc, enc[1:], strict=False))))
    else:
        shingles = {zlib.crc32(enc[0])}
    elicit = elicitation(text, [u for u in us if len(u) >= 3])
    terms = topic_terms(us, enc)
    ordered = sorted(shingles)
    anchor = zlib.crc32(b"".join([h.to_bytes(4, "little") for h in ordered[:ANCHORS]])) or 1
    return sketch(ordered), len(ordered), elicit, terms, anchor


# ------------------------------------------------------------------ topics ---

_STOP: Final = frozenset(
    w.encode()
    for w in (
        "the a an and or of to in on for with is are be this that it as at by from what how"
        " can you me my i your we our please write give make about into using use which when"
        " why who does do not need want would could should will have has was were been being"
        " there their they them then than also just like some any all more most very here"
        " el la los las de del que en un una por para con como es se lo al y o"
        " le les des du et est une pour dans qui avec sur pas plus ce"
        " der die das und ist ein eine zu mit von den dem für nicht auf auch sie"
        " os as um uma do da dos das em para com não"
        " и в на что не как это с по для из от к о у за"
    ).split()
)


_Features = tuple[tuple[int, int, int, int], int, bool, list[int], int]


def _features_kernel() -> Callable[[str], _Features] | None:
    """The C kernel of :func:`prompt_features` after :func:`normalize`
    (``detectors/_textkern.c``), configured with this module's tables, when
    ``python -m tools.native build`` compiled it."""
    try:
        from detectors import _textkern
    except ImportError:
        return None
    return _configure(_textkern)


def _configure(kernel: Any) -> Callable[[str], _Features] | None:
    """Hands this module's tables to a ``_textkern`` module; its ``features``,
    or None when the tables are beyond what it handles."""
    entries = [(e, _CLASS_BITS[cls]) for t in _PREFIXES for es in t.values() for e, cls in es]
    if any(len(e) < _KEY_LENGTHS[0] for e, _ in entries):
        return None  # the kernel's prefix table assumes entries of 3+ characters
    kernel.configure(
        list(_NOSPACE_RANGES),
        list(_IDIOMS),
        entries,
        [(m, _CLASS_BITS[cls]) for m, cls in _NOSPACE_MARKERS],
        sorted(_STOP),
        _strip_char,
        _strip_marks,
        _norm_char,
        _nfkc_casefold,
    )
    features: Callable[[str], _Features] = kernel.features
    return features


def _features_raw_kernel(configured: object) -> Callable[[str], _Features] | None:
    if configured is None:
        return None
    from detectors import _textkern

    features_raw: Callable[[str], _Features] = _textkern.features_raw
    return features_raw


_CLASS_BITS: Final = {"R": 1, "V": 2, "G": 4, "A": 8}

#: content units of a prompt that vote for its topic
TOPIC_TERMS: Final = 12
#: leading units of a prompt read for topic terms
TOPIC_UNITS: Final = 48


def topic_terms(us: list[str], enc: list[bytes] | None = None) -> list[int]:
    """Hashes of a prompt's leading content units: words longer than two
    letters not in the stop list, and character bigrams of scripts without spaces.

    >>> len(topic_terms(units("how do i reverse a linked list in python")))
    4
    >>> len(topic_terms(units("如何反转链表"))) # 5 bigrams
    5
    """
    if enc is None:
        enc = [u.encode("utf-8", "surrogatepass") for u in us]
    out: list[int] = []
    prev = b""
    for u, b in zip(us[:TOPIC_UNITS], enc[:TOPIC_UNITS], strict=False):
        if len(u) == 1 and _NOSPACE_RE.match(u) is not None:
            if prev:
                out.append(zlib.crc32(b, zlib.crc32(prev)))
            prev = b
        else:
            prev = b""
            if len(u) > 2 and b not in _STOP:
                out.append(zlib.crc32(b))
        if len(out) >= TOPIC_TERMS:
            break
    return out


# Final: the compiled module reads it as a C static, not from the module dict
_C_FEATURES: Final = _features_kernel()
#: the kernel's features(normalize(...)) of a prompt's scanned part
_C_FEATURES_RAW: Final = _features_raw_kernel(_C_FEATURES)


class TextTopics:
    """Assigns a topic to a prompt that arrives without one, online and bounded.

    Keyword voting over an inverted index learned from the stream: each content
    term (:func:`topic_terms`, a 32-bit hash) of a prompt votes for the topic it
    was first seen with; the winner (ties to the lowest id) is the topic. A
    prompt whose terms are all new opens a new topic while fewer than
    ``max_topics`` exist, otherwise it goes to a bucket chosen by its first
    term's hash. The vocabulary holds at most ``max_words`` hashes and never a
    word. Deterministic for a given event order. Topic ids have the top bit set
    so they never collide with named topics' ids in practice.

    Examples
    --------
    >>> tt = TextTopics(max_topics=8)
    >>> a = tt.assign(topic_terms(units("How do I reverse a linked list in Python")))
    >>> b = tt.assign(topic_terms(units("Reverse a linked list recursively")))
    >>> c = tt.assign(topic_terms(units("Best soup recipes for winter evenings")))
    >>> a == b, a == c, tt.name(a)
    (True, False, 'auto/0')
    """

    __slots__ = ("max_topics", "max_words", "_vocab", "_n")

    FLAG: Final = 0x80000000

    def __init__(self, max_topics: int = 64, max_words: int = 50_000) -> None:
        self.max_topics = max_topics
        self.max_words = max_words
        self._vocab: dict[int, int] = {}
        self._n = 0

    def assign(self, terms: list[int]) -> int:
        vocab = self._vocab
        votes: dict[int, int] = {}
        for w in terms:
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
        elif terms:
            topic = self.FLAG | (terms[0] % self.max_topics)
        else:
            topic = self.FLAG
        if len(vocab) < self.max_words:
            for w in terms:
                if w not in vocab:
                    vocab[w] = topic
        return topic

    def name(self, topic: int) -> str:
        return f"auto/{topic & ~self.FLAG}"

    def to_json(self) -> list[object]:
        # hashes only: the changelog never carries a prompt word
        return [self._n, sorted(self._vocab.items())]

    def load_json(self, data: list[object]) -> None:
        n, items = data
        assert isinstance(n, int) and isinstance(items, list)
        self._n = n
        vocab: dict[int, int] = {}
        for k, v in items:
            if not isinstance(k, int):  # a snapshot written before hashing: drop words
                continue
            vocab[k] = int(v)
        self._vocab = vocab
