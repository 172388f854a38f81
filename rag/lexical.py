"""BM25 over chunks with bm25s: English stemming and stop words, title and section in the field."""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Sequence
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

_STOPWORDS = "en"  # Lucene's 33-word English list, as Anserini's BEIR baselines use
# Anserini's BEIR BM25 parameters; on the project eval they beat bm25s's 1.5 / 0.75 defaults
# in hybrid mode (eval/reports/hybrid-sweep.md).
BM25_K1 = 0.9
BM25_B = 0.4


@cache
def bm25s_module():
    """``bm25s``, imported without the numba and scipy it picks up when they are installed.

    bm25s imports both at its own import if it can (ranx installs them), which cost 1.0-1.8 s of
    every query process's start, yet the numpy backends used here (``backend="numpy"``,
    ``csc_backend="numpy"``, its defaults) need neither. A ``None`` entry in ``sys.modules`` makes
    an import fail, so bm25s falls back as if they were absent; the entries are removed again,
    so any other code may still import them.
    """
    hidden = [name for name in ("numba", "scipy") if name not in sys.modules]
    sys.modules.update(dict.fromkeys(hidden))
    try:
        import bm25s
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    return bm25s


_per_thread = threading.local()


def _stemmer():
    # One per thread, made once: PyStemmer's stemmers are not thread-safe, and a server's request
    # threads tokenize at once; making one per call cost more than the stemming.
    stemmer = getattr(_per_thread, "stemmer", None)
    if stemmer is None:
        import Stemmer

        stemmer = _per_thread.stemmer = Stemmer.Stemmer("english")
    return stemmer


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    return bm25s_module().tokenize(list(texts), stopwords=_STOPWORDS, stemmer=_stemmer(),
                          return_ids=False, show_progress=False)


@lru_cache(maxsize=65_536)
def text_terms(text: str) -> tuple[str, ...]:
    """One text's stemmed terms, remembered: the second stage and the reader tokenize the same
    passages and sentences question after question."""
    return tuple(tokenize([text])[0])


class LexicalIndex:
    """A bm25s index whose document numbers are the chunk rows of the store."""

    def __init__(self, retriever, size: int) -> None:
        self._retriever = retriever
        self.size = size

    @classmethod
    def build(cls, texts: Sequence[str], k1: float = BM25_K1, b: float = BM25_B) -> LexicalIndex:
        retriever = bm25s_module().BM25(k1=k1, b=b)
        retriever.index(tokenize(texts), show_progress=False)
        return cls(retriever, len(texts))

    def save(self, folder: Path) -> None:
        self._retriever.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path, size: int) -> LexicalIndex:
        return cls(bm25s_module().BM25.load(str(folder), mmap=True, show_progress=False), size)

    def search(self, query: str, depth: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """``(row, score)`` pairs, best first; rows with no matching term are left out."""
        tokens = tokenize([query])
        if not tokens[0] or not self.size:
            return []
        rows, scores = self._retriever.retrieve(
            tokens, k=min(depth, self.size), show_progress=False, n_threads=1,
            weight_mask=None if allowed is None else allowed.astype(np.float32),
        )
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if s > 0]

    def known(self, tokens: Sequence[str]) -> list[bool]:
        """Whether each token occurs anywhere in the indexed texts."""
        return [token in self._retriever.vocab_dict for token in tokens]

    def idf(self, tokens: Sequence[str]) -> list[float]:
        """Robertson-Sparck Jones IDF, ``log(1 + (N - df + 0.5) / (df + 0.5))`` (the Lucene BM25 form).

        A token the corpus never uses gets the highest possible weight, so a question that hinges
        on an absent term is visibly unsupported.
        """
        vocab = self._retriever.vocab_dict
        indptr = self._retriever.scores["indptr"]  # CSC matrix: one column per token

        def document_frequency(token: str) -> int:
            column = vocab.get(token)
            return 0 if column is None else int(indptr[column + 1] - indptr[column])

        return [math.log(1 + (self.size - df + 0.5) / (df + 0.5))
                for df in map(document_frequency, tokens)]
