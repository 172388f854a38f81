"""Past one machine: builds through Ray against local builds, search on Milvus Lite against FAISS.

    python bench/scale_out.py                       # ~400 SciFact chunks built twice, 50k-row search (~15 min)
    python bench/scale_out.py --docs 60 --rows 5000  # a quick look

Build: the same SciFact abstracts built by ``rag.build.build_index`` with the real model, in
this process and through a private local Ray (2 replicas, one CPU each), in the same run. Ray's
start is timed apart, and the progress callback gives the time to the first embedded batch (the
replicas loading the model) and the steady rate after it, which is what N workers multiply.

Search: synthetic unit vectors (a mixture of 256 topics in 384 dimensions) and Zipf pseudo-word
passages at ``--rows`` chunks, indexed the way each store indexes a generation (IVF at and above
40k chunks, exact below), 200 targeted single queries each: dense p50/p95 and recall@10 against
exact search, BM25 p50/p95, the overlap of both stores' BM25 top 10 and the share of questions
whose top 10 BM25 scores agree (rows may differ only among equal scores); then Milvus Lite with
all 200 queries in one call (ms per query), the way a bulk caller such as an eval would batch.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from corpora import SCIFACT
from harness import RESULTS_DIR, offline_env, summary_ms, table, timed, write_result
from synthetic import synthetic_documents

QUERIES = 200
DIMENSION = 384


def write_scifact_subset(folder: Path, docs: int) -> Path:
    """The first ``docs`` SciFact abstracts as Markdown sources."""
    folder.mkdir(parents=True)
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        for _, line in zip(range(docs), handle, strict=False):
            doc = json.loads(line)
            front = yaml.safe_dump({"id": f"scifact-{doc['_id']}", "title": doc["title"].strip() or doc["_id"]},
                                   allow_unicode=True, sort_keys=True)
            (folder / f"scifact-{doc['_id']}.md").write_text(f"---\n{front}---\n{doc['text']}\n", encoding="utf-8")
    return folder


def _recorder() -> tuple[list[tuple[float, int]], object]:
    marks: list[tuple[float, int]] = []
    return marks, lambda done, total: marks.append((time.perf_counter(), done))


def measure_builds(docs: int, workers: int, work: Path) -> dict:
    from rag.build import build_index
    from rag.embedding import load_embedder
    from rag.ray_build import ray_cluster
    from rag.settings import Settings

    corpus = write_scifact_subset(work / "corpus", docs)
    local = Settings(corpus_dir=corpus, index_dir=work / "local")
    embedder = load_embedder(local)
    marks, progress = _recorder()
    local_s, report = timed(lambda: build_index(local, embedder, progress))
    rows = {"local": {"chunks": report.chunk_count, "build_s": round(local_s, 2),
                      "chunks_per_s": round(report.chunk_count / local_s, 1)}}
    on_ray = local.replace(index_dir=work / "ray", ray="local", ray_workers=workers, ray_object_store_mb=256)
    began = time.perf_counter()
    with ray_cluster("local", on_ray.ray_object_store_mb):
        start_s = time.perf_counter() - began
        marks, progress = _recorder()
        ray_s, report = timed(lambda: build_index(on_ray, embedder, progress))
        first_batch_s = marks[0][0] - (began + start_s) if marks else None
        steady = ((marks[-1][1] - marks[0][1]) / (marks[-1][0] - marks[0][0])
                  if len(marks) > 1 and marks[-1][0] > marks[0][0] else None)
    total_s = time.perf_counter() - began
    rows[f"ray x{workers}"] = {
        "chunks": report.chunk_count, "build_s": round(ray_s, 2), "chunks_per_s": round(report.chunk_count / ray_s, 1),
        "ray_start_s": round(start_s, 2), "to_first_batch_s": round(first_batch_s, 2) if first_batch_s else None,
        "steady_chunks_per_s": round(steady, 1) if steady else None,
        "with_start_chunks_per_s": round(report.chunk_count / total_s, 1)}
    rows["ratio ray/local chunks/s"] = {"chunks_per_s": round(rows[f"ray x{workers}"]["chunks_per_s"]
                                                             / rows["local"]["chunks_per_s"], 3)}
    return rows


def synthetic_index_data(rows: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(vectors, targeted query vectors, passages, their source ids)."""
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(256, DIMENSION)).astype(np.float32)
    vectors = topics[rng.integers(0, 256, rows)] + 0.9 * rng.normal(size=(rows, DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    picks = rng.integers(0, rows, QUERIES)
    queries = vectors[picks] + 0.05 * rng.normal(size=(QUERIES, DIMENSION)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    _, chunks = synthetic_documents(rows, seed)
    return vectors, queries.astype(np.float32), [c.text for c in chunks], [c.doc_id for c in chunks]


def time_store(dense, bm25, queries: np.ndarray, questions: list[str], exact: list[set[int]]) -> tuple[dict, list]:
    """Latency of single dense and BM25 queries, dense recall@10 against exact search, BM25 top 10s."""
    dense(queries[0]), bm25(questions[0])  # warm caches and connections
    dense_times, found = zip(*(timed(lambda q=q: dense(q)) for q in queries), strict=True)
    bm25_times, tops = zip(*(timed(lambda t=t: bm25(t)) for t in questions), strict=True)
    recall = np.mean([len({r for r, _ in f} & e) / 10 for f, e in zip(found, exact, strict=True)])
    dense_ms, bm25_ms = summary_ms(dense_times), summary_ms(bm25_times)
    return {"dense_p50_ms": dense_ms["p50_ms"], "dense_p95_ms": dense_ms["p95_ms"],
            "recall@10": round(float(recall), 4), "bm25_p50_ms": bm25_ms["p50_ms"],
            "bm25_p95_ms": bm25_ms["p95_ms"]}, list(tops)


def time_batched(store, queries: np.ndarray, questions: list[str], single_tops: list) -> dict:
    """All queries in one search call (``dense_many``/``lexical_many``): Milvus Lite's per-call
    pass over every row is paid once; the BM25 rows must be those of the single queries."""
    dense_s, _ = timed(lambda: store.dense_many(queries, 10, None))
    bm25_s, tops = timed(lambda: store.lexical_many(questions, 10, None))
    same = np.mean([[r for r, _ in a] == [r for r, _ in b] for a, b in zip(tops, single_tops, strict=True)])
    return {"dense_batched_ms_per_query": round(dense_s * 1000 / len(queries), 3),
            "bm25_batched_ms_per_query": round(bm25_s * 1000 / len(questions), 3),
            "bm25_batched_same_rows": round(float(same), 4)}


def measure_search(rows: int, work: Path) -> dict:
    from rag.lexical import LexicalIndex
    from rag.settings import Settings
    from rag.stores.milvus import MilvusStore, collection_name, dense_search_params
    from rag.stores.milvus_publish import MilvusPublisher
    from rag.vector_index import build_vector_index, choose_index_kind, search_vectors

    vectors, queries, texts, doc_ids = synthetic_index_data(rows)
    kind = choose_index_kind(rows)
    exact = [set(np.argsort(-(vectors @ q))[:10].tolist()) for q in queries]
    words = [t.split() for t in texts[:QUERIES]]
    questions = [" ".join(w[i] for i in range(0, min(len(w), 12), 3)) for w in words]

    faiss_s, faiss_index = timed(lambda: build_vector_index(vectors, kind))
    bm25s_s, lexical = timed(lambda: LexicalIndex.build(texts))
    local, local_tops = time_store(lambda q: search_vectors(faiss_index, q, 10), lambda t: lexical.search(t, 10),
                                   queries, questions, exact)
    settings = Settings(index_dir=work, store="milvus", milvus_uri=str(work / "bench-milvus.db"), milvus_timeout=600)
    publisher = MilvusPublisher(settings)
    try:
        milvus_s, _ = timed(lambda: publisher.stage("gen-1", vectors, texts, doc_ids, kind))
        store = MilvusStore(publisher.connection, collection_name(settings.milvus_alias, "gen-1"),
                            dense_search_params(kind, rows))
        milvus, milvus_tops = time_store(lambda q: store.dense(q, 10, None), lambda t: store.lexical(t, 10, None),
                                         queries, questions, exact)
        milvus |= time_batched(store, queries, questions, milvus_tops)
    finally:
        publisher.close()
    pairs = list(zip(local_tops, milvus_tops, strict=True))
    overlap = np.mean([len({r for r, _ in a} & {r for r, _ in b}) / max(1, len(a)) for a, b in pairs])
    # Rows may differ only among equal scores (ties, or float32 rounding): the scores must agree.
    same_scores = np.mean([len(a) == len(b) and np.allclose([x for _, x in a], [x for _, x in b], rtol=1e-4)
                           for a, b in pairs])
    return {"faiss + bm25s": {"rows": rows, "index": kind, "build_s": round(faiss_s + bm25s_s, 2), **local},
            "milvus lite": {"rows": rows, "index": kind, "build_s": round(milvus_s, 2), **milvus,
                            "bm25_top10_overlap": round(float(overlap), 4),
                            "bm25_top10_same_scores": round(float(same_scores), 4)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=250, help="SciFact abstracts to build (default 250)")
    parser.add_argument("--workers", type=int, default=2, help="Ray replicas (default 2, one per core here)")
    parser.add_argument("--rows", type=int, default=50_000, help="chunks in the search comparison (default 50k)")
    parser.add_argument("--skip-builds", action="store_true",
                        help="keep the build figures of bench/results/scale_out.json, measure search only")
    args = parser.parse_args()
    offline_env()
    work = Path(tempfile.mkdtemp(prefix="rag-scale-out-"))
    saved = RESULTS_DIR / "scale_out.json"
    payload = ({k: v for k, v in json.loads(saved.read_text()).items() if k in ("docs", "workers", "builds")}
               if args.skip_builds else {})
    try:
        if not args.skip_builds:
            payload = {"docs": args.docs, "workers": args.workers,
                       "builds": measure_builds(args.docs, args.workers, work / "build")}
            write_result("scale_out", payload)  # kept even if the search part is stopped
        print(table("Build: the same corpus locally and through a local Ray",
                    [{"path": k, **v} for k, v in payload["builds"].items()],
                    ["path", "chunks", "build_s", "chunks_per_s", "ray_start_s", "to_first_batch_s",
                     "steady_chunks_per_s", "with_start_chunks_per_s"]))
        (work / "search").mkdir()
        search = measure_search(args.rows, work / "search")
        print(table(f"Search: {args.rows:,} chunks, {QUERIES} single queries",
                    [{"store": k, **v} for k, v in search.items()],
                    ["store", "index", "build_s", "dense_p50_ms", "dense_p95_ms", "recall@10", "bm25_p50_ms",
                     "bm25_p95_ms", "bm25_top10_overlap", "bm25_top10_same_scores", "dense_batched_ms_per_query",
                     "bm25_batched_ms_per_query"]))
        path = write_result("scale_out", {**payload, "search": search})
        print(f"wrote {path}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
