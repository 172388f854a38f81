"""The store interface without a server: the local store is the default and behaves as before,
settings pick a backend, Milvus names and filters are built exactly, the embed step stays local
without Ray, and the default query path never imports Ray or Milvus."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.build import build_index, embed_texts
from rag.embedding import encode_batched
from rag.errors import SettingsError
from rag.index_store import open_index
from rag.retrieve import Retriever, SearchRequest
from rag.settings import Settings
from rag.stores import STORES, open_store
from rag.stores.local import LocalStore
from rag.stores.milvus import analysed, collection_name, source_filter
from rag.vector_index import search_vectors

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def index(settings, embedder):
    build_index(settings, embedder)
    opened = open_index(settings.index_dir, embedder.name, embedder.dimension)
    yield opened
    opened.store.close()


def test_store_setting_defaults_to_local_and_names_the_backends():
    assert Settings().store == "local"
    assert list(STORES) == ["local", "milvus"]
    with pytest.raises(SettingsError, match=r"store 'faiss' is not one of local, milvus"):
        Settings(store="faiss")
    assert Settings.from_env({"RAG_STORE": "milvus", "RAG_MILVUS_URI": "http://127.0.0.1:19530"}).milvus_target \
        == "http://127.0.0.1:19530"


def test_milvus_lite_file_defaults_to_the_index_folder(tmp_path):
    assert Settings(index_dir=tmp_path / "ix").milvus_target == str(tmp_path / "ix" / "milvus.db")


def test_the_retriever_searches_the_local_store_by_default(settings, embedder, index):
    retriever = Retriever(index, embedder)
    assert isinstance(retriever.store, LocalStore)
    assert isinstance(open_store(settings, index), LocalStore)
    question = "when do cats hunt"
    lists = retriever.candidates(SearchRequest(question, mode="hybrid"))
    # The same numbers the index's own FAISS and bm25s give: the wrapper adds nothing.
    assert lists["dense"] == search_vectors(index.vectors, embedder.encode([question])[0], 50)
    assert lists["bm25"] == index.lexical.search(question, 50)


def test_a_local_source_filter_is_a_row_mask(index):
    mask = LocalStore(index).restrict(["rockets"])
    assert mask.tolist() == [False, False, True, True]


def test_milvus_names_filters_and_terms_are_exact():
    assert collection_name("rag", "gen-1764") == "rag_gen_1764"
    assert source_filter(["cats", 'odd"id']) == 'doc_id in ["cats", "odd\\"id"]'
    # Snowball stems without Lucene's stop words, as bm25s indexes them.
    assert analysed("The cats are hunting birds at dawn") == "cat hunt bird dawn"
    assert analysed("the and of") == ""


def test_without_ray_the_embed_step_runs_in_this_process(settings, embedder):
    texts = ["cats sleep", "rockets burn fuel", "cats hunt"]
    seen: list[tuple[int, int]] = []
    vectors = embed_texts(texts, embedder, settings.replace(batch_size=2),
                          lambda done, total: seen.append((done, total)))
    assert np.array_equal(vectors, encode_batched(embedder, texts, 2))
    assert seen == [(2, 3), (3, 3)]


def test_the_default_query_path_never_imports_ray_or_milvus(tmp_path):
    script = f"""
import sys
sys.path.insert(0, {str(REPO / "tests")!r})
from pathlib import Path
from conftest import TINY_SOURCES, KeywordEmbedder
from rag.settings import Settings
from rag.assistant import RequestOptions, open_assistant
corpus = Path({str(tmp_path / "corpus")!r}); corpus.mkdir()
for name, text in TINY_SOURCES.items():
    (corpus / name).write_text(text, encoding="utf-8")
settings = Settings(corpus_dir=corpus, index_dir=Path({str(tmp_path / "index")!r}), model_name="fake-keyword")
assistant, _ = open_assistant(settings, KeywordEmbedder())
assert assistant.search("when do cats hunt", RequestOptions(mode="hybrid"))
assistant.ask("when do cats hunt")
print(sorted(m for m in sys.modules if m.split(".")[0] in ("ray", "pymilvus", "milvus_lite")))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.strip() == "[]"
