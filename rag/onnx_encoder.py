"""The query-time encoder: the model's ONNX export run by onnxruntime, tokenized by ``tokenizers``.

Needs neither torch nor transformers: importing onnxruntime and tokenizers takes 0.1-0.3 s where
sentence-transformers takes 5-9 s. It reproduces ``SentenceTransformer.encode(...,
normalize_embeddings=True)`` for mean-pooling models: the model's own ``tokenizer.json``,
truncated at the model's ``max_seq_length`` (``tokenizer.json`` itself says 128; the model says
256), padded to the longest text of a batch, then the attention-masked mean of the token
embeddings, L2-normalised. ``tests/test_onnx_encoder.py`` holds it to cosine >= 0.9999.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np

from rag.onnx_cache import OnnxExport
from rag.onnx_export import INPUTS


def _tokenizer(export: OnnxExport):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(export.model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=export.record.max_seq_length)
    padding = tokenizer.padding or {}
    tokenizer.enable_padding(pad_id=padding.get("pad_id", 0), pad_type_id=padding.get("pad_type_id", 0),
                             pad_token=padding.get("pad_token", "[PAD]"))  # no fixed length: batch's longest
    return tokenizer


def _session(export: OnnxExport):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # Idle worker threads spin by default; on a shared 2-core machine that spinning was measured to
    # slow a one-question encode from 27 ms to 45 ms, since the spinners compete with real work.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # warnings about unused initializers are not the reader's business
    return onnxruntime.InferenceSession(str(export.onnx_path), options, providers=["CPUExecutionProvider"])


def mean_pool(token_embeddings: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Mean of the unmasked token vectors, L2-normalised (sentence-transformers' Pooling + Normalize)."""
    mask = attention_mask[..., None].astype(np.float32)
    summed = (token_embeddings * mask).sum(axis=1)
    means = summed / np.clip(mask.sum(axis=1), 1e-9, None)
    return means / np.clip(np.linalg.norm(means, axis=1, keepdims=True), 1e-12, None)


class OnnxEmbedder:
    """An :class:`rag.embedding.Embedder` over an ONNX export of a sentence-transformers model."""

    def __init__(self, name: str, export: OnnxExport, batch_size: int = 32,
                 provenance: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.dimension = export.record.dimension
        self.batch_size = batch_size
        self.provenance = MappingProxyType(dict(provenance or {}))
        self._tokenizer = _tokenizer(export)
        self._session = _session(export)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # Longest first, as sentence-transformers does: similar lengths share a batch, less padding.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            vectors[rows] = self._encode_batch([texts[i] for i in rows])
        return vectors

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        (tokens,) = self._session.run(None, dict(zip(INPUTS, (ids, mask, types), strict=True)))
        return mean_pool(tokens, mask)
