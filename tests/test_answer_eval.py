"""Answer-level metrics and calibration on hand-made records, where every value is countable."""

from __future__ import annotations

import pytest

from rag.answer_eval import AnswerRecord, answer_metrics, calibrate, curve_point
from rag.evaluation import EvalQuestion, Evidence


def record(qid: str, answerable: bool, support: float, gold: bool = False, quotes: int = 1,
           verbatim: int = 1) -> AnswerRecord:
    evidence = (Evidence("s", "quote"),) if answerable else ()
    return AnswerRecord(EvalQuestion(qid, f"question {qid}?", answerable, evidence), support, gold, quotes,
                        verbatim)


RECORDS = [
    record("a1", True, 0.9, gold=True),
    record("a2", True, 0.6, gold=True),
    record("a3", True, 0.5, gold=False),
    record("a4", True, 0.3, gold=True),
    record("u1", False, 0.55),
    record("u2", False, 0.2),
]


def test_curve_point_counts_abstentions_strictly_below_the_threshold():
    point = curve_point(RECORDS, 0.5)
    assert point.abstained_when_unanswerable == 0.5  # u2 abstains, u1 (0.55) answers
    assert point.false_abstention == 0.25  # a4 only; a3 at exactly 0.5 answers
    assert point.gold_evidence_quoted == 0.5  # a1 and a2; a4 abstained, a3 quoted the wrong thing


def test_answer_metrics_count_verbatim_quotes_only_in_shown_answers():
    records = [*RECORDS, record("a5", True, 0.1, quotes=2, verbatim=0)]  # abstained: its quotes are never shown
    assert answer_metrics(records, 0.5)["verbatim_quotes"] == 1.0
    assert answer_metrics(records, 0.0)["verbatim_quotes"] == pytest.approx(6 / 8)


def test_calibration_takes_the_most_abstention_within_the_false_abstention_budget():
    # u2 (0.2) can be refused at no cost; catching u1 (0.55) as well costs a3 and a4.
    for budget in (0.0, 0.25):
        best = calibrate(RECORDS, max_false_abstention=budget)
        assert (best.threshold, best.abstained_when_unanswerable, best.false_abstention) == (0.3, 0.5, 0.0)
    best = calibrate(RECORDS, max_false_abstention=0.5)
    assert (best.threshold, best.abstained_when_unanswerable, best.false_abstention) == (0.6, 1.0, 0.5)
