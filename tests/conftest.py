"""Shared fixtures: a keyword embedder that needs no model, and a tiny hand-made corpus."""

from __future__ import annotations

import hashlib
import re
import zlib
from pathlib import Path

import numpy as np
import pytest

from rag.settings import Settings


class KeywordEmbedder:
    """One-hot bag of words hashed into a small space: texts sharing words are close.

    Deterministic and instant, so unit tests exercise the real index and fusion math.
    """

    name = "fake-keyword"

    def __init__(self, dimension: int = 256) -> None:
        self.dimension = dimension
        self.calls: list[int] = []  # batch sizes seen, to assert what was (re-)embedded

    def encode(self, texts):
        self.calls.append(len(texts))
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                vectors[row, zlib.crc32(word.rstrip("s").encode()) % self.dimension] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)

    @property
    def embedded(self) -> int:
        return sum(self.calls)


TINY_SOURCES = {
    "cats.md": """---
id: cats
title: Notes on Cats
authors: [Ada Lovelace]
year: 2020
venue: Journal of Feline Studies
url: https://example.org/cats
---
# Sleeping

Cats sleep for most of the day. A house cat sleeps about fifteen hours.

# Hunting

Cats hunt small birds and mice at dawn. They stalk silently before they pounce.
""",
    "rockets.txt": """Rocket Basics

Propulsion

A rocket engine burns fuel and oxidizer to produce thrust. Liquid engines can be throttled.

Staging

Multi-stage rockets drop empty tanks to save mass. The first stage is the heaviest.
""",
}


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in TINY_SOURCES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    (corpus / "sources.yaml").write_text(
        "rockets.txt:\n  id: rockets\n  title: Rocket Basics\n  authors: [Robert Goddard]\n  year: 1926\n",
        encoding="utf-8",
    )
    return corpus


@pytest.fixture
def embedder() -> KeywordEmbedder:
    return KeywordEmbedder()


@pytest.fixture
def cli_env(tiny_corpus: Path, tmp_path: Path, monkeypatch) -> Path:
    """Point the CLI at the tiny corpus and a fresh index; embed with the keyword fake."""
    import rag.embedding

    for name, value in {"RAG_CORPUS_DIR": str(tiny_corpus), "RAG_INDEX_DIR": str(tmp_path / "index"),
                        "RAG_DATA_DIR": str(tmp_path / "data"), "RAG_MODEL_NAME": KeywordEmbedder.name,
                        "RAG_CHUNK_SIZE": "200", "RAG_CHUNK_OVERLAP": "60"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(rag.embedding, "load_embedder", lambda settings: KeywordEmbedder())
    return tmp_path


@pytest.fixture
def settings(tiny_corpus: Path, tmp_path: Path) -> Settings:
    return Settings(corpus_dir=tiny_corpus, index_dir=tmp_path / "index", data_dir=tmp_path / "data",
                    model_name=KeywordEmbedder.name, chunk_size=200, chunk_overlap=60)


def reseal(index_dir: Path, manifest_text: str) -> Path:
    """Replace the served manifest as a build would: rename the generation to the new manifest's
    seal and point ``CURRENT`` at it. Tests use it to reach the checks behind the seal."""
    current = index_dir / "CURRENT"
    folder = index_dir / current.read_text(encoding="utf-8").strip()
    (folder / "manifest.json").write_text(manifest_text, encoding="utf-8")
    seal = hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()[:32]
    sealed = folder.rename(folder.with_name(f"{folder.name.rsplit('-', 1)[0]}-{seal}"))
    current.write_text(sealed.name, encoding="utf-8")
    return sealed


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory):
    """A real OpenAI-compatible model server (llama-cpp-python, SmolLM2-135M) on a free 127.0.0.1 port.

    Started once per session and always stopped, even when a test fails.
    """
    from rag.llm_server import LocalModelServer

    log = tmp_path_factory.mktemp("llm") / "server.log"
    with LocalModelServer(log=log) as server:
        yield server
