"""Check every sentence a model wrote against the passages it was shown.

A sentence is kept only when it carries ``[n]`` markers, every marker names a passage the model
was shown, and the cited passages support it: ``support = w * lexical + (1 - w) * semantic``,
where *lexical* is the share of the sentence's content words (stemmed) found in the cited
passages and *semantic* the best MiniLM cosine between the sentence and any sentence of them.
The threshold is calibrated on the eval set (``eval/calibrate_support.py``).

Unsupported sentences are **dropped** from the prose, not shown with a warning: the complaint
this answers is citations that are wrong or missing, and a reader skims past inline flags, so a
claim we could not tie to its source never reaches the prose. Each dropped sentence stays in
``sentences`` with the reason, for anyone who wants to see what the model said.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.embedding import Embedder
from rag.lexical import tokenize
from rag.prompt import NumberedPassage
from rag.sentences import sentence_spans

LEXICAL_WEIGHT = 0.5  # lexical and semantic evidence count equally (eval/reports/support-calibration.json)
_MARKERS = re.compile(r"\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]")
_MARKER_RUN = r"(?:\s*\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\])*"
# A sentence ends at . ! ? (then closing quotes, then any markers written after the stop) before
# whitespace or the end, or at a line break (list items, paragraphs).
_END = re.compile(r"[.!?]+[\"'”’)]*" + _MARKER_RUN + r"(?=\s|$)|\n+")
_ABBREVIATION = re.compile(r"(?:\b(?:e\.g|i\.e|al|vs|etc|cf|fig|approx)|\b[A-Za-z])\.$", re.IGNORECASE)
_REFUSAL = re.compile(
    r"\b(?:cannot|can ?not|can't|unable to|not able to)\s+(?:answer|find|determine|tell)"
    r"|\b(?:do|does|did)\s+not\s+(?:answer|contain|mention|say|provide|include|specify|state)"
    r"|\bno\s+(?:information|mention)\b|\bnot\s+(?:mentioned|stated|specified|provided)\b"
    r"|\bI\s+(?:don't|do not)\s+know\b",
    re.IGNORECASE,
)
_ABOUT_SOURCES = re.compile(r"\b(?:sources?|passages?|text|context|information|documents?)\b", re.IGNORECASE)


@dataclass(frozen=True)
class SentenceCheck:
    """One sentence of the reply and the verdict on it."""

    text: str  # as the model wrote it, markers included
    markers: tuple[int, ...]
    supported: bool
    support: float  # against the passages it cites; 0.0 when it cites none validly
    reason: str | None = None  # why it was dropped (None when kept)


@dataclass(frozen=True)
class CheckedReply:
    """The verdicts, the prose made of the kept sentences, or why no prose is shown."""

    sentences: tuple[SentenceCheck, ...]
    prose: str | None
    withheld_because: str | None = None

    @property
    def kept(self) -> int:
        return sum(s.supported for s in self.sentences)


def split_reply(reply: str) -> list[str]:
    """Sentences of a reply, each with the markers written after its full stop attached."""
    sentences, cursor = [], 0
    for match in _END.finditer(reply):
        if match.group().startswith(".") and _ABBREVIATION.search(reply, 0, match.start() + 1):
            continue
        _append(reply[cursor:match.end()], sentences)
        cursor = match.end()
    _append(reply[cursor:], sentences)
    return sentences


def _append(piece: str, sentences: list[str]) -> None:
    piece = " ".join(piece.split())
    if not piece:
        return
    if _MARKERS.fullmatch(piece.rstrip(".")) and sentences:
        sentences[-1] += " " + piece  # a stray "[2]" on its own line belongs to the sentence before
        return
    sentences.append(piece)


def markers_of(sentence: str) -> tuple[int, ...]:
    found: list[int] = []
    for group in _MARKERS.findall(sentence):
        found.extend(int(n) for n in re.split(r"\s*[,;]\s*", group))
    return tuple(dict.fromkeys(found))


def claim_of(sentence: str) -> str:
    """The sentence without its markers: what is claimed."""
    return " ".join(_MARKERS.sub(" ", sentence).split())


def is_refusal(sentence: str) -> bool:
    """The model saying the sources do not answer (not a claim about the world)."""
    return bool(_REFUSAL.search(sentence)) and (not markers_of(sentence) or bool(_ABOUT_SOURCES.search(sentence)))


def lexical_support(claim: str, passages: Sequence[str]) -> float:
    """Share of the claim's stemmed content words that the cited passages contain."""
    claim_terms = set(tokenize([claim])[0])
    if not claim_terms:
        return 0.0
    passage_terms = set().union(*(tokenize([p])[0] for p in passages))
    return len(claim_terms & passage_terms) / len(claim_terms)


class SupportScorer:
    """Scores a claim against passages; holds the embedder so callers need not."""

    def __init__(self, embedder: Embedder, lexical_weight: float = LEXICAL_WEIGHT) -> None:
        self.embedder = embedder
        self.lexical_weight = lexical_weight

    def score(self, claim: str, passages: Sequence[str]) -> float:
        pieces = [passage[s:e] for passage in passages for s, e in sentence_spans(passage)] or list(passages)
        vectors = self.embedder.encode([claim, *pieces])
        semantic = float(np.max(vectors[1:] @ vectors[0])) if len(pieces) else 0.0
        lexical = lexical_support(claim, passages)
        return self.lexical_weight * lexical + (1 - self.lexical_weight) * max(semantic, 0.0)


def _shown_label(shown: Sequence[int]) -> str:
    return ", ".join(f"[{n}]" for n in shown)


def check_sentence(sentence: str, shown: Sequence[NumberedPassage], scorer: SupportScorer,
                   threshold: float) -> SentenceCheck:
    """The verdict on one sentence: markers present, all shown, and supported by what they name."""
    markers = markers_of(sentence)
    numbers = [p.n for p in shown]
    if not markers:
        return SentenceCheck(sentence, (), False, 0.0, "it cites no source")
    unknown = [n for n in markers if n not in numbers]
    if unknown:
        return SentenceCheck(sentence, markers, False, 0.0,
                             f"it cites {_shown_label(unknown)}, but the model was shown only {_shown_label(numbers)}")
    cited = [p.passage for p in shown if p.n in markers]
    support = round(scorer.score(claim_of(sentence), cited), 4)
    if support < threshold:
        return SentenceCheck(sentence, markers, False, support,
                             f"not supported by the sources: {_shown_label(markers)} do not say this "
                             f"(support {support:.2f} < {threshold:.2f})")
    return SentenceCheck(sentence, markers, True, support)


def check_reply(reply: str, shown: Sequence[NumberedPassage], scorer: SupportScorer,
                threshold: float) -> CheckedReply:
    """Check each sentence; keep the supported ones as the prose, or withhold it with a reason."""
    sentences = split_reply(reply)
    if any(is_refusal(s) for s in sentences):
        verdicts = tuple(SentenceCheck(s, markers_of(s), False, 0.0, "the model declined to answer")
                         for s in sentences)
        return CheckedReply(verdicts, None, "The model said the quoted passages do not answer the question.")
    verdicts = tuple(check_sentence(s, shown, scorer, threshold) for s in sentences)
    kept = [v.text for v in verdicts if v.supported]
    if not kept:
        return CheckedReply(verdicts, None, f"None of the model's {len(verdicts)} sentence(s) is supported by "
                                            "the passages it cites, so only the quotes are shown.")
    return CheckedReply(verdicts, " ".join(kept))
