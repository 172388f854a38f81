"""Sentences of the top passages as answer candidates, each with the features the reader weighs.

A candidate's score is ``cosine + sum(weight * feature)``; the weights live in
:class:`rag.answer.AnswerSettings` and were chosen by cross-validation on the tuning split
(``eval/tune_reader.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rag.embedding import Embedder
from rag.lexical import LexicalIndex, text_terms
from rag.reader.analyser import question_stopwords
from rag.reader.content import is_asked_kind, non_content_reason
from rag.reader.question import Focus, gives_what_is_asked
from rag.rescore import QuestionTerms, content_tokens
from rag.sentences import sentence_spans
from rag.types import Chunk, Document, Hit

_LEADING_MARK = re.compile(r"^(?:[•*\-–]|\d+[.)])\s+")
_LIST = re.compile(r",[^,]+(,|\band\b|\bor\b)")
# Feature names, in the order of Candidate.features and of the weights that multiply them.
FEATURES = ("coverage", "focus", "passage", "named", "answer_type", "content", "bigrams", "asked_kind", "asked")


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved passage, scored against the question."""

    hit: Hit
    document: Document
    start: int
    end: int
    cosine: float
    features: tuple[float, ...]  # see FEATURES
    support: float  # evidence strength of the sentence alone (drives abstention)
    score: float  # what orders the quotes

    @property
    def text(self) -> str:
        return self.document.text[self.start:self.end]


def _leading_marker_end(text: str, start: int, end: int) -> int:
    """Skip a list marker so a quote starts at the sentence's first word."""
    match = _LEADING_MARK.match(text[start:end])
    return start + match.end() if match else start


def passage_sentence_spans(text: str, chunk: Chunk) -> list[tuple[int, int]]:
    """The spans the reader quotes from: the passage's sentences, each from its first word."""
    return [(_leading_marker_end(text, s, e), e) for s, e in sentence_spans(text, chunk.start, chunk.end)]


def sentence_spans_of(hits: Sequence[Hit], documents: Callable[[str], Document], passages: int,
                      min_chars: int, admitted: frozenset[str] = frozenset()
                      ) -> list[tuple[Hit, Document, int, int]]:
    """Content sentences of the top passages, and those of the ``admitted`` non-content kinds,
    deduplicated across overlapping chunks."""
    seen: set[tuple[str, int]] = set()
    found = []
    for hit in hits[:passages]:
        document = documents(hit.chunk.doc_id)
        for start, end in passage_sentence_spans(document.text, hit.chunk):
            if end - start < min_chars or (document.id, start) in seen:
                continue
            seen.add((document.id, start))
            if non_content_reason(document.text, start, end, admitted) is None:
                found.append((hit, document, start, end))
    return found


def weighted_coverage(terms: Sequence[str], weights: Sequence[float], present: set[str]) -> float:
    """Share of the terms' IDF mass that ``present`` holds."""
    total = sum(weights)
    return sum(w for t, w in zip(terms, weights, strict=True) if t in present) / total if total else 0.0


def type_match(focus: Focus, sentence: str) -> float:
    """1 when the sentence holds what the answer type needs: a figure for what a number question
    counts, a date the question does not give, a list."""
    if focus.answer_type in ("number", "date"):
        return float(gives_what_is_asked(sentence, focus))
    if focus.answer_type == "list":
        return float(bool(_LIST.search(sentence)))
    return 0.0


def asked_kind(focus: Focus, text: str, start: int, end: int) -> float:
    """1 when the sentence is of the kind the question asks about (the caption of the figure it
    asks about, the citation line of "which paper"), which is then the likeliest answer."""
    return float(is_asked_kind(text, start, end, focus.admits))


def named_match(focus: Focus, document: Document, sentence: str) -> float:
    """1 when the sentence's source is one the question names."""
    return float(document.id in focus.named)


def score_candidates(focus: Focus, hits: Sequence[Hit], documents: Callable[[str], Document],
                     embedder: Embedder, lexical: LexicalIndex, settings) -> tuple[list[Candidate], np.ndarray]:
    """Candidates best first by score, and their embeddings in the same order."""
    found = sentence_spans_of(hits, documents, settings.passages, settings.min_sentence_chars, focus.admits)
    if not found:
        return [], np.zeros((0, embedder.dimension), dtype=np.float32)
    texts = [document.text[s:e] for _, document, s, e in found]
    queries = embedder.encode([focus.search_text, focus.content_text])
    vectors = embedder.encode(texts)
    cosines, content_cosines = (vectors @ queries.T).T
    stopwords = question_stopwords()
    phrases = QuestionTerms.of(focus, lexical, stopwords)
    weights = lexical.idf(list(focus.terms))
    # Stemmed once here, not once per candidate: focus_terms and asked_terms are derived properties.
    focus_terms, asked_terms = focus.focus_terms, focus.asked_terms
    focus_weights, asked_weights = lexical.idf(list(focus_terms)), lexical.idf(list(asked_terms))
    top = max((hit.score for hit in hits), default=0.0)
    # Scaled by the best passage so the prior lies in [0, 1] whatever the mode's score range.
    prior = {hit.rank: max(hit.score, 0.0) / top if top > 0 else 0.0 for hit in hits}
    w = np.asarray(settings.feature_weights)
    candidates = []
    for (hit, document, s, e), cosine, content_cosine, text in zip(found, cosines, content_cosines, texts,
                                                                  strict=True):
        present = set(text_terms(text))
        coverage = weighted_coverage(focus.terms, weights, present)
        pairs = phrases.shared_bigrams(content_tokens(text, stopwords))
        shared = pairs / len(phrases.bigrams) if phrases.bigrams else 0.0
        features = (coverage, weighted_coverage(focus_terms, focus_weights, present), prior[hit.rank],
                    named_match(focus, document, text), type_match(focus, text),
                    float(content_cosine), shared, asked_kind(focus, document.text, s, e),
                    weighted_coverage(asked_terms, asked_weights, present))
        support = float(cosine) + settings.coverage_weight * coverage
        score = float(cosine) + float(w @ np.asarray(features))
        candidates.append(Candidate(hit, document, s, e, float(cosine), features, support, score))
    order = sorted(range(len(candidates)), key=lambda i: -candidates[i].score)
    return [candidates[i] for i in order], vectors[order]
