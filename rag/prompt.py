"""What the model is shown: only the numbered, verified quotes and the passages they sit in.

The numbers are the citation numbers of the extractive answer, so a ``[n]`` the model writes
points at the same card the reader sees under the prose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag.llm import Message
from rag.types import Answer, Citation, Hit

REFUSAL = "I cannot answer this from the sources."
SYSTEM_PROMPT = (
    "You answer a question using only the numbered sources you are given. "
    "Write two or three short sentences. End every sentence with the number of the source it comes "
    "from in square brackets, for example [1]. Use only facts stated in the sources; do not add "
    f"anything else. If the sources do not answer the question, reply exactly: {REFUSAL}"
)


@dataclass(frozen=True)
class NumberedPassage:
    """Source ``[n]`` as shown to the model: the verified quote and the passage around it."""

    n: int
    title: str
    quote: str
    passage: str


def passage_of(citation: Citation, hits: Sequence[Hit]) -> str:
    """The retrieved passage holding the quote; the quote itself when no passage covers it."""
    for hit in hits:
        chunk = hit.chunk
        if chunk.doc_id == citation.document.id and chunk.start <= citation.start and citation.end <= chunk.end:
            return chunk.text
    return citation.quote


def numbered_passages(answer: Answer) -> tuple[NumberedPassage, ...]:
    return tuple(NumberedPassage(c.n, c.document.title, " ".join(c.quote.split()),
                                 " ".join(passage_of(c, answer.hits).split()))
                 for c in answer.citations)


def _source_block(source: NumberedPassage) -> str:
    return f"[{source.n}] {source.title}\nKey sentence: {source.quote}\nPassage: {source.passage}"


def answer_messages(question: str, sources: Sequence[NumberedPassage]) -> list[Message]:
    """The chat request: rules in the system message, sources then question in the user message."""
    blocks = "\n\n".join(_source_block(s) for s in sources)
    return [Message("system", SYSTEM_PROMPT),
            Message("user", f"Sources:\n\n{blocks}\n\nQuestion: {question}\n"
                            "Answer in sentences that each end with [n]:")]
