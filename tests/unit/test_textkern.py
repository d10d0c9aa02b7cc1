"""The C kernel of the prompt features (detectors/_textkern.c) against the
Python reference (detectors.text._features): the same sketch, size,
elicitation flag, topic terms and anchor, bit for bit, on hostile Unicode.

The kernel under test is the one ``python -m tools.native build`` installed
when the compiled detectors are in use; otherwise (``DISTILLWATCH_NATIVE=0``,
no build) this test compiles ``detectors/_textkern.c`` itself, so the
comparison runs either way when a C compiler is present.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sysconfig
import unicodedata
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import detectors
from detectors import text
from tests.helpers.text_samples import ELICITING

ROOT = Path(__file__).resolve().parents[2]
_Features = Callable[[str], Any]


def _compile(out: Path) -> Any:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc/gcc) to build detectors/_textkern.c")
    so = out / f"_textkern{sysconfig.get_config_var('EXT_SUFFIX')}"
    subprocess.run([cc, "-O2", "-shared", "-fPIC", f"-I{sysconfig.get_paths()['include']}",
                    str(ROOT / "detectors" / "_textkern.c"), "-o", str(so)], check=True)
    spec = importlib.util.spec_from_file_location("_textkern", so)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, _Features]:
    """(the kernel module, its configured ``features``)."""
    if text._C_FEATURES is not None:
        from detectors import _textkern  # type: ignore[attr-defined]

        return _textkern, text._C_FEATURES
    mod = _compile(tmp_path_factory.mktemp("textkern"))
    features = text._configure(mod)
    assert features is not None
    return mod, features


def test_the_compiled_kernel_is_in_use_when_the_detectors_are_compiled() -> None:
    assert (text._C_FEATURES is not None) == (detectors.NATIVE == "on")


# ------------------------------------------------------------- hostile text
_ANY = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
# pieces that hit every branch: the concept table's words, idioms and markers
# (with accents added or dropped), scripts without spaces, combining marks,
# Hangul jamo, digits of other scripts, separators, NUL and lone surrogates
_WORDS = sorted({e for t in text._PREFIXES for es in t.values() for e, _ in es})
_PIECES = st.one_of(
    st.sampled_from(_WORDS),
    st.sampled_from(text._IDIOMS),
    st.sampled_from([m for m, _ in text._NOSPACE_MARKERS]),
    st.sampled_from(["explícame", "DÉTAILLE", "Рассуждение", "ё", "й", "ΣΊΣΥΦΟΣ", "ﬁ", "Ｓｔｅｐ",
                     "straße", "ǰ", "ΐ", "가", "각", "\u1100\u1161\u11a8", "\u1161", "\u11a8",
                     "e\u0301", "\u0301", "\u0345", "ä\u0308", "आ", "समझाएं", "٣", "१२",
                     "Ⅻ", "½", "²", "_", "\x00", "\ud800", "\udfff", "\ud83d\ude00", "😀",
                     "\U00020000", "ก", "ທ", "ខ្មែរ", "မြန်", "ｶ", "ﾞ", "\u3099", "step by step",
                     "chain of thought", "\ufeff", "\u200b", "\u2028", " ", "\n", "\t",
                     # marks in and out of canonical order, marks that compose
                     "तर्क", "न\u093c", "क़", "\u094d\u093c", "\u093c\u094d", "ที่",
                     "\u0e48\u0e38", "\u0e38\u0e48", "\u064b\u0651", "\u0651\u064b",
                     "ǘ\u094d", "\u094d", "\u0bbe", "க\u0bbe", "ㄱ", "ㅏ", "ᄀ", "Ａ", "㍿",
                     "ﷺ", "Ω", "Å", "ᾳ", "\u0345", "İ", "ϐ", "ſ"]),
    st.text(_ANY, max_size=6),
)
_HOSTILE = st.one_of(
    st.text(_ANY, max_size=400),
    st.lists(_PIECES, max_size=80).map(" ".join),
    st.lists(_PIECES, max_size=80).map("".join),
    st.tuples(st.lists(_PIECES, min_size=1, max_size=6).map(" ".join),
              st.integers(1, 2000)).map(lambda p: p[0] * p[1]),
)


def _both(kernel: tuple[Any, _Features], raw: str, scan: int) -> None:
    mod, features = kernel
    norm = text.normalize(raw, scan)
    expected = text._features(norm)
    assert features(norm) == expected
    # normalising in the kernel (what prompt_features calls)
    assert mod.features_raw(text._scanned(raw, scan)) == expected
    # any str, normalised or not (the kernel assumes nothing of its input)
    assert features(raw) == text._features(raw)


@settings(max_examples=1500, deadline=None)
@given(_HOSTILE, st.sampled_from([text.SCAN_CHARS, 1, 7, 100]))
@example("", text.SCAN_CHARS)
@example("\x00" * 10_000, text.SCAN_CHARS)
@example("a", text.SCAN_CHARS)
@example("一", text.SCAN_CHARS)
@example("Grade this answer, then explain STEP by step.", text.SCAN_CHARS)
@example("请详细说明你的推理 " * 3000, text.SCAN_CHARS)
@example("x" * 200_000 + " rubric answer", text.SCAN_CHARS)
def test_kernel_matches_python_on_hostile_unicode(
    kernel: tuple[Any, _Features], raw: str, scan: int
) -> None:
    _both(kernel, raw, scan)


def test_kernel_matches_python_on_every_code_point(kernel: tuple[Any, _Features]) -> None:
    # each character alone and between letters, in runs: unit boundaries,
    # scripts without spaces, strip and normalisation tables, surrogates
    mod, features = kernel
    chunk: list[str] = []
    for cp in range(0x110000):
        chunk.append(chr(cp))
        if len(chunk) == 64:
            for raw in ("".join(chunk), "Ab" + "aB ".join(chunk) + "ab explain REASONING",
                        "".join(c + "\u094d" for c in chunk)):
                assert features(raw) == text._features(raw)
                assert mod.features_raw(raw) == text._features(text.normalize(raw, len(raw)))
            chunk = []


def test_kernel_matches_python_on_the_elicitation_corpus(kernel: tuple[Any, _Features]) -> None:
    for sentence in ELICITING:
        norm = text.normalize(sentence)
        assert kernel[1](norm) == text._features(norm)
        assert kernel[1](norm)[2]


def test_crc32_is_zlibs(kernel: tuple[Any, _Features]) -> None:
    for data in (b"", b"a", b"hello world", bytes(range(256)) * 5, b"\xff" * 9):
        assert kernel[0].crc32(data) == zlib.crc32(data)
    # every length of the 8-, 4- and 1-3-byte steps, from every start
    data = bytes(range(7, 256, 3)) * 2
    for start in range(8):
        for n in range(40):
            assert kernel[0].crc32(data[start:start + n]) == zlib.crc32(data[start:start + n])


def test_every_pattern_is_found_at_every_offset(kernel: tuple[Any, _Features]) -> None:
    # the scan reads the text's 4-byte grams at every few bytes only: a
    # pattern must be found wherever it starts, at the text's ends too
    mod, features = kernel
    for pattern in list(text._IDIOMS) + [m for m, _ in text._NOSPACE_MARKERS]:
        for pad in range(9):
            for raw in (pattern, "x" * pad + pattern, "é" * pad + pattern + "z" * pad,
                        "y " * pad + pattern + " w"):
                norm = text.normalize(raw, len(raw))
                assert features(norm) == text._features(norm)
                assert mod.features_raw(raw) == text._features(norm)


def test_ascii_is_lowered_at_every_alignment(kernel: tuple[Any, _Features]) -> None:
    # features_raw lowers ASCII 8 bytes at a time: every byte at every place
    mod, _ = kernel
    every = "".join(map(chr, range(128)))
    for pad in range(9):
        for raw in ("Q" * pad + every, every[pad:] + every[:pad] + " STEP BY STEP"):
            assert mod.features_raw(raw) == text._features(raw.lower())


_UNTABLED = ["न\u093c", "\u093c", "\u1161", "\u11a8", "\u0301", "\u0bbe", "\u0e38\u0e48",
             "\u0651\u064b", "\u094d\u093c"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_UNTABLED), _PIECES), max_size=40),
       st.sampled_from(["", " ", "a", "ह"]))
def test_a_character_the_table_cannot_take_normalises_its_piece_only(
    tmp_path_factory: pytest.TempPathFactory, pieces: list[str], sep: str
) -> None:
    # the kernel sends the text between the normalisation boundaries around
    # such a character through norm_text, not the whole text: the same result
    mod = _private_kernel(tmp_path_factory)
    raw = sep.join(pieces)
    norm = text.normalize(raw, len(raw))
    _SEEN.clear()
    assert mod.features_raw(raw) == text._features(norm)
    # pieces of the text, each once
    assert sum(map(len, _SEEN)) <= len(raw)
    assert all(piece in raw for piece in _SEEN)


def test_the_one_pass_hands_over_anywhere(kernel: tuple[Any, _Features]) -> None:
    # features_raw writes the UTF-8 and the units while it normalises, and
    # hands over to the piecewise normalisation at the first character the
    # table cannot take: after buffers grew (a character of 18), inside and
    # after ASCII runs, at the ends; and text that is ASCII once normalised
    mod, _ = kernel
    heads = ["", "a", "Step ", "é", "ﷺ" * 40, "Ａｂ ｃ", "ﬁle ", "तर्क ", "请说明"]
    tails = ["", " explain STEP by step", "ﷺ" * 5, "ab", " 一二"]
    for head in heads:
        for tail in tails:
            for mid in ["", "x", " ", *_UNTABLED]:
                raw = head + mid + tail
                assert mod.features_raw(raw) == text._features(text.normalize(raw, len(raw)))


_SEEN: list[str] = []
_PRIVATE: list[Any] = []


def _private_kernel(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A kernel of its own whose norm_text records what it is given."""
    if not _PRIVATE:
        mod = _compile(tmp_path_factory.mktemp("textkern_private"))

        def norm_text(piece: str) -> str:
            _SEEN.append(piece)
            return text._nfkc_casefold(piece)

        entries = [(e, text._CLASS_BITS[cls]) for t in text._PREFIXES for es in t.values()
                   for e, cls in es]
        mod.configure(list(text._NOSPACE_RANGES), list(text._IDIOMS), entries,
                      [(m, text._CLASS_BITS[cls]) for m, cls in text._NOSPACE_MARKERS],
                      sorted(text._STOP), text._strip_char, text._strip_marks,
                      text._norm_char, norm_text)
        _PRIVATE.append(mod)
    return _PRIVATE[0]


def test_a_long_text_sends_only_the_piece_around_a_nukta(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    mod = _private_kernel(tmp_path_factory)
    raw = "समझाएं कदम दर कदम " * 40 + "\u092b\u093c\u093e\u0907\u0932" + " तर्क दें" * 40
    _SEEN.clear()
    assert mod.features_raw(raw) == text._features(text.normalize(raw, len(raw)))
    # from the consonant before the nukta to the vowel sign after it
    assert _SEEN == ["\u092b\u093c"]


def test_configure_refuses_tables_it_cannot_hold(tmp_path: Path) -> None:
    mod = _compile(tmp_path)  # a private copy: the shared one stays configured
    args: list[Any] = [[(0x3040, 0x30FF)], ["abc"], [], [], [], text._strip_char,
                       text._strip_marks, text._norm_char, text._nfkc_casefold]
    with pytest.raises(ValueError, match="shorter than 4 bytes"):
        mod.configure(*args)  # an idiom of 3 bytes: the scan reads 4
    args[1] = ["step by step"]
    args[0] = [(0x41, 0x5A)]
    with pytest.raises(ValueError, match="non-ASCII"):
        mod.configure(*args)
    with pytest.raises(RuntimeError, match="configure"):
        mod.features("abc")  # never configured after the failures
    with pytest.raises(RuntimeError, match="configure"):
        mod.features_raw("abc")
    with pytest.raises(TypeError):
        mod.configure(1, 2)


# ------------------------------------------- the per-character strip table
def covered_jamo() -> set[int]:
    """Hangul's algorithmic composition seconds (vowel and final jamo)."""
    return set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))


@settings(max_examples=1500, deadline=None)
@given(st.text(st.characters(min_codepoint=0x80, max_codepoint=0x10FFFF,
                             exclude_categories=("Cs",)).filter(str.isalnum),
               min_size=1, max_size=8))
def test_a_words_strip_is_its_letters_when_the_table_says_so(word: str) -> None:
    parts = [text._strip_char(c) for c in word]
    if all(p is not None for p in parts):
        assert "".join(p for p in parts if p is not None) == text._strip_marks(word)


def test_only_hangul_jamo_letters_compose_with_the_letter_before() -> None:
    # text._strip_char's premise, on the whole of this interpreter's Unicode:
    # the second characters of all canonical compositions (the decomposition
    # data, plus Hangul's algorithmic ones) that can be inside a word
    seconds = set()
    for cp in range(0x110000):
        ch = chr(cp)
        d = unicodedata.decomposition(ch)
        if d and not d.startswith("<"):
            parts = [chr(int(x, 16)) for x in d.split()]
            if len(parts) == 2 and unicodedata.normalize("NFC", "".join(parts)) == ch:
                seconds.add(ord(parts[1]))
    seconds |= covered_jamo()
    # (a character of a script without spaces is a unit alone, never in a word)
    if unicodedata.unidata_version == text._STARTER_SECONDS_UNIDATA:
        # text._norm_char's tables: every second, starters apart from marks
        assert seconds - covered_jamo() == text._SECONDS | text._STARTER_SECONDS
        assert {cp for cp in text._STARTER_SECONDS if unicodedata.combining(chr(cp))} == set()
    in_words = {cp for cp in seconds
                if text._UNIT_RE.fullmatch(chr(cp)) and not text._NOSPACE_RE.match(chr(cp))}
    covered = {cp for lo, hi in text._JAMO_SECOND for cp in range(lo, hi + 1)}
    assert in_words <= covered, sorted(map(hex, in_words - covered))


def test_without_the_kernel_prompt_features_is_the_python() -> None:
    # the fallback when the build is absent (or DISTILLWATCH_NATIVE=0): the
    # Python path; with the kernel, the kernel after normalize
    p = "Grade this answer, then explain STEP by step. 请详细说明你的推理 " * 300
    assert text.prompt_features(p) == text._features(text.normalize(p))
    assert text.prompt_features(p, 10) == text._features(text.normalize(p, 10))
    if detectors.NATIVE != "on":
        assert text._C_FEATURES is None
