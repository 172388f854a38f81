"""The chunk store: documents and chunks in one SQLite file, rows aligned with the vector index.

SQLite keeps load time constant (nothing is read until asked) and lookup by row logarithmic,
so the store stays cheap at a million chunks.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Iterable, Sequence

from rag.types import Chunk, Document, Page, Section

_SCHEMA = """
CREATE TABLE documents (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE chunks (
    row INTEGER PRIMARY KEY, id TEXT NOT NULL, doc_id TEXT NOT NULL, text TEXT NOT NULL,
    start INTEGER NOT NULL, end_ INTEGER NOT NULL, section TEXT NOT NULL, page INTEGER
);
CREATE INDEX chunks_doc ON chunks (doc_id, row);
"""


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
        connection.executescript(_SCHEMA)
        connection.executemany("INSERT INTO documents VALUES (?, ?)",
                               ((d.id, document_to_json(d)) for d in documents))
        connection.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ((row, c.id, c.doc_id, c.text, c.start, c.end, json.dumps(list(c.section)), c.page)
             for row, c in enumerate(chunks)),
        )
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
        self._documents: dict[str, Document] = {}

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

    def all_chunk_texts(self) -> list[str]:
        return [t for (t,) in self._query("SELECT text FROM chunks ORDER BY row")]

    def document(self, doc_id: str) -> Document:
        if doc_id not in self._documents:
            rows = self._query("SELECT body FROM documents WHERE id = ?", (doc_id,))
            if not rows:
                raise KeyError(doc_id)
            self._documents[doc_id] = document_from_json(rows[0][0])
        return self._documents[doc_id]

    def documents(self) -> list[Document]:
        ids = [i for (i,) in self._query("SELECT id FROM documents ORDER BY id")]
        return [self.document(i) for i in ids]
