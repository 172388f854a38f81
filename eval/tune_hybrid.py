"""Choose the hybrid retrieval settings by the project eval, and record the comparison.

    python eval/tune_hybrid.py [--sizes 500 600 700]

For each chunk size it builds a throw-away index with the packaged model, then scores on
eval/questions.jsonl: dense alone, BM25 alone (two parameter sets), and hybrid with convex
fusion (dense weight x candidate depth) and with reciprocal rank fusion. Writes
eval/reports/hybrid-sweep.json and .md, best configuration first.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import sys
import tempfile
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPORTS = REPO / "eval" / "reports"
WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7)
DEPTHS = (20, 50)
BM25_PARAMS = ((0.9, 0.4), (1.5, 0.75))  # Anserini's BEIR setting; bm25s's defaults


class CachedEmbedder:
    """Remembers question vectors: every configuration asks the same questions."""

    def __init__(self, embedder) -> None:
        self._embedder, self.name, self.dimension = embedder, embedder.name, embedder.dimension
        self._cache: dict[str, object] = {}

    def encode(self, texts):
        if len(texts) != 1:
            return self._embedder.encode(texts)
        if texts[0] not in self._cache:
            self._cache[texts[0]] = self._embedder.encode(texts)
        return self._cache[texts[0]]


def _text_of(store, source_id: str) -> str:
    return store.document(source_id).text


def _search(retriever, template, question: str):
    """One configuration's search: ``template`` with this question."""
    return retriever.search(dataclasses.replace(template, question=question))


def sweep(sizes: list[int]) -> list[dict]:
    from rag.assistant import open_assistant
    from rag.build import lexical_text
    from rag.embedding import load_embedder
    from rag.eval.questions import DEFAULT_QUESTIONS, load_questions, locate_evidence
    from rag.eval.retrieval import rank_all, score_retrieval
    from rag.lexical import LexicalIndex
    from rag.retrieve import Retriever, SearchRequest
    from rag.settings import Settings

    base = Settings.from_env()
    embedder = CachedEmbedder(load_embedder(base))
    # Tuning reads the tuning split only; the held-out split is for reporting.
    questions = [q for q in load_questions(DEFAULT_QUESTIONS) if q.split == "tune"]
    rows = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as folder:
            settings = base.replace(index_dir=Path(folder), chunk_size=size, chunk_overlap=size // 5)
            session, _ = open_assistant(settings, embedder)
            store = session.index.store
            chunks = store.chunks(list(range(session.index.manifest.chunk_count)))
            texts = [lexical_text(c, store.document(c.doc_id)) for c in chunks]

            spans = {q.id: locate_evidence(q, partial(_text_of, store)) for q in questions if q.answerable}
            for k1, b in BM25_PARAMS:
                lexical = LexicalIndex.build(texts, k1=k1, b=b)
                retriever = Retriever(dataclasses.replace(session.index, lexical=lexical), embedder)
                configs = [("dense", "-", 1.0, 50), ("bm25", "-", 0.0, 50), ("hybrid", "rrf", 0.5, 50)]
                configs += [("hybrid", "convex", w, c) for w, c in itertools.product(WEIGHTS, DEPTHS)]
                for mode, fusion, weight, depth in configs:
                    search = partial(_search, retriever, SearchRequest(
                        "?", k=10, mode=mode, candidates=depth, dense_weight=weight,
                        fusion="convex" if fusion == "-" else fusion))
                    metrics = score_retrieval(mode, "tune", questions, rank_all(questions, search), spans).metrics
                    rows.append({"chunk_size": size, "bm25_k1": k1, "bm25_b": b, "mode": mode,
                                 "fusion": fusion, "dense_weight": weight, "candidates": depth,
                                 **{name: round(value, 4) for name, value in metrics.items()}})
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return sorted(rows, key=lambda r: (-r["hit@1"], -r["mrr@10"], -r["ndcg@10"]))


def markdown(rows: list[dict]) -> str:
    head = ["chunk_size", "bm25_k1", "bm25_b", "mode", "fusion", "dense_weight", "candidates",
            "hit@1", "recall@5", "mrr@10", "ndcg@10"]
    lines = ["# Hybrid retrieval sweep (project eval, tuning split, answerable questions)", "",
             "Sorted by hit@1, then MRR@10. Produced by `python eval/tune_hybrid.py`.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[500, 600, 700])
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    sys.path.insert(0, str(REPO))
    rows = sweep(args.sizes)
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "hybrid-sweep.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    (REPORTS / "hybrid-sweep.md").write_text(markdown(rows), encoding="utf-8")
    print(markdown(rows[:15]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
