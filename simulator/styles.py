"""Prompt styles of the production workloads and evasions, in both text modes.

Each style is a function ``(rng, acct, behaviour) -> (topic, prompt, long_out)``
registered in :data:`STYLES`; ``Behaviour.draw`` dispatches to it. ``topic`` or
``prompt`` may be ``None`` (not sent). ``acct.text`` selects the text mode:

``real``       prompts are real corpus text (``simulator/corpus.py``): benign
               accounts draw from the benign pool, attackers from the disjoint
               attack pool;
``synthetic``  the old template generators of ``simulator/topics.py``. Only the
               ``multilingual`` kind keeps corpus text (there is no synthetic
               generator for its scripts).

Hand-written framings (wrappers, tutor framings, elicitation paraphrases,
affixes) come from ``simulator/phrases/`` in both modes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from simulator import corpus as C
from simulator import phrasebook as P
from simulator import topics as T

if TYPE_CHECKING:
    from simulator.core import Account, Behaviour

Drawn = tuple[str | None, str | None, bool]


# ----------------------------------------------------------------- helpers ---


def pick_lang(rng: random.Random, acct: Account) -> str:
    if len(acct.langs) == 1:
        return acct.langs[0]
    return rng.choices(acct.langs, weights=acct.lang_weights)[0]


def corpus_prompt(
    rng: random.Random, role: str, lang: str, topic: str | None = None,
    cats: tuple[str, ...] | None = None,
) -> C.Prompt:
    if cats is None and topic is not None:
        cats = C.TOPIC_CATEGORIES.get(topic.split("/")[0])
    items = C.pool(role, lang, cats)
    if not items:
        items = C.pool(role, "en", cats)
    return items[int(rng.random() * len(items))]


def topic_for(rng: random.Random, p: C.Prompt) -> str:
    return T.ch(rng, C.CATEGORY_TOPICS[p.cat])


def _noise(rng: random.Random, text: str) -> str:
    """What real users do to text: lowercase it, drop the final punctuation, a typo."""
    r = rng.random()
    if r < 0.08 and text.isascii():
        text = text.lower()
    elif r < 0.14:
        text = text.rstrip(".?!。？！")
    elif r < 0.18 and len(text) > 20:
        i = rng.randrange(5, len(text) - 5)
        text = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text


def human_text(rng: random.Random, acct: Account, topic: str, lang: str | None = None) -> str:
    """A benign user's prompt on ``topic``: one real question, often with a
    real sentence of another prompt or of a pasted answer before or after it,
    sometimes a follow-up question. Recombining real text keeps a small
    corpus from making one heavy account repeat itself more than real users do."""
    if acct.text != "real" and (lang or "en") == "en":
        return T.benign_prompt(rng, topic)
    lang = lang or pick_lang(rng, acct)
    cats = () if rng.random() < 0.4 else None  # the topic label is noisy: any question
    recent = acct.recent
    for _ in range(4):  # a person does not ask the same question again minutes later
        p = corpus_prompt(rng, "benign", lang, topic, cats)
        if p.id not in recent:
            break
    recent.append(p.id)
    while len(recent) > 64:
        recent.popleft()
    text = p.text
    sents = C.sentences("benign", lang)
    r = rng.random()
    if sents and r < 0.8:
        for _ in range(4):
            sent = T.ch(rng, sents)
            if sent not in recent:
                break
        recent.append(sent)
        text = f"{sent} {text}" if r < 0.6 else f"{text} {sent}"
    if rng.random() < 0.25:
        q = corpus_prompt(rng, "benign", lang, topic)
        if q.id != p.id:
            text = f"{text}\n\n{q.text}"
    return _noise(rng, text)


def capitalise(rng: random.Random, text: str) -> str:
    r = rng.random()
    if r < 0.45:
        return text
    if r < 0.6:
        return text.lower()
    if r < 0.72:
        return text.upper()
    if r < 0.84:
        return text.title()
    if r < 0.92:
        return text[:1].lower() + text[1:]
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text)


def insert_mid(rng: random.Random, text: str, phrase: str) -> str:
    """Put ``phrase`` between two sentences (or lines) of ``text``, never at an end."""
    cuts = [i + 1 for i, c in enumerate(text[:-1]) if c in ".?!。？！\n" and 0 < i < len(text) - 2]
    if not cuts:
        words = text.split(" ")
        if len(words) < 2:  # no spaces (Chinese, Japanese, Thai): any character boundary
            i = rng.randint(1, max(1, len(text) - 1))
            return f"{text[:i]} {phrase} {text[i:]}"
        k = rng.randint(1, len(words) - 1)
        return " ".join(words[:k]) + f" {phrase} " + " ".join(words[k:])
    i = T.ch(rng, cuts)
    return f"{text[:i]} {phrase} {text[i:].lstrip()}"


def affix(rng: random.Random) -> str:
    words = P.lines("affix_words.txt")
    return T.ch(rng, P.lines("affixes.txt")).format(
        hex=f"{rng.getrandbits(48):012x}"[: rng.randint(4, 12)],
        n=rng.randint(1, 99_999),
        word=T.ch(rng, words),
        word2=T.ch(rng, words),
    )


def attack_question(rng: random.Random, acct: Account, topic: str) -> str:
    """An attacker's payload: a real attack-pool question, or the old slot-filled one."""
    if acct.text != "real":
        return T.attack_payload(rng, topic)
    return corpus_prompt(rng, "attack", pick_lang(rng, acct), topic).text


# ------------------------------------------------------------ benign styles ---


def reseller(rng: random.Random, acct: Account, b: Behaviour) -> Drawn:
    topic = b.pick_topic(rng)
    lang = pick_lang(rng, acct)
    q = human_text(rng, acct, topic, lang)
    openers = P.by_lang("reseller.tsv").get(lang) or P.by_lang("reseller.tsv")["en"]
    return topic, T.ch(rng, openers).replace("{q}", q), rng.random() < 0.12


def wrapper(rng: random.Random, acct: Account, b: Behaviour) -> Drawn:
    topic = b.pick_topic(rng)
    prm = b.params
    lang = pick_lang(rng, acct)
    n = rng.randint(1, 3)
    if acct.text == "real":
        passages = "\n\n".join(
            f"[{i + 1}] " + corpus_prompt(rng, "benign", lang, topic).text for i in range(n)
        )
    else:
        passages = "\n\n".join(f"[{i + 1}] " + T.user_content(rng, topic, 2, 5) for i in range(n))
    question = human_text(rng, acct, topic, lang)
    body = prm["layout"].replace("{passages}", passages).replace("{question}", question)
    body = body.replace("{lang}", T.ch(rng, ("German", "French", "Japanese", "Spanish")))
    return topic, f"{prm['prefix']}\n\n{body}\n\n{prm['suffix']}", rng.random() < 0.1


def judge(rng: random.Random, acct: Account, b: Behaviour) -> Drawn:
    """LLM-as-judge: a real rubric prompt (FastChat MT-bench judge prompts)
    filled with a question and candidate answers."""
    tpl = T.ch(rng, b.params["templates"])
    topic = b.pick_topic(rng)
    lang = tpl.get("lang", "en")
    if acct.text == "real" or lang != "en":
        q1, q2 = (corpus_prompt(rng, "benign", lang, topic).text for _ in range(2))
    else:
        q1, q2 = T.benign_prompt(rng, topic), T.benign_prompt(rng, topic)
    ans = C.answers()
    fill = {
        "question": q1, "question_1": q1, "question_2": q2,
        "lang": "English", "lang1": "English",
    }
    for key in ("answer", "answer_a", "answer_b", "answer_1", "answer_2", "answer_a_1",
                "answer_a_2", "answer_b_1", "answer_b_2", "ref_answer_1", "ref_answer_2",
                "rating", "answer_1_a", "answer_1_b", "answer_2_a", "answer_2_b"):
        fill[key] = ans[int(rng.random() * len(ans))]["text"]
    text = tpl["template"]
    for k, v in fill.items():
        text = text.replace("{" + k + "}", v)
    if tpl.get("system"):
        text = tpl["system"].replace("{lang}", "English").replace("{lang1}", "English") \
            + "\n\n" + text
    return topic, text, False


def tutor(rng: random.Random, acct: Account, b: Behaviour) -> Drawn:
    topic = b.pick_topic(rng)
    lang = pick_lang(rng, acct)
    framings = P.by_lang("tutor.tsv").get(lang) or P.by_lang("tutor.tsv")["en"]
    tpl = T.ch(rng, framings) if "framing" not in b.params else b.params["framing"]
    if acct.text == "real" or lang != "en":
        q = corpus_prompt(rng, "benign", lang, topic).text
    else:
        q = T.benign_prompt(rng, topic)
    return topic, tpl.replace("{grade}", str(b.params["grade"])).replace("{q}", q), True


def product(rng: random.Random, acct: Account, b: Behaviour) -> Drawn:
    prod = b.params["product"]
    topic = b.pick_topic(rng)
    if rng.random() < b.params.get("fixed_share", 0.08):
        return topic, T.ch(rng, prod["fixed"]), False
    q = human_text(rng, acct, topic)
    return topic, T.ch(rng, prod["templates"]).replace("{q}", q), False


def metadata(rng: random.Random, acct: Account, b: Behaviour) -> Drawn:
    """A gateway that logs no prompt and no topic: only metadata is sent."""
    b.pick_topic(rng)  # keeps the random stream shaped like other styles
    return None, None, rng.random() < b.params.get("long_share", 0.1)


# ------------------------------------------------------------ attack styles ---


def plain_harvest(rng: random.Random, acct: Account, b: Behaviour) -> Drawn:
    """Raw questions, each asked once, no elicitation, no wrapper."""
    if not acct.queue:
        acct.queue = list(reversed(b.params["questions"]))
    p: C.Prompt = acct.queue.pop()
    return topic_for(rng, p), p.text, True


def paraphrase_cot(rng: random.Random, acct: Account, b: Behaviour) -> Drawn:
    """A question with a paraphrased request for written-out reasoning placed
    mid-prompt, in one of many languages and capitalisations."""
    topic = b.pick_topic(rng)
    lang = pick_lang(rng, acct)
    if acct.text == "real":
        q = corpus_prompt(rng, "attack", lang, topic).text
    else:
        q = T.attack_payload(rng, topic) + " " + T.attack_payload(rng, topic)
    phrases = P.by_lang("elicitation.tsv")
    plang = lang if lang in phrases and rng.random() < 0.6 else T.ch(rng, sorted(phrases))
    phrase = capitalise(rng, T.ch(rng, phrases[plang]))
    return topic, insert_mid(rng, q, phrase), True


def affixed(rng: random.Random, acct: Account, b: Behaviour) -> Drawn:
    """The extractor's templated request with a random prefix and suffix."""
    topic = b.pick_topic(rng)
    payload = attack_question(rng, acct, topic)
    cat = topic.split("/")[0]
    elicit = rng.random() < b.elicitation_share
    tpl = b.templates[0] if elicit else b.templates[1]
    core = tpl.format(payload=payload, cat=cat)
    return topic, f"{affix(rng)} {core} {affix(rng)}", elicit


def shared_frame(rng: random.Random, acct: Account, b: Behaviour) -> Drawn:
    """Hydra members behind residential proxies: one shared frame around
    attack-pool questions (the behaviour is all they share)."""
    topic = b.pick_topic(rng)
    payload = attack_question(rng, acct, topic)
    return topic, b.params["frame"].replace("{q}", payload), True


def pivot(rng: random.Random, acct: Account, b: Behaviour) -> Drawn:
    """A slow pivot: with probability ``share`` a raw attack-pool question on
    the target topic, otherwise the account's ordinary traffic."""
    if rng.random() < b.params["share"]:
        topic = b.params["target"]
        return topic, attack_question(rng, acct, topic), True
    topic = b.pick_topic(rng)
    return topic, human_text(rng, acct, topic), rng.random() < 0.05


STYLES: dict[str, Callable[[random.Random, Any, Any], Drawn]] = {
    "reseller": reseller,
    "wrapper": wrapper,
    "judge": judge,
    "tutor": tutor,
    "product": product,
    "metadata": metadata,
    "plain_harvest": plain_harvest,
    "paraphrase_cot": paraphrase_cot,
    "affixed": affixed,
    "shared_frame": shared_frame,
    "pivot": pivot,
}

