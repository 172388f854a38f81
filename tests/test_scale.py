"""Scale behaviour at test-sized inputs: every index kind builds, round-trips and finds the
exact neighbours; filtered search stays exact; the chunk store looks rows up by key.

The measured numbers behind the thresholds live in bench/scale.py and bench/results/scale.json;
these tests pin the behaviour those numbers rely on, at sizes CI can afford.
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from helpers import search_hits

from rag import vector_index
from rag.assistant import open_assistant
from rag.build import build_index
from rag.index_store import open_index
from rag.store import DOCUMENT_CACHE, ChunkStore, write_store
from rag.types import Chunk, Document
from rag.vector_index import (
    INDEX_KINDS,
    build_vector_index,
    choose_index_kind,
    load_vector_index,
    rows_mask,
    save_vector_index,
    search_vectors,
)

DIMENSION = 64


def clustered(n: int, seed: int, clusters: int = 40, rank: int = 16) -> np.ndarray:
    """Unit vectors spread over low-dimensional patches around a few centres, like real embeddings.

    (Uniform random points would be nearly orthogonal and make every index look perfect or hopeless.)
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIMENSION))
    bases = rng.standard_normal((clusters, rank, DIMENSION)) / np.sqrt(rank)
    labels = rng.integers(0, clusters, n)
    points = (centres[labels] + 0.6 * np.einsum("nr,nrd->nd", rng.standard_normal((n, rank)), bases[labels])
              + 0.15 * rng.standard_normal((n, DIMENSION)))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    """6,000 indexed vectors and 100 held-out queries from the same distribution."""
    points = clustered(6100, seed=1)
    return points[:6000], points[6000:]


def exact_top(vectors: np.ndarray, query: np.ndarray, k: int, rows: np.ndarray | None = None) -> list[int]:
    rows = np.arange(len(vectors)) if rows is None else rows
    scores = vectors[rows] @ query
    return [int(rows[i]) for i in np.argsort(-scores, kind="stable")[:k]]


def test_the_kind_follows_corpus_size_and_only_grows():
    sizes = [0, 1, 1_000, 10_000, 50_000, 100_000, 1_000_000, 10_000_000]
    kinds = [choose_index_kind(n) for n in sizes]
    assert kinds[0] == kinds[1] == kinds[2] == "flat"
    assert kinds[-1] != "flat"
    assert set(kinds) <= set(INDEX_KINDS)
    order = list(INDEX_KINDS)
    assert [order.index(k) for k in kinds] == sorted(order.index(k) for k in kinds)


@pytest.mark.parametrize("kind", INDEX_KINDS)
def test_every_kind_round_trips_and_finds_the_exact_neighbours(data, tmp_path, kind):
    vectors, queries = data
    index = build_vector_index(vectors, kind)
    save_vector_index(index, tmp_path / "v.faiss")
    loaded = load_vector_index(tmp_path / "v.faiss", kind)
    assert loaded.ntotal == len(vectors)
    recall = np.mean([len({r for r, _ in search_vectors(loaded, q, 10)} & set(exact_top(vectors, q, 10))) / 10
                      for q in queries])
    assert recall >= 0.95, f"{kind}: recall@10 {recall:.3f}"
    hits = search_vectors(loaded, queries[0], 10)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


@pytest.mark.parametrize("kind", INDEX_KINDS)
@pytest.mark.parametrize("allowed", [1, 7, 300, 2500])
def test_filtered_search_returns_the_best_allowed_rows(data, kind, allowed):
    """``rag search --source``: a handful of allowed rows must not come back empty from a graph index."""
    vectors, queries = data
    index = build_vector_index(vectors, kind)
    rows = np.sort(np.random.default_rng(allowed).choice(len(vectors), allowed, replace=False))
    for query in queries[:20]:
        found = search_vectors(index, query, 10, rows_mask(len(vectors), rows))
        assert {r for r, _ in found} <= set(rows.tolist())
        assert len(found) == min(10, allowed)
        expected = exact_top(vectors, query, 10, rows)
        overlap = len({r for r, _ in found} & set(expected)) / len(expected)
        assert overlap >= (1.0 if allowed <= vector_index.EXACT_SUBSET_MAX else 0.9), (kind, allowed, overlap)


@pytest.mark.parametrize("kind", INDEX_KINDS)
@pytest.mark.parametrize("allowed", [5, 1500, 2500])  # 1500: repeated, it would look over the exact limit
def test_repeated_and_unsorted_allowed_rows_filter_like_their_set(data, kind, allowed):
    vectors, queries = data
    index = build_vector_index(vectors, kind)
    rows = np.random.default_rng(allowed).choice(len(vectors), allowed, replace=False)
    messy = np.concatenate([rows, rows[::-1], rows[:3]])
    for query in queries[:5]:
        assert (search_vectors(index, query, 10, rows_mask(len(vectors), messy))
                == search_vectors(index, query, 10, rows_mask(len(vectors), np.sort(rows))))


def test_an_empty_index_and_an_empty_filter_return_nothing(data):
    vectors, queries = data
    for kind in INDEX_KINDS:
        assert search_vectors(build_vector_index(vectors[:0], kind), queries[0], 10) == []
        assert search_vectors(build_vector_index(vectors, kind), queries[0], 10, rows_mask(len(vectors), [])) == []


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match=r"unknown index kind 'annoy'; expected one of flat"):
        build_vector_index(np.zeros((1, DIMENSION), dtype=np.float32), "annoy")


def test_a_corpus_past_the_threshold_is_built_served_and_searched_approximately(settings, embedder, monkeypatch):
    """End to end with the approximate kind: the manifest records it and search finds the passage."""
    approximate = next(k for k in INDEX_KINDS if k != "flat")
    monkeypatch.setattr("rag.build.choose_index_kind", lambda n: approximate)
    build_index(settings, embedder)
    index = open_index(settings.index_dir, embedder.name, embedder.dimension)
    assert index.manifest.index_kind == approximate
    session, _ = open_assistant(settings, embedder)
    hits = search_hits(session, "How long does a house cat sleep?", k=3, mode="dense")
    assert hits[0].chunk.doc_id == "cats"
    assert search_hits(session, "rocket stage", k=2, mode="dense", sources=("rockets",))[0].chunk.doc_id == "rockets"


# ---------------------------------------------------------------- chunk store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """20,000 chunks in 2,000 documents."""
    path = tmp_path_factory.mktemp("store") / "store.sqlite"
    documents = [Document(id=f"d{d:05d}", title=f"Doc {d}", text="x" * 100) for d in range(2000)]
    chunks = [Chunk(id=f"c{r}", doc_id=f"d{r // 10:05d}", text=f"chunk {r}", start=0, end=7,
                    section=("Part", str(r % 3))) for r in range(20_000)]
    write_store(path, documents, chunks)
    return path


def test_lookups_use_keys_not_scans(store):
    """At a million chunks a scan costs seconds; the plans must be key searches."""
    connection = sqlite3.connect(store)
    plans = {sql: " ".join(row[-1] for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}", params))
             for sql, params in [("SELECT * FROM chunks WHERE row IN (?, ?, ?)", (1, 2, 3)),
                                 ("SELECT row FROM chunks WHERE doc_id IN (?) ORDER BY row", ("d00001",)),
                                 ("SELECT * FROM chunks WHERE doc_id = ? ORDER BY row", ("d00001",)),
                                 ("SELECT body FROM documents WHERE id = ?", ("d00001",))]}
    for sql, plan in plans.items():
        assert plan.startswith("SEARCH") and "SCAN" not in plan, (sql, plan)


def test_rows_come_back_in_the_order_asked_across_batches(store):
    chunks = ChunkStore(store)
    rows = list(range(19_999, 18_000, -1)) + [5, 5]
    assert [c.text for c in chunks.chunks(rows)] == [f"chunk {r}" for r in rows]
    assert chunks.chunks([7])[0].section == ("Part", "1")
    assert chunks.rows_of(["d00003", "d00001"]) == [*range(10, 20), *range(30, 40)]
    assert chunks.chunk_count() == 20_000


def test_the_document_cache_is_bounded(store):
    chunks = ChunkStore(store)
    for d in range(DOCUMENT_CACHE + 50):
        assert chunks.document(f"d{d:05d}").title == f"Doc {d}"
    assert len(chunks._documents) == DOCUMENT_CACHE
    assert chunks.document("d00000").id == "d00000"  # evicted, read again
    assert len(chunks.documents()) == 2000
    assert len(chunks._documents) == DOCUMENT_CACHE
    with pytest.raises(KeyError):
        chunks.document("nope")
