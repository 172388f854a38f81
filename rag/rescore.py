"""Second-stage ranking of the hybrid head: does a passage hold a sentence that answers?

Fusion ranks whole passages, so a passage that names the paper often (its abstract) outranks the
one whose single sentence answers. The rescorer re-orders the head of the fused list with eight
features, each min-max scaled within the head, combined linearly:

- ``dense``, ``bm25``: the first stage's own scores,
- ``sentence``: the best cosine between the question and one sentence of the passage that states
  something (:func:`stating`: not one announcing what its text is about),
- ``content_sentence``: the same for the question without the words that only name a source
  (:attr:`rag.reader.question.Focus.content_text`),
- ``coverage``: the IDF share of the question's content terms the passage contains,
- ``bigrams``: how many adjacent pairs of the question's content terms it contains as adjacent
  terms (a phrase match BM25 does not see),
- ``named``: 1 when the passage comes from a source the question names ("in the MT-DNN paper"),
- ``asked_kind``: 1 when the passage holds text of the kind the question asks about: the caption of
  a figure for "What does the diagram show?", a citation line for "Which paper is it from?"
  (:func:`rag.reader.content.asked_kinds`).

The weights were fitted by pairwise logistic regression, the depth and regularisation chosen by
5-fold cross-validation on the tuning split of ``eval/questions.jsonl`` (``python
eval/tune_rescore.py``, ``eval/reports/rescore-tuning.json``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import astuple, dataclass, fields

import numpy as np

from rag.embedding import Embedder
from rag.lexical import LexicalIndex, text_terms
from rag.reader.content import announces, is_asked_kind
from rag.reader.question import Focus
from rag.sentences import sentence_spans
from rag.stores import Candidates
from rag.types import Chunk


@dataclass(frozen=True)
class RescoreWeights:
    """Weights of the features above, in their order (eval/reports/rescore-tuning.json)."""

    dense: float = 0.104
    bm25: float = 0.139
    sentence: float = 0.138
    content_sentence: float = 0.118
    coverage: float = 0.129
    bigrams: float = 0.031
    named: float = 0.076
    asked_kind: float = 0.266


FEATURES = tuple(f.name for f in fields(RescoreWeights))
RESCORE_DEPTH = 20  # passages of the fused head that are re-ordered (chosen with the weights)


def min_max(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.ones_like(values)


def above_the_tail(head: Candidates, tail: Candidates) -> Candidates:
    """The re-ordered head, then the rest in their first-stage order, their scores capped at the
    head's lowest so that scores never rise down the list."""
    floor = head[-1][1] if head else 0.0
    return [*head, *((row, min(score, floor)) for row, score in tail)]


def content_tokens(text: str, stopwords: frozenset[str]) -> list[str]:
    """Stemmed terms without stop words, in order (bigrams need the order)."""
    return [t for t in text_terms(text) if t not in stopwords]


def bigram_set(tokens: Sequence[str]) -> set[tuple[str, str]]:
    return set(zip(tokens, tokens[1:], strict=False))


@dataclass(frozen=True)
class QuestionTerms:
    """The question's content terms, their IDF weights and their adjacent pairs."""

    terms: frozenset[str]
    weights: Mapping[str, float]
    bigrams: frozenset[tuple[str, str]]

    @classmethod
    def of(cls, focus: Focus, lexical: LexicalIndex, stopwords: frozenset[str]) -> QuestionTerms:
        tokens = content_tokens(focus.content_text, stopwords)
        unique = sorted(set(tokens))
        return cls(frozenset(unique), dict(zip(unique, lexical.idf(unique), strict=True)),
                   frozenset(bigram_set(tokens)))

    def coverage(self, tokens: Sequence[str]) -> float:
        total = sum(self.weights.values())
        return sum(self.weights[t] for t in self.terms & set(tokens)) / total if total else 0.0

    def shared_bigrams(self, tokens: Sequence[str]) -> int:
        return len(self.bigrams & bigram_set(tokens))


SENTENCE_REACH = 400  # characters read beyond a passage's ends to complete its first and last sentences


def whole_sentences(text: str, chunk: Chunk) -> list[tuple[int, int]]:
    """Spans of the sentences that overlap ``chunk``, whole: a passage cut mid-sentence still
    answers with the sentence it cut."""
    start, end = max(0, chunk.start - SENTENCE_REACH), min(len(text), chunk.end + SENTENCE_REACH)
    spans = [(s, e) for s, e in sentence_spans(text, start, end) if s < chunk.end and chunk.start < e]
    return spans or [(chunk.start, chunk.end)]


def best_sentence_cosines(chunks: Sequence[Chunk], texts: Callable[[str], str],
                          spans: Sequence[Sequence[tuple[int, int]]], embedder: Embedder,
                          queries: np.ndarray) -> np.ndarray:
    """``[passage, query]``: each query's best cosine with one sentence of each passage, its
    sentences given as ``spans`` (:func:`whole_sentences`)."""
    sentences = [texts(c.doc_id)[s:e] for c, chunk_spans in zip(chunks, spans, strict=True) for s, e in chunk_spans]
    cosines = embedder.encode(sentences) @ queries.T
    best, at = np.zeros((len(chunks), len(queries)), dtype=np.float32), 0
    for i, chunk_spans in enumerate(spans):
        best[i] = cosines[at:at + len(chunk_spans)].max(axis=0)
        at += len(chunk_spans)
    return best


def stating(text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The sentences that say something, not those announcing what the text is about ("In this
    post we will summarize why ..."): an announcement shares the question's topic without answering
    it, and would lift its passage over the one that answers. All of them if none says anything."""
    kept = [(s, e) for s, e in spans if not announces(text[s:e])]
    return kept or list(spans)


def holds_asked_kind(text: str, spans: Sequence[tuple[int, int]], focus: Focus) -> bool:
    """A sentence of the passage is of a kind the question asks about (a figure's caption...)."""
    return any(is_asked_kind(text, s, e, focus.admits) for s, e in spans)


def rescore_features(head: Candidates, lists: Mapping[str, Candidates], chunks: Sequence[Chunk], focus: Focus,
                     texts: Callable[[str], str], embedder: Embedder, lexical: LexicalIndex,
                     stopwords: frozenset[str]) -> np.ndarray:
    """``[passage, feature]`` for ``head`` (rows of ``chunks``, same order), each column scaled to [0, 1]."""
    dense, bm25 = (dict(lists.get(name, ())) for name in ("dense", "bm25"))
    rows = [row for row, _ in head]
    queries = embedder.encode([focus.search_text, focus.content_text])
    spans = [whole_sentences(texts(c.doc_id), c) for c in chunks]  # split once, read by two features
    stated = [stating(texts(c.doc_id), chunk_spans) for c, chunk_spans in zip(chunks, spans, strict=True)]
    sentence = best_sentence_cosines(chunks, texts, stated, embedder, queries)
    kinds = [holds_asked_kind(texts(c.doc_id), chunk_spans, focus)
             for c, chunk_spans in zip(chunks, spans, strict=True)]
    terms = QuestionTerms.of(focus, lexical, stopwords)
    tokens = [content_tokens(c.text, stopwords) for c in chunks]
    floor = min(dense.values(), default=0.0)  # a passage dense search did not return scores its lowest
    columns = (
        [dense.get(r, floor) for r in rows],
        [bm25.get(r, 0.0) for r in rows],
        sentence[:, 0],
        sentence[:, 1],
        [terms.coverage(t) for t in tokens],
        [terms.shared_bigrams(t) for t in tokens],
        [c.doc_id in focus.named for c in chunks],
        kinds,
    )
    return np.stack([min_max(np.asarray(c, dtype=np.float64)) for c in columns], axis=1)


def rescore(head: Candidates, lists: Mapping[str, Candidates], chunks: Sequence[Chunk], focus: Focus,
            texts: Callable[[str], str], embedder: Embedder, lexical: LexicalIndex, stopwords: frozenset[str],
            weights: RescoreWeights = RescoreWeights()) -> Candidates:
    """``head`` (rows of ``chunks``, same order) re-ordered by the weighted features, best first."""
    if len(head) < 2:
        return list(head)
    features = rescore_features(head, lists, chunks, focus, texts, embedder, lexical, stopwords)
    scores = features @ np.asarray(astuple(weights)) / sum(astuple(weights))  # in [0, 1], as fused scores
    order = sorted(range(len(head)), key=lambda i: (-scores[i], i))
    return [(head[i][0], float(scores[i])) for i in order]
