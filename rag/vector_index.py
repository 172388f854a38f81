"""FAISS index construction and search over normalised vectors (inner product = cosine).

The kind is chosen by corpus size and recorded in the manifest. Thresholds and parameters come
from ``bench/scale.py`` (results in ``bench/results/scale.json``, README "Benchmarks"): single
queries on one thread of a 2-core machine, synthetic vectors fitted to real MiniLM embeddings,
recall@10 against exact search for real and for targeted questions.

- ``flat``, exact: 0.3 ms p50 at 10k chunks, 10 ms at 100k, 65 ms at 1M (linear in size).
  It is kept while a scan costs at most about a quarter of encoding the question (~13 ms),
  which is up to ``IVF_FROM_CHUNKS``.
- ``ivf``, k-means cells over full vectors, ~sqrt(n) cells, probing at least 64 and at least
  one cell in 7: recall@10 >= 0.98 for both question sets from 50k to 1M chunks; at 1M 12 ms
  p50 with 143 of 1,000 cells probed, built in 19 s. HNSW (M=32) reached only 0.935 / 0.883 at
  efSearch 512 at 1M and took 330 s to build; every incremental build rebuilds the vector index,
  so build time counts. Compressed cells (SQ8) cut memory 4x but cap recall lower (0.975 at 128
  probes at 1M); PQ48 fell to 0.56 already at 10k. At a million chunks full vectors take 1.5 GB,
  which these machines have.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

INDEX_KINDS = ("flat", "ivf")  # in order of corpus size
IVF_FROM_CHUNKS = 40_000
# Probes: at least 64 and at least one cell in 7. Synthetic vectors are easier for IVF than real
# MiniLM ones (bench generator check at 16k chunks: recall@10 0.83 against 0.76 at 4 probes), so
# these aim at recall >= 0.98 on synthetic vectors, not just the 0.95 asked for.
IVF_MIN_PROBES = 64
IVF_PROBE_SHARE = 7
# Source filters on an ``ivf`` index. The best allowed rows lie farther out than the best rows
# overall, so a filtered search probes more cells: 4x while the filter keeps at most 5% of the
# chunks, else 2x (at 1M chunks: recall@10 0.995 in 4.9 ms p50 for 10k allowed rows, 0.990 in
# 17 ms for 200k). Up to EXACT_SUBSET_MAX rows are scored exactly instead.
EXACT_SUBSET_MAX = 2_000


def choose_index_kind(n_vectors: int) -> str:
    """Exact search while it is cheap next to encoding the question; an inverted file beyond."""
    return "ivf" if n_vectors >= IVF_FROM_CHUNKS else "flat"


def ivf_cells(n_vectors: int) -> int:
    """About sqrt(n) k-means cells: ~1,000 chunks per cell at 1M, training in under a minute."""
    return max(1, round(math.sqrt(n_vectors)))


def ivf_probes(cells: int) -> int:
    return min(cells, max(IVF_MIN_PROBES, round(cells / IVF_PROBE_SHARE)))


def build_vector_index(vectors: np.ndarray, kind: str):
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dimension = vectors.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(dimension)
    elif kind == "ivf":
        cells = ivf_cells(len(vectors))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, cells, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = 7  # k-means is seeded: the same vectors give the same index
        if len(vectors):
            index.train(vectors)
        index.nprobe = ivf_probes(cells)
        index.make_direct_map()  # rows can be read back, for exact filtered search
    else:
        raise ValueError(f"unknown index kind {kind!r}; expected one of {', '.join(INDEX_KINDS)}")
    if len(vectors):
        index.add(vectors)
    return index


def save_vector_index(index, path: Path) -> None:
    import faiss

    faiss.write_index(index, str(path))


def load_vector_index(path: Path, kind: str):
    import faiss

    index = faiss.read_index(str(path))
    if kind == "ivf":
        index.nprobe = ivf_probes(index.nlist)  # search-time parameters are not stored in the file
    return index


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run FAISS single-threaded in this thread (OpenMP's thread count is per calling thread).

    One query is too little work to share: on 2 busy cores, OpenMP threads spin at a barrier and
    a flat search over 10k vectors took 48 ms p50 with 2 threads against 0.4 ms with one.
    Builds keep every core.
    """
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _exact_over(index, query: np.ndarray, rows: np.ndarray, depth: int) -> list[tuple[int, float]]:
    """Score ``rows`` exactly from the vectors the index stores (ties broken by row)."""
    scores = index.reconstruct_batch(rows) @ query
    best = np.lexsort((rows, -scores))[:depth]
    return [(int(rows[i]), float(scores[i])) for i in best]


def rows_mask(n_vectors: int, rows) -> np.ndarray:
    """One flag per vector, set for ``rows`` (in any order, repeats allowed).

    Built in O(n): np.unique took 350 ms for 500k rows of 1M. Dense and BM25 search share it.
    """
    mask = np.zeros(n_vectors, dtype=bool)
    mask[np.asarray(rows, dtype=np.int64)] = True
    return mask


def search_vectors(index, query: np.ndarray, depth: int,
                   allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
    """``(row, cosine)`` pairs, best first, optionally restricted to the rows ``allowed`` flags
    (a boolean mask over the index's rows, see :func:`rows_mask`)."""
    import faiss

    if index.ntotal == 0:
        return []
    query = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
    params = None
    if allowed is not None:
        count = int(allowed.sum())
        if not count:
            return []
        approximate = isinstance(index, faiss.IndexIVF)
        if approximate and count <= EXACT_SUBSET_MAX:
            with one_thread():
                return _exact_over(index, query, np.flatnonzero(allowed), depth)
        # A bitmap answers "is this row allowed?" in one bit test, and is built in a millisecond
        # where a batch selector hashes every allowed row (63 ms for 500k rows).
        bits = np.packbits(allowed, bitorder="little")  # FAISS keeps a pointer: alive until we return
        selector = faiss.IDSelectorBitmap(index.ntotal, faiss.swig_ptr(bits))
        if approximate:
            widen = 4 if count * 20 <= index.ntotal else 2
            params = faiss.SearchParametersIVF(sel=selector, nprobe=min(index.nlist, index.nprobe * widen))
        else:
            params = faiss.SearchParameters(sel=selector)
    with one_thread():
        scores, rows = index.search(query[None, :], min(depth, index.ntotal), params=params)
    return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]
