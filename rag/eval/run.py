"""One evaluation run over an opened session: every mode and reference recipe ranks each question
once, answers are composed once in the default mode, and each split is scored from those. The CLI
and the page both call :func:`run_evaluation`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rag.eval.answers import record_answers, score_answers
from rag.eval.questions import EvalDataError, EvalQuestion, locate_evidence
from rag.eval.recipes import reference_recipes
from rag.eval.report import EvalReport, split_counts
from rag.eval.retrieval import rank_all, score_retrieval
from rag.modes import Mode

if TYPE_CHECKING:
    from rag.assistant import Assistant
    from rag.index_store import Index

Progress = Callable[[int, int], None]


def index_facts(index: Index) -> dict[str, Any]:
    """What the report records about the index it measured."""
    manifest = index.manifest
    return {"generation": index.generation, "model": manifest.model_name, "chunks": manifest.chunk_count,
            "chunk_size": manifest.chunker.size, "chunk_overlap": manifest.chunker.overlap,
            "built_at": manifest.built_at}


def splits_of(questions: Sequence[EvalQuestion]) -> dict[str, list[EvalQuestion]]:
    """``tune`` and ``test`` when every question has its split, else everything as ``all``."""
    if all(q.split for q in questions):
        return {name: [q for q in questions if q.split == name] for name in ("tune", "test")}
    return {"all": list(questions)}


def _stepper(progress: Progress | None, total: int):
    done = [0]

    def step(offset: int):
        def update(count: int, _: int) -> None:
            done[0] = offset + count
            if progress:
                progress(done[0], total)
        return update
    return step


def run_evaluation(session: Assistant, questions: Sequence[EvalQuestion], questions_file: str,
                   modes: Sequence[Mode], k: int = 10, recipes: bool = True,
                   progress: Progress | None = None, answers: bool = True) -> EvalReport:
    """Rank, answer and score; ``recipes`` adds the reference recipes beside the modes, and
    ``answers=False`` scores retrieval alone (composing answers is most of a run's time)."""
    if k < 1:
        raise EvalDataError(f"k must be a positive number of hits, got {k!r}")
    store = session.index.store

    def text_of(source_id: str) -> str | None:
        try:
            return store.document(source_id).text
        except KeyError:
            return None

    spans = {q.id: locate_evidence(q, text_of) for q in questions if q.answerable}
    from rag.assistant import RequestOptions

    def search(question: str, mode: Mode) -> list:
        return [passage.hit for passage in session.search(question, RequestOptions(k=k, mode=mode))]

    searches = {str(mode): (lambda question, m=mode: search(question, m)) for mode in modes}
    if recipes:
        searches |= reference_recipes(store.documents(), session.embedder, k)
    answerable = len(spans)
    step = _stepper(progress, answerable * len(searches) + (len(questions) if answers else 0))
    ranked = {name: rank_all(questions, search, step(i * answerable)) for i, (name, search) in
              enumerate(searches.items())}
    answer_mode = session.settings.mode
    records = {r.question.id: r for r in record_answers(questions, session.ask, spans,
                                                        step(answerable * len(searches)))} if answers else {}
    groups = splits_of(questions)
    return EvalReport(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        questions_file=questions_file,
        counts={split: split_counts(members) for split, members in groups.items()},
        index=index_facts(session.index),
        k=k,
        answer_mode=str(answer_mode),
        retrieval=tuple(score_retrieval(name, split, members, ranked[name], spans)
                        for split, members in groups.items() for name in searches),
        answers=tuple(score_answers(split, [records[q.id] for q in members]) for split, members in groups.items()
                      if records),
    )
