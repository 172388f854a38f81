"""Plain-data views of domain values for JSON output (the shapes in DESIGN.md's contracts)."""

from __future__ import annotations

from typing import Any

from rag.types import Document, Hit

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
        "source_id": document.id,
        "title": document.title,
        "authors": list(document.authors),
        "year": document.year,
        "venue": document.venue,
        "url": document.url,
        "kind": document.kind,
        "file": document.path,
        "chunks": chunks,
        **dict(document.extra),
    }
