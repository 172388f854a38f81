"""One evaluation run over an opened session: retrieval per mode, then answers in the default
mode, assembled into the report. The CLI and the page both call :func:`run_evaluation`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rag.answer_eval import answers_section, record_answers
from rag.assistant import RequestOptions
from rag.eval_report import build_report, index_facts
from rag.evaluation import EvalQuestion, ModeResult, Progress, evaluate_session

if TYPE_CHECKING:
    from rag.assistant import Assistant as Session


def run_evaluation(session: Session, questions: Sequence[EvalQuestion], questions_file: str,
                   modes: Sequence[str], k: int = 10,
                   progress: Progress | None = None) -> tuple[dict[str, Any], list[ModeResult]]:
    """The full report and the per-mode retrieval results (for the CI gate)."""
    retrieval_steps = sum(q.answerable for q in questions) * len(modes)
    total = retrieval_steps + len(questions)

    def step(offset: int):
        return (lambda done, _: progress(offset + done, total)) if progress else None

    results = evaluate_session(session, questions, modes, k, step(0))
    # Compose without abstaining so each question keeps its support score and quotes; the
    # threshold is applied afterwards, exactly as compose_answer applies it.
    never_abstain = dataclasses.replace(session.answer_settings, abstain_below=float("-inf"))
    mode = session.settings.mode
    options = RequestOptions(mode=mode)
    records = record_answers(questions, lambda q: session.ask(q, options, answer_settings=never_abstain),
                             lambda source_id: _text_of(session, source_id), step(retrieval_steps))
    answers = answers_section(records, session.settings.abstain_below, mode)
    report = build_report(results, questions, questions_file, k, index_facts(session.index), answers)
    return report, results


def _text_of(session: Session, source_id: str) -> str | None:
    try:
        return session.index.store.document(source_id).text
    except KeyError:
        return None
