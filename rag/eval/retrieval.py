"""Retrieval scored against evidence quotes: relevance by character-span overlap, metrics by ranx.

A hit is relevant to an evidence item when it comes from the same source and its ``[start, end)``
overlaps the quote's span in the document text, so the labels survive any change of chunking
(the reference recipes' 1000-character chunks are judged by the same rule). In ranx's TREC shape
the evidence items are the relevant "documents" (``q001#0``, ``q001#1``...): a hit that covers an
item for the first time is recorded under that item's key at its rank; any other hit is recorded
under its own chunk id and counts as non-relevant. Scores are ``1 / rank``, so ranx orders a run
exactly as the retriever did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from rag.eval.metrics import RETRIEVAL_METRICS, rank_scores
from rag.eval.questions import EvalQuestion, EvidenceSpan
from rag.types import Chunk, Hit

Search = Callable[[str], Sequence[Hit]]  # question -> ranked hits, 1-based ranks
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Failure:
    """An answerable question whose first hit covers none of its evidence."""

    question: EvalQuestion
    spans: tuple[EvidenceSpan, ...]
    top: Hit | None
    first_relevant_rank: int | None  # None: no evidence anywhere in the hits


@dataclass(frozen=True)
class RetrievalScores:
    """One retrieval system (a mode or a reference recipe) on one split of the questions."""

    system: str
    split: str
    metrics: Mapping[str, float]  # metric name -> mean over the split's answerable questions
    per_question: Mapping[str, Mapping[str, float]]
    failures: tuple[Failure, ...]
    mean_passage_chars: float  # the length of what it ranks: longer passages make hit@1 easier


def covers(chunk: Chunk, span: EvidenceSpan) -> bool:
    """Same source and the half-open ranges ``[start, end)`` share at least one character."""
    return chunk.doc_id == span.source_id and chunk.start < span.end and span.start < chunk.end


def judge(hits: Iterable[Hit], spans: Sequence[EvidenceSpan]) -> dict[str, float]:
    """One question's ranx run entry: ``{evidence key or chunk id: 1 / rank}``."""
    entry: dict[str, float] = {}
    for hit in hits:
        new = [s.key for s in spans if s.key not in entry and covers(hit.chunk, s)]
        for key in new or [hit.chunk.id]:
            entry.setdefault(key, 1.0 / hit.rank)
    return entry


def qrels_of(spans: Mapping[str, Sequence[EvidenceSpan]]) -> dict[str, dict[str, int]]:
    return {qid: {s.key: 1 for s in question_spans} for qid, question_spans in spans.items()}


def failure_of(question: EvalQuestion, spans: tuple[EvidenceSpan, ...], hits: Sequence[Hit]) -> Failure | None:
    ranks = [h.rank for h in hits if any(covers(h.chunk, s) for s in spans)]
    if ranks and ranks[0] == 1:
        return None
    return Failure(question, spans, hits[0] if hits else None, ranks[0] if ranks else None)


def rank_all(questions: Sequence[EvalQuestion], search: Search,
             progress: Progress | None = None) -> dict[str, list[Hit]]:
    """Each answerable question's ranked hits (one search each; splits are scored from these)."""
    ranked = {}
    answerable = [q for q in questions if q.answerable]
    for done, question in enumerate(answerable, start=1):
        ranked[question.id] = list(search(question.question))
        if progress:
            progress(done, len(answerable))
    return ranked


def score_retrieval(system: str, split: str, questions: Sequence[EvalQuestion],
                    ranked: Mapping[str, Sequence[Hit]],
                    spans: Mapping[str, tuple[EvidenceSpan, ...]]) -> RetrievalScores:
    """Metrics of ``ranked`` over the answerable ``questions`` (unanswerable ones are left out)."""
    answerable = [q for q in questions if q.answerable]
    run = {q.id: judge(ranked[q.id], spans[q.id]) for q in answerable}
    means, per_question = rank_scores(qrels_of({q.id: spans[q.id] for q in answerable}), run,
                                      RETRIEVAL_METRICS)
    failures = tuple(f for q in answerable if (f := failure_of(q, spans[q.id], ranked[q.id])))
    lengths = [h.chunk.end - h.chunk.start for q in answerable for h in ranked[q.id]]
    return RetrievalScores(system, split, means, per_question, failures,
                           sum(lengths) / len(lengths) if lengths else 0.0)
