"""The Milvus store: dense, BM25 full-text and hybrid search of one generation's collection.

One collection per index generation, named ``<alias>_gen_<n>``; its rows are the chunk rows of
the generation's SQLite chunk store (the primary key *is* the row), so hits, chunk ids and
offsets are those of the local store. Chunk text and offsets stay in that SQLite file; Milvus
holds what it searches: the vector, the source id (for filters) and the BM25 text.

The BM25 text is the chunk's lexical field already analysed by :func:`rag.lexical.tokenize`
(Snowball stems, Lucene stop words, joined by spaces), and questions are analysed the same way,
so Milvus's BM25 function sees exactly the terms bm25s sees: Milvus Lite's analyzer has no
stemmer, and a server's "english" analyzer stems and stops differently, either of which would
move the bm25 eval metrics. Scoring, the inverted index, filters and fusion are Milvus's own.

Every call carries ``settings.milvus_timeout``: a server that dies or hangs mid-query gives a
one-line :class:`StoreUnavailableError`, never a hang.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from rag.errors import IndexStateError, RagError, SettingsError, StoreUnavailableError
from rag.lexical import BM25_K1, tokenize
from rag.stores import Candidates
from rag.vector_index import ivf_cells, ivf_probes

if TYPE_CHECKING:
    from rag.index_store import Index
    from rag.settings import Settings

T = TypeVar("T")
DENSE, SPARSE, TEXT, SOURCE, ROW = "dense", "sparse", "text", "doc_id", "row"
RRF_K = 60  # the constant of Cormack et al. (2009), as rag.retrieve.reciprocal_rank_fusion uses
# Queries per search call. Milvus Lite 3.2 walks every row in Python once per call to drop
# superseded and deleted versions (120 of the 150 ms a 20k-row dense call takes; the distances
# are 7 ms), so a bulk caller's batch pays that once; the cap keeps a call's message small.
SEARCH_BATCH = 256


def collection_name(alias: str, generation: str) -> str:
    """``gen-1764…`` served under alias ``rag`` lives in collection ``rag_gen_1764…``."""
    return f"{alias}_{generation.replace('-', '_')}"


def analysed(text: str) -> str:
    """The BM25 terms of ``text`` as Milvus's standard analyzer will split them back."""
    return " ".join(tokenize([text])[0])


def source_filter(sources: Sequence[str]) -> str:
    """A Milvus boolean expression keeping the chunks of ``sources`` (ids quoted as JSON strings)."""
    return f"{SOURCE} in [{', '.join(json.dumps(s, ensure_ascii=False) for s in sources)}]"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(getattr(exc, "message", "") or exc).split())
    return f"{exc.__class__.__name__}: {text[:160]}" if text else exc.__class__.__name__


class MilvusConnection:
    """A client for one Milvus URI whose every call is bounded and fails with a one-line reason."""

    def __init__(self, uri: str, timeout: float) -> None:
        self.uri = uri
        self.timeout = timeout
        folder = Path(uri).parent
        if uri.endswith(".db") and not folder.is_dir():
            raise StoreUnavailableError(f"Milvus Lite cannot create {uri}: the folder {folder} does not exist; "
                                        "create it, or set RAG_MILVUS_URI to a file in an existing folder")
        try:
            self.client = self._connect()
        except StoreUnavailableError:
            if not uri.endswith(".db"):
                raise
            # Milvus Lite locks its file to one process: the usual cause is a server or build holding it.
            raise StoreUnavailableError(
                f"Milvus Lite cannot open {uri}: another process may hold it (Milvus Lite serves one process per "
                f"file); stop that process, or serve the file with `milvus-lite server --data-dir {uri} --host "
                "127.0.0.1` and set RAG_MILVUS_URI=http://127.0.0.1:19530") from None

    def _connect(self):
        """Connect; a Milvus Lite file just closed by a build in this process stays locked while its
        server exits, so a local file gets a few bounded retries before the refusal."""
        def connect():
            return self.call("connect", lambda: _client(self.uri, self.timeout))

        for pause in (1.0, 2.0, 3.0) if self.uri.endswith(".db") else ():
            try:
                return connect()
            except StoreUnavailableError:
                time.sleep(pause)
        return connect()  # the last try: its refusal reaches the caller

    def call(self, what: str, action: Callable[[], T]) -> T:
        try:
            return action()
        except RagError:
            raise
        except Exception as exc:  # pymilvus raises MilvusException, grpc errors, OSError...
            raise StoreUnavailableError(
                f"Milvus at {self.uri} failed to {what} within {self.timeout:g}s ({_one_line(exc)}); check "
                "that it is running and RAG_MILVUS_URI points at it"
            ) from None

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a dead server's client must not mask the real error
            self.client.close()


def _client(uri: str, timeout: float):
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise SettingsError("the Milvus store needs the scale extra: pip install -e '.[scale]'") from None
    _library_logs_to_debug()
    return MilvusClient(uri=uri, timeout=timeout)


# Loggers of the client library and of Milvus Lite (which runs in this process for a ``*.db`` URI).
LIBRARY_LOGGERS = ("pymilvus", "milvus_lite")
log = logging.getLogger(__name__)


class _AsDebug(logging.Handler):
    """Passes a library's records on to this module's logger at DEBUG, traceback included."""

    def emit(self, record: logging.LogRecord) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: %s", record.name, record.getMessage(), exc_info=record.exc_info)


def _library_logs_to_debug() -> None:
    """pymilvus (through its own console handler) and Milvus Lite (through Python's last-resort
    handler) print each failure with its traceback on stderr, then raise it; we raise it as one
    line (:meth:`MilvusConnection.call`). Their records go to ``rag.stores.milvus`` at DEBUG
    instead: hidden unless an application asks for rag's debug logs, never dropped."""
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        if not any(isinstance(handler, _AsDebug) for handler in library.handlers):
            library.handlers, library.propagate = [_AsDebug()], False
    for name, child in list(logging.root.manager.loggerDict.items()):  # pymilvus gives some children handlers
        if name.split(".")[0] in LIBRARY_LOGGERS and "." in name and isinstance(child, logging.Logger):
            child.handlers, child.propagate = [], True


def _row(hit: Any) -> int:
    return int(hit[ROW] if ROW in hit else hit["id"])


def _candidates(hits: Any) -> Candidates:
    """One query's hits. BM25 distances are negated by Milvus Lite and positive on a server; larger
    |d| is better for both BM25 and inner product, and inner products of unit vectors keep their sign."""
    return [(_row(hit), float(hit["distance"])) for hit in hits]


class MilvusStore:
    """Search of one generation's collection; the source filter is a Milvus expression."""

    def __init__(self, connection: MilvusConnection, collection: str, dense_params: dict[str, Any]) -> None:
        self.connection = connection
        self.collection = collection
        self._dense_params = dense_params

    @classmethod
    def open(cls, settings: Settings, index: Index) -> MilvusStore:
        connection = MilvusConnection(settings.milvus_target, settings.milvus_timeout)
        name = collection_name(settings.milvus_alias, index.generation)
        client, timeout = connection.client, connection.timeout
        if not connection.call("list collections", lambda: client.has_collection(name, timeout=timeout)):
            connection.close()
            raise IndexStateError(f"Milvus at {connection.uri} has no collection for the served generation "
                                  f"{index.generation}; run `rag build` with RAG_STORE=milvus")
        connection.call("load the collection", lambda: client.load_collection(name, timeout=timeout))
        return cls(connection, name, dense_search_params(index.manifest.index_kind, index.manifest.chunk_count))

    def close(self) -> None:
        self.connection.close()

    def restrict(self, sources: Sequence[str]) -> str:
        return source_filter(sources)

    def _search(self, what: str, data: list, field: str, depth: int, params: dict[str, Any],
                restriction: str | None) -> list[Candidates]:
        """One result list per query, asked SEARCH_BATCH queries per call."""
        client, timeout = self.connection.client, self.connection.timeout
        found: list[Candidates] = []
        for start in range(0, len(data), SEARCH_BATCH):
            result = self.connection.call(what, lambda part=data[start:start + SEARCH_BATCH]: client.search(
                self.collection, data=part, anns_field=field, limit=depth, filter=restriction or "",
                search_params=params, output_fields=[ROW], timeout=timeout))
            found += [_candidates(hits) for hits in result]
        return found

    def dense(self, query: np.ndarray, depth: int, restriction: str | None) -> Candidates:
        return self.dense_many(np.asarray(query).reshape(1, -1), depth, restriction)[0]

    def dense_many(self, queries: np.ndarray, depth: int, restriction: str | None) -> list[Candidates]:
        """:meth:`dense` for each row of ``queries`` (n x dimension), in as few calls as possible."""
        vectors = np.asarray(queries, dtype=np.float32).reshape(len(queries), -1).tolist()
        return self._search("search vectors", vectors, DENSE, depth, self._dense_params, restriction)

    def lexical(self, question: str, depth: int, restriction: str | None) -> Candidates:
        return self.lexical_many([question], depth, restriction)[0]

    def lexical_many(self, questions: Sequence[str], depth: int, restriction: str | None) -> list[Candidates]:
        """:meth:`lexical` for each question, in as few calls as possible."""
        terms = [analysed(question) for question in questions]
        asked = [t for t in terms if t]  # a question of stop words only matches nothing, as with bm25s
        found = iter(self._search("run a full-text search", asked, SPARSE, depth, {"metric_type": "BM25"},
                                  restriction))
        # Milvus scores BM25 with a (k1 + 1) numerator, bm25s in the Lucene form without it: the
        # same ranking, and divided out the same scores as the local store.
        return [[(row, abs(score) / (1 + BM25_K1)) for row, score in next(found)] if t else [] for t in terms]

    def hybrid_rrf(self, query: np.ndarray, question: str, depth: int, restriction: str | None) -> Candidates:
        """Dense and BM25 fused by Milvus itself with reciprocal rank fusion (k = 60), in one call."""
        from pymilvus import AnnSearchRequest, RRFRanker

        vector = np.asarray(query, dtype=np.float32).reshape(-1).tolist()
        requests = [AnnSearchRequest([vector], DENSE, self._dense_params, limit=depth, expr=restriction or None)]
        terms = analysed(question)
        if terms:
            requests.append(AnnSearchRequest([terms], SPARSE, {"metric_type": "BM25"}, limit=depth,
                                             expr=restriction or None))
        client, timeout = self.connection.client, self.connection.timeout
        result = self.connection.call("run a hybrid search", lambda: client.hybrid_search(
            self.collection, requests, RRFRanker(RRF_K), limit=depth, output_fields=[ROW], timeout=timeout))
        return _candidates(result[0])


def dense_search_params(index_kind: str, chunk_count: int) -> dict[str, Any]:
    """Exact inner product for a ``flat`` generation; an IVF probe count like the local one's."""
    if index_kind == "ivf":
        return {"metric_type": "IP", "params": {"nprobe": ivf_probes(ivf_cells(chunk_count))}}
    return {"metric_type": "IP"}
