"""Ranked passages for a question: dense, BM25, or a fusion of both (the default)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rag.embedding import Embedder
from rag.errors import QuestionError, SettingsError
from rag.index_store import Index
from rag.modes import Mode
from rag.reader.analyser import QuestionAnalyser, question_stopwords
from rag.reader.lexicon import acronym_key
from rag.rescore import RESCORE_DEPTH, above_the_tail, rescore
from rag.stores import Candidates, SearchStore
from rag.stores.local import LocalStore
from rag.types import Chunk, Hit


@dataclass(frozen=True)
class SearchRequest:
    question: str
    k: int = 5
    mode: str = Mode.HYBRID
    sources: tuple[str, ...] = ()  # restrict to these source ids; empty means all
    candidates: int = 50
    dense_weight: float = 0.5
    fusion: str = "convex"
    # Hybrid only: added to the fused score of a passage from a source the question names, or that
    # names it itself (chosen on the tuning split, eval/reports/reader-tuning.md).
    source_boost: float = 0.0
    # Hybrid only: how many passages of the fused head the sentence-aware second stage re-orders
    # (rag.rescore); 0 turns it off.
    rescore_depth: int = RESCORE_DEPTH

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise SettingsError(f"fusion {self.fusion!r} is not one of {', '.join(FUSIONS)}")
        # A negative k would silently slice from the end of the ranking.
        for name in ("k", "candidates"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.rescore_depth < 0:
            raise SettingsError(f"rescore_depth must be 0 or more, got {self.rescore_depth!r}")


def validate_question(question: str, max_chars: int) -> str:
    text = question.strip()
    if not text:
        raise QuestionError("the question is empty; type a question")
    if len(text) > max_chars:
        raise QuestionError(f"the question is {len(text):,} characters long; the limit is {max_chars:,}. "
                            "Ask something shorter")
    return text


def min_max(candidates: Candidates) -> dict[int, float]:
    """Scale scores to [0, 1] within one result list (a lone candidate scores 1)."""
    if not candidates:
        return {}
    scores = [s for _, s in candidates]
    low, high = min(scores), max(scores)
    span = high - low
    return {row: (score - low) / span if span > 0 else 1.0 for row, score in candidates}


def convex_fusion(dense: Candidates, lexical: Candidates, dense_weight: float) -> Candidates:
    """``w * minmax(dense) + (1 - w) * minmax(bm25)``; a list that misses a row contributes 0.

    Convex combination of normalised scores, which Bruch et al. (2023, "An Analysis of Fusion
    Functions for Hybrid Retrieval", ACM TOIS) find more effective than reciprocal rank fusion.
    """
    d, b = min_max(dense), min_max(lexical)
    fused = {row: dense_weight * d.get(row, 0.0) + (1 - dense_weight) * b.get(row, 0.0)
             for row in d.keys() | b.keys()}
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def reciprocal_rank_fusion(dense: Candidates, lexical: Candidates, dense_weight: float,
                           k: int = 60) -> Candidates:
    """``sum 1 / (k + rank)`` over both lists (Cormack, Clarke & Buettcher 2009, SIGIR), each list
    weighted ``w`` or ``1 - w`` (equal weights give the classic unweighted RRF)."""
    fused: dict[int, float] = {}
    for weight, ranked in ((dense_weight, dense), (1 - dense_weight, lexical)):
        for rank, (row, _) in enumerate(ranked, start=1):
            fused[row] = fused.get(row, 0.0) + 2 * weight / (k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


# Hybrid fusion functions by name; the project eval chose convex (eval/reports/hybrid-sweep.md).
FUSIONS: dict[str, Callable[[Candidates, Candidates, float], Candidates]] = {
    "convex": convex_fusion,
    "rrf": reciprocal_rank_fusion,
}


def overlaps(a: Chunk, b: Chunk, min_share: float = 0.5) -> bool:
    """Same passage for a reader: same document and at least half of the shorter span shared,
    or identical text anywhere."""
    if a.text.split() == b.text.split():
        return True
    if a.doc_id != b.doc_id:
        return False
    shared = min(a.end, b.end) - max(a.start, b.start)
    return shared > 0 and shared >= min_share * min(a.end - a.start, b.end - b.start)


def collapse_duplicates(hits: Iterable[Hit]) -> list[Hit]:
    """Keep the best of each group of overlapping or duplicate chunks."""
    kept: list[Hit] = []
    for hit in hits:
        if not any(overlaps(hit.chunk, other.chunk) for other in kept):
            kept.append(hit)
    return kept


class Retriever:
    """Searches one opened index with one embedder, through its store (local files by default)."""

    def __init__(self, index: Index, embedder: Embedder, analyser: QuestionAnalyser | None = None,
                 store: SearchStore | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.analyser = analyser or QuestionAnalyser.for_index(index.folder, index.store.documents)
        self.store = store or LocalStore(index)
        self._searchers: dict[Mode, Callable[[str, int, object | None], Candidates]] = {
            Mode.DENSE: self._dense,
            Mode.BM25: self._bm25,
        }

    def _dense(self, question: str, depth: int, allowed: object | None) -> Candidates:
        query = self.embedder.encode([question])[0]
        return self.store.dense(query, depth, allowed)

    def _bm25(self, question: str, depth: int, allowed: object | None) -> Candidates:
        return self.store.lexical(question, depth, allowed)

    def _allowed(self, sources: Sequence[str]) -> object | None:
        """The store's filter for ``sources``, built once for every searcher of the request."""
        if not sources:
            return None
        unknown = sorted(set(sources) - set(self.index.manifest.documents))
        if unknown:
            raise SettingsError(f"unknown source id(s) {', '.join(map(repr, unknown))}; see `rag sources`")
        return self.store.restrict(sources)

    def candidates(self, request: SearchRequest, text: str | None = None) -> dict[str, Candidates]:
        """Each retriever's own ranked candidates (the raw material of fusion) for ``text``
        (default: the question as typed)."""
        mode = Mode.parse(request.mode)
        allowed = self._allowed(request.sources)
        names = (Mode.DENSE, Mode.BM25) if mode == Mode.HYBRID else (mode,)
        return {name: self._searchers[name](text or request.question, request.candidates, allowed)
                for name in names}

    def _favour_named(self, ranked: Candidates, request: SearchRequest) -> Candidates:
        """Raise the passages of the sources the question names, and the passages that name them."""
        focus = self.analyser.analyse(request.question)
        if not focus.named or not request.source_boost:
            return ranked
        head = ranked[: request.candidates]
        chunks = self.index.store.chunks([row for row, _ in head])
        keys = focus.name_terms
        boosted = [(row, score + request.source_boost * (
                        chunk.doc_id in focus.named or bool({acronym_key(w) for w in chunk.text.split()} & keys)))
                   for chunk, (row, score) in zip(chunks, head, strict=True)]
        return sorted(boosted, key=lambda item: (-item[1], item[0])) + ranked[request.candidates:]

    def _rescored(self, ranked: Candidates, lists: dict[str, Candidates], request: SearchRequest) -> Candidates:
        """The head re-ordered by :func:`rag.rescore.rescore`; the tail kept below it."""
        head, tail = ranked[: request.rescore_depth], ranked[request.rescore_depth:]
        if len(head) < 2:
            return ranked
        chunks = self.index.store.chunks([row for row, _ in head])
        head = rescore(head, lists, chunks, self.analyser.analyse(request.question),
                       lambda doc_id: self.index.store.document(doc_id).text, self.embedder,
                       self.index.lexical, question_stopwords())
        return above_the_tail(head, tail)

    def search(self, request: SearchRequest) -> list[Hit]:
        """Dense and BM25 rank the question as typed; hybrid reads it first (spelling, acronyms,
        named sources) and fuses both lists."""
        hybrid = Mode.parse(request.mode) == Mode.HYBRID
        text = self.analyser.analyse(request.question).search_text if hybrid else request.question
        lists = self.candidates(request, text)
        if hybrid:
            ranked = FUSIONS[request.fusion](lists[Mode.DENSE], lists[Mode.BM25], request.dense_weight)
            ranked = self._favour_named(ranked, request)
            ranked = self._rescored(ranked, lists, request)
        else:
            ranked = lists[request.mode]
        members = {name: {row for row, _ in cands} for name, cands in lists.items()}
        # Fetch a few extra so that collapsing duplicates still leaves k distinct passages.
        head = ranked[: request.k * 3]
        chunks = self.index.store.chunks([row for row, _ in head])
        hits = [Hit(chunk=chunk, score=score, rank=0,
                    retrievers=tuple(str(name) for name, rows in members.items() if row in rows))
                for chunk, (row, score) in zip(chunks, head, strict=True)]
        distinct = collapse_duplicates(hits)[: request.k]
        return [Hit(h.chunk, h.score, rank, h.retrievers) for rank, h in enumerate(distinct, start=1)]
