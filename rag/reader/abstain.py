"""When to decline, and the one sentence that says why.

Three tests, in order: the best sentence barely relates to the question (off-topic); the thing
asked for is absent from the best passages even after spelling correction, acronym expansion and
stemming (an on-topic question about a detail the sources lack); or a number is asked for and
none of the best sentences holds one. Thresholds live in ``AnswerSettings`` and were chosen on the
tuning split (``eval/tune_reader.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from rag.lexical import LexicalIndex, tokenize
from rag.reader.lexicon import _WORD, acronym_key
from rag.reader.question import Focus, has_number, stems
from rag.reader.scoring import Candidate
from rag.types import Hit

_QUANTITY_WORDS = frozenset({"long", "large", "big", "often", "much", "many", "number", "value"})


def missing_terms(focus: Focus, hits: Sequence[Hit], passages: int) -> list[str]:
    """Focus terms found in none of the best passages (their text, section headings and expansions)."""
    present: set[str] = set()
    for hit in hits[:passages]:
        present.update(tokenize([" ".join([*hit.chunk.section, hit.chunk.text])])[0])
    return [t for t in focus.focus_terms if t not in present]


def missing_share(focus: Focus, missing: Sequence[str], lexical: LexicalIndex) -> float:
    """The IDF-weighted share of the focus that is missing: rare words weigh most."""
    weights = dict(zip(focus.focus_terms, lexical.idf(list(focus.focus_terms)), strict=True))
    total = sum(weights.values())
    return sum(weights[t] for t in missing) / total if total else 0.0


def _phrase(focus: Focus, missing: Sequence[str]) -> str:
    """The question's own words around the first missing term ("learning rate")."""
    words = _WORD.findall(focus.corrected)
    focus_set = {w.lower() for w in focus.focus_words}
    hits = [i for i, w in enumerate(words) if set(stems(w)) & set(missing)]
    if not hits:
        return ""
    first = last = hits[0]
    while first > 0 and words[first - 1].lower() in focus_set:
        first -= 1
    while last + 1 < len(words) and words[last + 1].lower() in focus_set:
        last += 1
    return " ".join(words[first:last + 1])


def _subject(focus: Focus, phrase: str) -> str:
    """A name the question is about, to say what the missing thing would belong to ("for PPO")."""
    for word in _WORD.findall(focus.question):
        if len(word) < 2 or word in phrase.split() or sum(c.isupper() for c in word) < 2 and not word[:1].isupper():
            continue
        if word.lower() not in {"what", "which", "who", "how", "when", "where", "why", "is", "are", "does", "do"}:
            return word if acronym_key(word) else ""
    return ""


def absent_reason(focus: Focus, missing: Sequence[str]) -> str:
    phrase = _phrase(focus, missing) or " ".join(missing)
    subject = _subject(focus, phrase)
    return f"The sources do not mention “{phrase}”" + (f" for {subject}." if subject else ".")


def abstain_reason(focus: Focus, candidates: Sequence[Candidate], hits: Sequence[Hit], lexical: LexicalIndex,
                   settings) -> str | None:
    """Why the answer must decline, or ``None`` when the evidence answers."""
    if not candidates:
        return "The sources have no passage that bears on this question."
    missing = missing_terms(focus, hits, settings.evidence_passages)
    best_support = max(c.support for c in candidates)
    if best_support < settings.abstain_below:
        # "The sources do not mention X" must hold for every passage shown, not only the first.
        absent_everywhere = missing_terms(focus, hits, len(hits))
        if absent_everywhere:
            return absent_reason(focus, absent_everywhere)
        return "The sources say nothing that answers this question; the closest passages only share some of its words."
    if missing and missing_share(focus, missing, lexical) >= settings.missing_focus_share:
        return absent_reason(focus, missing)
    if settings.require_number and focus.answer_type == "number" and not any(
            has_number(c.text) for c in candidates[:settings.max_quotes]):
        phrase = " ".join(w for w in focus.focus_words if w.lower() not in _QUANTITY_WORDS)
        return f"The sources give no figure for “{phrase}”." if phrase else "The sources give no figure for this."
    return None
