"""Prompt text beyond the phrasings the detector's concept table was written from.

The sentences below were written for this test from other sources than
``detectors/text.py``'s table: paraphrases of the request public reports
describe (Anthropic, Feb 2026: "imagine and articulate the internal reasoning
behind a completed response"; GTIG 2026: "reasoning trace coercion", mostly
non-English), phrased the way people write them, in several languages and
capitalisations, with the request buried in the middle of a long prompt. None
of them is an idiom of the table or a sentence from it.
"""

from __future__ import annotations

import random

import pytest

from detectors.engine import Detector
from detectors.schema import Event
from detectors.text import elicitation, normalize, prompt_features, topic_terms, units
from tests.helpers.text_samples import ELICITING, ORDINARY

T0 = 1_772_409_600.0

@pytest.mark.parametrize("sentence", ELICITING)
def test_unanticipated_elicitation_is_found(sentence: str) -> None:
    assert elicitation(normalize(sentence)), sentence


@pytest.mark.parametrize("sentence", ORDINARY)
def test_ordinary_requests_and_single_words_are_not_elicitation(sentence: str) -> None:
    assert not elicitation(normalize(sentence)), sentence


FILLER = (
    "The quarterly report covers revenue, churn, hiring and the new office lease. "
    "Numbers are in thousands of euros and rounded. "
)


@pytest.mark.parametrize("sentence", ELICITING[:3] + ELICITING[7:12] + ELICITING[14:17])
def test_elicitation_found_mid_prompt(sentence: str) -> None:
    # the request sits in the middle of a ~3 kB prompt: beyond the old 320-character
    # head and tail windows, inside the scanned 2 x 2,048 characters
    prompt = FILLER * 14 + sentence + " " + FILLER * 14
    assert 3000 < len(prompt) < 4096
    assert prompt_features(prompt)[2], sentence
    # and beyond the scan: the middle of a very long prompt is not read (bounded cost)
    huge = FILLER * 200 + sentence + FILLER * 200
    assert not prompt_features(huge)[2]


def test_unicode_normalisation() -> None:
    assert normalize("ＳＴＥＰ ﬁle Straße") == "step file strasse"
    assert units(normalize("ΚΑΛΗΜΕΡΑ 123 abc")) == ["καλημερα", "abc"]
    # scripts without spaces: every character a unit, bigrams as topic terms
    assert units("机器学习") == ["机", "器", "学", "习"]
    assert len(topic_terms(units("机器学习"))) == 3
    assert len(topic_terms(units("การเรียนรู้ของเครื่อง"))) > 5


def test_cjk_customers_are_not_one_prompt_one_topic() -> None:
    # Chinese prompts on two subjects: the inferred topics group them (character
    # bigrams), instead of every prompt head becoming a new "word"
    rng = random.Random(3)
    a = ["如何用Python读取CSV文件", "Python读取CSV文件很慢怎么办", "用Python把CSV文件转换成JSON"]
    b = ["红烧肉的做法是什么", "红烧肉需要炖多久", "怎样做红烧肉才不腻"]
    det = Detector()
    state = None
    for i in range(60):
        p = rng.choice(a) if i % 2 else rng.choice(b)
        state, _ = det.process(state, Event(T0 + 60.0 * i, "zh", prompt=p))
    assert state is not None
    assert len([t for t in state.ids if t]) <= 4
