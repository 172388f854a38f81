"""Extractive answers: the best sentences of the top passages, quoted verbatim and cited.

Every claim in an answer is a quotation ``document.text[start:end]``, checked against the
source before it is returned. When the best evidence is too weak, the answer abstains and
offers the nearest passages as material, not as an answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rag.embedding import Embedder
from rag.lexical import LexicalIndex
from rag.reader.abstain import DECLINE, DeclineModel, abstain_reason
from rag.reader.analyser import QuestionAnalyser
from rag.reader.question import Focus
from rag.reader.scoring import Candidate, score_candidates
from rag.sentences import word_cut
from rag.settings import Settings
from rag.types import Answer, Citation, Document, Hit

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class AnswerSettings:
    passages: int = 3  # top hits whose sentences compete for quotes (eval/reports/reader-tuning.json)
    max_quotes: int = Settings.max_quotes  # the defaults people can set live in Settings, once
    max_quote_chars: int = 300
    min_sentence_chars: int = 25  # shorter pieces ("• Harmless.") are labels, not evidence
    # support = cosine + coverage_weight * IDF-weighted question-term coverage: does the sentence
    # itself answer? It decides off-topic abstention.
    coverage_weight: float = 0.2
    # score = cosine + feature_weights . (coverage, focus coverage, passage prior, source named,
    # answer type met, cosine without the source's name, share of question bigrams, of the kind asked about,
    # share of the words the question asks for: "Which GPT-3 baselines ..." -> baselines)
    # (rag.reader.scoring.FEATURES), chosen by cross-validation on the tuning split
    # (eval/tune_reader.py).
    feature_weights: tuple[float, ...] = (0.4, 0.4, 0.8, 0.0, 0.1, 0.4, 0.2, 0.4, 0.4)
    keep_ratio: float = 0.6  # a further quote must score at least this share of the best one
    redundancy: float = 0.8  # cosine above which two sentences say the same thing
    abstain_below: float = Settings.abstain_below  # support under this declines whatever the model says
    evidence_passages: int = 1  # passages in which the question's focus must appear
    missing_focus_share: float = 1.01  # abstain when this IDF share of the focus is absent (> 1: never)
    require_number: bool = True  # "how many" with no number in the best sentences abstains
    decline: DeclineModel | None = DECLINE  # the learned decline on top of the rules above


def score_sentences(question: str, hits: Sequence[Hit], documents: Callable[[str], Document],
                    embedder: Embedder, lexical: LexicalIndex, settings: AnswerSettings,
                    analyser: QuestionAnalyser | None = None) -> tuple[Focus, list[Candidate], np.ndarray]:
    """The analysed question, its candidates best first, and their embeddings in the same order."""
    focus = (analyser or QuestionAnalyser()).analyse(question)
    candidates, vectors = score_candidates(focus, hits, documents, embedder, lexical, settings)
    return focus, candidates, vectors


def select_quotes(candidates: list[Candidate], vectors: np.ndarray,
                  settings: AnswerSettings) -> list[Candidate]:
    """The best sentence first, then up to two close in score that add something new."""
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
    best, *support = [candidates[i] for i in chosen]
    # The answer leads; supporting quotes follow in reading order (source of first mention, then place).
    source_rank = {c.document.id: n for n, c in reversed(list(enumerate(support)))}
    return [best, *sorted(support, key=lambda c: (source_rank[c.document.id], c.start))]


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


def abstention_text(reason: str) -> str:
    return f"{reason} The nearest material is listed below; it is shown for reference, not as an answer."


def compose_answer(question: str, hits: Sequence[Hit], documents: Callable[[str], Document],
                   embedder: Embedder, lexical: LexicalIndex, settings: AnswerSettings = AnswerSettings(),
                   analyser: QuestionAnalyser | None = None) -> Answer:
    """Quote and cite the sentence that answers, then up to two that support it; or decline, saying why."""
    focus, candidates, vectors = score_sentences(question, hits, documents, embedder, lexical, settings, analyser)
    support = max((c.support for c in candidates), default=0.0)
    reason = abstain_reason(focus, candidates, hits, lexical, settings)
    if reason is not None:
        return Answer(question=question, text=abstention_text(reason), citations=(), abstained=True,
                      nearest=tuple(hits[: settings.passages]), hits=tuple(hits), support=support,
                      abstained_because=reason)
    citations = cite(select_quotes(candidates, vectors, settings), settings)
    return Answer(question=question, text=extractive_text(citations), citations=tuple(c for c, _ in citations),
                  abstained=False, hits=tuple(hits), support=support)
