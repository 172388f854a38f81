"""The real text the benchmarks run on: the project corpus, its questions, and BEIR SciFact.

SciFact (5,183 abstracts, 1,109 claims; ../shared/bench/scifact) is written out as a corpus
folder of Markdown files so the real build path can index it. Its index, built once with the
real model and cached, supplies the real chunk and query embeddings that calibrate the
synthetic vector generator (bench/synthetic.py).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import yaml
from harness import CACHE_DIR, REPO_ROOT

PROJECT_CORPUS = REPO_ROOT / "corpus"
EVAL_QUESTIONS = REPO_ROOT / "eval" / "questions.jsonl"
SCIFACT = REPO_ROOT.parent / "shared" / "bench" / "scifact"


def eval_questions() -> list[str]:
    if not EVAL_QUESTIONS.exists():
        return []
    lines = EVAL_QUESTIONS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def scifact_claims() -> list[str]:
    lines = (SCIFACT / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


def scifact_claim_ids() -> list[str]:
    lines = (SCIFACT / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["_id"] for line in lines if line.strip()]


def scifact_qrels() -> dict[str, set[str]]:
    """Test qrels as ``{claim id: {document id}}`` (document ids as the corpus folder names them)."""
    lines = (SCIFACT / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]
    qrels: dict[str, set[str]] = {}
    for line in lines:
        query, doc, _ = line.split("\t")
        qrels.setdefault(query, set()).add(f"scifact-{doc}")
    return qrels


def latency_questions(n: int) -> list[str]:
    """``n`` distinct questions: the project's eval questions, topped up with SciFact claims.

    The claims are real human-written sentences of realistic length; against the project corpus
    most of them are off-topic, which is a fair load too (abstentions cost the same search).
    """
    questions = list(dict.fromkeys(eval_questions() + scifact_claims()))
    if len(questions) < n:
        raise SystemExit(f"only {len(questions)} distinct questions available, {n} asked")
    return questions[:n]


def write_scifact_corpus(folder: Path) -> Path:
    """SciFact's abstracts as one Markdown file each (front matter carries id and title)."""
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.glob("*.md")):
        return folder
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            front = yaml.safe_dump({"id": f"scifact-{doc['_id']}", "title": doc["title"].strip() or doc["_id"],
                                    "venue": "SciFact (BEIR)"}, allow_unicode=True, sort_keys=True)
            (folder / f"scifact-{doc['_id']}.md").write_text(f"---\n{front}---\n{doc['text']}\n",
                                                            encoding="utf-8")
    return folder


def query_offsets(chunks: np.ndarray, doc_rows: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How real questions sit off their answers, from SciFact's judged claims.

    For each judged claim ``q`` and its best gold chunk ``g``: ``a = q . g`` and the part of
    ``q`` orthogonal to ``g``, ``q - a g``. Documents are numbered in corpus-folder order (the
    build's order), recomputed here.
    """
    doc_ids = sorted(p.stem for p in (CACHE_DIR / "scifact-corpus").glob("*.md"))
    if len(doc_ids) != int(doc_rows.max()) + 1:
        raise SystemExit("bench/.cache/scifact-corpus does not match the cached embeddings; delete bench/.cache")
    number = {d: i for i, d in enumerate(doc_ids)}
    qrels = scifact_qrels()
    claims = queries[len(queries) - len(scifact_claim_ids()):]
    alphas, residuals = [], []
    for claim, query in zip(scifact_claim_ids(), claims, strict=True):
        rows = np.flatnonzero(np.isin(doc_rows, [number[d] for d in qrels.get(claim, ())]))
        if len(rows):
            gold = chunks[rows[np.argmax(chunks[rows] @ query)]]
            alphas.append(float(query @ gold))
            residuals.append(query - alphas[-1] * gold)
    return np.asarray(alphas, dtype=np.float32), np.asarray(residuals, dtype=np.float32)


def real_embeddings() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(chunk_vectors, chunk_doc_rows, query_vectors)`` from the real model on SciFact.

    Built once (a few minutes on 2 cores) with the real build path and cached under
    bench/.cache; ``chunk_doc_rows`` numbers each chunk's document 0..D-1.
    """
    cached = CACHE_DIR / "scifact-embeddings.npz"
    if cached.exists():
        data = np.load(cached)
        return data["chunks"], data["doc_rows"], data["queries"]
    from rag.build import build_index
    from rag.embedding import load_embedder
    from rag.index_store import current_generation, load_vectors
    from rag.settings import Settings
    from rag.store import ChunkStore

    settings = Settings(corpus_dir=write_scifact_corpus(CACHE_DIR / "scifact-corpus"),
                        index_dir=CACHE_DIR / "scifact-index")
    embedder = load_embedder(settings)
    build_index(settings, embedder)
    folder = current_generation(settings.index_dir)
    store = ChunkStore(folder / "store.sqlite")
    doc_ids = store.doc_ids_by_row()
    store.close()
    numbering = {d: i for i, d in enumerate(dict.fromkeys(doc_ids))}
    chunks = np.asarray(load_vectors(folder), dtype=np.float32)
    queries = embedder.encode(eval_questions() + scifact_claims())
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.savez(cached, chunks=chunks, doc_rows=np.asarray([numbering[d] for d in doc_ids]), queries=queries)
    return chunks, np.asarray([numbering[d] for d in doc_ids]), queries
