"""Where the searchable index lives: one interface, a local default and a Milvus backend.

A store answers the two first-stage searches of :class:`rag.retrieve.Retriever` over chunk rows
(the rows of the generation's SQLite chunk store, so chunk ids and offsets are the same on every
backend). Fusion, collapsing and answering stay above the store and are the same for all.

- ``local`` (default): FAISS + bm25s files of the served generation, in this process.
- ``milvus``: a Milvus collection per generation (Milvus Lite for a ``*.db`` URI, a server or
  cluster for ``http://host:19530``); imported only when chosen, so the default query path never
  loads pymilvus.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from rag.errors import SettingsError

if TYPE_CHECKING:
    from rag.index_store import Index
    from rag.settings import Settings

Candidates = list[tuple[int, float]]  # (row, score), best first


class SearchStore(Protocol):
    """Dense and lexical search over the chunk rows of one opened generation."""

    def restrict(self, sources: Sequence[str]) -> object:
        """The store's own form of a source filter, prepared once per request and handed to
        both searches; ``sources`` are known, non-empty source ids."""
        ...

    def dense(self, query: np.ndarray, depth: int, restriction: object | None) -> Candidates:
        """Rows nearest to an L2-normalised query vector, by cosine, best first."""
        ...

    def lexical(self, question: str, depth: int, restriction: object | None) -> Candidates:
        """Rows by BM25 score for the question, best first; rows matching no term are left out."""
        ...


class GenerationPublisher(Protocol):
    """Copies a generation into a backend that is not the generation folder itself, in two steps
    around the switch of the local ``CURRENT`` pointer (see ``rag.index_store.write_generation``)."""

    def ready(self, generation: str) -> bool:
        """Whether the backend already holds ``generation``."""
        ...

    def stage(self, generation: str, vectors: np.ndarray, lexical_texts: Sequence[str],
              doc_ids: Sequence[str], index_kind: str) -> None:
        """Fill the backend's copy of ``generation`` without touching the served one."""
        ...

    def commit(self, generation: str, keep: set[str]) -> None:
        """Serve ``generation``; drop copies of generations not in ``keep``."""
        ...


def _open_local(settings: Settings, index: Index) -> SearchStore:
    from rag.stores.local import LocalStore

    return LocalStore(index)


def _open_milvus(settings: Settings, index: Index) -> SearchStore:
    from rag.stores.milvus import MilvusStore

    return MilvusStore.open(settings, index)


def _milvus_publisher(settings: Settings) -> GenerationPublisher:
    from rag.stores.milvus_publish import MilvusPublisher

    return MilvusPublisher(settings)


@dataclass(frozen=True)
class Backend:
    open: Callable[[Settings, Index], SearchStore]
    publisher: Callable[[Settings], GenerationPublisher] | None = None  # None: the files are the store


# Backends by the name of the ``store`` setting; the keys also make the error message.
STORES: dict[str, Backend] = {"local": Backend(_open_local), "milvus": Backend(_open_milvus, _milvus_publisher)}


def _backend(settings: Settings) -> Backend:
    try:
        return STORES[settings.store]
    except KeyError:
        raise SettingsError(f"store {settings.store!r} is not one of {', '.join(STORES)}") from None


def open_store(settings: Settings, index: Index) -> SearchStore:
    """The configured backend over the served generation ``index``."""
    return _backend(settings).open(settings, index)


@contextlib.contextmanager
def generation_publisher(settings: Settings) -> Iterator[GenerationPublisher | None]:
    """The configured backend's publisher for a build, closed afterwards (``None`` for local)."""
    make = _backend(settings).publisher
    publisher = make(settings) if make else None
    try:
        yield publisher
    finally:
        close = getattr(publisher, "close", None)
        if close:
            close()
