"""Extractive answers: the best sentences of the top passages, quoted verbatim and cited.

Every claim in an answer is a quotation ``document.text[start:end]``, checked against the
source before it is returned. When the best evidence is too weak, the answer abstains and
offers the nearest passages as material, not as an answer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from rag.embedding import Embedder
from rag.lexical import LexicalIndex, bm25s_module, tokenize
from rag.sentences import sentence_spans, word_cut
from rag.types import Answer, Citation, Document, Hit

log = logging.getLogger(__name__)

# A generator turns the question and verified quotes into prose with [n] markers.
Generator = Callable[[str, Sequence[Citation]], str]
_MARKER = re.compile(r"\[(\d+)\]")
_LEADING_MARK = re.compile(r"^(?:[•*\-–]|\d+[.)])\s+")



@dataclass(frozen=True)
class AnswerSettings:
    passages: int = 5  # top hits whose sentences compete for quotes
    max_quotes: int = 3
    max_quote_chars: int = 300
    min_sentence_chars: int = 25  # shorter pieces ("• Harmless.") are labels, not evidence
    # support = cosine + coverage_weight * IDF-weighted question-term coverage: does the sentence
    # itself answer? score = support + passage_weight * the passage's retrieval score over the best's:
    # retrieval ranks whole passages well, so its order is a strong prior for which sentence to
    # quote. Both weights were chosen on the project eval (gold evidence quoted, separability).
    coverage_weight: float = 0.2
    passage_weight: float = 0.6
    keep_ratio: float = 0.6  # a further quote must score at least this share of the best one
    redundancy: float = 0.8  # cosine above which two sentences say the same thing
    abstain_below: float = 0.40  # support under this means the sources do not answer (Settings default)


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved passage, scored against the question."""

    hit: Hit
    document: Document
    start: int
    end: int
    cosine: float
    coverage: float
    support: float  # evidence strength of the sentence alone (drives abstention)
    score: float  # support plus the passage prior (drives which sentences are quoted)


def _leading_marker_end(text: str, start: int, end: int) -> int:
    """Skip a list marker so a quote starts at the sentence's first word."""
    match = _LEADING_MARK.match(text[start:end])
    return start + match.end() if match else start


def sentence_candidates(hits: Sequence[Hit], documents: Callable[[str], Document],
                        settings: AnswerSettings) -> list[tuple[Hit, Document, int, int]]:
    """Sentences of the top passages, deduplicated across overlapping chunks."""
    seen: set[tuple[str, int]] = set()
    found = []
    for hit in hits[: settings.passages]:
        document = documents(hit.chunk.doc_id)
        for start, end in sentence_spans(document.text, hit.chunk.start, hit.chunk.end):
            start = _leading_marker_end(document.text, start, end)
            if end - start < settings.min_sentence_chars or (document.id, start) in seen:
                continue
            seen.add((document.id, start))
            found.append((hit, document, start, end))
    return found


def question_terms(question: str) -> list[str]:
    """Stemmed content words of a question; question words like "what" or "does" carry no evidence."""
    stopwords = _question_stopwords()
    return [t for t in tokenize([question])[0] if t not in stopwords]


@lru_cache(maxsize=1)
def _question_stopwords() -> frozenset[str]:
    words = bm25s_module().stopwords.STOPWORDS_EN_PLUS
    return frozenset(tokenize([" ".join(words)])[0]) | frozenset(words)


def term_coverage(question_terms: Sequence[str], weights: Sequence[float], sentence: str) -> float:
    """Share of the question's IDF mass whose (stemmed) terms the sentence contains."""
    total = sum(weights)
    if not total:
        return 0.0
    present = set(tokenize([sentence])[0])
    return sum(w for term, w in zip(question_terms, weights, strict=True) if term in present) / total


def score_sentences(question: str, hits: Sequence[Hit], documents: Callable[[str], Document],
                    embedder: Embedder, lexical: LexicalIndex,
                    settings: AnswerSettings) -> tuple[list[Candidate], np.ndarray]:
    """Candidates best first by score, and their embeddings in the same order."""
    found = sentence_candidates(hits, documents, settings)
    if not found:
        return [], np.zeros((0, embedder.dimension), dtype=np.float32)
    texts = [document.text[s:e] for _, document, s, e in found]
    vectors = embedder.encode([question, *texts])
    cosines = vectors[1:] @ vectors[0]
    terms = question_terms(question)
    weights = lexical.idf(terms)
    top = max((hit.score for hit in hits), default=0.0)
    # Scaled by the best passage so the prior lies in [0, 1] whatever the mode's score range.
    passage_prior = {hit.rank: max(hit.score, 0.0) / top if top > 0 else 0.0 for hit in hits}
    candidates = []
    for (hit, document, s, e), cosine, text in zip(found, cosines, texts, strict=True):
        coverage = term_coverage(terms, weights, text)
        support = float(cosine) + settings.coverage_weight * coverage
        score = support + settings.passage_weight * passage_prior[hit.rank]
        candidates.append(Candidate(hit, document, s, e, float(cosine), coverage, support, score))
    order = sorted(range(len(candidates)), key=lambda i: -candidates[i].score)
    return [candidates[i] for i in order], vectors[1:][order]


def select_quotes(candidates: list[Candidate], vectors: np.ndarray,
                  settings: AnswerSettings) -> list[Candidate]:
    """Best sentence first, then others close in score that add something new."""
    if not candidates:
        return []
    chosen: list[int] = [0]
    for i in range(1, len(candidates)):
        if len(chosen) == settings.max_quotes:
            break
        if candidates[i].score < settings.keep_ratio * candidates[0].score:
            break
        if max(float(vectors[i] @ vectors[j]) for j in chosen) >= settings.redundancy:
            continue
        chosen.append(i)
    picked = [candidates[i] for i in chosen]
    # Read in a natural order: sources by their best quote, document order within a source.
    source_rank = {c.document.id: n for n, c in reversed(list(enumerate(picked)))}
    return sorted(picked, key=lambda c: (source_rank[c.document.id], c.start))


def trim_quote(text: str, start: int, end: int, limit: int) -> tuple[int, int, bool]:
    """Cut a long sentence at a word boundary within ``limit`` characters; say if it was cut."""
    if end - start <= limit:
        return start, end, False
    cut = word_cut(text, start, start + limit)
    while cut > start and not text[cut - 1].isalnum():
        cut -= 1  # do not end a quote on a comma or an opening bracket
    return start, cut, True


def verified(citation: Citation) -> bool:
    return citation.document.text[citation.start : citation.end] == citation.quote


def cite(candidates: Sequence[Candidate], settings: AnswerSettings) -> list[tuple[Citation, bool]]:
    """Numbered citations for the chosen sentences, each checked against its source."""
    citations = []
    for candidate in candidates:
        start, end, cut = trim_quote(candidate.document.text, candidate.start, candidate.end,
                                     settings.max_quote_chars)
        citation = Citation(
            n=len(citations) + 1,
            document=candidate.document,
            quote=candidate.document.text[start:end],
            start=start,
            end=end,
            section=candidate.document.section_at(start),
            page=candidate.document.page_at(start),
        )
        if not verified(citation):  # cannot happen by construction; never show an unchecked quote
            log.error("dropped a quote that is not verbatim in %s at %d:%d", citation.document.id, start, end)
            continue
        citations.append((citation, cut))
    return citations


def extractive_text(citations: Sequence[tuple[Citation, bool]]) -> str:
    parts = []
    for citation, cut in citations:
        quote = " ".join(citation.quote.split())
        parts.append(f"“{quote}{'…' if cut else ''}” [{citation.n}]")
    return "\n\n".join(parts)


def checked_generation(generator: Generator, question: str, citations: Sequence[Citation]) -> str | None:
    """Generated prose, if every ``[n]`` in it names a quote we hold and it cites at least one."""
    prose = generator(question, citations)
    markers = {int(n) for n in _MARKER.findall(prose)}
    if markers and markers <= {c.n for c in citations}:
        return prose
    log.warning("generated answer cites %s, but the quotes are %s; using the quotes instead",
                sorted(markers), [c.n for c in citations])
    return None


def abstention_text(question: str) -> str:
    return ("The sources do not answer this question. The nearest material is listed below; "
            "it is shown for reference, not as an answer.")


def compose_answer(question: str, hits: Sequence[Hit], documents: Callable[[str], Document],
                   embedder: Embedder, lexical: LexicalIndex, settings: AnswerSettings = AnswerSettings(),
                   generator: Generator | None = None) -> Answer:
    """Quote and cite the best evidence in ``hits``, or abstain when it is too weak."""
    candidates, vectors = score_sentences(question, hits, documents, embedder, lexical, settings)
    support = max((c.support for c in candidates), default=0.0)
    if support < settings.abstain_below:
        return Answer(question=question, text=abstention_text(question), citations=(), abstained=True,
                      nearest=tuple(hits[: settings.passages]), hits=tuple(hits), support=support)
    citations = cite(select_quotes(candidates, vectors, settings), settings)
    text = extractive_text(citations)
    if generator is not None:
        text = checked_generation(generator, question, [c for c, _ in citations]) or text
    return Answer(question=question, text=text, citations=tuple(c for c, _ in citations), abstained=False,
                  hits=tuple(hits), support=support)
