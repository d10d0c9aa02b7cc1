"""Topic taxonomy and prompt text for simulated traffic.

The taxonomy is a two-level ``category/subtopic`` hierarchy (52 labels), the
shape Anthropic's Clio work uses to cluster conversations into a topic
hierarchy (Anthropic, "Clio", Dec 2024 — see
``/work/shared/research/attack-signals.md``).

Benign prompts are built from many independent parts (opener, a task phrase
with slot values, free-form user content made of random domain words or a
code-like snippet with random identifiers, closer, random casing/punctuation),
so two benign prompts are almost never near-duplicates. Apps that wrap user
content in a fixed instruction (single-use-case apps, batch jobs) get a fixed
*short* prefix followed by *long* varied content — realistic, and a hard
negative for template detectors.

Attack prompts are the opposite: a *long* fixed template with a *short*
slot-filled payload ("a prompt that is harmless alone, arriving in tens of
thousands of variations", Anthropic, 23 Feb 2026). Templates quote or
paraphrase the public reports: chain-of-thought harvesting ("imagine and
articulate the internal reasoning behind a completed response ... step by
step"), rubric grading (the model as a reward model), GTIG's "reasoning trace
coercion" with many non-English prompts.
"""

from __future__ import annotations

import random

# topic -> (population popularity weight, example objects of a request)
TAXONOMY: dict[str, tuple[float, tuple[str, ...]]] = {
    "coding/python": (
        9.0,
        (
            "a pandas groupby that drops NaN keys",
            "an asyncio task that never finishes",
            "a flaky pytest fixture",
            "a slow list comprehension",
            "a CLI built with argparse",
        ),
    ),
    "coding/javascript": (
        6.0,
        (
            "a React hook that re-renders forever",
            "a fetch call that ignores CORS errors",
            "an Express middleware",
            "a debounce helper",
        ),
    ),
    "coding/typescript": (
        3.0,
        (
            "a generic type that loses inference",
            "a discriminated union",
            "strict null checks in an old codebase",
        ),
    ),
    "coding/sql": (
        4.0,
        (
            "a window function over monthly revenue",
            "a slow join on two big tables",
            "a migration that adds a nullable column",
            "deduplicating rows by latest timestamp",
        ),
    ),
    "coding/rust": (
        1.5,
        ("a borrow checker error in a loop", "an async trait", "a lifetime on a struct"),
    ),
    "coding/go": (
        1.5,
        ("a goroutine leak", "a context that is never cancelled", "a JSON struct tag"),
    ),
    "coding/java": (
        2.0,
        ("a Spring bean that is null", "a stream collector", "a thread pool that hangs"),
    ),
    "coding/debugging": (
        4.0,
        (
            "a stack trace from production",
            "a segfault in a C extension",
            "a memory leak in a worker",
            "an off-by-one error",
        ),
    ),
    "coding/devops": (
        3.0,
        (
            "a Kubernetes pod stuck in CrashLoopBackOff",
            "a GitHub Actions cache",
            "a Terraform plan that wants to recreate everything",
            "a Dockerfile that is too big",
        ),
    ),
    "coding/data-science": (
        3.0,
        ("a feature pipeline", "a confusion matrix", "an overfitting gradient boosted model"),
    ),
    "math/algebra": (
        2.0,
        ("a system of linear equations", "factoring a cubic", "an inequality with absolute values"),
    ),
    "math/calculus": (
        1.5,
        ("an integral by parts", "a limit at infinity", "a related rates problem"),
    ),
    "math/statistics": (
        2.5,
        ("a confidence interval", "an A/B test sample size", "a Bayesian update"),
    ),
    "math/geometry": (1.0, ("the area of an inscribed triangle", "a circle tangent to two lines")),
    "math/proofs": (
        0.8,
        ("an induction proof", "a proof by contradiction", "an epsilon-delta argument"),
    ),
    "math/competition": (
        0.6,
        ("an olympiad number theory problem", "a combinatorics counting problem"),
    ),
    "reasoning/logic-puzzles": (
        1.0,
        ("a knights and knaves puzzle", "a scheduling riddle", "a river crossing puzzle"),
    ),
    "reasoning/planning": (
        1.5,
        ("a project plan with dependencies", "a week of meal prep", "a migration plan"),
    ),
    "agentic/tool-use": (
        2.5,
        (
            "calling a weather API and a calendar API",
            "a function-calling schema",
            "choosing between search and calculator tools",
        ),
    ),
    "agentic/computer-use": (
        0.8,
        ("filling a web form", "clicking through a settings dialog", "navigating a spreadsheet"),
    ),
    "agentic/web-browsing": (
        1.2,
        (
            "researching competitor pricing",
            "finding a paper's citations",
            "comparing three vendors' docs",
        ),
    ),
    "agentic/code-agent": (
        2.0,
        (
            "fixing a failing CI job across files",
            "refactoring a module with tests",
            "applying a patch and running the tests",
        ),
    ),
    "vision/image-description": (
        1.5,
        ("a product photo", "a screenshot of an error", "a chart in a slide"),
    ),
    "vision/ocr": (1.5, ("a scanned invoice", "a handwritten note", "a receipt photo")),
    "vision/charts": (0.8, ("a bar chart of quarterly sales", "a line chart with two axes")),
    "writing/marketing": (
        4.0,
        (
            "a product launch email",
            "landing page copy",
            "a tagline for a coffee brand",
            "ad variations for a webinar",
        ),
    ),
    "writing/email": (
        5.0,
        ("a polite follow-up email", "a reply declining a meeting", "an apology to a customer"),
    ),
    "writing/fiction": (1.5, ("a short story opening", "a villain's monologue", "a plot twist")),
    "writing/editing": (3.5, ("a paragraph that is too long", "a cover letter", "a README intro")),
    "writing/academic": (1.5, ("an abstract", "a literature review outline", "a methods section")),
    "writing/social-media": (
        2.0,
        ("a LinkedIn post", "a thread announcing a feature", "an Instagram caption"),
    ),
    "business/strategy": (1.5, ("a go-to-market plan", "a SWOT analysis", "pricing tiers")),
    "business/finance": (1.5, ("a cash flow forecast", "unit economics", "a budget variance")),
    "business/legal": (
        1.2,
        ("a non-disclosure clause", "terms of service wording", "a GDPR question"),
    ),
    "business/hr": (1.0, ("a job description", "interview questions", "a performance review")),
    "support/customer-service": (
        4.5,
        ("a refund request", "a delayed shipment", "a password reset complaint"),
    ),
    "support/troubleshooting": (
        2.5,
        ("a router that keeps disconnecting", "a printer offline", "an app crash"),
    ),
    "data/extraction": (
        4.0,
        ("fields from an invoice", "names and dates from a contract", "a table from a PDF"),
    ),
    "data/classification": (
        3.0,
        ("support tickets by urgency", "reviews by sentiment", "emails by intent"),
    ),
    "data/summarization": (5.0, ("a meeting transcript", "a long article", "a quarterly report")),
    "data/translation": (
        3.0,
        ("a product page into Spanish", "an email into German", "UI strings into Japanese"),
    ),
    "education/tutoring": (
        2.5,
        ("photosynthesis for a 7th grader", "the French revolution", "fractions"),
    ),
    "education/quiz-generation": (
        1.2,
        ("a quiz on the water cycle", "flashcards for Spanish verbs"),
    ),
    "science/biology": (1.2, ("CRISPR basics", "how vaccines train immunity", "mitochondria")),
    "science/chemistry": (1.0, ("balancing a redox equation", "why salt lowers freezing point")),
    "science/physics": (
        1.0,
        ("projectile motion", "why the sky is blue", "entropy in everyday terms"),
    ),
    "health/medical-info": (
        1.5,
        ("side effects of ibuprofen", "what a blood test result means", "sleep hygiene"),
    ),
    "lifestyle/travel": (
        2.0,
        ("a 5-day itinerary in Lisbon", "packing for a ski trip", "a budget trip to Japan"),
    ),
    "lifestyle/cooking": (
        2.0,
        ("a vegetarian lasagna", "substituting eggs in baking", "a weeknight curry"),
    ),
    "lifestyle/fitness": (
        1.0,
        ("a beginner running plan", "a home workout", "stretching after lifting"),
    ),
    "lifestyle/advice": (
        2.0,
        ("asking for a raise", "a difficult conversation with a friend", "moving cities"),
    ),
    "creative/roleplay": (1.5, ("a tavern keeper character", "a detective interrogation scene")),
    "creative/poetry": (
        1.0,
        ("a haiku about autumn", "a limerick for a birthday", "a sonnet about the sea"),
    ),
}

TOPICS: tuple[str, ...] = tuple(TAXONOMY)
POPULARITY: tuple[float, ...] = tuple(TAXONOMY[t][0] for t in TOPICS)
CATEGORIES: tuple[str, ...] = tuple(sorted({t.split("/")[0] for t in TOPICS}))

# Capabilities the public reports name as distillation targets: agentic
# reasoning, tool use, coding, computer use, vision (Anthropic, 23 Feb 2026);
# reasoning traces (Google GTIG, Feb 2026); math/reasoning for CoT data.
HIGH_VALUE: tuple[str, ...] = tuple(
    t for t in TOPICS if t.split("/")[0] in ("agentic", "coding", "math", "reasoning", "vision")
)
REASONING_TOPICS: tuple[str, ...] = tuple(
    t for t in TOPICS if t.split("/")[0] in ("math", "reasoning")
) + ("coding/python", "coding/debugging", "agentic/tool-use")

_VERBS: dict[str, tuple[str, ...]] = {
    "coding": ("fix", "explain", "refactor", "write tests for", "speed up", "review", "debug"),
    "math": ("solve", "explain", "check my work on", "give a hint for", "walk me through"),
    "reasoning": ("work out", "help me think through", "check", "solve"),
    "agentic": ("plan the steps for", "automate", "run", "set up", "orchestrate"),
    "vision": ("describe", "read", "extract the text from", "summarize", "check"),
    "writing": ("write", "draft", "rewrite", "shorten", "improve", "proofread"),
    "business": ("draft", "review", "outline", "analyze", "summarize"),
    "support": ("reply to", "handle", "draft a response to", "triage"),
    "data": ("process", "extract", "classify", "summarize", "translate", "clean up"),
    "education": ("explain", "teach", "make a lesson on", "quiz me on"),
    "science": ("explain", "summarize", "help me understand"),
    "health": ("explain", "tell me about", "help me understand"),
    "lifestyle": ("plan", "suggest", "help with", "give ideas for"),
    "creative": ("write", "play", "continue", "improvise"),
}

_WORDS: dict[str, tuple[str, ...]] = {
    "coding": tuple(
        "function class module import error exception return value list dict index loop query "
        "cache request response server client thread async await build deploy config schema test "
        "mock branch merge commit null pointer buffer parser token compile runtime".split()
    ),
    "math": tuple(
        "equation variable integer prime sum product derivative integral limit vector matrix "
        "probability mean variance sample triangle angle radius proof lemma constant term "
        "root".split()
    ),
    "reasoning": tuple(
        "constraint option schedule order rule clue step goal resource deadline dependency "
        "condition case assumption outcome".split()
    ),
    "agentic": tuple(
        "tool call api browser click page form search result step plan observation action "
        "file repository terminal output retry".split()
    ),
    "vision": tuple(
        "image photo screenshot chart label text pixel corner logo caption table axis color".split()
    ),
    "writing": tuple(
        "tone audience draft headline paragraph sentence voice brand story reader message "
        "subject line call action style length".split()
    ),
    "business": tuple(
        "revenue cost margin customer market contract clause quarter budget forecast team "
        "hire policy risk pricing".split()
    ),
    "support": tuple(
        "order refund account password shipment ticket customer issue device app error "
        "delivery invoice subscription".split()
    ),
    "data": tuple(
        "document field invoice date amount name address table record row column category "
        "label sentiment paragraph page".split()
    ),
    "education": tuple(
        "student lesson grade concept example exercise quiz chapter homework class".split()
    ),
    "science": tuple(
        "cell gene protein reaction molecule energy force particle wave experiment".split()
    ),
    "health": tuple("symptom dose sleep diet blood pressure doctor medication test result".split()),
    "lifestyle": tuple(
        "trip hotel flight recipe ingredient oven workout week budget friend city".split()
    ),
    "creative": tuple(
        "character scene dialogue mood rhyme verse image night sea forest voice".split()
    ),
}
_COMMON = tuple(
    "the a my our this that some new old big small quick simple important current next last "
    "first other same every few many we i they it is was are be have need want think "
    "because but and or so then also still just really maybe please".split()
)

_OPENERS = (
    "",
    "",
    "",
    "Hi, ",
    "Hey! ",
    "Quick question: ",
    "Can you ",
    "Please ",
    "I need help: ",
    "Hello. ",
    "ok so ",
    "Could you ",
    "I'm stuck. ",
    "Help me ",
    "Urgent: ",
    "So, ",
)
_CLOSERS = (
    "",
    "",
    "",
    " Thanks!",
    " thx",
    " Keep it short.",
    " Be concise.",
    " Explain like I'm new to this.",
    " Use bullet points.",
    " Give two options.",
    " No jargon please.",
    " Answer in one paragraph.",
    " Include an example.",
    " Thank you so much.",
    " Walk me through it step by step.",
)
_SYL = (
    "ka",
    "lo",
    "mi",
    "ra",
    "te",
    "zu",
    "bo",
    "ne",
    "fi",
    "sa",
    "do",
    "pe",
    "qu",
    "vi",
    "an",
    "el",
    "or",
)


def ch(rng: random.Random, seq: tuple[str, ...] | list[str]) -> str:
    """``rng.choice`` without its rejection sampling (several times faster)."""
    return seq[int(rng.random() * len(seq))]


def _ident(rng: random.Random) -> str:
    return "".join(ch(rng, _SYL) for _ in range(2 + int(rng.random() * 3))) + ch(
        rng, ("", "_id", "s", "2", "_x")
    )


# Per category, a fixed pseudo-random word stream (half domain words, half
# common words). A sentence is a random window of it: one random draw per
# sentence, and two prompts only share word shingles if their windows overlap.
_CORPUS_LEN = 40_000


def _corpus(cat: str) -> list[str]:
    r = random.Random(f"corpus/{cat}")
    words = _WORDS[cat]
    a, b = r.choices(words, k=_CORPUS_LEN), r.choices(_COMMON, k=_CORPUS_LEN)
    return [x if r.random() < 0.5 else y for x, y in zip(a, b, strict=True)]


_CORPORA: dict[str, list[str]] = {}
_ENDS = (".", ".", ".", "?", "!", "...")


def _sentence(rng: random.Random, cat: str, lo: int, hi: int) -> str:
    corpus = _CORPORA.get(cat)
    if corpus is None:
        corpus = _CORPORA[cat] = _corpus(cat)
    n = lo + int(rng.random() * (hi - lo + 1))
    i = int(rng.random() * (_CORPUS_LEN - n))
    return " ".join(corpus[i : i + n]).capitalize() + ch(rng, _ENDS)


def user_content(rng: random.Random, topic: str, lo: int = 1, hi: int = 4) -> str:
    """Free-form user content: random domain sentences, or code for coding topics."""
    cat = topic.split("/")[0]
    words = _WORDS[cat]
    if cat in ("coding", "agentic") and rng.random() < 0.45:
        name, arg = _ident(rng), _ident(rng)
        body = f"{_ident(rng)} = {arg}.{ch(rng, words)}({int(rng.random() * 1000)})"
        return f"\n```\ndef {name}({arg}):\n    {body}\n    return {_ident(rng)}\n```"
    if cat == "math" and rng.random() < 0.5:
        a, b, c = (
            2 + int(rng.random() * 98),
            2 + int(rng.random() * 98),
            2 + int(rng.random() * 998),
        )
        bound = int(rng.random() * 10)
        return f" {a}x^2 + {b}x - {c} = 0 when x > {bound}; {_sentence(rng, cat, 4, 10)}"
    return " " + " ".join(
        _sentence(rng, cat, 5, 16) for _ in range(lo + int(rng.random() * (hi - lo + 1)))
    )


def benign_prompt(rng: random.Random, topic: str) -> str:
    """One varied human-written prompt on ``topic``."""
    cat = topic.split("/")[0]
    obj = ch(rng, TAXONOMY[topic][1])
    verb = ch(rng, _VERBS[cat])
    opener = ch(rng, _OPENERS)
    if opener.endswith(("you ", "Please ", "Help me ")):
        head = f"{opener}{verb} {obj}"
    else:
        lead = ch(rng, ("I want to ", "need to ", "how do I ", "trying to ", ""))
        head = f"{opener}{lead}{verb} {obj}"
    text = head + ch(rng, (".", "?", ":", " -")) + user_content(rng, topic) + ch(rng, _CLOSERS)
    r = rng.random()
    if r < 0.1:
        text = text.lower()
    elif r < 0.13:
        text = text.replace(". ", ".\n")
    return text


# Fixed instructions of single-use-case apps and batch jobs: a short prefix
# followed by long, varied user content.
APP_PREFIXES: dict[str, tuple[str, ...]] = {
    "support": (
        "Summarize this support ticket for the agent:",
        "Draft a friendly reply to this customer:",
    ),
    "data": (
        "Extract vendor, date and total as JSON from:",
        "Classify the sentiment of this review:",
        "Summarize in 3 bullets:",
        "Translate to Spanish:",
    ),
    "coding": ("Review this diff and list bugs:", "Write a docstring for:", "Explain this error:"),
    "writing": ("Rewrite in our brand voice:", "Write a product description for:", "Fix grammar:"),
    "vision": ("Describe this product image for alt text:", "Read the text on this receipt:"),
    "agentic": ("You are our scheduling assistant. Use the calendar tool to handle:",),
    "math": ("Check this homework answer and give a hint:",),
    "education": ("Explain this to a 10 year old:",),
    "business": ("Flag risky clauses in:",),
}


def app_prompt(rng: random.Random, topic: str, prefix: str) -> str:
    """A single-use-case app request: fixed short instruction + long varied content."""
    text = prefix + user_content(rng, topic, 2, 6)
    cat = topic.split("/")[0]
    while len(text) < 4 * len(prefix) + 120:  # user content dominates the request
        text += " " + _sentence(rng, cat, 6, 16)
    return text


# ---------------------------------------------------------------- attacks ---

_PROBLEM_FRAMES = {
    "math": (
        "Find all real x such that {a}x^2 - {b}x + {c} = 0.",
        "Compute the sum of the first {a} terms of the sequence a_n = {b}n + {c}.",
        "How many integers between 1 and {a}{b} are divisible by {c}?",
    ),
    "coding": (
        "Implement a function that returns the {a}th {w} in a list of {b} items.",
        "Given an array of {a} integers, find the longest {w} subsequence with sum below {c}.",
        "Write a {w} parser that handles {a} nested levels.",
    ),
    "agentic": (
        "Book a meeting with {a} attendees next week using the calendar tool; resolve {b} "
        "conflicts.",
        "Find the cheapest of {a} flights under {c} dollars with the search tool and summarize.",
        "Open the repository, find the failing {w} test among {b} files and patch it.",
    ),
    "reasoning": (
        "{a} people sit at a round table; {b} rules constrain the seating ({w}). Who sits next to "
        "whom?",
        "Schedule {a} tasks with {b} dependencies and a deadline of {c} hours.",
    ),
    "vision": (
        "The image shows {a} objects on a {w} table; list each with its position and color.",
        "Read all {a} lines of the attached {w} receipt and total them.",
    ),
}


def attack_payload(rng: random.Random, topic: str) -> str:
    """Short slot-filled task: the only part of an attack prompt that varies."""
    cat = topic.split("/")[0]
    frames = _PROBLEM_FRAMES.get(cat, _PROBLEM_FRAMES["reasoning"])
    r = rng.random
    return ch(rng, frames).format(
        a=2 + int(r() * 59),
        b=2 + int(r() * 39),
        c=2 + int(r() * 499),
        w=ch(rng, _WORDS.get(cat, _WORDS["reasoning"])),
    )


# Extraction templates: long fixed structure + payload. The elicitation ones ask
# for written-out step-by-step reasoning (Anthropic, 23 Feb 2026: CoT
# harvesting; Google GTIG, Feb 2026: "reasoning trace coercion").
EXTRACTION_TEMPLATES: tuple[str, ...] = (
    "You are an expert {cat} assistant. Solve the following task. Think step by step and write "
    "out your "
    "complete reasoning before the final answer, then give the final answer on the last line in "
    "the form "
    "FINAL: <answer>. Task: {payload}",
    "Answer the task below. First write your full internal reasoning step by step inside "
    "<thinking> tags, "
    "covering every intermediate step, then the answer inside <answer> tags. Do not skip steps. "
    "Task: {payload}",
    "Task: {payload}\nRespond with a detailed, expert-quality solution. Explain each step of your "
    "reasoning, "
    "justify every decision, and end with a concise final answer.",
)
PLAIN_TEMPLATES: tuple[str, ...] = (
    "You are an expert {cat} assistant. Produce a high quality, complete solution for the "
    "following task and "
    "format it as clean markdown with a short summary at the end. Task: {payload}",
    "Task: {payload}\nGive the best possible answer, complete and correct, formatted as markdown.",
)
# Chain-of-thought harvesting, quoting the report's description (Anthropic, 23 Feb 2026).
COT_TEMPLATES: tuple[str, ...] = (
    "Here is a completed response to a user request. Imagine and articulate the internal "
    "reasoning behind "
    "the completed response, step by step, as if you were thinking it through before answering. "
    "Write it "
    "out in full.\nRequest: {payload}\nCompleted response: {answer}",
    "Reconstruct, step by step, the chain of thought that leads to this answer. Be exhaustive and "
    "explicit "
    "about every inference.\nProblem: {payload}\nAnswer: {answer}",
)
# Rubric grading: the model used as a reward model (Anthropic, 23 Feb 2026).
RUBRIC_TEMPLATES: tuple[str, ...] = (
    "You are a strict grader. Score the candidate answer against the rubric below on a 1-10 scale "
    "for each "
    "criterion (correctness, completeness, reasoning quality, clarity). Explain your grading step "
    "by step, "
    'then output JSON {{"scores": ..., "total": ...}}.\nQuestion: {payload}\n'
    "Candidate answer: {answer}\n"
    "Rubric: award full marks only if every step is justified.",
)
# Non-English variants (GTIG, Feb 2026: "many non-English" reasoning-trace prompts).
COT_TEMPLATES_I18N: tuple[str, ...] = (
    "Piensa paso a paso y escribe todo tu razonamiento interno antes de la respuesta final. "
    "Problema: {payload} Respuesta: {answer}",
    "Pense passo a passo e escreva todo o seu raciocínio interno antes da resposta final. "
    "Problema: {payload} Resposta: {answer}",
    "请一步一步地思考，并在给出最终答案之前写出你完整的内部推理过程。"
    "问题：{payload} 答案：{answer}",
    "Рассуждай шаг за шагом и подробно опиши весь ход своих рассуждений перед окончательным "
    "ответом. "
    "Задача: {payload} Ответ: {answer}",
    "Réfléchis étape par étape et écris tout ton raisonnement interne avant la réponse finale. "
    "Problème : {payload} Réponse : {answer}",
)
SWEEP_TEMPLATE = (
    "Write one difficult, expert-level question about {topic_name} that a specialist would ask, "
    "then answer "
    "it thoroughly with step-by-step reasoning. Make it different from question #{n}. Format: Q: "
    "... A: ..."
)

ELICITATION_MARKERS: tuple[str, ...] = (
    "step by step",
    "step-by-step",
    "reasoning",
    "chain of thought",
    "grader",
    "rubric",
    "paso a paso",
    "passo a passo",
    "一步一步",
    "шаг за шагом",
    "étape par étape",
)


def is_elicitation(prompt: str) -> bool:
    """Whether a prompt asks for written-out reasoning or grading (for tests and reports)."""
    low = prompt.lower()
    return any(m in low for m in ELICITATION_MARKERS)


def topic_name(topic: str) -> str:
    cat, sub = topic.split("/")
    return f"{sub.replace('-', ' ')} ({cat})"
