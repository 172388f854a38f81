"""Retrieval evaluation against evidence quotes: relevance by character-span overlap, scores by ranx.

Each answerable question names evidence as verbatim quotes of a source. A hit is relevant to an
evidence item when it comes from the same source and its ``[start, end)`` overlaps the quote's
span in the document text, so the labels survive any change of chunking. In ranx's TREC shape
the evidence items are the relevant "documents" (``q001#0``, ``q001#1``...): a hit that covers an
item for the first time is recorded under that item's key at its rank; any other hit is recorded
under its own chunk id and counts as non-relevant. Scores are ``1 / rank``, so ranx orders a run
exactly as the retriever did. One hit covering two new items credits both at the same score;
ranx then counts them as two consecutive positions, which shifts later hits down by one.
"""

from __future__ import annotations

import json
import tomllib
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import RagError
from rag.settings import MODES, REPO_ROOT
from rag.types import Chunk, Hit

if TYPE_CHECKING:
    from rag.assistant import Assistant as Session

DEFAULT_QUESTIONS = REPO_ROOT / "eval" / "questions.jsonl"
DEFAULT_THRESHOLDS = REPO_ROOT / "eval" / "thresholds.toml"
DEFAULT_REPORTS = REPO_ROOT / "eval" / "reports"
# Our metric names -> ranx's (ranx calls hit@k "hit_rate@k").
METRICS = {"hit@1": "hit_rate@1", "recall@5": "recall@5", "mrr@10": "mrr@10", "ndcg@10": "ndcg@10"}
QUESTION_FIELDS = {"id": str, "question": str, "answerable": bool, "evidence": list}
EVIDENCE_FIELDS = {"source_id": str, "quote": str}

Search = Callable[[str, str], Sequence[Hit]]  # (question, mode) -> ranked hits
Progress = Callable[[int, int], None]


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


@dataclass(frozen=True)
class EvidenceSpan:
    """Where one evidence quote sits: ``document.text[start:end] == quote``."""

    key: str  # the relevant "document id" in the qrels, e.g. "q001#0"
    source_id: str
    start: int
    end: int
    quote: str


@dataclass(frozen=True)
class Failure:
    """An answerable question whose first hit covers none of its evidence."""

    question: EvalQuestion
    spans: tuple[EvidenceSpan, ...]
    top: Hit | None
    first_relevant_rank: int | None  # None: no evidence anywhere in the hits


@dataclass(frozen=True)
class ModeResult:
    mode: str
    metrics: Mapping[str, float]  # our metric name -> mean over answerable questions
    per_question: Mapping[str, Mapping[str, float]]
    failures: tuple[Failure, ...]


@dataclass(frozen=True)
class Thresholds:
    """The CI gate: minimum value per metric for one mode."""

    mode: str
    minimums: Mapping[str, float]


# ---------------------------------------------------------------- questions


def _parse_question(item: object, where: str) -> EvalQuestion:
    if not isinstance(item, dict):
        raise EvalDataError(f"{where}: expected a JSON object, got {type(item).__name__}")
    if set(item) != set(QUESTION_FIELDS):
        raise EvalDataError(
            f"{where}: fields are {sorted(item)!r}; expected exactly {sorted(QUESTION_FIELDS)!r}"
        )
    for name, kind in QUESTION_FIELDS.items():
        if not isinstance(item[name], kind):
            raise EvalDataError(f"{where}: {name!r} should be a {kind.__name__}, got {item[name]!r}")
    evidence = []
    for position, entry in enumerate(item["evidence"]):
        if (
            not isinstance(entry, dict)
            or set(entry) != set(EVIDENCE_FIELDS)
            or not all(isinstance(entry[n], str) and entry[n].strip() for n in EVIDENCE_FIELDS)
        ):
            raise EvalDataError(
                f"{where}: evidence #{position} should be {{source_id, quote}} with non-empty "
                f"strings, got {entry!r}"
            )
        evidence.append(Evidence(entry["source_id"], entry["quote"]))
    if not item["id"].strip() or not item["question"].strip():
        raise EvalDataError(f"{where}: 'id' and 'question' must not be empty")
    if item["answerable"] != bool(evidence):
        expected = "needs at least one evidence quote" if item["answerable"] else "must not list evidence"
        raise EvalDataError(
            f"{where}: question {item['id']!r} is answerable={item['answerable']} and {expected}"
        )
    return EvalQuestion(item["id"], item["question"], item["answerable"], tuple(evidence))


def load_questions(path: Path) -> list[EvalQuestion]:
    """Parse and check an eval questions file (JSON lines); ids must be unique."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalDataError(f"cannot read questions file {str(path)!r} ({exc.__class__.__name__})") from None
    questions: list[EvalQuestion] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise EvalDataError(f"{path}:{number}: not valid JSON") from None
        question = _parse_question(item, f"{path}:{number}")
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
            raise EvalDataError(
                f"{question.id}: evidence source {evidence.source_id!r} is not indexed; "
                "add it to the corpus and run `rag build`"
            )
        start = text.find(evidence.quote)
        if start < 0:
            raise EvalDataError(
                f"{question.id}: evidence #{position} is not verbatim in {evidence.source_id!r}: "
                f"{evidence.quote[:80]!r}; fix the quote or rebuild the index"
            )
        spans.append(
            EvidenceSpan(
                f"{question.id}#{position}",
                evidence.source_id,
                start,
                start + len(evidence.quote),
                evidence.quote,
            )
        )
    return tuple(spans)


# ---------------------------------------------------------------- relevance and scores


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


def score(
    qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean and per-question values of :data:`METRICS`, computed by ranx.

    Definitions are ranx's (Bassani 2022, "ranx: A Blazing-Fast Python Library for Ranking
    Evaluation and Comparison", ECIR): hit rate, recall, reciprocal rank and nDCG with the
    Järvelin & Kekäläinen (2002) discount, as in trec_eval.
    """
    from ranx import Qrels, Run, evaluate

    ranx_qrels = Qrels({qid: dict(relevant) for qid, relevant in qrels.items()})
    # Questions without hits get an empty entry; per-question scores are read back from this run.
    ranx_run = Run({qid: dict(entry) for qid, entry in run.items()}).make_comparable(ranx_qrels)
    with warnings.catch_warnings():  # numba's uint64->int64 cast note inside ranx's hit_rate
        warnings.simplefilter("ignore")
        means = evaluate(ranx_qrels, ranx_run, list(METRICS.values()))
    per_question = {
        qid: {ours: float(ranx_run.scores[theirs][qid]) for ours, theirs in METRICS.items()} for qid in qrels
    }
    return {ours: float(means[theirs]) for ours, theirs in METRICS.items()}, per_question


def _failure(question: EvalQuestion, spans: tuple[EvidenceSpan, ...], hits: Sequence[Hit]) -> Failure | None:
    ranks = [h.rank for h in hits if any(covers(h.chunk, s) for s in spans)]
    if ranks and ranks[0] == 1:
        return None
    return Failure(question, spans, hits[0] if hits else None, ranks[0] if ranks else None)


def evaluate_retrieval(
    questions: Sequence[EvalQuestion],
    search: Search,
    text_of: Callable[[str], str | None],
    modes: Sequence[str] = MODES,
    progress: Progress | None = None,
) -> list[ModeResult]:
    """Score each mode over the answerable questions (unanswerable ones are left out).

    Args:
        search: ``(question, mode) -> hits`` ranked best first with 1-based ``rank``.
        text_of: a source id's document text as indexed (``None`` when it is not indexed).
    """
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise EvalDataError(f"unknown mode(s) {', '.join(map(repr, unknown))}; expected {', '.join(MODES)}")
    answerable = [q for q in questions if q.answerable]
    spans = {q.id: locate_evidence(q, text_of) for q in answerable}
    qrels = qrels_of(spans)
    total, done = len(answerable) * len(modes), 0
    results = []
    for mode in modes:
        run: dict[str, dict[str, float]] = {}
        failures = []
        for question in answerable:
            hits = search(question.question, mode)
            run[question.id] = judge(hits, spans[question.id])
            failure = _failure(question, spans[question.id], hits)
            if failure:
                failures.append(failure)
            done += 1
            if progress:
                progress(done, total)
        means, per_question = score(qrels, run)
        results.append(ModeResult(mode, means, per_question, tuple(failures)))
    return results


def evaluate_session(
    session: Session,
    questions: Sequence[EvalQuestion],
    modes: Sequence[str] = MODES,
    k: int = 10,
    progress: Progress | None = None,
) -> list[ModeResult]:
    """:func:`evaluate_retrieval` over an opened index, with the session's search settings."""
    from rag.assistant import RequestOptions

    if k < 1:
        raise EvalDataError(f"k must be a positive number of hits, got {k!r}")

    def text_of(source_id: str) -> str | None:
        try:
            return session.index.store.document(source_id).text
        except KeyError:
            return None

    def search(question: str, mode: str) -> list[Hit]:
        return [passage.hit for passage in session.search(question, RequestOptions(k=k, mode=mode))]

    return evaluate_retrieval(questions, search, text_of, modes, progress)


# ---------------------------------------------------------------- the CI gate


def load_thresholds(path: Path) -> Thresholds:
    """Read ``mode = "..."`` and a ``[minimums]`` table of metric -> value in [0, 1]."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise EvalDataError(
            f"cannot read thresholds {str(path)!r} ({exc.__class__.__name__}: {exc})"
        ) from None
    if set(data) != {"mode", "minimums"}:
        raise EvalDataError(f"{path}: keys are {sorted(data)!r}; expected 'mode' and a [minimums] table")
    mode, minimums = data["mode"], data["minimums"]
    if mode not in MODES:
        raise EvalDataError(f"{path}: mode {mode!r} is not one of {', '.join(MODES)}")
    if not isinstance(minimums, dict) or not minimums:
        raise EvalDataError(f"{path}: [minimums] must map metric names to numbers")
    for name, value in minimums.items():
        if name not in METRICS:
            raise EvalDataError(f"{path}: unknown metric {name!r}; known: {', '.join(METRICS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise EvalDataError(f"{path}: minimum for {name} must be a number in [0, 1], got {value!r}")
    return Thresholds(mode, {name: float(value) for name, value in minimums.items()})


def shortfalls(measured: Mapping[str, Mapping[str, float]], thresholds: Thresholds) -> list[str]:
    """One line per metric of the gated mode below its minimum; empty when the gate passes.

    Args:
        measured: metric values per mode, e.g. ``{"hybrid": {"ndcg@10": 0.85, ...}}``.
    """
    if thresholds.mode not in measured:
        raise EvalDataError(
            f"the gate needs mode {thresholds.mode!r}, which was not evaluated; "
            f"run with --mode {thresholds.mode} or --mode all"
        )
    values = measured[thresholds.mode]
    return [
        f"{thresholds.mode} {name} = {values[name]:.4f} is below the minimum {minimum:.4f}"
        for name, minimum in thresholds.minimums.items()
        if values[name] < minimum
    ]
