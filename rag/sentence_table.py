"""The vectors of every passage's sentences, encoded at build and stored with the generation.

At query time the second stage (:mod:`rag.rescore`) and the reader (:mod:`rag.reader.scoring`)
compare the question with each sentence of the top passages. Encoded then, those sentences cost
the first question of a process 1.6 s on 2 cores (about 10 ms a sentence), most of the page's
wait for its first answer. Stored at build, a question encodes only itself.

The table is keyed by the sentence's text, not its offsets: a vector depends only on the text and
the model (the served generation is checked to be of the same weights), so a sentence the table
lacks (a generation built before it, a splitting rule changed since) is simply encoded when asked.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from rag.embedding import Embedder

SENTENCE_TEXTS = "sentences.json"
SENTENCE_VECTORS = "sentences.npy"


class SentenceTable:
    """Sentence text -> its stored vector."""

    def __init__(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        if len(texts) != len(vectors):
            raise ValueError(f"{len(texts)} sentences but {len(vectors)} vectors")
        self.texts = tuple(texts)
        self.vectors = vectors
        self._rows = {text: row for row, text in enumerate(self.texts)}

    @classmethod
    def empty(cls, dimension: int = 0) -> SentenceTable:
        return cls((), np.zeros((0, dimension), dtype=np.float32))

    def __len__(self) -> int:
        return len(self.texts)

    def __contains__(self, text: object) -> bool:
        return text in self._rows

    def vector(self, text: str) -> np.ndarray | None:
        row = self._rows.get(text)
        return None if row is None else self.vectors[row]

    def files(self) -> dict[str, bytes]:
        """The table as the two files a generation stores (``write_generation``'s extra files)."""
        if not self.texts:
            return {}
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(self.vectors, dtype=np.float32))
        return {SENTENCE_TEXTS: json.dumps(self.texts, ensure_ascii=False).encode("utf-8"),
                SENTENCE_VECTORS: buffer.getvalue()}

    @staticmethod
    def stored_in(folder: Path) -> bool:
        return (folder / SENTENCE_TEXTS).is_file()

    @classmethod
    def load(cls, folder: Path) -> SentenceTable:
        """The generation's table; empty for a generation built before tables were stored."""
        if not cls.stored_in(folder):
            return cls.empty()
        texts = json.loads((folder / SENTENCE_TEXTS).read_text(encoding="utf-8"))
        return cls(texts, np.load(folder / SENTENCE_VECTORS, mmap_mode="r"))

    def extended(self, texts: Iterable[str], fresh: Mapping[str, np.ndarray]) -> SentenceTable:
        """A table of exactly ``texts``: vectors from ``fresh`` or, failing that, from this table
        (an incremental build encodes only the sentences the served generation lacks)."""
        wanted = list(dict.fromkeys(texts))
        if not wanted:
            return SentenceTable.empty(self.vectors.shape[1])
        rows = [fresh[t] if t in fresh else self.vector(t) for t in wanted]
        if any(row is None for row in rows):
            raise KeyError("a sentence has no vector: neither fresh nor in this table")
        return SentenceTable(wanted, np.stack(rows).astype(np.float32))

    def over(self, embedder: Embedder) -> Embedder:
        """``embedder`` answering from this table first (an empty table adds nothing)."""
        return _TableFirst(self, embedder) if len(self) else embedder


class _TableFirst:
    """An :class:`~rag.embedding.Embedder` that looks texts up before encoding them."""

    def __init__(self, table: SentenceTable, embedder: Embedder) -> None:
        self.table = table
        self.inner = embedder
        self.name = embedder.name
        self.dimension = embedder.dimension

    def __getattr__(self, attribute: str):
        return getattr(self.inner, attribute)  # provenance and the like, for the manifest checks

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        found = [self.table.vector(t) for t in texts]
        missing = [t for t, v in zip(texts, found, strict=True) if v is None]
        if not missing:
            return np.stack(found) if found else np.zeros((0, self.dimension), dtype=np.float32)
        encoded = iter(self.inner.encode(missing))
        return np.stack([v if v is not None else next(encoded) for v in found])
