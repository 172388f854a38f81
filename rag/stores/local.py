"""The default store: the generation's own FAISS and bm25s files, searched in this process."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag.index_store import Index
from rag.stores import Candidates
from rag.vector_index import rows_mask, search_vectors


class LocalStore:
    """FAISS for dense search, bm25s for BM25; a source filter is one boolean mask over rows."""

    def __init__(self, index: Index) -> None:
        self.index = index

    def restrict(self, sources: Sequence[str]) -> np.ndarray:
        return rows_mask(self.index.manifest.chunk_count, self.index.store.rows_of(sources))

    def dense(self, query: np.ndarray, depth: int, restriction: np.ndarray | None) -> Candidates:
        return search_vectors(self.index.vectors, query, depth, restriction)

    def lexical(self, question: str, depth: int, restriction: np.ndarray | None) -> Candidates:
        return self.index.lexical.search(question, depth, restriction)
