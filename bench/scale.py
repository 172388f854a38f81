"""Scale: exact vs approximate FAISS indexes and the chunk store at 10k, 100k and 1M chunks.

    python bench/scale.py                        # 10k, 50k, 100k, 1M (about 75 minutes on 2 cores)
    python bench/scale.py --sizes 10000 100000   # quicker
    python bench/scale.py --only-chosen          # just the shipped choice at each size

Vectors come from the seeded synthetic generator (bench/synthetic.py), fitted to real
all-MiniLM-L6-v2 embeddings of SciFact. Two query sets, each with exact flat top-10 as truth:

- ``real``: the project's eval questions and SciFact's claims, embedded by the real model.
  Their answers are not in a synthetic corpus, so they sit far from every chunk: the hard case.
- ``targeted``: 1,000 questions placed next to random chunks the way SciFact's judged claims
  sit next to their gold passages (bench/synthetic.py: targeted_queries): the usual case.

Per candidate index: build time, bytes per chunk, recall@10 for both sets, single-query latency
p50/p95 (one thread, as rag.vector_index.search_vectors runs it). Then the kind that
``rag.vector_index.choose_index_kind`` picks goes through the shipped build/save/load/search path,
source-filtered search is checked, and the chunk store is written, opened and looked up.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from corpora import query_offsets, real_embeddings
from harness import CACHE_DIR, offline_env, peak_rss_mb, summary_ms, table, timed, write_result
from synthetic import fit_vector_model, synthetic_documents, synthetic_vectors, targeted_queries

from rag.index_store import file_checksums

K = 10
SEED = 7
TARGETED = 1000
QuerySets = dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (queries, exact top-K rows)


def candidates(n: int) -> list[tuple[str, str, str, list[int]]]:
    """``(label, faiss factory string, search knob, knob values)`` compared at size ``n``."""
    nlist = max(16, round(np.sqrt(n)))  # ~sqrt(n) cells: k-means training stays under a minute at 1M
    return [
        ("flat", "Flat", "", [0]),
        ("hnsw32", "HNSW32,Flat", "efSearch", [16, 32, 64, 128, 256, 512]),
        ("hnsw32-sq8", "HNSW32,SQ8", "efSearch", [64, 128, 256, 512]),
        (f"ivf{nlist}", f"IVF{nlist},Flat", "nprobe", [8, 16, 32, 64, 128]),
        (f"ivf{nlist}-sq8", f"IVF{nlist},SQ8", "nprobe", [16, 32, 64, 128]),
        # PQ training costs minutes and its recall only falls with size: measured where it is cheap.
        *([(f"ivf{nlist}-pq48", f"IVF{nlist},PQ48", "nprobe", [16, 64])] if n <= 20_000 else []),
    ]


def exact_top(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    import faiss

    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    return flat.search(queries, K)[1]


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of the exact top-k found by the index (recall@k against flat, as in ann-benchmarks)."""
    return float(np.mean([len(set(f[f >= 0]) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def recalls(search, query_sets: QuerySets) -> dict[str, float]:
    """``recall@10 <set>`` for each query set; ``search(queries) -> rows``."""
    return {f"recall@10 {name}": round(recall_at_k(search(queries), truth), 4)
            for name, (queries, truth) in query_sets.items()}


def single_query_latency(search_one, queries: np.ndarray) -> dict[str, float]:
    """One query per call on one thread, as ``search_vectors`` runs it; the first few warm the caches."""
    from rag.vector_index import one_thread

    with one_thread():
        for q in queries[:5]:
            search_one(q)
        times = []
        for q in queries:
            began = time.perf_counter()
            search_one(q)
            times.append(time.perf_counter() - began)
    stats = summary_ms(times)
    return {"p50_ms": stats["p50_ms"], "p95_ms": stats["p95_ms"]}


def _set_knob(index, knob: str, value: int) -> None:
    import faiss

    if knob:
        faiss.ParameterSpace().set_index_parameter(index, knob, value)


def _file_bytes(index, folder: Path) -> int:
    import faiss

    path = folder / "probe.faiss"
    faiss.write_index(index, str(path))
    size = path.stat().st_size
    path.unlink()
    return size


def compare_indexes(vectors: np.ndarray, query_sets: QuerySets, latency_queries: np.ndarray,
                    folder: Path, skip: set[str]) -> list[dict]:
    import faiss

    rows = []
    for label, factory, knob, values in candidates(len(vectors)):
        if label in skip:
            continue
        index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
        if factory.startswith("HNSW"):
            faiss.downcast_index(index).hnsw.efConstruction = 80
        build_s, _ = timed(lambda index=index: (index.train(vectors), index.add(vectors)))
        size = _file_bytes(index, folder)
        for value in values:
            _set_knob(index, knob, value)
            row = {"index": label, "factory": factory, "knob": f"{knob}={value}" if knob else "",
                   **recalls(lambda q, index=index: index.search(q, K)[1], query_sets),
                   **single_query_latency(lambda q, index=index: index.search(q[None, :], K), latency_queries),
                   "bytes_per_chunk": round(size / len(vectors), 1), "build_s": round(build_s, 1)}
            rows.append(row)
            print("   ", row, flush=True)
        del index
        gc.collect()
    return rows


def chosen_kind(vectors: np.ndarray, query_sets: QuerySets, latency_queries: np.ndarray,
                folder: Path) -> tuple[object, dict]:
    """The shipped path: choose_index_kind -> build/save/load_vector_index -> search_vectors(depth=50)."""
    from rag.vector_index import (
        build_vector_index,
        choose_index_kind,
        load_vector_index,
        save_vector_index,
        search_vectors,
    )

    kind = choose_index_kind(len(vectors))
    build_s, index = timed(lambda: build_vector_index(vectors, kind))
    save_vector_index(index, folder / "vectors.faiss")
    size = (folder / "vectors.faiss").stat().st_size
    del index
    load_s, index = timed(lambda: load_vector_index(folder / "vectors.faiss", kind))

    def search(queries: np.ndarray) -> np.ndarray:
        return np.asarray([([r for r, _ in search_vectors(index, q, K)] + [-1] * K)[:K] for q in queries])

    # depth 50: what the pipeline asks for (Settings.candidates)
    latency = single_query_latency(lambda q: search_vectors(index, q, 50), latency_queries)
    return index, {"kind": kind, **recalls(search, query_sets), **latency,
                   "bytes_per_chunk": round(size / len(vectors), 1), "build_s": round(build_s, 1),
                   "load_s": round(load_s, 2)}


def filtered_search(index, vectors: np.ndarray, doc_rows: np.ndarray, queries: np.ndarray) -> list[dict]:
    """Dense search restricted to some sources (``rag search --source``) through the shipped path."""
    from rag.vector_index import rows_mask, search_vectors

    rng = np.random.default_rng(SEED)
    n_docs = int(doc_rows.max()) + 1
    rows = []
    for share in (1 / n_docs, 0.01, 0.2):
        chosen = rng.choice(n_docs, size=max(1, int(share * n_docs)), replace=False)
        allowed = np.flatnonzero(np.isin(doc_rows, chosen))
        found_share, times = [], []
        for q in queries[:100]:
            truth = set(allowed[np.argsort(-(vectors[allowed] @ q))[:K]].tolist())
            began = time.perf_counter()
            found = {r for r, _ in search_vectors(index, q, K, rows_mask(len(vectors), allowed))}
            times.append(time.perf_counter() - began)
            found_share.append(len(found & truth) / len(truth))
        stats = summary_ms(times)
        rows.append({"sources": len(chosen), "allowed_chunks": len(allowed),
                     "recall@10": round(float(np.mean(found_share)), 4), "p50_ms": stats["p50_ms"],
                     "p95_ms": stats["p95_ms"]})
    return rows


def chunk_store(n: int, folder: Path) -> dict:
    """Write, open and look up the SQLite chunk store at ``n`` chunks."""
    from rag.store import ChunkStore, write_store

    gen_s, (documents, chunks) = timed(lambda: synthetic_documents(n, SEED))
    path = folder / "store.sqlite"
    began = time.perf_counter()
    write_store(path, documents, chunks)
    write_s = time.perf_counter() - began
    doc_ids = [d.id for d in documents]
    documents = chunks = []  # let the million chunk objects go before the lookups
    gc.collect()
    open_s, store = timed(lambda: ChunkStore(path))
    first_s, _ = timed(lambda: store.chunks([n // 2]))
    rng = random.Random(SEED)
    lookups, documents, rows_of = [], [], []
    for _ in range(300):
        rows = rng.sample(range(n), 15)  # a search fetches k * 3 rows
        lookups.append(timed(lambda rows=rows: store.chunks(rows))[0])
        doc_id = rng.choice(doc_ids)
        documents.append(timed(lambda doc_id=doc_id: store.document(doc_id))[0])
        rows_of.append(timed(lambda doc_id=doc_id: store.rows_of([doc_id]))[0])
    store.close()
    return {"chunks": n, "write_s": round(write_s, 1), "write_chunks_per_s": round(n / write_s),
            "bytes_per_chunk": round(path.stat().st_size / n, 1), "open_ms": round(open_s * 1000, 3),
            "first_lookup_ms": round(first_s * 1000, 3), "lookup15_p50_ms": summary_ms(lookups)["p50_ms"],
            "lookup15_p95_ms": summary_ms(lookups)["p95_ms"], "document_p50_ms": summary_ms(documents)["p50_ms"],
            "rows_of_p50_ms": summary_ms(rows_of)["p50_ms"], "text_generation_s": round(gen_s, 1)}


def generator_check(real: np.ndarray, queries: np.ndarray, offsets, model) -> list[dict]:
    """The same indexes on real and synthetic vectors of the same size, with both query sets."""
    import faiss

    synthetic, _ = synthetic_vectors(model, len(real), SEED + 1)
    nlist = round(np.sqrt(len(real)))
    rows = []
    for name, data in (("real (SciFact, MiniLM)", real), ("synthetic", synthetic)):
        query_sets = {"real": queries, "targeted": targeted_queries(data, *offsets, TARGETED, SEED + 2)}
        flat = faiss.IndexFlatIP(data.shape[1])
        flat.add(data)
        self_scores, _ = flat.search(data[:: max(1, len(data) // 2000)], 2)
        indexes = {}
        for label, factory, knob, value in (("hnsw32 ef16", "HNSW32,Flat", "efSearch", 16),
                                            ("ivf nprobe4", f"IVF{nlist},Flat", "nprobe", 4),
                                            ("ivf-sq8 nprobe4", f"IVF{nlist},SQ8", "nprobe", 4)):
            indexes[label] = faiss.index_factory(data.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
            indexes[label].train(data)
            indexes[label].add(data)
            _set_knob(indexes[label], knob, value)
        for query_name, query_vectors in query_sets.items():
            scores, truth = flat.search(query_vectors, K)
            row = {"vectors": name, "queries": query_name, "n": len(data),
                   "chunk_nn_cos": round(float(self_scores[:, 1].mean()), 3),
                   "query_top1_cos": round(float(scores[:, 0].mean()), 3),
                   "query_top10_cos": round(float(scores[:, -1].mean()), 3)}
            for label, index in indexes.items():
                row[f"recall@10 {label}"] = round(recall_at_k(index.search(query_vectors, K)[1], truth), 4)
            rows.append(row)
    return rows


def measure_size(n: int, model, queries: np.ndarray, offsets, latency_queries: np.ndarray, folder: Path,
                 args: argparse.Namespace) -> dict:
    gen_s, (vectors, doc_rows) = timed(lambda: synthetic_vectors(model, n, SEED))
    targeted = targeted_queries(vectors, *offsets, TARGETED, SEED + 2)
    query_sets = {"real": (queries, exact_top(vectors, queries)), "targeted": (targeted, exact_top(vectors, targeted))}
    print(f"   vectors generated in {gen_s:.1f}s", flush=True)
    rows = [] if args.only_chosen else compare_indexes(vectors, query_sets, latency_queries, folder, set(args.skip))
    index, chosen = chosen_kind(vectors, query_sets, latency_queries, folder)
    filtered = filtered_search(index, vectors, doc_rows, queries)
    del index
    np.save(folder / "vectors.npy", vectors)
    del vectors
    gc.collect()
    store = chunk_store(n, folder)
    # what open_index hashes before serving (all but the BM25 files, which are not built here)
    chosen["checksum_s"] = round(timed(lambda: file_checksums(folder))[0], 2)
    chosen["generation_bytes_per_chunk"] = round(sum(p.stat().st_size for p in folder.iterdir()) / n, 1)
    if rows:
        print(table(f"Vector indexes at {n:,} chunks (recall@10 vs flat; latency: 1 query per call, 1 thread)",
                    rows, ["index", "knob", "recall@10 real", "recall@10 targeted", "p50_ms", "p95_ms",
                           "bytes_per_chunk", "build_s"]))
    print(table("Chosen by rag.vector_index.choose_index_kind, through search_vectors(depth=50)", [chosen],
                ["kind", "recall@10 real", "recall@10 targeted", "p50_ms", "p95_ms", "bytes_per_chunk", "build_s",
                 "load_s", "checksum_s", "generation_bytes_per_chunk"]))
    print(table("Source-filtered dense search (search_vectors with allowed rows)", filtered,
                ["sources", "allowed_chunks", "recall@10", "p50_ms", "p95_ms"]))
    print(table("Chunk store (SQLite)", [store], list(store)), "\n", flush=True)
    return {"indexes": rows, "chosen": chosen, "filtered": filtered, "store": store}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000, 1_000_000])
    parser.add_argument("--latency-queries", type=int, default=300)
    parser.add_argument("--skip", nargs="*", default=[], help="candidate labels to leave out")
    parser.add_argument("--only-chosen", action="store_true",
                        help="measure only the shipped choice (and the store), not every candidate")
    parser.add_argument("--name", default="scale", help="results file name (bench/results/NAME.json)")
    args = parser.parse_args(argv)
    offline_env()
    import faiss

    real, real_docs, queries = real_embeddings()
    offsets = query_offsets(real, real_docs, queries)
    latency_queries = queries[: args.latency_queries]
    model = fit_vector_model(real, real_docs, seed=SEED)
    print(f"real embeddings: {len(real):,} SciFact chunks, {len(queries):,} queries, {len(offsets[0])} judged "
          f"claims for targeted queries; faiss {faiss.__version__}", flush=True)
    check = [] if args.only_chosen else generator_check(real, queries, offsets, model)
    if check:
        print(table("Generator check: real vs synthetic vectors of the same size", check, list(check[0])), "\n")

    results = {"generator_check": check, "sizes": {}}
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for n in args.sizes:
        print(f"== {n:,} chunks", flush=True)
        with tempfile.TemporaryDirectory(dir=CACHE_DIR) as tmp:
            results["sizes"][str(n)] = measure_size(n, model, queries, offsets, latency_queries, Path(tmp), args)
        results["sizes"][str(n)]["peak_rss_mb"] = round(peak_rss_mb())
        write_result(args.name, {"k": K, "seed": SEED, "real_queries": len(queries), "targeted_queries": TARGETED,
                                 "latency_queries": len(latency_queries), **results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
