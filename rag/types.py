"""Domain values passed between pipeline stages; all immutable."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Section:
    """A heading and the character range of text it governs (heading line included)."""

    path: tuple[str, ...]
    start: int
    end: int


@dataclass(frozen=True)
class Page:
    """A PDF page's character range in the document text (1-based number)."""

    number: int
    start: int
    end: int


@dataclass(frozen=True)
class Document:
    """A source's text with its citation metadata and structure."""

    id: str
    title: str
    text: str
    authors: tuple[str, ...] = ()
    year: int | None = None
    venue: str = ""
    url: str = ""
    kind: str = ""
    path: str = ""
    sections: tuple[Section, ...] = ()
    pages: tuple[Page, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()  # other metadata (arxiv, doi...) as ordered pairs

    def section_at(self, offset: int) -> tuple[str, ...]:
        """Heading path of the innermost section containing ``offset`` (empty if none)."""
        best: tuple[str, ...] = ()
        for section in self.sections:
            if section.start <= offset < section.end and len(section.path) >= len(best):
                best = section.path
        return best

    def page_at(self, offset: int) -> int | None:
        for page in self.pages:
            if page.start <= offset < page.end:
                return page.number
        return None


@dataclass(frozen=True)
class ChunkerSettings:
    """How :mod:`rag.chunking` cuts documents; recorded in every index manifest."""

    size: int = 600  # target characters per chunk
    overlap: int = 120  # trailing sentences repeated from the previous chunk, in characters


@dataclass(frozen=True)
class Chunk:
    """A passage of a document. Invariant: ``document.text[start:end] == text``."""

    id: str
    doc_id: str
    text: str
    start: int
    end: int
    section: tuple[str, ...] = ()
    page: int | None = None


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score, 1-based rank and the retrievers that found it."""

    chunk: Chunk
    score: float
    rank: int
    retrievers: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Citation:
    """One numbered quote: a verbatim ``document.text[start:end]`` span and its reference."""

    n: int
    document: Document
    quote: str
    start: int
    end: int
    section: tuple[str, ...] = ()
    page: int | None = None


@dataclass(frozen=True)
class Answer:
    """A composed answer: text with ``[n]`` markers, its citations, or an abstention."""

    question: str
    text: str
    citations: tuple[Citation, ...]
    abstained: bool
    nearest: tuple[Hit, ...] = ()  # shown as "nearest material" when abstaining
    hits: tuple[Hit, ...] = ()  # the ranked passages the answer was drawn from
    support: float = 0.0  # strength of the best evidence; below the threshold it abstains
    abstained_because: str | None = None  # one sentence saying what the sources lack (None: answered)
