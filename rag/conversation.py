"""The generation and follow-up operations front ends share: rewrite a follow-up, then write checked prose.

Holds the optional language model (``RAG_LLM_URL``); without one, follow-ups are rewritten by the
rule and no prose is written. Front ends (CLI, page, HTTP) call these and only render.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag.check import SupportScorer
from rag.embedding import Embedder
from rag.errors import RagError
from rag.followup import Rewrite, Turn, llm_rewrite, rule_rewrite
from rag.settings import Settings
from rag.types import Answer, Document

if TYPE_CHECKING:  # the default path never loads httpx
    from rag.generate import ProseRun
    from rag.llm import LLMConfig

REWRITE_MAX_TOKENS = 48  # a question, not an essay


def no_model_message(option: str = "--generate", where: str = "") -> str:
    """Why ``option`` cannot be served without a model, and the variables that configure one."""
    start = f"start {where} with RAG_LLM_URL set" if where else "set RAG_LLM_URL"
    return (f"{option} needs a language model: {start} to an OpenAI-compatible base URL "
            "(e.g. http://127.0.0.1:11434/v1 for Ollama) and RAG_LLM_MODEL to its model name")


NO_MODEL = no_model_message()


@dataclass(frozen=True)
class Generator:
    """A configured model and the checker's scorer; built once per process."""

    config: LLMConfig
    scorer: SupportScorer
    threshold: float

    @classmethod
    def from_settings(cls, settings: Settings, embedder: Embedder) -> Generator | None:
        if not settings.llm_url:
            return None
        from rag.llm import LLMConfig

        return cls(LLMConfig.from_settings(settings), SupportScorer(embedder), settings.sentence_support_min)

    def run(self, answer: Answer) -> ProseRun:
        """A :class:`rag.generate.ProseRun` over the answer's verified quotes (not started yet)."""
        from rag.generate import ProseRun

        return ProseRun(answer, self.config, self.scorer, self.threshold)

    def complete(self, prompt: str) -> str:
        from rag.llm import Message, complete_chat

        config = dataclasses.replace(self.config, max_tokens=REWRITE_MAX_TOKENS)
        return complete_chat(config, [Message("user", prompt)])


def require(generator: Generator | None) -> Generator:
    if generator is None:
        raise RagError(NO_MODEL)
    return generator


def rewrite_followup(question: str, history: Sequence[Turn], documents: Sequence[Document],
                     generator: Generator | None, settings: Settings) -> Rewrite:
    """The standalone question to search: by the model when one is configured, else by the rule."""
    if generator is None:
        return rule_rewrite(question, history, documents, settings.followup_sources)
    return llm_rewrite(question, history, generator.complete, settings.max_question_chars, documents,
                       settings.followup_sources)
