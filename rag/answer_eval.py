"""Answer-level evaluation: honest abstention, gold evidence in the quotes, verbatim quotes.

Answers are composed once with abstention switched off, so every question has its support
score and the quotes it would show; the abstention rule ``support < threshold`` is then
applied here. That is exactly the rule :func:`rag.answer.compose_answer` applies, so the
metrics at the configured threshold equal the live behaviour, and the same records give the
whole trade-off curve for calibration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.answer import verified
from rag.evaluation import EvalQuestion, EvidenceSpan, Progress, locate_evidence
from rag.types import Answer

Ask = Callable[[str], Answer]  # composes an answer that never abstains


@dataclass(frozen=True)
class AnswerRecord:
    question: EvalQuestion
    support: float
    gold_quoted: bool  # a quote overlaps a gold evidence span (answerable questions only)
    quotes: int
    verbatim: int


@dataclass(frozen=True)
class CurvePoint:
    threshold: float
    abstained_when_unanswerable: float
    false_abstention: float
    gold_evidence_quoted: float


def _overlaps_gold(answer: Answer, spans: Sequence[EvidenceSpan]) -> bool:
    return any(c.document.id == s.source_id and c.start < s.end and s.start < c.end
               for c in answer.citations for s in spans)


def record_answers(questions: Sequence[EvalQuestion], ask: Ask, text_of: Callable[[str], str | None],
                   progress: Progress | None = None) -> list[AnswerRecord]:
    records = []
    for done, question in enumerate(questions, start=1):
        answer = ask(question.question)
        spans = locate_evidence(question, text_of) if question.answerable else ()
        records.append(AnswerRecord(
            question=question,
            support=answer.support,
            gold_quoted=_overlaps_gold(answer, spans),
            quotes=len(answer.citations),
            verbatim=sum(verified(c) for c in answer.citations),
        ))
        if progress:
            progress(done, len(questions))
    return records


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def curve_point(records: Sequence[AnswerRecord], threshold: float) -> CurvePoint:
    """Metrics when answers abstain below ``threshold``.

    ``gold_evidence_quoted`` is over all answerable questions: an abstention quotes nothing.
    """
    answerable = [r for r in records if r.question.answerable]
    unanswerable = [r for r in records if not r.question.answerable]
    return CurvePoint(
        threshold=threshold,
        abstained_when_unanswerable=_share([r.support < threshold for r in unanswerable]),
        false_abstention=_share([r.support < threshold for r in answerable]),
        gold_evidence_quoted=_share([r.support >= threshold and r.gold_quoted for r in answerable]),
    )


def answer_metrics(records: Sequence[AnswerRecord], threshold: float) -> dict[str, float]:
    point = curve_point(records, threshold)
    quotes = sum(r.quotes for r in records if r.support >= threshold)
    verbatim = sum(r.verbatim for r in records if r.support >= threshold)
    return {
        "abstained_when_unanswerable": point.abstained_when_unanswerable,
        "false_abstention": point.false_abstention,
        "gold_evidence_quoted": point.gold_evidence_quoted,
        "verbatim_quotes": verbatim / quotes if quotes else 1.0,
    }


def abstention_curve(records: Sequence[AnswerRecord], steps: int = 41) -> list[CurvePoint]:
    """The trade-off at evenly spaced thresholds across the observed support range."""
    supports = [r.support for r in records]
    low, high = min(supports), max(supports)
    return [curve_point(records, low + (high - low) * i / (steps - 1)) for i in range(steps)]


def calibrate(records: Sequence[AnswerRecord], max_false_abstention: float) -> CurvePoint:
    """The threshold that abstains on the most unanswerable questions within the false-abstention
    budget (ties: the lowest such threshold, which keeps the most answers)."""
    candidates = sorted({r.support for r in records} | {0.0})
    points = [curve_point(records, t) for t in candidates]
    allowed = [p for p in points if p.false_abstention <= max_false_abstention]
    return max(allowed, key=lambda p: (p.abstained_when_unanswerable, -p.threshold))


def as_row(point: CurvePoint) -> dict[str, float]:
    return {k: round(v, 4) for k, v in dataclasses.asdict(point).items()}


def answers_section(records: Sequence[AnswerRecord], threshold: float, mode: str,
                    max_false_abstention: float = 0.05) -> dict:
    """The report's ``answers`` section: metrics at the configured threshold, the calibrated
    operating point within the false-abstention budget, and the whole trade-off curve."""
    return {
        "questions": len(records),
        "mode": mode,
        "threshold": threshold,
        "metrics": {k: round(v, 4) for k, v in answer_metrics(records, threshold).items()},
        "calibrated": {"max_false_abstention": max_false_abstention,
                       **as_row(calibrate(records, max_false_abstention))},
        "curve": [as_row(p) for p in abstention_curve(records)],
    }
