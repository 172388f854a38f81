"""The vectors of every passage's sentences, encoded at build and stored with the generation.

At query time the second stage (:mod:`rag.rescore`) and the reader (:mod:`rag.reader.scoring`)
compare the question with each sentence of the top passages. Encoded then, those sentences cost
the first question of a process 1.6 s on 2 cores (about 10 ms a sentence), most of the page's
wait for its first answer. Stored at build, a question encodes only itself.

The table is keyed by a 64-bit hash of the sentence's text, not its offsets: a vector depends only
on the text and the model (the served generation is checked to be of the same weights), so a
sentence the table lacks (a generation built before it, a splitting rule changed since) is simply
encoded when asked. Sorted keys in a memory-mapped array, not a dict of texts, so opening a large
index costs no parsing and no memory for the texts (a collision among a million sentences has a
chance of about 3e-8, and would only swap two sentences' vectors).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from rag.embedding import Embedder

SENTENCE_KEYS = "sentence_keys.npy"
SENTENCE_VECTORS = "sentences.npy"


def sentence_key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def _keys(texts: Iterable[str]) -> np.ndarray:
    return np.fromiter((sentence_key(t) for t in texts), dtype=np.uint64)


class SentenceTable:
    """Sentence text -> its stored vector, by the text's key (rows sorted by key)."""

    def __init__(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        if len(keys) != len(vectors):
            raise ValueError(f"{len(keys)} sentence keys but {len(vectors)} vectors")
        if len(keys) > 1 and not bool(np.all(keys[1:] > keys[:-1])):
            raise ValueError("sentence keys are not sorted and distinct")
        self.keys = keys
        self.vectors = vectors

    @classmethod
    def of(cls, texts: Sequence[str], vectors: np.ndarray) -> SentenceTable:
        """A table of ``texts`` (distinct) and their vectors, in any order."""
        keys, first = np.unique(_keys(texts), return_index=True)  # sorted; a colliding text keeps the first's row
        return cls(keys, np.asarray(vectors, dtype=np.float32)[first])

    @classmethod
    def empty(cls, dimension: int = 0) -> SentenceTable:
        return cls(np.zeros(0, dtype=np.uint64), np.zeros((0, dimension), dtype=np.float32))

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, text: object) -> bool:
        return isinstance(text, str) and self.rows([text])[0] >= 0

    def rows(self, texts: Sequence[str]) -> np.ndarray:
        """Each text's row, or -1 where the table lacks it."""
        wanted = _keys(texts)
        at = np.searchsorted(self.keys, wanted)
        inside = at < len(self.keys)
        found = np.zeros(len(wanted), dtype=bool)
        found[inside] = self.keys[at[inside]] == wanted[inside]
        return np.where(found, at, -1)

    def vector(self, text: str) -> np.ndarray | None:
        row = int(self.rows([text])[0])
        return None if row < 0 else np.asarray(self.vectors[row])

    def files(self) -> dict[str, bytes]:
        """The table as the two files a generation stores (``write_generation``'s extra files)."""
        if not len(self):
            return {}
        return {SENTENCE_KEYS: _npy(self.keys), SENTENCE_VECTORS: _npy(np.asarray(self.vectors, dtype=np.float32))}

    @staticmethod
    def stored_in(folder: Path) -> bool:
        return (folder / SENTENCE_KEYS).is_file()

    @classmethod
    def load(cls, folder: Path) -> SentenceTable:
        """The generation's table, memory-mapped; empty for a generation built before tables."""
        if not cls.stored_in(folder):
            return cls.empty()
        return cls(np.load(folder / SENTENCE_KEYS, mmap_mode="r"), np.load(folder / SENTENCE_VECTORS, mmap_mode="r"))

    def extended(self, texts: Iterable[str], fresh: Mapping[str, np.ndarray]) -> SentenceTable:
        """A table of exactly ``texts``: vectors from ``fresh`` or, failing that, from this table
        (an incremental build encodes only the sentences the served generation lacks)."""
        wanted = list(dict.fromkeys(texts))
        if not wanted:
            return SentenceTable.empty(self.vectors.shape[1])
        stored = self.rows(wanted)  # one batched lookup, not one per sentence
        if any(t not in fresh and row < 0 for t, row in zip(wanted, stored, strict=True)):
            raise KeyError("a sentence has no vector: neither fresh nor in this table")
        return SentenceTable.of(wanted, np.stack([fresh[t] if t in fresh else self.vectors[row]
                                                  for t, row in zip(wanted, stored, strict=True)]))

    def over(self, embedder: Embedder) -> Embedder:
        """``embedder`` answering from this table first (an empty table adds nothing)."""
        return _TableFirst(self, embedder) if len(self) else embedder


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


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
        rows = self.table.rows(texts)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        known = rows >= 0
        vectors[known] = self.table.vectors[rows[known]]
        missing = [t for t, row in zip(texts, rows, strict=True) if row < 0]
        if missing:
            vectors[~known] = self.inner.encode(missing)
        return vectors
