"""The retrieval modes, one vocabulary for the whole project (settings, search, eval, front ends)."""

from __future__ import annotations

from enum import StrEnum

from rag.errors import SettingsError


class Mode(StrEnum):
    """How passages are ranked. String-valued, so ``Mode.HYBRID == "hybrid"`` and JSON stays plain."""

    DENSE = "dense"  # MiniLM embeddings, FAISS inner product
    BM25 = "bm25"  # bm25s with English stemming
    HYBRID = "hybrid"  # a fusion of the two lists

    @classmethod
    def parse(cls, value: str) -> Mode:
        """``value`` as a mode, or a one-line error naming the choices."""
        try:
            return cls(value)
        except ValueError:
            raise SettingsError(f"mode {value!r} is not one of {', '.join(cls)}") from None


MODES: tuple[Mode, ...] = tuple(Mode)  # every mode, in the order reports list them
