"""Passages around quotations, split for display into plain text and numbered quotes.

A quote's passage is the retrieved chunk that holds it when there is one (the evidence the reader
saw ranked), else a window of the document around it cut at word boundaries. Quotes that fall in
the same passage share it, so an answer citing two sentences of one chunk shows that chunk once.
Invariant: the pieces of a passage joined together are ``document.text[start:end]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag.types import Citation, Document, Hit


@dataclass(frozen=True)
class Passage:
    """A span of one document holding one or more cited quotes."""

    document: Document
    start: int
    end: int
    citations: tuple[Citation, ...]  # in document order

    @property
    def clipped_start(self) -> bool:
        """The passage begins after the document does (show an ellipsis)."""
        return self.start > 0

    @property
    def clipped_end(self) -> bool:
        return self.end < len(self.document.text)

    def pieces(self) -> list[tuple[str, Citation | None]]:
        """The passage text in order: ``(text, None)`` between quotes, ``(quote, citation)`` for each."""
        text, position, parts = self.document.text, self.start, []
        for citation in self.citations:
            begin = max(citation.start, position)  # overlapping quotes: never repeat text
            if begin > position:
                parts.append((text[position:begin], None))
            if citation.end > begin:
                parts.append((text[begin : citation.end], citation))
            position = max(position, citation.end)
        if self.end > position:
            parts.append((text[position : self.end], None))
        return parts


def _containing_chunk(document_id: str, start: int, end: int, hits: Sequence[Hit]) -> tuple[int, int] | None:
    for hit in hits:
        chunk = hit.chunk
        if chunk.doc_id == document_id and chunk.start <= start and end <= chunk.end:
            return chunk.start, chunk.end
    return None


def _window(text: str, start: int, end: int, context: int) -> tuple[int, int]:
    """``context`` characters either side of ``[start, end)``, shrunk to whole words."""
    left = max(0, start - context)
    if left > 0 and not text[left - 1].isspace():  # landed inside a word: skip to the next one
        space = text.find(" ", left, start)
        left = space + 1 if space >= 0 else start
    right = min(len(text), end + context)
    if right < len(text) and not text[right].isspace():
        space = text.rfind(" ", end, right)
        right = space if space >= 0 else end
    return left, right


def passage_span(document: Document, start: int, end: int, hits: Sequence[Hit] = (),
                 context: int = 280) -> tuple[int, int]:
    """The range of the passage shown around ``document.text[start:end]``."""
    return _containing_chunk(document.id, start, end, hits) or _window(document.text, start, end, context)


def passages(citations: Sequence[Citation], hits: Sequence[Hit] = (), context: int = 280) -> list[Passage]:
    """One passage per distinct span, ordered by the lowest citation number it holds."""
    groups: list[tuple[Document, int, int, list[Citation]]] = []
    for citation in sorted(citations, key=lambda c: c.n):
        home = next((g for g in groups if g[0].id == citation.document.id
                     and g[1] <= citation.start and citation.end <= g[2]), None)
        if home is None:
            start, end = passage_span(citation.document, citation.start, citation.end, hits, context)
            groups.append((citation.document, start, end, [citation]))
        else:
            home[3].append(citation)
    return [Passage(document, start, end, tuple(sorted(cited, key=lambda c: (c.start, c.n))))
            for document, start, end, cited in groups]
