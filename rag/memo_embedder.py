"""An embedder that remembers the vectors of texts it has encoded.

At query time the second-stage ranking and the reader encode the sentences of the top passages,
and the same passages come back question after question, so most of those sentences were
encoded before. Vectors depend only on the text and the model, so the memory is safe across
index generations; it is bounded, least recently used first out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from rag.embedding import Embedder

MEMO_TEXTS = 50_000  # about 75 MB of 384-dimensional float32 rows


class MemoEmbedder:
    """Wraps an :class:`~rag.embedding.Embedder`; encodes only the texts it has not seen."""

    def __init__(self, embedder: Embedder, capacity: int = MEMO_TEXTS) -> None:
        self.inner = embedder
        self.name = embedder.name
        self.dimension = embedder.dimension
        self._capacity = capacity
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # request threads of a server share one memo

    def __getattr__(self, attribute: str):
        return getattr(self.inner, attribute)  # provenance and the like, for the manifest checks

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            known = {t: self._vectors[t] for t in texts if t in self._vectors}
            for text in known:
                self._vectors.move_to_end(text)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            fresh = self.inner.encode(missing)
            known.update(zip(missing, fresh, strict=True))
            with self._lock:
                self._vectors.update(zip(missing, fresh, strict=True))
                while len(self._vectors) > self._capacity:
                    self._vectors.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([known[t] for t in texts])
