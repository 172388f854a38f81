"""An embedder that remembers every text it has encoded, optionally across runs (a ``.npz`` file).

Tuning scripts score the same questions and sentences under many settings; encoding each text
once makes a sweep cost what one run costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.embedding import Embedder


class CachingEmbedder:
    def __init__(self, embedder: Embedder, path: Path | None = None) -> None:
        self._embedder, self.name, self.dimension = embedder, embedder.name, embedder.dimension
        self._path = path
        self._vectors: dict[str, np.ndarray] = {}
        if path is not None and path.is_file():
            with np.load(path, allow_pickle=False) as stored:
                self._vectors = dict(zip(stored["texts"].tolist(), stored["vectors"], strict=True))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            self._vectors.update(zip(missing, self._embedder.encode(missing), strict=True))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vectors[t] for t in texts]).astype(np.float32)

    def save(self) -> None:
        if self._path is not None and self._vectors:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            texts = list(self._vectors)
            np.savez(self._path, texts=np.array(texts), vectors=np.stack([self._vectors[t] for t in texts]))
