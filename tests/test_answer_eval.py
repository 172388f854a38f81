"""Answer-level metrics on hand-made answers, where every value is countable."""

from __future__ import annotations

import pytest

from rag.eval.answers import answer_metrics, record_answer
from rag.eval.questions import EvalQuestion, Evidence, EvidenceSpan
from rag.types import Answer, Citation, Document

TEXT = ("Intro\n\nCats sleep for most of the day. A house cat sleeps about fifteen hours.\n\n"
        "Cats hunt at dawn.\n\nNotes on Cats (Lovelace et al., 2020)")
DOC = Document("cats", "Notes on Cats", TEXT)
SLEEP = TEXT.index("Cats sleep")
HOURS = TEXT.index("A house cat")
CITE_LINE = TEXT.index("Notes on Cats (")
GOLD = (EvidenceSpan("a#0", "cats", HOURS, HOURS + 39, TEXT[HOURS:HOURS + 39]),)


def cite(n: int, start: int, end: int) -> Citation:
    return Citation(n, DOC, TEXT[start:end], start, end)


def answer(*citations: Citation, because: str | None = None) -> Answer:
    return Answer("?", "", tuple(citations), abstained=because is not None, abstained_because=because)


def question(qid: str, answerable: bool = True, kind: str = "") -> EvalQuestion:
    return EvalQuestion(qid, "?", answerable, (Evidence("cats", "x"),) if answerable else (), unanswerable=kind)


def test_first_quote_on_gold_counts_for_answer_at_1_and_any_quote_for_evidence_at_any():
    first = record_answer(question("a"), answer(cite(1, HOURS, HOURS + 39), cite(2, SLEEP, SLEEP + 31)), GOLD)
    second = record_answer(question("b"), answer(cite(1, SLEEP, SLEEP + 31), cite(2, HOURS, HOURS + 10)), GOLD)
    missed = record_answer(question("c"), answer(cite(1, SLEEP, SLEEP + 31)), GOLD)
    assert (first.first_is_gold, first.any_is_gold) == (True, True)
    assert (second.first_is_gold, second.any_is_gold) == (False, True)  # overlap of a partial quote counts
    assert (missed.first_is_gold, missed.any_is_gold) == (False, False)
    metrics = answer_metrics([first, second, missed])
    assert metrics["answer@1"] == pytest.approx(1 / 3)
    assert metrics["evidence@any"] == pytest.approx(2 / 3)


def test_abstention_is_counted_per_kind_with_its_reason_and_false_abstention_apart():
    records = [
        record_answer(question("a"), answer(because="The sources do not mention “x”."), GOLD),
        record_answer(question("b"), answer(cite(1, HOURS, HOURS + 39)), GOLD),
        record_answer(question("u1", False, "on-topic"), answer(because="The sources do not mention “y”."), ()),
        record_answer(question("u2", False, "on-topic"), answer(cite(1, SLEEP, SLEEP + 31)), ()),
        record_answer(question("u3", False, "off-topic"), answer(because=""), ()),
    ]
    metrics = answer_metrics(records)
    assert metrics["false_abstention"] == 0.5
    assert metrics["abstain_on_topic"] == 0.5
    assert metrics["abstain_off_topic"] == 1.0
    assert metrics["reasons_given"] == pytest.approx(2 / 3)  # u3 declined without saying why


def test_non_content_quotes_and_unverified_quotes_are_counted():
    bad = Citation(2, DOC, "Notes on Cats (Lovelace et al., 2020)", CITE_LINE, CITE_LINE + 37)
    forged = Citation(3, DOC, "Cats sleep all day.", SLEEP, SLEEP + 19)
    record = record_answer(question("a"), answer(cite(1, HOURS, HOURS + 39), bad, forged), GOLD)
    assert record.non_content == ("Notes on Cats (Lovelace et al., 2020)",)
    metrics = answer_metrics([record])
    assert metrics["non_content_quotes"] == 1.0
    assert metrics["verbatim_quotes"] == pytest.approx(2 / 3)
