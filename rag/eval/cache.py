"""An embedder that remembers every text it has encoded, optionally across runs (a ``.npz`` file).

Tuning scripts score the same questions and sentences under many settings; encoding each text
once makes a sweep cost what one run costs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.embedding import Embedder

_SEPARATOR = "\0"  # joins the stored texts; a text holding one is not stored


class CachingEmbedder:
    def __init__(self, embedder: Embedder, path: Path | None = None) -> None:
        self._embedder, self.name, self.dimension = embedder, embedder.name, embedder.dimension
        self._path = path
        self._vectors: dict[str, np.ndarray] = {}
        self._saved = 0
        if path is not None and path.is_file():
            with np.load(path, allow_pickle=False) as stored:
                texts = (bytes(stored["joined"]).decode("utf-8").split(_SEPARATOR) if "joined" in stored
                         else stored["texts"].tolist())  # the older layout, one fixed-width string each
                self._vectors = dict(zip(texts, stored["vectors"], strict=True))
            self._saved = len(self._vectors)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            self._vectors.update(zip(missing, self._embedder.encode(missing), strict=True))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vectors[t] for t in texts]).astype(np.float32)

    def save(self) -> None:
        """Write the vectors, if any were added since the file was read; atomically."""
        if self._path is None or len(self._vectors) == self._saved:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        texts = [t for t in self._vectors if _SEPARATOR not in t]  # such a text is encoded again next run
        # One UTF-8 buffer, not an array of fixed-width strings, which would pad every sentence to
        # the longest (hundreds of MB for a BEIR corpus's sentences).
        joined = np.frombuffer(_SEPARATOR.join(texts).encode("utf-8"), dtype=np.uint8)
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=f".{self._path.stem}.", suffix=".npz")
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, joined=joined, vectors=np.stack([self._vectors[t] for t in texts]))
        os.replace(tmp, self._path)
        self._saved = len(self._vectors)  # a text left out above is not news at the next save
