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


def _is_abbreviation(text: str, dot: int) -> bool:
    # The run of letters and dots that ends at the period, walked back by hand: a regex anchored at
    # the period but searched from the text's start made every sentence split quadratic.
    start = dot
    while start > 0 and text[start - 1] in _WORD_CHARS:
        start -= 1
    word = text[start:dot].lstrip(".").lower()
    return bool(word) and (word in _ABBREVIATIONS or len(word) == 1)  # initials like "J. Smith"


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
