"""The chunk store: documents and chunks in one SQLite file, rows aligned with the vector index.

SQLite keeps load time constant (nothing is read until asked) and lookup by row logarithmic,
so the store stays cheap at a million chunks.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path

from rag.types import Chunk, Document, Page, Section

_SCHEMA = """
CREATE TABLE documents (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE chunks (
    row INTEGER PRIMARY KEY, id TEXT NOT NULL, doc_id TEXT NOT NULL, text TEXT NOT NULL,
    start INTEGER NOT NULL, end_ INTEGER NOT NULL, section TEXT NOT NULL, page INTEGER
);
"""
# Built after the rows are in: one sort instead of a B-tree update per insert.
# Parsed documents kept in memory: enough for every hit of a few questions, bounded so that a
# long-running server over a million-chunk corpus does not end up holding all of its text.
DOCUMENT_CACHE = 256
_INDEXES = "CREATE INDEX chunks_doc ON chunks (doc_id, row);"
# A store is written once into a generation folder that is not served until it is complete and
# fsynced (rag.index_store), so SQLite's own journal and syncs would only slow the write down.
_BULK_WRITE = "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"


def document_to_json(document: Document) -> str:
    body = {**document.__dict__,
            "sections": [[list(s.path), s.start, s.end] for s in document.sections],
            "pages": [[p.number, p.start, p.end] for p in document.pages],
            "extra": [list(pair) for pair in document.extra]}
    return json.dumps(body, ensure_ascii=False)


def document_from_json(text: str) -> Document:
    body = json.loads(text)
    body["authors"] = tuple(body["authors"])
    body["sections"] = tuple(Section(tuple(p), s, e) for p, s, e in body["sections"])
    body["pages"] = tuple(Page(n, s, e) for n, s, e in body["pages"])
    body["extra"] = tuple(tuple(pair) for pair in body["extra"])
    return Document(**body)


def write_store(path: Path, documents: Iterable[Document], chunks: Iterable[Chunk]) -> None:
    """Write a new store; chunk ``row`` is the position in ``chunks``."""
    connection = sqlite3.connect(path)
    try:
        connection.executescript(_BULK_WRITE + _SCHEMA)
        connection.executemany("INSERT INTO documents VALUES (?, ?)",
                               ((d.id, document_to_json(d)) for d in documents))
        sections: dict[tuple[str, ...], str] = {}  # a document's chunks share a few section paths
        connection.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ((row, c.id, c.doc_id, c.text, c.start, c.end,
              sections.get(c.section) or sections.setdefault(c.section, json.dumps(list(c.section))), c.page)
             for row, c in enumerate(chunks)),
        )
        connection.executescript(_INDEXES)
        connection.commit()
    finally:
        connection.close()


def _chunk(row: tuple) -> Chunk:
    _, chunk_id, doc_id, text, start, end, section, page = row
    return Chunk(id=chunk_id, doc_id=doc_id, text=text, start=start, end=end,
                 section=tuple(json.loads(section)), page=page)


class ChunkStore:
    """Read-only access to a written store, safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self._connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        self._documents: OrderedDict[str, Document] = OrderedDict()  # least recently used first

    def close(self) -> None:
        self._connection.close()

    def _query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._lock:
            return self._connection.execute(sql, params).fetchall()

    def chunk_count(self) -> int:
        return self._query("SELECT COUNT(*) FROM chunks")[0][0]

    def chunks(self, rows: Sequence[int]) -> list[Chunk]:
        """Chunks at the given rows, in the order asked."""
        found: dict[int, Chunk] = {}
        for start in range(0, len(rows), 500):  # SQLite caps bound parameters per statement
            batch = list(rows[start : start + 500])
            marks = ",".join("?" * len(batch))
            for row in self._query(f"SELECT * FROM chunks WHERE row IN ({marks})", batch):
                found[row[0]] = _chunk(row)
        return [found[r] for r in rows]

    def rows_of(self, doc_ids: Iterable[str]) -> list[int]:
        ids = list(doc_ids)
        marks = ",".join("?" * len(ids))
        return [r for (r,) in self._query(f"SELECT row FROM chunks WHERE doc_id IN ({marks}) ORDER BY row", ids)]

    def chunks_of(self, doc_id: str) -> list[tuple[int, Chunk]]:
        return [(r[0], _chunk(r)) for r in self._query("SELECT * FROM chunks WHERE doc_id = ? ORDER BY row", (doc_id,))]

    def doc_ids_by_row(self) -> list[str]:
        """The document id of every chunk, in row order."""
        return [d for (d,) in self._query("SELECT doc_id FROM chunks ORDER BY row")]

    def all_chunk_texts(self) -> list[str]:
        return [t for (t,) in self._query("SELECT text FROM chunks ORDER BY row")]

    def document(self, doc_id: str) -> Document:
        with self._lock:
            cached = self._documents.get(doc_id)
            if cached is not None:
                self._documents.move_to_end(doc_id)
                return cached
        rows = self._query("SELECT body FROM documents WHERE id = ?", (doc_id,))
        if not rows:
            raise KeyError(doc_id)
        document = document_from_json(rows[0][0])
        with self._lock:
            self._documents[doc_id] = document
            if len(self._documents) > DOCUMENT_CACHE:
                self._documents.popitem(last=False)
        return document

    def documents(self) -> list[Document]:
        """Every document, by id (parsed afresh: listing a big corpus must not fill the cache)."""
        return [document_from_json(body) for (body,) in self._query("SELECT body FROM documents ORDER BY id")]
