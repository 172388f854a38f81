"""Score follow-up rewriting on conversations: retrieval hit@1 of each follow-up, per rewriter.

Each conversation in ``eval/conversations.jsonl`` is ``{id, turns: [{question, evidence}]}`` with
gold evidence as verbatim quotes, like ``eval/questions.jsonl``. Turns are played in order; each
rewriter sees the history its own rewrites produced, so a bad rewrite costs the turns after it.
A follow-up (any turn after the first) scores a hit when its first passage covers a gold quote.
Turns are searched, not answered: the source a turn hands on is that of its first passage (the
answer's first quote comes from it almost always), which keeps a run to one encode per question.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.eval.questions import EvalDataError, EvalQuestion, Evidence, locate_evidence, read_lines
from rag.eval.retrieval import covers
from rag.followup import Rewrite, Turn
from rag.settings import REPO_ROOT
from rag.types import Hit

DEFAULT_CONVERSATIONS = REPO_ROOT / "eval" / "conversations.jsonl"
Rewriter = Callable[[str, Sequence[Turn]], Rewrite]
Search = Callable[[str, tuple[str, ...]], Sequence[Hit]]  # (question, sources to keep to) -> ranked hits


@dataclass(frozen=True)
class Conversation:
    id: str
    turns: tuple[EvalQuestion, ...]


@dataclass(frozen=True)
class FollowupResult:
    """One follow-up as one rewriter handled it."""

    turn_id: str  # "c01#2": conversation id and 1-based turn
    question: str
    searched: str
    sources: tuple[str, ...]
    hit: bool


@dataclass(frozen=True)
class RewriterScore:
    method: str
    hit_at_1: float
    follow_ups: int
    results: tuple[FollowupResult, ...]


def _turn(item: object, where: str) -> EvalQuestion:
    if not isinstance(item, dict) or not isinstance(item.get("question"), str) or not item["question"].strip():
        raise EvalDataError(f"{where}: a turn needs a non-empty 'question'")
    evidence = item.get("evidence")
    if not isinstance(evidence, list) or not evidence or not all(
            isinstance(e, dict) and isinstance(e.get("source_id"), str) and isinstance(e.get("quote"), str)
            for e in evidence):
        raise EvalDataError(f"{where}: a turn needs 'evidence': [{{source_id, quote}}, ...]")
    return EvalQuestion(where, item["question"], True, tuple(Evidence(e["source_id"], e["quote"]) for e in evidence))


def load_conversations(path: Path = DEFAULT_CONVERSATIONS) -> list[Conversation]:
    conversations = []
    for number, item in read_lines(path, "conversations"):
        try:
            turns = item["turns"]
            if not isinstance(item["id"], str) or not isinstance(turns, list) or len(turns) < 2:
                raise TypeError
        except (KeyError, TypeError):
            raise EvalDataError(f"{path}:{number}: expected {{id, turns: [two or more turns]}}") from None
        conversations.append(Conversation(item["id"], tuple(_turn(t, f"{item['id']}#{i}")
                                                            for i, t in enumerate(turns, start=1))))
    return conversations


def score_rewriter(method: str, rewriter: Rewriter, conversations: Sequence[Conversation], search: Search,
                   text_of: Callable[[str], str | None]) -> RewriterScore:
    """Play every conversation with ``rewriter``; hit@1 over the follow-ups."""
    results = []
    for conversation in conversations:
        history: list[Turn] = []
        for position, turn in enumerate(conversation.turns):
            rewrite = rewriter(turn.question, history) if position else Rewrite(turn.question)
            hits = search(rewrite.question, rewrite.sources)
            top = hits[0].chunk if hits else None
            if position:
                spans = locate_evidence(turn, text_of)
                results.append(FollowupResult(turn.id, turn.question, rewrite.question, rewrite.sources,
                                              top is not None and any(covers(top, s) for s in spans)))
            history.append(Turn(turn.question, rewrite.question, (top.doc_id,) if top else ()))
    hits = sum(r.hit for r in results)
    return RewriterScore(method, hits / len(results) if results else 0.0, len(results), tuple(results))
