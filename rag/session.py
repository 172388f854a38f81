"""Wires settings, model and index together for the CLI and the page (which hold no logic)."""

from __future__ import annotations

from dataclasses import dataclass

from rag.answer import AnswerSettings, Generator, compose_answer
from rag.build import BuildReport, Progress, build_index
from rag.embedding import Embedder, SentenceTransformerEmbedder
from rag.errors import IndexStateError
from rag.index_store import Index, current_generation, open_index
from rag.retrieve import Retriever, SearchRequest, validate_question
from rag.settings import Settings
from rag.types import Answer, Hit


def load_embedder(settings: Settings) -> Embedder:
    return SentenceTransformerEmbedder(settings.model_name, settings.model_path, settings.batch_size)


@dataclass(frozen=True)
class Session:
    settings: Settings
    embedder: Embedder
    index: Index
    retriever: Retriever

    def request(self, question: str, k: int | None = None, mode: str | None = None,
                sources: tuple[str, ...] = ()) -> SearchRequest:
        return SearchRequest(
            question=validate_question(question, self.settings.max_question_chars),
            k=k or self.settings.k,
            mode=mode or self.settings.mode,
            sources=sources,
            candidates=self.settings.candidates,
            dense_weight=self.settings.dense_weight,
            fusion=self.settings.fusion,
        )

    def search(self, question: str, k: int | None = None, mode: str | None = None,
               sources: tuple[str, ...] = ()) -> list[Hit]:
        return self.retriever.search(self.request(question, k, mode, sources))

    @property
    def answer_settings(self) -> AnswerSettings:
        return AnswerSettings(max_quotes=self.settings.max_quotes, abstain_below=self.settings.abstain_below)

    def ask(self, question: str, mode: str | None = None, sources: tuple[str, ...] = (),
            generator: Generator | None = None, answer_settings: AnswerSettings | None = None) -> Answer:
        """Retrieve, then compose a quoted, cited answer (or an abstention)."""
        request = self.request(question, mode=mode, sources=sources)
        hits = self.retriever.search(request)
        return compose_answer(request.question, hits, self.index.store.document, self.embedder,
                              self.index.lexical, answer_settings or self.answer_settings, generator)


def open_session(settings: Settings, embedder: Embedder | None = None,
                 progress: Progress | None = None) -> tuple[Session, BuildReport | None]:
    """Open the served index, building it first when there is none yet (a fresh clone)."""
    embedder = embedder or load_embedder(settings)
    report = None
    try:
        has_index = current_generation(settings.index_dir) is not None
    except IndexStateError:
        has_index = False
    if not has_index:
        report = build_index(settings, embedder, progress)
    index = open_index(settings.index_dir, embedder.name, embedder.dimension)
    return Session(settings, embedder, index, Retriever(index, embedder)), report
