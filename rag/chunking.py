"""Structure-aware chunking: sections, then paragraphs, then sentences, then words.

Chunks never cross a section boundary and never cut inside a word. A figure caption and the
citation line right after it form one unit, so a quoted caption can always be attributed.
Every chunk is an exact slice of its document: ``document.text[start:end] == chunk.text``.
"""

from __future__ import annotations

import hashlib
import re
from itertools import pairwise

from rag.sentences import is_citation_line, sentence_spans, word_cut
from rag.types import Chunk, ChunkerSettings, Document

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
KEEP_WHOLE_FACTOR = 3


def chunk_id(doc_id: str, start: int, text: str) -> str:
    return hashlib.sha256(f"{doc_id}\0{start}\0{text}".encode()).hexdigest()[:16]


def chunk_document(document: Document, settings: ChunkerSettings) -> list[Chunk]:
    chunks = []
    heading_starts = {s.start for s in document.sections}
    for region_start, region_end in _regions(document):
        units = _units(document.text, region_start, region_end, heading_starts)
        for start, end in _with_overlap(document.text, _pack(document.text, units, settings.size),
                                        settings.overlap):
            text = document.text[start:end]
            chunks.append(Chunk(
                id=chunk_id(document.id, start, text),
                doc_id=document.id,
                text=text,
                start=start,
                end=end,
                section=document.section_at(start),
                page=document.page_at(start),
            ))
    return chunks


def _regions(document: Document) -> list[tuple[int, int]]:
    """Spans between consecutive section starts, so no chunk mixes two sections."""
    cuts = sorted({0, len(document.text), *(s.start for s in document.sections)})
    return list(pairwise(cuts))


def _units(text: str, start: int, end: int, heading_starts: set[int]) -> list[tuple[int, int, bool]]:
    """Paragraph spans of a region with a keep-whole flag.

    Heading lines are dropped (the section path carries them); a citation line is glued to the
    paragraph above it, and that pair is kept whole so the caption stays with its reference.
    """
    units: list[tuple[int, int, bool]] = []
    cursor = start
    for match in [*_PARAGRAPH_BREAK.finditer(text, start, end), None]:
        para_end = match.start() if match else end
        s, e = _strip(text, cursor, para_end)
        cursor = match.end() if match else end
        if s < e and s in heading_starts:
            # Drop only the heading line: Markdown text often follows its heading without a blank line.
            line_end = text.find("\n", s, e)
            s, e = _strip(text, line_end, e) if line_end >= 0 else (e, e)
        if s >= e:
            continue
        if units and is_citation_line(text[s:e]):
            units[-1] = (units[-1][0], e, True)
        else:
            units.append((s, e, False))
    return units


def _strip(text: str, s: int, e: int) -> tuple[int, int]:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


def _pieces(text: str, start: int, end: int, size: int) -> list[tuple[int, int]]:
    """A unit that fits, else its sentences, else word-bounded fragments of a long sentence."""
    if end - start <= size:
        return [(start, end)]
    pieces = []
    for s, e in sentence_spans(text, start, end):
        while e - s > size:
            cut = word_cut(text, s, s + size)
            pieces.append(_strip(text, s, cut))
            s, _ = _strip(text, cut, e)
        pieces.append((s, e))
    return pieces


def _pack(text: str, units: list[tuple[int, int, bool]], size: int) -> list[tuple[int, int]]:
    """Greedily join consecutive pieces while the joined span stays within ``size``.

    A keep-whole unit may exceed ``size`` up to ``KEEP_WHOLE_FACTOR`` times before it is split.
    """
    groups: list[tuple[int, int]] = []
    for unit_start, unit_end, keep_whole in units:
        limit = size * KEEP_WHOLE_FACTOR if keep_whole else size
        for s, e in _pieces(text, unit_start, unit_end, limit):
            if groups and e - groups[-1][0] <= size and groups[-1][1] <= s:
                groups[-1] = (groups[-1][0], e)
            else:
                groups.append((s, e))
    return groups


def _with_overlap(text: str, groups: list[tuple[int, int]], overlap: int) -> list[tuple[int, int]]:
    """Extend each group back over whole trailing sentences of the previous one (``<= overlap`` chars)."""
    spans = []
    for i, (start, end) in enumerate(groups):
        if i and overlap:
            prev_start, prev_end = groups[i - 1]
            tail = [s for s, _ in sentence_spans(text, prev_start, prev_end)
                    if prev_end - s <= overlap and s > prev_start]
            if tail:
                start = tail[0]
        spans.append((start, end))
    return spans
