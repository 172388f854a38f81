"""Reference recipes, scored in the same run as the project's modes, on the same sources and by
the same relevance rule, so the report shows what a plain textbook pipeline reaches here:

- ``recipe:minilm-1000``: recursive character chunks of 1000 characters with 200 overlap (the
  LangChain ``RecursiveCharacterTextSplitter`` defaults people copy), embedded with the same
  MiniLM model, exact (flat) inner-product search;
- ``recipe:bm25s-1000``: bm25s with its default k1 1.5 / b 0.75, English stemming and stop words,
  over the same chunks.

Their passages are longer than the project's, which makes hit@1 easier; the report puts the mean
passage length beside every system so the comparison stays honest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from rag.embedding import Embedder
from rag.lexical import LexicalIndex
from rag.types import Chunk, Document, Hit

SEPARATORS = ("\n\n", "\n", " ", "")
CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
Search = Callable[[str], list[Hit]]


def _pieces(text: str, start: int, end: int, size: int, separators: Sequence[str]) -> list[tuple[int, int]]:
    """Spans no longer than ``size``, split at the coarsest separator present (kept at a piece's head)."""
    if end - start <= size:
        return [(start, end)]
    separator = next(s for s in separators if s == "" or s in text[start:end])
    if separator == "":
        return [(i, min(i + size, end)) for i in range(start, end, size)]
    finer = separators[separators.index(separator) + 1:]
    cuts = sorted({start, end, *(m.start() for m in re.compile(re.escape(separator)).finditer(text, start, end))})
    pieces = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        pieces += _pieces(text, a, b, size, finer)
    return pieces


def _stripped(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def recursive_spans(text: str, size: int = CHUNK_SIZE, overlap: int = CHUNK_OVERLAP) -> list[tuple[int, int]]:
    """Greedy windows of consecutive pieces up to ``size`` characters; each next window keeps the
    trailing pieces of the last that fit in ``overlap`` characters."""
    spans: list[tuple[int, int]] = []
    window: list[tuple[int, int]] = []
    for piece in _pieces(text, 0, len(text), size, SEPARATORS):
        if window and piece[1] - window[0][0] > size:
            spans.append(_stripped(text, window[0][0], window[-1][1]))
            while window and (window[-1][1] - window[0][0] > overlap or piece[1] - window[0][0] > size):
                window.pop(0)
        window.append(piece)
    if window:
        spans.append(_stripped(text, window[0][0], window[-1][1]))
    return [(s, e) for s, e in spans if e > s]


def recipe_chunks(documents: Sequence[Document]) -> list[Chunk]:
    return [Chunk(f"{d.id}@{s}", d.id, d.text[s:e], s, e) for d in documents for s, e in recursive_spans(d.text)]


def _hits(chunks: Sequence[Chunk], ranked: Sequence[tuple[int, float]]) -> list[Hit]:
    return [Hit(chunks[row], score, rank) for rank, (row, score) in enumerate(ranked, start=1)]


def dense_recipe(chunks: Sequence[Chunk], embedder: Embedder, k: int) -> Search:
    vectors = embedder.encode([c.text for c in chunks])

    def search(question: str) -> list[Hit]:
        scores = vectors @ embedder.encode([question])[0]
        order = np.argsort(-scores, kind="stable")[:k]
        return _hits(chunks, [(int(i), float(scores[i])) for i in order])

    return search


def bm25_recipe(chunks: Sequence[Chunk], k: int) -> Search:
    index = LexicalIndex.build([c.text for c in chunks], k1=1.5, b=0.75)
    return lambda question: _hits(chunks, index.search(question, k))


def reference_recipes(documents: Sequence[Document], embedder: Embedder, k: int) -> dict[str, Search]:
    chunks = recipe_chunks(documents)
    return {"recipe:minilm-1000": dense_recipe(chunks, embedder, k), "recipe:bm25s-1000": bm25_recipe(chunks, k)}
