"""Publishing a generation to Milvus: a new collection per build, then one alias switch.

The build writes the generation's files first, then :meth:`MilvusPublisher.stage` fills the
generation's own collection (created, inserted, flushed, indexed, loaded) while the served one
is untouched; only after the local ``CURRENT`` pointer moves does :meth:`commit` point the alias
at it and drop the collections of older generations (the previous one stays for readers that
still hold it, as on disk). A build that fails or is killed at any step leaves the served
collection as it was; its half-filled collection is dropped by the next successful build.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from rag.stores.milvus import DENSE, ROW, SOURCE, SPARSE, TEXT, MilvusConnection, analysed, collection_name
from rag.vector_index import ivf_cells

if TYPE_CHECKING:
    from rag.settings import Settings

INSERT_ROWS = 2_000  # rows per insert call: well under gRPC's message cap at 384 float dimensions
MAX_TEXT = 65_535  # Milvus VARCHAR limit in bytes


def index_params(client, index_kind: str, chunk_count: int, k1: float, b: float):
    """Dense index like the local one (exact below IVF_FROM_CHUNKS, else ~sqrt(n) IVF cells);
    BM25 over an inverted index with the local BM25 parameters.

    Tuning goes nested under a ``params`` key, which Milvus servers and Milvus Lite both read:
    pymilvus 3 flattens a plain ``params`` dict into top-level keys, which Milvus Lite 3.2 ignores
    (it scored with its default k1 1.5, b 0.75 and moved every BM25 score)."""
    params = client.prepare_index_params()
    if index_kind == "ivf":
        params.add_index(DENSE, index_type="IVF_FLAT", metric_type="IP",
                         params={"params": {"nlist": ivf_cells(chunk_count)}})
    else:
        params.add_index(DENSE, index_type="FLAT", metric_type="IP")
    params.add_index(SPARSE, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                     params={"params": {"bm25_k1": k1, "bm25_b": b}})
    return params


def collection_schema(client, dimension: int):
    from pymilvus import DataType, Function, FunctionType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field(ROW, DataType.INT64, is_primary=True)
    schema.add_field(SOURCE, DataType.VARCHAR, max_length=1024)
    # Plain word splitting and lowercasing: the text is already stemmed and stopped (rag.stores.milvus).
    schema.add_field(TEXT, DataType.VARCHAR, max_length=MAX_TEXT, enable_analyzer=True,
                     analyzer_params={"tokenizer": "standard"})
    schema.add_field(SPARSE, DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field(DENSE, DataType.FLOAT_VECTOR, dim=dimension)
    schema.add_function(Function(name="bm25", input_field_names=[TEXT], output_field_names=[SPARSE],
                                 function_type=FunctionType.BM25))
    return schema


class MilvusPublisher:
    """Writes generations into Milvus collections and switches the served alias."""

    def __init__(self, settings: Settings) -> None:
        self.alias = settings.milvus_alias
        self.connection = MilvusConnection(settings.milvus_target, settings.milvus_timeout)

    def close(self) -> None:
        self.connection.close()

    def _names(self) -> list[str]:
        client, timeout = self.connection.client, self.connection.timeout
        return self.connection.call("list collections", lambda: client.list_collections(timeout=timeout))

    def ready(self, generation: str) -> bool:
        """Whether ``generation`` already has its collection (a build may then skip writing)."""
        return collection_name(self.alias, generation) in self._names()

    def stage(self, generation: str, vectors: np.ndarray, lexical_texts: Sequence[str],
              doc_ids: Sequence[str], index_kind: str) -> None:
        """Create and fill the generation's collection; the served alias does not move."""
        from rag.lexical import BM25_B, BM25_K1

        client, timeout, call = self.connection.client, self.connection.timeout, self.connection.call
        name = collection_name(self.alias, generation)
        if name in self._names():  # a leftover of an interrupted build of the same name
            call("drop a stale collection", lambda: client.drop_collection(name, timeout=timeout))
        schema = collection_schema(client, int(vectors.shape[1]))
        params = index_params(client, index_kind, len(vectors), BM25_K1, BM25_B)
        call("create a collection", lambda: client.create_collection(
            name, schema=schema, index_params=params, consistency_level="Strong", timeout=timeout))
        for start in range(0, len(vectors), INSERT_ROWS):
            stop = min(start + INSERT_ROWS, len(vectors))
            rows = [{ROW: row, SOURCE: doc_ids[row], TEXT: _fit(analysed(lexical_texts[row])),
                     DENSE: vectors[row].tolist()} for row in range(start, stop)]
            call("insert rows", lambda rows=rows: client.insert(name, rows, timeout=timeout))
        call("flush the collection", lambda: client.flush(name, timeout=timeout))
        call("load the collection", lambda: client.load_collection(name, timeout=timeout))

    def commit(self, generation: str, keep: set[str]) -> None:
        """Point the alias at ``generation``'s collection; drop those of generations not in ``keep``."""
        client, timeout, call = self.connection.client, self.connection.timeout, self.connection.call
        name = collection_name(self.alias, generation)
        aliases = call("list aliases", lambda: client.list_aliases(timeout=timeout))
        listed = aliases.get("aliases", []) if isinstance(aliases, dict) else list(aliases)
        if self.alias in listed:
            call("switch the alias", lambda: client.alter_alias(name, self.alias, timeout=timeout))
        else:
            call("create the alias", lambda: client.create_alias(name, self.alias, timeout=timeout))
        kept = {collection_name(self.alias, g) for g in keep | {generation}}
        prefix = f"{self.alias}_gen_"
        for old in self._names():
            if old.startswith(prefix) and old not in kept:
                call("drop an old collection", lambda old=old: client.drop_collection(old, timeout=timeout))

    def served(self) -> str | None:
        """The collection the alias points at, or ``None`` before the first build."""
        client, timeout = self.connection.client, self.connection.timeout
        aliases = self.connection.call("list aliases", lambda: client.list_aliases(timeout=timeout))
        listed = aliases.get("aliases", []) if isinstance(aliases, dict) else list(aliases)
        if self.alias not in listed:
            return None
        described = self.connection.call("describe the alias",
                                         lambda: client.describe_alias(self.alias, timeout=timeout))
        return described["collection_name"]


def _fit(text: str) -> str:
    """Clip to the VARCHAR limit on a word boundary (a chunk's terms are far below it)."""
    encoded = text.encode("utf-8")
    if len(encoded) <= MAX_TEXT:
        return text
    return encoded[:MAX_TEXT].decode("utf-8", errors="ignore").rsplit(" ", 1)[0]
