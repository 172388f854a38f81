"""Plain-data views of domain values for JSON output (the shapes in DESIGN.md's contracts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rag.types import Answer, Citation, Document, Hit

if TYPE_CHECKING:
    from rag.assistant import Change, IndexStatus, Passage, Source
    from rag.generate import Prose

SECTION_SEPARATOR = " > "


def section_label(path: tuple[str, ...]) -> str:
    return SECTION_SEPARATOR.join(path)


def hit_row(hit: Hit, document: Document) -> dict[str, Any]:
    return {
        "rank": hit.rank,
        "score": round(hit.score, 6),
        "source_id": hit.chunk.doc_id,
        "title": document.title,
        "section": section_label(hit.chunk.section),
        "page": hit.chunk.page,
        "text": hit.chunk.text,
        "start": hit.chunk.start,
        "end": hit.chunk.end,
        "retrievers": list(hit.retrievers),
    }


def source_row(document: Document, chunks: int) -> dict[str, Any]:
    return {
        **dict(document.extra),  # first, so free-form metadata can never mask a core field
        "source_id": document.id,
        "title": document.title,
        "authors": list(document.authors),
        "year": document.year,
        "venue": document.venue,
        "url": document.url,
        "kind": document.kind,
        "file": document.path,
        "chunks": chunks,
    }


def format_authors(authors: tuple[str, ...], most: int = 3) -> str:
    """``A, B and C`` for up to ``most`` authors, else ``A, B, C et al.``."""
    if not authors:
        return "Unknown author"
    if len(authors) > most:
        return ", ".join(authors[:most]) + " et al."
    return authors[0] if len(authors) == 1 else ", ".join(authors[:-1]) + " and " + authors[-1]


def format_location(section: tuple[str, ...], page: int | None) -> str:
    parts = [section_label(section)] if section else []
    if page is not None:
        parts.append(f"p. {page}")
    return " / ".join(parts)


def format_reference(citation: Citation, numbers: Sequence[int] = ()) -> str:
    """``[n] Authors (year). Title. Venue. URL — section / page`` (``[1, 2]`` for shared places)."""
    document = citation.document
    year = document.year if document.year is not None else "n.d."
    label = ", ".join(map(str, numbers or [citation.n]))
    parts = [f"[{label}] {format_authors(document.authors)} ({year}). {document.title}."]
    if document.venue:
        parts.append(f"{document.venue}.")
    if document.url:
        parts.append(document.url)
    location = format_location(citation.section, citation.page)
    return " ".join(parts) + (f" — {location}" if location else "")


def format_references(citations: Sequence[Citation]) -> list[str]:
    """One reference line per cited place (source, section, page), listing every quote number there."""
    places: dict[tuple, list[Citation]] = {}
    for citation in citations:
        places.setdefault((citation.document.id, citation.section, citation.page), []).append(citation)
    return [format_reference(group[0], [c.n for c in group]) for group in places.values()]


def citation_row(citation: Citation) -> dict[str, Any]:
    document = citation.document
    return {
        "n": citation.n,
        "source_id": document.id,
        "title": document.title,
        "authors": list(document.authors),
        "year": document.year,
        "url": document.url,
        "section": section_label(citation.section),
        "page": citation.page,
        "quote": citation.quote,
        "start": citation.start,
        "end": citation.end,
    }


def answer_row(answer: Answer) -> dict[str, Any]:
    """The ``rag ask --json`` shape from DESIGN.md."""
    return {
        "question": answer.question,
        "answer": answer.text,
        "abstained": answer.abstained,
        "abstained_because": answer.abstained_because,
        "support": round(answer.support, 4),
        "citations": [citation_row(c) for c in answer.citations],
    }


def ask_row(answer: Answer, prose: Prose | None = None) -> dict[str, Any]:
    """``rag ask --json`` and ``POST /v1/ask``: the answer, and the checked prose fields when prose was asked for."""
    return {**answer_row(answer), **(prose.as_json() if prose is not None else {})}


# ---------------------------------------------------------------- application-layer results
# One serialiser per result, shared by `rag ... --json`, the HTTP API and the MCP tools.


def search_rows(passages: Sequence[Passage]) -> list[dict[str, Any]]:
    """The ``rag search --json`` shape."""
    return [hit_row(p.hit, p.document) for p in passages]


def source_rows(sources: Sequence[Source]) -> list[dict[str, Any]]:
    """The ``rag sources --json`` shape."""
    return [source_row(s.document, s.chunks) for s in sources]


def change_row(change: Change) -> dict[str, Any]:
    """What ``rag add --json`` / ``rag remove --json`` print: the source and the build that followed."""
    report = change.report
    return {"source_id": change.document.id, "title": change.document.title,
            "authors": list(change.document.authors), "chunks_embedded": report.chunks_embedded,
            "chunk_count": report.chunk_count, "generation": report.generation}


def status_row(status: IndexStatus) -> dict[str, Any]:
    return {"generation": status.generation, "model": status.model, "sources": status.sources,
            "chunks": status.chunks, "built_at": status.built_at}
