"""Public-benchmark runs: the project's own dense, BM25 and hybrid retrieval over a BEIR dataset.

The retrieval core is measured as it ships: dense search through :mod:`rag.vector_index`
(FAISS, cosine), BM25 through :mod:`rag.lexical`, hybrid through
:func:`rag.retrieve.convex_fusion`. Documents are whole BEIR records embedded as
``title + " " + text``, the way BEIR's ``SentenceBERT.encode_corpus`` and MTEB do, so the dense
figure is comparable to the published all-MiniLM-L6-v2 number. Scores come from ranx.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedding import Embedder, encode_batched
from rag.errors import RagError
from rag.eval.metrics import BEIR_METRICS, rank_scores
from rag.lexical import LexicalIndex
from rag.modes import MODES, Mode
from rag.retrieve import Candidates, convex_fusion
from rag.vector_index import build_vector_index, search_vectors

Progress = Callable[[int, int], None]
METRICS = BEIR_METRICS
DEPTH = 100  # candidates per retriever and ranked documents per query: recall@100 needs 100
ENCODE_BATCH = 256  # texts per encode call; the model sorts each call by length, so bigger is faster

# Published figures on the BEIR SciFact test split (300 queries); sources are quoted in
# ../shared/bench/scifact/README.md next to the data.
PUBLISHED: dict[str, dict[str, list[dict[str, object]]]] = {
    "scifact": {
        "bm25": [
            {
                "system": "BM25, Anserini flat (title+text in one field)",
                "ndcg@10": 0.6789,
                "recall@100": 0.9253,
                "source": "castorini/anserini regressions-beir-v1.0.0-scifact.flat",
            },
            {
                "system": "BM25, Anserini multifield",
                "ndcg@10": 0.6647,
                "recall@100": 0.9076,
                "source": "castorini/anserini regressions-beir-v1.0.0-scifact.multifield",
            },
            {
                "system": "BM25 (Elasticsearch), BEIR paper",
                "ndcg@10": 0.665,
                "recall@100": None,
                "source": "Thakur et al. 2021, BEIR, NeurIPS Datasets and Benchmarks",
            },
        ],
        "dense": [
            {
                "system": "sentence-transformers/all-MiniLM-L6-v2",
                "ndcg@10": 0.6451,
                "recall@100": None,
                "source": "MTEB leaderboard (SciFact, BEIR test split)",
            },
        ],
    },
}


@dataclass(frozen=True)
class BeirDataset:
    """A BEIR split: the corpus in file order, the judged queries and their qrels."""

    name: str
    doc_ids: tuple[str, ...]
    titles: tuple[str, ...]
    texts: tuple[str, ...]
    queries: Mapping[str, str]  # only queries judged in the split
    qrels: Mapping[str, Mapping[str, int]]

    def doc_texts(self) -> list[str]:
        """What both retrievers see: BEIR's ``(title + " " + text).strip()``."""
        return [f"{title} {text}".strip() for title, text in zip(self.titles, self.texts, strict=True)]


def _read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except (OSError, ValueError) as exc:
        raise RagError(f"cannot read {str(path)!r} as JSON lines ({exc.__class__.__name__}: {exc})") from None


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise RagError(f"cannot read qrels {str(path)!r} ({exc.__class__.__name__})") from None
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(lines, start=1):
        fields = line.split("\t")
        if number == 1 and fields[0] == "query-id" or not line.strip():
            continue
        try:
            query_id, doc_id, score = fields
            qrels.setdefault(query_id, {})[doc_id] = int(score)
        except ValueError:
            raise RagError(
                f"{path}:{number}: expected 'query-id<TAB>corpus-id<TAB>score', got {line!r}"
            ) from None
    return qrels


def load_beir(folder: Path, split: str = "test") -> BeirDataset:
    """Read ``corpus.jsonl[.gz]``, ``queries.jsonl`` and ``qrels/<split>.tsv`` from ``folder``."""
    corpus_path = next(
        (folder / n for n in ("corpus.jsonl", "corpus.jsonl.gz") if (folder / n).is_file()), None
    )
    if corpus_path is None:
        raise RagError(f"no corpus.jsonl or corpus.jsonl.gz in {str(folder)!r}; is it a BEIR dataset folder?")
    records = _read_jsonl(corpus_path)
    all_queries = {str(q["_id"]): q["text"] for q in _read_jsonl(folder / "queries.jsonl")}
    qrels = _read_qrels(folder / "qrels" / f"{split}.tsv")
    missing = sorted(set(qrels) - set(all_queries))
    if missing:
        raise RagError(f"qrels name {len(missing)} queries absent from queries.jsonl, e.g. {missing[0]!r}")
    return BeirDataset(
        name=folder.name,
        doc_ids=tuple(str(r["_id"]) for r in records),
        titles=tuple(r.get("title") or "" for r in records),
        texts=tuple(r.get("text") or "" for r in records),
        queries={qid: all_queries[qid] for qid in qrels},
        qrels=qrels,
    )


def slice_dataset(dataset: BeirDataset, n_docs: int) -> BeirDataset:
    """A small, self-consistent slice: the relevant documents of as many queries as fill half of
    ``n_docs``, then the earliest other documents as distractors. Queries keep all their judgments."""
    chosen: dict[str, None] = {}  # ordered set of doc ids
    queries: list[str] = []
    for qid in sorted(dataset.qrels, key=lambda q: (len(q), q)):
        relevant = [d for d, rel in dataset.qrels[qid].items() if rel > 0]
        if len(chosen.keys() | set(relevant)) > n_docs // 2:
            break
        chosen.update(dict.fromkeys(relevant))
        queries.append(qid)
    for doc_id in dataset.doc_ids:
        if len(chosen) >= n_docs:
            break
        chosen.setdefault(doc_id, None)
    rows = [i for i, d in enumerate(dataset.doc_ids) if d in chosen]
    return BeirDataset(
        name=f"{dataset.name}[{len(rows)} docs]",
        doc_ids=tuple(dataset.doc_ids[i] for i in rows),
        titles=tuple(dataset.titles[i] for i in rows),
        texts=tuple(dataset.texts[i] for i in rows),
        queries={q: dataset.queries[q] for q in queries},
        qrels={q: dataset.qrels[q] for q in queries},
    )


def _slug(text: str) -> str:
    """``text`` as a file-name part: runs of other characters become one hyphen."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def cached_embeddings(
    embedder: Embedder, texts: Sequence[str], cache_dir: Path | None, progress: Progress | None = None
) -> np.ndarray:
    """Encode ``texts``, reusing a ``.npy`` keyed by model name, dimension and a hash of the texts."""
    digest = hashlib.sha256(f"{embedder.name}\0{embedder.dimension}\0".encode())
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    path = cache_dir / f"{_slug(embedder.name)}-{digest.hexdigest()[:20]}.npy" if cache_dir else None
    if path is not None and path.is_file():
        vectors = np.load(path)
        if vectors.shape == (len(texts), embedder.dimension):
            return vectors
    vectors = encode_batched(embedder, texts, ENCODE_BATCH, progress)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npy")
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, vectors)
        os.replace(tmp, path)  # a killed run never leaves half a cache file under the real name
    return vectors


def _dense_runs(
    dataset: BeirDataset, embedder: Embedder, cache_dir: Path | None, progress: Progress | None
) -> dict[str, Candidates]:
    index = build_vector_index(cached_embeddings(embedder, dataset.doc_texts(), cache_dir, progress), "flat")
    query_ids = list(dataset.queries)
    vectors = encode_batched(embedder, [dataset.queries[q] for q in query_ids], ENCODE_BATCH)
    return {qid: search_vectors(index, vector, DEPTH) for qid, vector in zip(query_ids, vectors, strict=True)}


def _bm25_runs(dataset: BeirDataset, index: LexicalIndex) -> dict[str, Candidates]:
    return {qid: index.search(text, DEPTH) for qid, text in dataset.queries.items()}


def _second_stage_runs(dataset: BeirDataset, embedder: Embedder, lexical: LexicalIndex,
                       lists: Mapping[str, Mapping[str, Candidates]], fused: Mapping[str, Candidates],
                       cache_dir: Path | None = None) -> dict[str, Candidates]:
    """The product's hybrid ranking: the fused head re-ordered by :func:`rag.rescore.rescore`.

    Each document is one passage (title + text, as the first stage sees it); the questions are
    analysed without a lexicon, since SciFact's claims name no source of the corpus. The sentences'
    vectors are kept in ``cache_dir``: encoding them is nearly all of this stage's time, and they do
    not change when the rescorer's weights or depth do."""
    from rag.eval.cache import CachingEmbedder
    from rag.reader.analyser import QuestionAnalyser, question_stopwords
    from rag.rescore import RESCORE_DEPTH, above_the_tail, rescore
    from rag.types import Chunk

    texts = dataset.doc_texts()
    name = _slug(f"{embedder.name}-{dataset.name}")
    memo = CachingEmbedder(embedder, cache_dir / f"{name}-sentences.npz" if cache_dir else None)
    analyser, stopwords = QuestionAnalyser(), question_stopwords()
    runs = {}
    try:
        for qid, text in dataset.queries.items():
            head, tail = fused[qid][:RESCORE_DEPTH], fused[qid][RESCORE_DEPTH:]
            chunks = [Chunk(id=str(row), doc_id=str(row), start=0, end=len(texts[row]), text=texts[row],
                            section=()) for row, _ in head]
            own = {mode: lists[mode][qid] for mode in ("dense", "bm25")}
            head = rescore(head, own, chunks, analyser.analyse(text), lambda doc: texts[int(doc)], memo, lexical,
                           stopwords)
            runs[qid] = above_the_tail(head, tail)
    finally:
        memo.save()  # an interrupted run keeps what it encoded
    return runs


def score_runs(dataset: BeirDataset, ranked: Mapping[str, Candidates]) -> dict[str, float]:
    """nDCG@10 and recall@100 (ranx) of per-query ``(row, score)`` lists."""
    run = {
        qid: {dataset.doc_ids[row]: score for row, score in ranked.get(qid, [])[:DEPTH]}
        for qid in dataset.queries
    }
    means, _ = rank_scores(dataset.qrels, run, METRICS)
    return {name: round(value, 4) for name, value in means.items()}


def run_benchmark(
    dataset: BeirDataset,
    embedder: Embedder | None,
    modes: Sequence[str] = MODES,
    dense_weight: float = 0.5,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    second_stage: bool = False,
) -> dict[str, dict[str, float]]:
    """Metrics per mode, with the seconds its retrieval took (corpus embedding included in dense;
    hybrid only fuses the other two lists, so its time is the fusion alone). With ``second_stage``
    and hybrid, also ``hybrid+rescore``: the fused head re-ordered as the product does."""
    modes = [Mode.parse(m) for m in modes]
    lists: dict[str, dict[str, Candidates]] = {}
    results: dict[str, dict[str, float]] = {}
    lexical = LexicalIndex.build(dataset.doc_texts()) if {"bm25", "hybrid"} & set(modes) else None
    needed = set(modes) | ({"dense", "bm25"} if "hybrid" in modes else set())
    for mode in (m for m in MODES if m in needed):  # fixed order: hybrid fuses the other two lists
        began = time.perf_counter()
        if mode == "dense":
            if embedder is None:
                raise RagError("dense and hybrid modes need an embedder")
            lists[mode] = _dense_runs(dataset, embedder, cache_dir, progress)
        elif mode == "bm25":
            lists[mode] = _bm25_runs(dataset, lexical)
        else:
            lists[mode] = {
                qid: convex_fusion(lists["dense"][qid], lists["bm25"][qid], dense_weight)[:DEPTH]
                for qid in dataset.queries
            }
        seconds = round(time.perf_counter() - began, 2)  # retrieval only: scoring is not timed
        if mode in modes:
            results[mode] = {**score_runs(dataset, lists[mode]), "seconds": seconds}
    if second_stage and "hybrid" in modes:
        began = time.perf_counter()
        rescored = _second_stage_runs(dataset, embedder, lexical, lists, lists["hybrid"], cache_dir)
        results["hybrid+rescore"] = {**score_runs(dataset, rescored), "seconds": round(time.perf_counter() - began, 2)}
    return results


def benchmark_report(
    dataset: BeirDataset,
    results: Mapping[str, Mapping[str, float]],
    model_name: str,
    dense_weight: float,
    command: str,
) -> dict[str, Any]:
    """The JSON kept in ``eval/reports/``: our figures beside the published ones."""
    return {
        "benchmark": "beir",
        "dataset": dataset.name,
        "split": "test",
        "documents": len(dataset.doc_ids),
        "queries": len(dataset.queries),
        "judgments": sum(len(r) for r in dataset.qrels.values()),
        "model": model_name,
        "document_text": "title + ' ' + text (BEIR/MTEB), whole document, model truncation",
        "depth": DEPTH,
        "dense_weight": dense_weight,
        "metrics": list(METRICS),
        "modes": {mode: dict(values) for mode, values in results.items()},
        "published": PUBLISHED.get(dataset.name, {}),  # a slice is not comparable: none
        "command": command,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def format_table(report: Mapping[str, Any]) -> str:
    """A Markdown table: one row per mode, the published figures for that mode beside it, and the
    difference from the first (primary) reference."""
    lines = [
        f"BEIR {report['dataset']} ({report['queries']} queries, {report['documents']} documents)",
        "",
        "| mode | nDCG@10 | recall@100 | published nDCG@10 | Δ nDCG@10 | published recall@100 | seconds |",
        "|---|---:|---:|---|---:|---|---:|",
    ]
    for mode, values in report["modes"].items():
        refs = report["published"].get(mode, [])
        ndcg = "; ".join(f"{r['ndcg@10']} ({r['system']})" for r in refs) or "—"
        delta = f"{values['ndcg@10'] - refs[0]['ndcg@10']:+.4f}" if refs else "—"
        recall = "; ".join(f"{r['recall@100']}" for r in refs if r["recall@100"] is not None) or "—"
        lines.append(
            f"| {mode} | {values['ndcg@10']:.4f} | {values['recall@100']:.4f} | {ndcg} | {delta} | {recall} "
            f"| {values['seconds']:.1f} |"
        )
    return "\n".join(lines)
