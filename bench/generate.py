"""Checked prose from a small local model over the eval questions: what the checks keep, and how fast.

    python bench/generate.py                          # every eval question; a local SmolLM2-135M server is started
    python bench/generate.py --split test --limit 48  # a fixed-seed sample of the held-out split
    RAG_LLM_URL=http://127.0.0.1:11434/v1 RAG_LLM_MODEL=qwen2.5:0.5b python bench/generate.py   # another server

Per question: the extractive ``ask`` (the baseline, timed in the same run), then the model's
streamed reply over its verified quotes, then the sentence check. Reported: share of sentences
kept, share of replies with at least one supported sentence, abstention (no prose shown: the
reader abstained, the model declined, or nothing it wrote held up) on unanswerable questions and
false abstention on answerable ones, latency to the first token and to the checked answer.
The model's quality is not the point; the checks are.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import time

from harness import REPO_ROOT, machine, offline_env, summary_ms, table, write_result

SEED = 14


def sample(questions: list, limit: int | None, seed: int = SEED) -> list:
    """A fixed-seed sample keeping the answerable/unanswerable shares of ``questions``, in id order."""
    if not limit or limit >= len(questions):
        return questions
    rng = random.Random(seed)
    unanswerable = [q for q in questions if not q.answerable]
    wanted = max(1, round(limit * len(unanswerable) / len(questions))) if unanswerable else 0
    answerable = [q for q in questions if q.answerable]
    chosen = rng.sample(unanswerable, wanted) + rng.sample(answerable, limit - wanted)
    return sorted(chosen, key=lambda q: q.id)


def _config(settings, stack: contextlib.ExitStack):
    from rag.llm import LLMConfig
    from rag.llm_server import MODEL_ALIAS, LocalModelServer

    config = LLMConfig.from_settings(settings)
    if config is None:
        server = stack.enter_context(LocalModelServer())
        config = LLMConfig(url=server.url, model=MODEL_ALIAS, total_timeout=settings.llm_timeout,
                           max_tokens=settings.llm_max_tokens)
    return config


def _one(assistant, question, config, scorer, threshold) -> dict:
    from rag.generate import ProseRun

    started = time.perf_counter()
    answer = assistant.ask(question.question)
    extractive = time.perf_counter() - started
    run = ProseRun(answer, config, scorer, threshold)
    for _ in run.tokens():
        pass
    prose = run.result()
    checked = time.perf_counter() - started
    attempted = not answer.abstained
    return {"id": question.id, "answerable": question.answerable, "reader_abstained": answer.abstained,
            "attempted": attempted, "notice": prose.notice, "sentences": len(prose.sentences),
            "kept": sum(s.supported for s in prose.sentences), "dropped": drop_counts(prose.sentences),
            "withheld_because": prose.withheld_because,
            "prose_shown": prose.text is not None, "extractive_s": extractive,
            "first_token_s": None if prose.first_token_s is None else extractive + prose.first_token_s,
            "checked_s": checked if attempted else None, "reply": prose.reply}


# Why a sentence was dropped, from the start of the checker's reason (rag.check).
DROP_KINDS = {"it cites no source": "no marker", "it cites [": "marker to an unshown passage",
              "not supported": "below the support threshold", "the model declined": "model declined"}


def drop_counts(sentences) -> dict[str, int]:
    counts = dict.fromkeys(DROP_KINDS.values(), 0)
    for sentence in sentences:
        if not sentence.supported:
            counts[next(kind for start, kind in DROP_KINDS.items() if (sentence.reason or "").startswith(start))] += 1
    return counts


def _share(flags) -> float:
    flags = list(flags)
    return round(sum(flags) / len(flags), 4) if flags else 0.0


def summarise(records: list[dict]) -> dict:
    replied = [r for r in records if r["attempted"] and r["notice"] is None]
    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if not r["answerable"]]
    return {
        "questions": len(records), "replies": len(replied),
        "failures": sum(r["notice"] is not None for r in records),
        "sentences": sum(r["sentences"] for r in replied),
        "sentences_kept": round(sum(r["kept"] for r in replied) / max(1, sum(r["sentences"] for r in replied)), 4),
        "dropped": {kind: sum(r["dropped"][kind] for r in replied) for kind in DROP_KINDS.values()},
        "replies_with_a_supported_sentence": _share(r["kept"] > 0 for r in replied),
        "model_declined": _share((r["withheld_because"] or "").startswith("The model said") for r in replied),
        "abstention_unanswerable": _share(not r["prose_shown"] for r in unanswerable),
        "false_abstention_answerable": _share(not r["prose_shown"] for r in answerable),
        "reader_abstention_unanswerable": _share(r["reader_abstained"] for r in unanswerable),
        "reader_false_abstention": _share(r["reader_abstained"] for r in answerable),
        "extractive_ms": summary_ms([r["extractive_s"] for r in records]),
        "first_token_ms": summary_ms([r["first_token_s"] for r in replied if r["first_token_s"] is not None]),
        "checked_answer_ms": summary_ms([r["checked_s"] for r in replied]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, help="score a fixed-seed sample of this many questions (the "
                        "unanswerable share kept)")
    parser.add_argument("--split", choices=("tune", "test"), help="only this split of the eval questions")
    args = parser.parse_args()
    offline_env()
    sys.path.insert(0, str(REPO_ROOT))
    from rag.assistant import open_assistant
    from rag.check import SupportScorer
    from rag.eval.questions import DEFAULT_QUESTIONS, load_questions
    from rag.settings import Settings

    settings = Settings.from_env()
    assistant, _ = open_assistant(settings)
    questions = sample([q for q in load_questions(DEFAULT_QUESTIONS) if q.split == (args.split or q.split)],
                       args.limit)
    scorer = SupportScorer(assistant.embedder)
    load = machine()
    with contextlib.ExitStack() as stack:
        config = _config(settings, stack)
        records = [_one(assistant, q, config, scorer, settings.sentence_support_min) for q in questions]
    summary = summarise(records)
    shares = {k: v for k, v in summary.items() if not k.endswith("_ms") and k != "dropped"}
    print(table("checked prose", [shares], list(shares)))
    print(table("sentences dropped, by reason", [summary["dropped"]], list(summary["dropped"])))
    latency = [{"stage": k, **v} for k, v in summary.items() if k.endswith("_ms")]
    print(table("latency (ms, from the question)", latency, ["stage", "n", "p50_ms", "p95_ms", "mean_ms", "max_ms"]))
    path = write_result("generate", {"machine": load, "model": config.model, "url": config.url,
                                     "split": args.split or "all", "seed": SEED if args.limit else None,
                                     "question_ids": [q.id for q in questions],
                                     "threshold": settings.sentence_support_min, "summary": summary,
                                     "records": records})
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
