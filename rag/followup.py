"""Follow-up questions: rewrite one that leans on earlier turns into a standalone question.

Two rewriters share one result type. The deterministic rule carries the previous turn's *focus*
(the names it asked about, else its content words) into a follow-up that refers back (a pronoun,
"that paper", "the second one", "and what about ..."), and may keep the search to a *source*: one
the follow-up names or points at, or the previous answer's (``SOURCE_CARRY``, measured by
eval/followups.py). With a language model configured, the model rewrites the question instead, and
the rule's source is still carried; any failure falls back to the rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from rag.errors import RagError
from rag.types import Answer, Document

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-’']*[A-Za-z0-9]|[A-Za-z0-9]")
_PRONOUN = re.compile(r"\b(?:it|its|they|them|their|theirs|he|she|his|her)\b", re.IGNORECASE)
_DEMONSTRATIVE = re.compile(
    r"\b(?:this|that|these|those|the same)\s+(?:paper|work|model|method|one|ones|study|survey|post|approach"
    r"|article|source|result|results|dataset|research|impact|standard|stage|idea|claim)\b"
    r"|\b(?:that|this)(?=\s*[?.!]?$)|\bthe (?:paper|authors|survey|post|article)\b",
    re.IGNORECASE,
)
_ORDINAL = re.compile(r"\bthe (first|second|third|last|1st|2nd|3rd) (?:one|paper|source|quote|point|option|item)\b",
                      re.IGNORECASE)
_ELLIPSIS = re.compile(
    r"^\s*(?:and|so|but|also)\b|^\s*(?:what|how) about\b|^\s*(?:why|how|really|and after that)\s*\??$", re.IGNORECASE)
_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "last": -1}
_QUESTION_WORDS = frozenset({
    "what", "which", "who", "whom", "why", "how", "when", "where", "does", "did", "do", "is", "are", "was", "were",
    "say", "says", "said", "tell", "me", "about", "paper", "page", "faq", "mean", "means", "according",
})


@lru_cache(maxsize=1)
def _carried_stopwords() -> frozenset[str]:
    """bm25s's longer English list plus question words; through ``bm25s_module`` because a bare
    ``import bm25s`` pulls numba and scipy into every query process."""
    from rag.lexical import bm25s_module

    return frozenset(bm25s_module().stopwords.STOPWORDS_EN_PLUS) | _QUESTION_WORDS


@dataclass(frozen=True)
class Turn:
    """A finished turn of the conversation: what was asked, as searched, and where the answer came from."""

    question: str
    standalone: str
    source_ids: tuple[str, ...] = ()  # of the answer's citations, first quote first


@dataclass(frozen=True)
class Rewrite:
    """A follow-up made standalone: the question to search, and a source to keep to (if any)."""

    question: str  # shown to the reader as "Searched as: ..."
    sources: tuple[str, ...] = ()
    method: str = "none"  # "none" (already standalone), "rule" or "llm"
    note: str = ""  # why the LLM rewrite was not used, when it was tried


def turn_of(question: str, standalone: str, answer: Answer) -> Turn:
    ids = tuple(dict.fromkeys(c.document.id for c in answer.citations)) or tuple(
        dict.fromkeys(h.chunk.doc_id for h in answer.nearest[:1]))
    return Turn(question, standalone, ids)


def refers_back(question: str) -> bool:
    """Does the question lean on an earlier turn (pronoun, "that paper", ordinal, ellipsis)?"""
    too_short = len(content_words(question)) < 2 and not names_in(question)
    return bool(_PRONOUN.search(question) or _DEMONSTRATIVE.search(question) or _ORDINAL.search(question)
                or _ELLIPSIS.search(question) or too_short)


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text) if w.lower() not in _carried_stopwords()]


def names_in(question: str) -> list[str]:
    """Content words that name something: with a digit, in capitals, or capitalised mid-sentence."""
    words = set(content_words(question))
    return [w for i, w in enumerate(_WORD.findall(question))
            if w in words and (any(c.isdigit() for c in w) or (w[0].isupper() and i > 0) or w.isupper())]


def focus_of(question: str) -> str:
    """What a question is about: its names if any, else its content words."""
    return " ".join(dict.fromkeys(names_in(question) or content_words(question)))


def source_names(document: Document) -> tuple[str, ...]:
    """Words a reader uses for a source: the distinctive part of its id, its first author's surname."""
    parts = [p for p in document.id.split("-") if not p[-4:].isdigit()] or [re.sub(r"\d+$", "", document.id)]
    tail = " ".join(parts[-3:])
    surname = document.authors[0].split()[-1] if document.authors and "://" not in document.authors[0] else ""
    return tuple(n.lower() for n in (tail, re.sub(r"\d+$", "", document.id.split("-")[0]), surname) if n)


def names_source(question: str, documents: Sequence[Document]) -> str | None:
    """The id of a source the question names (most of its id words, or its first author)."""
    words = {re.sub(r"[^a-z0-9]", "", w.lower()) for w in _WORD.findall(question)}
    for document in documents:
        for name in source_names(document):
            parts = [re.sub(r"[^a-z0-9]", "", p) for p in name.split()]
            if sum(p in words for p in parts) >= max(1, len(parts) - 1):
                return document.id
    return None


def _ordinal_source(question: str, previous: Turn) -> str | None:
    match = _ORDINAL.search(question)
    if not match or not previous.source_ids:
        return None
    n = _ORDINALS[match.group(1).lower()]
    ids = previous.source_ids
    if n == -1:
        return ids[-1]
    return ids[n - 1] if n <= len(ids) else None


# Which source a rewritten follow-up keeps its search to (the ``followup_sources`` setting, default there):
# "previous": one it names or points at ("the second one"), else the previous answer's; "named": only
# one it names or points at; "none": none, the focus is carried as text only.
SOURCE_CARRY = ("previous", "named", "none")


def _carried_source(question: str, previous: Turn, documents: Sequence[Document], carry: str) -> str | None:
    if carry not in SOURCE_CARRY:
        raise RagError(f"followup_sources {carry!r} is not one of {', '.join(SOURCE_CARRY)}")
    if carry == "none":
        return None
    named = names_source(question, documents) or _ordinal_source(question, previous)
    return named or (previous.source_ids[0] if carry == "previous" and previous.source_ids else None)


def rule_rewrite(question: str, history: Sequence[Turn], documents: Sequence[Document], carry: str) -> Rewrite:
    """Carry the previous turn's focus (and, per ``carry``, a source) into a follow-up that refers back."""
    if not history or not refers_back(question):
        return Rewrite(question)
    previous = history[-1]
    focus = focus_of(previous.standalone)
    missing = [w for w in focus.split() if w.lower() not in question.lower()]
    standalone = question.rstrip(" ?.!") + (f" ({' '.join(missing)})" if missing else "") + "?"
    carried = _carried_source(question, previous, documents, carry)
    return Rewrite(standalone, (carried,) if carried else (), "rule")


Complete = Callable[[str], str]  # a prompt in, the model's whole reply out (may raise)

REWRITE_PROMPT = (
    "Rewrite the last question of this conversation so that it can be understood on its own, "
    "replacing words like it, they, that paper or the second one with what they refer to. "
    "Reply with the rewritten question only.\n\n{turns}\nLast question: {question}\nRewritten question:"
)


def llm_rewrite(question: str, history: Sequence[Turn], complete: Complete, max_chars: int,
                documents: Sequence[Document], carry: str) -> Rewrite:
    """The model's standalone version of the follow-up; the rule's when the model fails or rambles."""
    fallback = rule_rewrite(question, history, documents, carry)
    if fallback.method == "none":
        return fallback
    titles = {d.id: d.title for d in documents}
    turns = "\n".join(f"Question: {t.standalone}" + (f" (answered from: {titles.get(t.source_ids[0], '')})"
                                                     if t.source_ids else "") for t in history[-3:])
    try:
        reply = complete(REWRITE_PROMPT.format(turns=turns, question=question))
    except RagError as exc:  # a model that is down or slow costs the rewrite, never the question
        return Rewrite(fallback.question, fallback.sources, "rule", f"the model could not rewrite it ({exc})")
    lines = [line.strip().strip('"“”') for line in reply.strip().splitlines() if line.strip()]
    rewritten = lines[0].removeprefix("Rewritten question:").strip() if lines else ""
    if not rewritten or len(rewritten) > max_chars or len(content_words(rewritten)) < 2:
        return Rewrite(fallback.question, fallback.sources, "rule", "the model's rewrite was empty or unusable")
    return Rewrite(rewritten, fallback.sources, "llm")
