"""FAISS index construction and search over normalised vectors (inner product = cosine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Kinds by corpus size; thresholds come from bench/scale.py (see README "Scale").
INDEX_KINDS = ("flat", "hnsw")
HNSW_FROM_CHUNKS = 200_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


def choose_index_kind(n_vectors: int) -> str:
    """Exact search while it is fast enough; a graph index once flat search gets slow."""
    return "hnsw" if n_vectors >= HNSW_FROM_CHUNKS else "flat"


def build_vector_index(vectors: np.ndarray, kind: str):
    import faiss

    dimension = vectors.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(dimension)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        raise ValueError(f"unknown index kind {kind!r}; expected one of {', '.join(INDEX_KINDS)}")
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def save_vector_index(index, path: Path) -> None:
    import faiss

    faiss.write_index(index, str(path))


def load_vector_index(path: Path, kind: str):
    import faiss

    index = faiss.read_index(str(path))
    if kind == "hnsw":
        index.hnsw.efSearch = HNSW_EF_SEARCH
    return index


def search_vectors(index, query: np.ndarray, depth: int,
                   allowed_rows: np.ndarray | None = None) -> list[tuple[int, float]]:
    """``(row, cosine)`` pairs, best first, optionally restricted to ``allowed_rows``."""
    import faiss

    if index.ntotal == 0:
        return []
    params = None
    if allowed_rows is not None:
        if not len(allowed_rows):
            return []
        selector = faiss.IDSelectorBatch(np.asarray(allowed_rows, dtype=np.int64))
        params = (faiss.SearchParametersHNSW(sel=selector, efSearch=HNSW_EF_SEARCH)
                  if isinstance(index, faiss.IndexHNSW) else faiss.SearchParameters(sel=selector))
    scores, rows = index.search(query.reshape(1, -1).astype(np.float32), min(depth, index.ntotal),
                                params=params)
    return [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]
