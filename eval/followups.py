"""Follow-up rewriting on eval/conversations.jsonl: retrieval hit@1 of each follow-up, per rewriter.

    python eval/followups.py          # as typed, and the rule under each followup_sources choice
    python eval/followups.py --llm    # also the LLM rewrite (each choice too): RAG_LLM_URL if set,
                                      # else a local SmolLM2-135M server started (and stopped) here

Writes eval/reports/followups.json with every follow-up as each rewriter searched it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "eval" / "reports" / "followups.json"


def _llm_config(settings, stack: contextlib.ExitStack):
    from rag.conversation import REWRITE_MAX_TOKENS
    from rag.llm import LLMConfig
    from rag.llm_server import MODEL_ALIAS, LocalModelServer

    config = LLMConfig.from_settings(settings)
    if config is None:
        server = stack.enter_context(LocalModelServer())
        config = LLMConfig(url=server.url, model=MODEL_ALIAS)
    return dataclasses.replace(config, max_tokens=REWRITE_MAX_TOKENS)  # as the product asks


# Each rewriter under each choice of the followup_sources setting; "rule" and "llm" are "previous".
CARRIES = {"previous": "", "named": ", named source only", "none": ", text only"}


def _rewriters(documents, settings, stack: contextlib.ExitStack, with_llm: bool):
    from rag.followup import Rewrite, llm_rewrite, rule_rewrite
    from rag.llm import Message, complete_chat

    def rule(carry):
        return lambda question, history: rule_rewrite(question, history, documents, carry)

    rewriters = {"as typed": lambda question, history: Rewrite(question)}
    rewriters.update({f"rule{suffix}": rule(carry) for carry, suffix in CARRIES.items()})
    if with_llm:
        config = _llm_config(settings, stack)

        @functools.cache  # the variants differ in the source kept, mostly not in the prompt
        def complete(prompt: str) -> str:
            return complete_chat(config, [Message("user", prompt)])

        def llm(carry):
            return lambda question, history: llm_rewrite(question, history, complete, settings.max_question_chars,
                                                          documents, carry)

        rewriters.update({f"llm{suffix}": llm(carry) for carry, suffix in CARRIES.items()})
    return rewriters


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llm", action="store_true", help="also score the LLM rewrite")
    args = parser.parse_args()
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(name, "1")
    sys.path.insert(0, str(REPO))
    from rag.assistant import RequestOptions, open_assistant
    from rag.followup_eval import load_conversations, score_rewriter
    from rag.settings import Settings

    settings = Settings.from_env()
    assistant, _ = open_assistant(settings)
    conversations = load_conversations()

    @functools.cache  # every rewriter searches the same first turns; search each once
    def search(question, sources):
        print(f"  {question}", file=sys.stderr, flush=True)
        return [p.hit for p in assistant.search(question, RequestOptions(sources=sources))]

    def text_of(source_id):
        document = assistant.document(source_id)
        return document.text if document else None

    with contextlib.ExitStack() as stack:
        rewriters = _rewriters([s.document for s in assistant.sources()], settings, stack, args.llm)
        scores = [score_rewriter(method, rewrite, conversations, search, text_of)
                  for method, rewrite in rewriters.items()]
    print(f"{len(conversations)} conversations, {scores[0].follow_ups} follow-ups")
    print(f"{'rewriter':<28} {'hit@1':>6}")
    for score in scores:
        print(f"{score.method:<28} {score.hit_at_1:>6.3f}")
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps({
        "command": "python eval/followups.py" + (" --llm" if args.llm else ""),
        "conversations": len(conversations), "follow_ups": scores[0].follow_ups,
        "hit@1": {s.method: round(s.hit_at_1, 4) for s in scores},
        "results": {s.method: [dataclasses.asdict(r) for r in s.results] for s in scores},
    }, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"report: {REPORT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
