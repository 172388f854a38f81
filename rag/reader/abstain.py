"""When to decline, and the one sentence that says why.

Tests, in order: there is no candidate sentence; the best one barely relates to the question (a
support floor, :func:`floor_applies`); then the decline model (:class:`DeclineModel`), a logistic
regression over :class:`DeclineSignals`: how well the best evidence matches, and whether the
thing asked for is in it at all, after spelling correction, acronym expansion and stemming (an
on-topic question about a detail the sources lack). Without a model, the older rules run instead:
the focus absent from the best passages, or a figure or date asked for that none of the best
sentences gives (:func:`rag.reader.question.gives_what_is_asked`). Settings live in
``AnswerSettings``; the floor and the model were fitted on the tuning split
(``eval/tune_decline.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import astuple, dataclass

from rag.lexical import LexicalIndex, text_terms
from rag.reader.lexicon import _WORD, acronym_key, without_possessive
from rag.reader.question import (
    QUANTITY_WORDS,
    Focus,
    counted_terms,
    counted_words,
    is_frame_word,
    stems,
)
from rag.reader.scoring import FEATURES, Candidate, weighted_coverage
from rag.types import Hit


def missing_terms(focus: Focus, hits: Sequence[Hit], passages: int) -> list[str]:
    """Focus terms found in none of the best passages (their text, section headings and expansions)."""
    present: set[str] = set()
    for hit in hits[:passages]:
        present.update(text_terms(" ".join([*hit.chunk.section, hit.chunk.text])))
    return [t for t in focus.focus_terms if t not in present]


def missing_share(focus: Focus, missing: Sequence[str], lexical: LexicalIndex) -> float:
    """The IDF-weighted share of the focus that is missing: rare words weigh most."""
    return _idf_share(missing, focus.focus_terms, lexical)


def _idf_share(part: Sequence[str], whole: Sequence[str], lexical: LexicalIndex) -> float:
    """The IDF-weighted share of ``whole`` (distinct terms) that ``part`` holds."""
    return weighted_coverage(whole, lexical.idf(list(whole)), set(part))


def _phrase(focus: Focus, missing: Sequence[str]) -> str:
    """The question's own words around the first missing term ("learning rate"): adjacent focus
    words, but not names, which the sources may well mention ("for ChatGPT", :func:`_subject`)."""
    words = _WORD.findall(focus.corrected)
    focus_set = {w.lower() for w in focus.focus_words}

    def joins(word: str) -> bool:
        return word.lower() in focus_set and (word.islower() or set(stems(word)) <= set(missing))

    hits = [i for i, w in enumerate(words) if set(stems(w)) & set(missing)]
    if not hits:
        return ""
    first = last = hits[0]
    while first > 0 and joins(words[first - 1]):
        first -= 1
    while last + 1 < len(words) and joins(words[last + 1]):
        last += 1
    return " ".join(words[first:last + 1])


def _subject(focus: Focus, phrase: str) -> str:
    """A name the question is about, to say what the missing thing would belong to ("for PPO")."""
    for word in _WORD.findall(focus.question):
        if len(word) < 2 or word in phrase.split() or sum(c.isupper() for c in word) < 2 and not word[:1].isupper():
            continue
        if not is_frame_word(word):
            return without_possessive(word) if acronym_key(word) else ""  # "for InstructGPT", not "InstructGPT's"
    return ""


def absent_reason(focus: Focus, missing: Sequence[str]) -> str:
    phrase = _phrase(focus, missing) or " ".join(missing)
    subject = _subject(focus, phrase)
    return f"The sources do not mention “{phrase}”" + (f" for {subject}." if subject else ".")


@dataclass(frozen=True)
class DeclineSignals:
    """What the decline model weighs: how well the best evidence relates to the question, and
    whether the thing asked for is there at all. Each lies in [0, 1] (cosines in [-1, 1])."""

    support: float  # the best sentence's support (cosine + coverage)
    content_cosine: float  # the best cosine with the question less its source names
    focus_coverage: float  # the best sentence's IDF share of the focus terms
    missing_first: float  # IDF share of the focus absent from the first passage
    missing_shown: float  # ... absent from every passage whose sentences competed
    unknown: float  # ... absent from the whole corpus: no passage could hold it
    number_missing: float  # 1 when a number (or date) is asked for and no best sentence gives one for what is asked
    asked_missing: float  # IDF share of the words after the question word absent from the best sentences

    @classmethod
    def of(cls, focus: Focus, candidates: Sequence[Candidate], hits: Sequence[Hit], lexical: LexicalIndex,
           settings) -> DeclineSignals:
        best = candidates[0]
        passages = settings.passages
        unknown = [t for t, known in zip(focus.focus_terms, lexical.known(focus.focus_terms), strict=True)
                   if not known]
        # The reader's answer-type feature already holds gives_what_is_asked for number and date questions.
        number_missing = focus.answer_type in ("number", "date") and not any(
            c.features[FEATURES.index("answer_type")] for c in candidates[:settings.max_quotes])
        asked = list(focus.asked_terms)
        quoted = set().union(*(text_terms(c.text) for c in candidates[:settings.max_quotes]))
        return cls(
            support=max(c.support for c in candidates),
            content_cosine=max(c.features[FEATURES.index("content")] for c in candidates),
            focus_coverage=best.features[FEATURES.index("focus")],
            missing_first=missing_share(focus, missing_terms(focus, hits, 1), lexical),
            missing_shown=missing_share(focus, missing_terms(focus, hits, passages), lexical),
            unknown=missing_share(focus, unknown, lexical),
            number_missing=float(number_missing),
            asked_missing=_idf_share([t for t in asked if t not in quoted], asked, lexical),
        )


@dataclass(frozen=True)
class DeclineModel:
    """Logistic regression over :class:`DeclineSignals`: the chance that the sources do not
    answer. Fitted, and its threshold chosen within a 5% false-abstention budget, by
    cross-validation on the tuning split (``python eval/tune_decline.py``,
    ``eval/reports/decline-tuning.json``)."""

    weights: tuple[float, ...]  # in the order of DeclineSignals' fields
    bias: float
    threshold: float

    def probability(self, signals: DeclineSignals) -> float:
        z = self.bias + sum(w * x for w, x in zip(self.weights, astuple(signals), strict=True))
        return 1.0 / (1.0 + math.exp(-z))

    def declines(self, signals: DeclineSignals) -> bool:
        return self.probability(signals) >= self.threshold


# eval/reports/decline-tuning.json: cross-validated on the tuning split (5 folds, 5 shuffles), it
# declines 83% of on-topic and 76% of off-topic unanswerable questions, 3.3% of answerable ones.
DECLINE = DeclineModel(weights=(-2.6078, -1.9439, 0.336, 1.3072, 0.6532, 1.0605, 4.7401, 1.4765),
                       bias=-0.8556, threshold=0.5996)


def decline_reason(focus: Focus, hits: Sequence[Hit], signals: DeclineSignals) -> str:
    """The one sentence that says why: what is missing, if a word of the question is in none of
    the passages found (not only those shown); else the figure it asks for; else that the passages
    only touch the topic. When the figure is what is missing but the thing counted is there, the
    figure is named: "no figure for “human labelers”", not "do not mention “hire”"."""
    absent = missing_terms(focus, hits, len(hits))
    counted_absent = bool(set(absent) & (counted_terms(focus) or frozenset()))
    if absent and (counted_absent or not signals.number_missing):
        return absent_reason(focus, absent)
    if signals.number_missing:
        return _no_figure(focus)
    return "The sources say nothing that answers this question; the closest passages only share some of its words."


def _no_figure(focus: Focus) -> str:
    """Names what has no figure: what the question counts ("human labelers"), else its focus."""
    words = counted_words(focus, as_asked=True) or focus.focus_words
    phrase = " ".join(w for w in words if w.lower() not in QUANTITY_WORDS)
    kind = "date" if focus.answer_type == "date" else "figure"
    return f"The sources give no {kind} for “{phrase}”." if phrase else f"The sources give no {kind} for this."


def floor_applies(best: Candidate) -> bool:
    """The support floor judges the best sentence, unless it is of the kind the question asks
    about: a citation line answers "Which paper is the figure credited to?" without resembling it."""
    return not best.features[FEATURES.index("asked_kind")]


def abstain_reason(focus: Focus, candidates: Sequence[Candidate], hits: Sequence[Hit], lexical: LexicalIndex,
                   settings) -> str | None:
    """Why the answer must decline, or ``None`` when the evidence answers."""
    if not candidates:
        return "The sources have no passage that bears on this question."
    signals = DeclineSignals.of(focus, candidates, hits, lexical, settings)
    if signals.support < settings.abstain_below and floor_applies(candidates[0]):  # barely related
        return decline_reason(focus, hits, signals)
    missing = missing_terms(focus, hits, settings.evidence_passages)
    if missing and missing_share(focus, missing, lexical) >= settings.missing_focus_share:
        return absent_reason(focus, missing)
    if settings.decline is not None:  # it weighs a missing figure itself (DeclineSignals.number_missing)
        return decline_reason(focus, hits, signals) if settings.decline.declines(signals) else None
    if settings.require_number and signals.number_missing:
        return _no_figure(focus)
    return None
