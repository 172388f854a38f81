"""Answer-level evaluation: is the first quote the answer, is the evidence quoted at all, does it
decline when the sources are silent (and say why), and does it ever quote non-content text.

Metrics (shares in [0, 1] unless named a count), over one split:

- ``answer@1``: answerable questions whose first quote overlaps a gold evidence span.
- ``evidence@any``: answerable questions with some quote overlapping a gold span.
- ``abstain_on_topic`` / ``abstain_off_topic``: abstentions among unanswerable questions that are
  about the sources' subject but ask for a detail they lack / that are about something else.
- ``false_abstention``: abstentions among answerable questions.
- ``reasons_given``: abstentions that state a reason.
- ``verbatim_quotes``: shown quotes found verbatim in their cited source.
- ``non_content_quotes``: a count: shown quotes that are captions, bare citation lines, headings,
  list stubs or name-only sentences (:func:`rag.reader.content.non_content_reason`), unless the
  question asks about that kind ("Which paper is the figure taken from?" may quote the citation line).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from rag.eval.questions import EvalQuestion, EvidenceSpan
from rag.reader.content import asked_kinds, non_content_reason
from rag.types import Answer, Citation

Ask = Callable[[str], Answer]
Progress = Callable[[int, int], None]
ANSWER_METRICS = ("answer@1", "evidence@any", "abstain_on_topic", "abstain_off_topic", "false_abstention",
                  "reasons_given", "verbatim_quotes", "non_content_quotes")


@dataclass(frozen=True)
class AnswerRecord:
    """What one answer did, judged against the question's labels."""

    question: EvalQuestion
    abstained: bool
    reason: str  # the stated reason of an abstention ("" when it answered)
    first_is_gold: bool
    any_is_gold: bool
    quotes: int
    verbatim: int
    non_content: tuple[str, ...]  # the offending quotes


@dataclass(frozen=True)
class AnswerScores:
    split: str
    questions: int
    metrics: Mapping[str, float]
    records: tuple[AnswerRecord, ...]


def _on_gold(citation: Citation, spans: Sequence[EvidenceSpan]) -> bool:
    return any(citation.document.id == s.source_id and citation.start < s.end and s.start < citation.end
               for s in spans)


def record_answer(question: EvalQuestion, answer: Answer, spans: Sequence[EvidenceSpan]) -> AnswerRecord:
    citations = answer.citations
    admitted = asked_kinds(question.question)  # the reader's own rule: a figure question may quote its caption
    return AnswerRecord(
        question=question,
        abstained=answer.abstained,
        reason=answer.abstained_because or "",
        first_is_gold=bool(citations) and _on_gold(citations[0], spans),
        any_is_gold=any(_on_gold(c, spans) for c in citations),
        quotes=len(citations),
        verbatim=sum(c.document.text[c.start:c.end] == c.quote for c in citations),
        non_content=tuple(c.quote for c in citations if non_content_reason(c.document.text, c.start, c.end, admitted)),
    )


def record_answers(questions: Sequence[EvalQuestion], ask: Ask, spans: Mapping[str, tuple[EvidenceSpan, ...]],
                   progress: Progress | None = None) -> list[AnswerRecord]:
    records = []
    for done, question in enumerate(questions, start=1):
        records.append(record_answer(question, ask(question.question), spans.get(question.id, ())))
        if progress:
            progress(done, len(questions))
    return records


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def answer_metrics(records: Sequence[AnswerRecord]) -> dict[str, float]:
    answerable = [r for r in records if r.question.answerable]
    on_topic = [r for r in records if r.question.unanswerable == "on-topic"]
    off_topic = [r for r in records if r.question.unanswerable == "off-topic"]
    abstentions = [r for r in records if r.abstained]
    quotes = sum(r.quotes for r in records)
    return {
        "answer@1": _share([r.first_is_gold for r in answerable]),
        "evidence@any": _share([r.any_is_gold for r in answerable]),
        "abstain_on_topic": _share([r.abstained for r in on_topic]),
        "abstain_off_topic": _share([r.abstained for r in off_topic]),
        "false_abstention": _share([r.abstained for r in answerable]),
        "reasons_given": _share([bool(r.reason) for r in abstentions]) if abstentions else 1.0,
        "verbatim_quotes": sum(r.verbatim for r in records) / quotes if quotes else 1.0,
        "non_content_quotes": float(sum(len(r.non_content) for r in records)),
    }


def score_answers(split: str, records: Sequence[AnswerRecord]) -> AnswerScores:
    return AnswerScores(split, len(records), answer_metrics(records), tuple(records))
