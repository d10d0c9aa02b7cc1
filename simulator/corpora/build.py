"""Rebuild the committed prompt samples from local git mirrors (maintainers only).

The simulator never downloads anything: it reads the gzipped JSONL files next
to this script. This script documents (and reproduces) how they were made:
each source is a public git repository read at a pinned commit with
``git -C <mirror> show <commit>:<path>``. Only files whose licence permits
redistribution with attribution are used; see ``ATTRIBUTION.md``.

    python -m simulator.corpora.build --mirrors /work/.mirror

Outputs
-------
``prompts.jsonl.gz``  one record per user turn: ``id`` (``src:question_id:turn``),
                      ``src``, ``lang`` (ISO 639-1), ``cat`` (normalised category), ``text``.
``judge.jsonl.gz``    LLM-as-judge rubric prompts: ``src``, ``lang``, ``name``,
                      ``system``, ``template`` (``{question}``/``{answer}``... slots).
``answers.jsonl.gz``  reference answers (to fill a judge prompt's answer slot):
                      ``src``, ``lang``, ``id``, ``text`` (first 1,200 characters).
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (key, mirror dir, commit, path, lang or None (from record), licence)
QUESTION_FILES: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("mtb-en", "lm-sys+FastChat", "0e6d3e4beaab66f4d3f93db72541a4abab8af28d",
     "fastchat/llm_judge/data/mt_bench/question.jsonl", "en", "Apache-2.0"),
    ("vicuna-en", "lm-sys+FastChat", "0e6d3e4beaab66f4d3f93db72541a4abab8af28d",
     "fastchat/llm_judge/data/vicuna_bench/question.jsonl", "en", "Apache-2.0"),
    *(
        (f"mtb-{code}", "ServiceNow+FastChat", "57659b0588c8077b855f48ba9421bf31fbcd9f72",
         f"fastchat/llm_judge/data/mt_bench_{suffix}/question.jsonl", code, "Apache-2.0")
        for suffix, code in (
            ("de", "de"), ("es", "es"), ("fr", "fr"), ("it", "it"), ("jp", "ja"), ("nl", "nl"),
            ("pt", "pt"), ("thai", "th"), ("hindi", "hi"), ("bengali", "bn"), ("tamil", "ta"),
            ("urdu", "ur"), ("gujarati", "gu"),
        )
    ),
    ("mtb-ru", "NLP-Core-Team+FastChat", "a19736c35122b45e1e2b553bed6685b9d12cb442",
     "fastchat/llm_judge/data/ru_mt_bench/question.jsonl", "ru", "Apache-2.0"),
    ("jmtb-ja", "Stability-AI+FastChat", "e37eb28ee490480f6f4989274ed47c55f7dfce82",
     "fastchat/llm_judge/data/japanese_mt_bench/question.jsonl", "ja", "Apache-2.0"),
    ("jvqa-ja", "ku-nlp+ja-vicuna-qa-benchmark", "128a862da6a4478c3e80ab3c3b716d1417380751",
     "data/jp_bench/question.jsonl", "ja", "Apache-2.0"),
    ("komtb-ko", "LG-AI-EXAONE+KoMT-Bench", "56d4f3af437543dce39f08aecfb818abed81210d",
     "FastChat/fastchat/llm_judge/data/mt_bench/question_ko.jsonl", "ko", "LGPL-3.0"),
    ("mtb-zh", "yuekaizhang+FastChat", "b06fb80fd1e6a7bf2e8f1b09cf949414fecc1d3a",
     "fastchat/llm_judge/data/mt_bench_zh/question.jsonl", "zh", "Apache-2.0"),
)
JUDGE_FILES: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("judge-en", "lm-sys+FastChat", "0e6d3e4beaab66f4d3f93db72541a4abab8af28d",
     "fastchat/llm_judge/data/judge_prompts.jsonl", "en", "Apache-2.0"),
    ("judge-multi", "ServiceNow+FastChat", "57659b0588c8077b855f48ba9421bf31fbcd9f72",
     "fastchat/llm_judge/data/judge_prompts_multilingual.jsonl", "en", "Apache-2.0"),
    ("judge-ja", "Stability-AI+FastChat", "e37eb28ee490480f6f4989274ed47c55f7dfce82",
     "fastchat/llm_judge/data/judge_ja_prompts.jsonl", "ja", "Apache-2.0"),
    ("judge-jvqa", "ku-nlp+ja-vicuna-qa-benchmark", "128a862da6a4478c3e80ab3c3b716d1417380751",
     "data/jp_bench/judge_prompts.jsonl", "ja", "Apache-2.0"),
    ("judge-ko", "LG-AI-EXAONE+KoMT-Bench", "56d4f3af437543dce39f08aecfb818abed81210d",
     "FastChat/fastchat/llm_judge/data/judge_prompts_ko.jsonl", "ko", "LGPL-3.0"),
)
ANSWER_FILES: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("ref-en", "lm-sys+FastChat", "0e6d3e4beaab66f4d3f93db72541a4abab8af28d",
     "fastchat/llm_judge/data/mt_bench/reference_answer/gpt-4.jsonl", "en", "Apache-2.0"),
    ("ref-vicuna-en", "lm-sys+FastChat", "0e6d3e4beaab66f4d3f93db72541a4abab8af28d",
     "fastchat/llm_judge/data/vicuna_bench/reference_answer/gpt-4.jsonl", "en", "Apache-2.0"),
    ("ref-ru", "NLP-Core-Team+FastChat", "a19736c35122b45e1e2b553bed6685b9d12cb442",
     "fastchat/llm_judge/data/ru_mt_bench/reference_answer/gpt-4.jsonl", "ru", "Apache-2.0"),
    ("ref-ko", "LG-AI-EXAONE+KoMT-Bench", "56d4f3af437543dce39f08aecfb818abed81210d",
     "FastChat/fastchat/llm_judge/data/mt_bench/reference_answer_ko/gpt-4.jsonl", "ko",
     "LGPL-3.0"),
)

# Source categories -> the simulator's corpus categories.
CATEGORY = {
    "writing": "writing", "roleplay": "roleplay", "reasoning": "reasoning", "math": "math",
    "coding": "coding", "extraction": "extraction", "stem": "stem", "humanities": "humanities",
    "generic": "general", "knowledge": "general", "common-sense": "general",
    "fermi": "reasoning", "counterfactual": "humanities",
    "常识类": "general", "推理类": "reasoning", "自然语言理解": "extraction", "数学题": "math",
    "写作类": "writing", "问答": "general", "翻译": "writing", "代码": "coding",
    "角色扮演": "roleplay",
}


def _show(mirrors: Path, repo: str, commit: str, path: str) -> list[dict]:
    out = subprocess.run(
        ["git", "-C", str(mirrors / repo / "repo"), "show", f"{commit}:{path}"],
        check=True, capture_output=True,
    ).stdout.decode("utf-8")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _write(name: str, rows: list[dict]) -> None:
    with open(HERE / name, "wb") as raw, gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9
    ) as gz:
        for r in rows:
            gz.write(json.dumps(r, ensure_ascii=False, sort_keys=True).encode() + b"\n")


def build(mirrors: Path) -> dict[str, int]:
    prompts: list[dict] = []
    seen: set[str] = set()
    for key, repo, commit, path, lang, _lic in QUESTION_FILES:
        for rec in _show(mirrors, repo, commit, path):
            cat = CATEGORY[rec.get("category", "generic")]
            for i, turn in enumerate(rec.get("turns") or []):
                text = str(turn).strip()
                if not text or text in seen:
                    continue
                seen.add(text)
                prompts.append(
                    {"id": f"{key}:{rec['question_id']}:{i}", "src": key, "lang": lang,
                     "cat": cat, "text": text}
                )
    judges: list[dict] = []
    for key, repo, commit, path, lang, _lic in JUDGE_FILES:
        for rec in _show(mirrors, repo, commit, path):
            judges.append(
                {"src": key, "lang": lang, "name": rec["name"],
                 "system": rec.get("system_prompt", ""), "template": rec["prompt_template"]}
            )
    answers: list[dict] = []
    for key, repo, commit, path, lang, _lic in ANSWER_FILES:
        for rec in _show(mirrors, repo, commit, path):
            for ch in rec.get("choices", [])[:1]:
                for i, turn in enumerate(ch.get("turns", [])):
                    text = str(turn).strip()[:1200]
                    if text:
                        answers.append(
                            {"src": key, "lang": lang, "id": f"{key}:{rec['question_id']}:{i}",
                             "text": text}
                        )
    _write("prompts.jsonl.gz", prompts)
    _write("judge.jsonl.gz", judges)
    _write("answers.jsonl.gz", answers)
    return {"prompts": len(prompts), "judge": len(judges), "answers": len(answers)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mirrors", default="/work/.mirror", type=Path)
    print(build(p.parse_args().mirrors))


if __name__ == "__main__":
    main()
