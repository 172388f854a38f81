"""Sentence and word boundaries as character spans, so every piece keeps its offsets."""

from __future__ import annotations

import re

# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) before whitespace,
# or at a blank line, a list item, or an indented continuation line (a run-in heading ends
# there without a period).
_END = re.compile(r"[.!?][\"'”’)\]]*(?=\s)|\n\s*\n|\n(?=\s*(?:[•*\-–]|\d+\.)\s)|\n(?=[ \t]+[A-Z“\"])")
# Tokens before a period that do not end a sentence.
_ABBREVIATIONS = frozenset({
    "e.g", "i.e", "etc", "al", "vs", "cf", "fig", "figs", "eq", "eqs", "no", "vol", "pp", "dr", "mr", "mrs",
    "ms", "prof", "st", "approx", "resp",
})
_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.")
# An author-year credit: "(Liu et al., 2018)", "(Mehrabi et al., 2019)", "(Smith and Jones, 2020)".
AUTHOR_YEAR = re.compile(r"\((?:[A-Z][\w'’-]+(?:\s+(?:et al\.|and|&)\s*[A-Z]?[\w'’-]*)?),?\s+\d{4}[a-z]?\)")


def _is_abbreviation(text: str, dot: int) -> bool:
    # The run of letters and dots that ends at the period, walked back by hand: a regex anchored at
    # the period but searched from the text's start made every sentence split quadratic.
    start = dot
    while start > 0 and text[start - 1] in _WORD_CHARS:
        start -= 1
    word = text[start:dot].lstrip(".").lower()
    return bool(word) and (word in _ABBREVIATIONS or len(word) == 1)  # initials like "J. Smith"


def _credit_follows(text: str, offset: int, end: int) -> bool:
    """A title's period followed by its credit, "... Machine Learning. (Mehrabi et al., 2019)": one
    citation, which a quote must not cut from its author-year."""
    while offset < end and text[offset] in " \t":
        offset += 1
    return AUTHOR_YEAR.match(text, offset, end) is not None


def _continues_lowercase(text: str, offset: int, end: int) -> bool:
    following = text[offset:min(end, offset + 8)].lstrip(" \t")
    return bool(following) and following[0].islower()


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans ``(s, e)`` of the sentences in ``text[start:end]``, stripped of surrounding space."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cursor = start
    for match in _END.finditer(text, start, end):
        if text[match.start()] == "." and _is_abbreviation(text, match.start()):
            continue
        if text[match.start()] in ".!?" and _continues_lowercase(text, match.end(), end):
            continue  # "...assembly language?’ it might..." is one sentence
        if text[match.start()] == "." and _credit_follows(text, match.end(), end):
            continue
        _append_stripped(text, cursor, match.end(), spans)
        cursor = match.end()
    _append_stripped(text, cursor, end, spans)
    return spans


def _append_stripped(text: str, s: int, e: int, spans: list[tuple[int, int]]) -> None:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if s < e:
        spans.append((s, e))


def word_cut(text: str, start: int, limit: int) -> int:
    """Largest offset ``<= limit`` that does not cut a word; ``limit`` if no space is found."""
    if limit >= len(text) or text[limit].isspace() or text[limit - 1].isspace():
        return limit
    # Any whitespace separates words (tabs, no-break spaces...), not only " " and "\n".
    space = next((i for i in range(limit - 1, start, -1) if text[i].isspace()), -1)
    return space if space > start else limit


def is_citation_line(line: str) -> bool:
    """A short reference line: a title and its credit, ``Multi-Task Deep ... (Liu et al., 2018)``.
    The one rule for the loaders (not a heading), the chunker (kept with its caption) and the reader
    (not an answer, rag.reader.content)."""
    stripped = " ".join(line.split())
    credit = AUTHOR_YEAR.search(stripped)
    return (8 <= len(stripped) <= 200 and "\n" not in line.strip() and credit is not None
            and credit.start() >= 8 and stripped[credit.end():] in ("", "."))
