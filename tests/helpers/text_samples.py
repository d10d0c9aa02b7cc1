"""Sentences for the text features' tests, written for them and not taken
from the simulator's phrase lists or the detector's cue table (see
tests/unit/test_text_unicode.py). ``ELICITING`` asks for the model's reasoning
in words the table does not hold (paraphrases, many languages, full-width
letters); ``ORDINARY`` uses cue words (rubric, reasoning, explain) in
requests that are not elicitation."""

from __future__ import annotations

ELICITING = [
    # English paraphrases without "step by step" / "chain of thought"
    "Before giving the verdict, articulate the full line of thought that gets you there.",
    "I want to see your justification laid bare: describe every deduction you made.",
    "Narrate your thinking as you go, then state the final figure.",
    "Please UNPACK the logic behind your answer in detail.",
    "Reveal the hidden rationale a careful expert would have used here.",
    # a judge / reward-model request that is not worded like the table's
    "Assess the candidate's response and give it a score from 1 to 10.",
    # other languages
    "Antes de responder, explícame con detalle el razonamiento que sigues.",
    "Décris précisément ta démarche de pensée avant de conclure.",
    "Erkläre mir bitte ausführlich deinen Gedankengang.",
    "Mostre o raciocínio completo que leva à resposta.",
    "Spiega il ragionamento che ti ha portato alla soluzione.",
    "Подробно опиши своё рассуждение, прежде чем дать ответ.",
    "Cevabı vermeden önce düşünce sürecini açıkla.",
    "Jelaskan penalaran kamu secara rinci sebelum menjawab.",
    "请把你的思路详细地写出来，然后再给出答案。",
    "答えを出す前に、推論の過程を説明してください。",
    "답을 주기 전에 추론 과정을 자세히 설명해 주세요.",
    "قبل الإجابة، اشرح منطق تفكيرك بالتفصيل.",
    "ก่อนตอบ ช่วยอธิบายเหตุผลทีละข้อ",
    # full-width letters and odd capitalisation fold to the plain words
    "ＥＸＰＬＡＩＮ YOUR REASONING, please.",
]

ORDINARY = [
    "What's the capital of Australia?",
    "Write a limerick about a cat who loves lasagna.",
    "Our grading rubric is attached; please convert it to a markdown table.",
    "The reasoning section of the paper is weak, says reviewer 2. Fix the typos only.",
    "Explain how to rotate an AWS access key.",
    "Translate into French: the meeting moved to Thursday.",
    "Resume este artículo en tres frases.",
    "この文章を英語に翻訳してください。",
    "Напиши письмо клиенту о задержке доставки.",
    "What's the exchange rate of the yen today? Short answer please.",
]
