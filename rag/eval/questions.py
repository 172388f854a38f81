"""The eval questions: hand-written, each answerable one naming its evidence as verbatim quotes.

A line of ``eval/questions.jsonl`` is ``{id, question, answerable, evidence: [{source_id, quote}]}``
with optional ``style`` (how it is phrased: terse, misspelled, acronym, names-work, chatty...),
``unanswerable`` (``on-topic``: a detail the sources lack; ``off-topic``: outside their subject) and
``split`` (``tune`` or ``test``, assigned once by :mod:`rag.eval.split`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.errors import RagError
from rag.settings import REPO_ROOT

DEFAULT_QUESTIONS = REPO_ROOT / "eval" / "questions.jsonl"
REQUIRED_FIELDS = {"id": str, "question": str, "answerable": bool, "evidence": list}
OPTIONAL_FIELDS = {"style": str, "unanswerable": str, "split": str}
EVIDENCE_FIELDS = {"source_id": str, "quote": str}
UNANSWERABLE_KINDS = ("on-topic", "off-topic")
SPLITS = ("tune", "test")


class EvalDataError(RagError):
    """The questions or thresholds file is malformed, or its evidence is not in the sources."""


@dataclass(frozen=True)
class Evidence:
    source_id: str
    quote: str


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    question: str
    answerable: bool
    evidence: tuple[Evidence, ...] = ()
    style: str = ""
    unanswerable: str = ""  # "on-topic" or "off-topic" when not answerable
    split: str = ""  # "tune" or "test"; empty until assigned

    @property
    def group(self) -> str:
        """The stratum a split keeps in proportion, and the report breaks down by."""
        return f"answerable/{self.style or 'original'}" if self.answerable else f"unanswerable/{self.unanswerable}"


@dataclass(frozen=True)
class EvidenceSpan:
    """Where one evidence quote sits: ``document.text[start:end] == quote``."""

    key: str  # the relevant "document id" in the qrels, e.g. "q001#0"
    source_id: str
    start: int
    end: int
    quote: str


def _parse_evidence(entries: list, where: str) -> tuple[Evidence, ...]:
    evidence = []
    for position, entry in enumerate(entries):
        if (not isinstance(entry, dict) or set(entry) != set(EVIDENCE_FIELDS)
                or not all(isinstance(entry[n], str) and entry[n].strip() for n in EVIDENCE_FIELDS)):
            raise EvalDataError(f"{where}: evidence #{position} should be {{source_id, quote}} with non-empty "
                                f"strings, got {entry!r}")
        evidence.append(Evidence(entry["source_id"], entry["quote"]))
    return tuple(evidence)


def _check_fields(item: dict, where: str) -> None:
    missing = sorted(set(REQUIRED_FIELDS) - set(item))
    unknown = sorted(set(item) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if missing or unknown:
        raise EvalDataError(f"{where}: fields are {sorted(item)!r}; expected {sorted(REQUIRED_FIELDS)!r} and "
                            f"optionally {sorted(OPTIONAL_FIELDS)!r}")
    for name, kind in (REQUIRED_FIELDS | OPTIONAL_FIELDS).items():
        if name in item and not isinstance(item[name], kind):
            raise EvalDataError(f"{where}: {name!r} should be a {kind.__name__}, got {item[name]!r}")
    if not item["id"].strip() or not item["question"].strip():
        raise EvalDataError(f"{where}: 'id' and 'question' must not be empty")
    for name, allowed in (("unanswerable", UNANSWERABLE_KINDS), ("split", SPLITS)):
        if item.get(name, allowed[0]) not in allowed:
            raise EvalDataError(f"{where}: {name!r} is {item[name]!r}; expected one of {', '.join(allowed)}")


def parse_question(item: object, where: str) -> EvalQuestion:
    if not isinstance(item, dict):
        raise EvalDataError(f"{where}: expected a JSON object, got {type(item).__name__}")
    _check_fields(item, where)
    evidence = _parse_evidence(item["evidence"], where)
    if item["answerable"] != bool(evidence):
        expected = "needs at least one evidence quote" if item["answerable"] else "must not list evidence"
        raise EvalDataError(f"{where}: question {item['id']!r} is answerable={item['answerable']} and {expected}")
    if item["answerable"] and "unanswerable" in item:
        raise EvalDataError(f"{where}: question {item['id']!r} is answerable, so it takes no 'unanswerable' kind")
    return EvalQuestion(item["id"], item["question"], item["answerable"], evidence, item.get("style", ""),
                        item.get("unanswerable", ""), item.get("split", ""))


def read_lines(path: Path, kind: str = "questions") -> list[tuple[int, dict]]:
    """``(line number, JSON object)`` for each non-blank line of a ``kind`` file (JSON lines)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalDataError(f"cannot read {kind} file {str(path)!r} ({exc.__class__.__name__})") from None
    items = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                items.append((number, json.loads(line)))
            except ValueError:
                raise EvalDataError(f"{path}:{number}: not valid JSON") from None
    return items


def load_questions(path: Path) -> list[EvalQuestion]:
    """Parse and check an eval questions file (JSON lines); ids must be unique."""
    questions: list[EvalQuestion] = []
    seen: set[str] = set()
    for number, item in read_lines(path):
        question = parse_question(item, f"{path}:{number}")
        if question.id in seen:
            raise EvalDataError(f"{path}:{number}: duplicate question id {question.id!r}")
        seen.add(question.id)
        questions.append(question)
    if not any(q.answerable for q in questions):
        raise EvalDataError(f"{path}: no answerable questions, so there is nothing to score")
    return questions


def locate_evidence(question: EvalQuestion, text_of: Callable[[str], str | None]) -> tuple[EvidenceSpan, ...]:
    """The character span of each evidence quote (its first occurrence) in its source's text."""
    spans = []
    for position, evidence in enumerate(question.evidence):
        text = text_of(evidence.source_id)
        if text is None:
            raise EvalDataError(f"{question.id}: evidence source {evidence.source_id!r} is not indexed; "
                                "add it to the corpus and run `rag build`")
        start = text.find(evidence.quote)
        if start < 0:
            raise EvalDataError(f"{question.id}: evidence #{position} is not verbatim in {evidence.source_id!r}: "
                                f"{evidence.quote[:80]!r}; fix the quote or rebuild the index")
        spans.append(EvidenceSpan(f"{question.id}#{position}", evidence.source_id, start,
                                  start + len(evidence.quote), evidence.quote))
    return tuple(spans)
