"""Opening an index refuses anything it was not built for: another model, dimension or format,
a damaged or missing file, a dangling ``CURRENT``. Every refusal says to run ``rag build``."""

from __future__ import annotations

import json

import pytest
from conftest import reseal

from rag.build import build_index
from rag.errors import IndexStateError
from rag.index_store import CURRENT, FORMAT_VERSION, MANIFEST, open_index, read_manifest
from rag.settings import REPO_ROOT, Settings
from rag.store import document_from_json, document_to_json
from rag.types import Document, Page, Section

REBUILD = r"; run `rag build` to rebuild it$"


@pytest.fixture
def built(settings, embedder):
    build_index(settings, embedder)
    return settings.index_dir


def generation(index_dir):
    return index_dir / (index_dir / CURRENT).read_text(encoding="utf-8")


def test_opens_with_the_model_it_was_built_with(built, embedder):
    index = open_index(built, "fake-keyword", 256)
    assert index.manifest.format_version == FORMAT_VERSION
    assert (index.manifest.model_name, index.manifest.dimension, index.manifest.chunk_count) == (
        "fake-keyword", 256, 4)
    assert index.manifest.index_kind == "flat"
    assert {k: v.chunks for k, v in index.manifest.documents.items()} == {"cats": 2, "rockets": 2}
    assert index.vectors.ntotal == 4
    assert index.generation == generation(built).name
    index.store.close()


def test_another_model_name_is_refused_with_a_rebuild_hint(built):
    with pytest.raises(IndexStateError, match=(
            r"^index was built with model 'fake-keyword', but the configured model is "
            r"'sentence-transformers/all-MiniLM-L6-v2'" + REBUILD)):
        open_index(built, "sentence-transformers/all-MiniLM-L6-v2", 384)


def test_another_dimension_is_refused(built):
    with pytest.raises(IndexStateError,
                       match=r"^index vectors have dimension 256, the model gives 384" + REBUILD):
        open_index(built, "fake-keyword", 384)


def test_another_format_version_is_refused(built):
    body = json.loads((generation(built) / MANIFEST).read_text(encoding="utf-8"))
    body["format_version"] = FORMAT_VERSION + 1
    reseal(built, json.dumps(body))
    with pytest.raises(IndexStateError,
                       match=rf"^index format v{FORMAT_VERSION + 1} is not the v{FORMAT_VERSION} "
                             r"this version reads" + REBUILD):
        open_index(built, "fake-keyword", 256)


@pytest.mark.parametrize("name", ["store.sqlite", "vectors.faiss", "vectors.npy"])
def test_a_tampered_file_fails_its_checksum(built, name):
    path = generation(built) / name
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    folder = generation(built).name
    with pytest.raises(IndexStateError,
                       match=rf"^index file {name} in {folder} is damaged \(checksum mismatch\)" + REBUILD):
        open_index(built, "fake-keyword", 256)


def test_a_missing_file_is_named(built):
    (generation(built) / "vectors.faiss").unlink()
    with pytest.raises(IndexStateError,
                       match=r"^index file vectors\.faiss in gen-\d+-[0-9a-f]{32} is missing" + REBUILD):
        open_index(built, "fake-keyword", 256)


def test_an_unreadable_manifest_is_refused(built):
    reseal(built, "{not json")
    with pytest.raises(IndexStateError,
                       match=r"^index manifest in .*gen-\d+-[0-9a-f]{32} is unreadable \(JSONDecodeError\)" + REBUILD):
        open_index(built, "fake-keyword", 256)


def test_no_index_and_a_dangling_pointer_are_refused(tmp_path, built):
    with pytest.raises(IndexStateError, match=r"^no index at .*/nothing-here; run `rag build` first$"):
        open_index(tmp_path / "nothing-here", "fake-keyword", 256)
    (built / CURRENT).write_text("gen-0", encoding="utf-8")
    with pytest.raises(IndexStateError, match=r"^index at .*/index points to a missing generation" + REBUILD):
        open_index(built, "fake-keyword", 256)


def test_manifest_round_trips_with_checksums_of_every_file(built):
    folder = generation(built)
    manifest = read_manifest(folder)
    assert sorted(manifest.checksums) == sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    assert {"store.sqlite", "vectors.faiss", "vectors.npy"} <= set(manifest.checksums)
    assert type(manifest).from_json(manifest.to_json()) == manifest


def test_the_store_returns_documents_and_chunks_as_written(built):
    index = open_index(built, "fake-keyword", 256)
    cats = index.store.document("cats")
    assert (cats.title, cats.authors, cats.year, cats.venue, cats.url) == (
        "Notes on Cats", ("Ada Lovelace",), 2020, "Journal of Feline Studies", "https://example.org/cats")
    assert cats.sections == (Section(("Sleeping",), 0, 83), Section(("Hunting",), 83, len(cats.text)))
    chunks = index.store.chunks([3, 0])
    assert [(c.doc_id, c.start, c.end) for c in chunks] == [("rockets", 129, 212), ("cats", 10, 81)]
    assert index.store.document("rockets").text.index("Multi-stage rockets") == 129
    for chunk in chunks:
        assert index.store.document(chunk.doc_id).text[chunk.start:chunk.end] == chunk.text
    assert index.store.rows_of(["rockets"]) == [2, 3]
    assert [d.id for d in index.store.documents()] == ["cats", "rockets"]
    with pytest.raises(KeyError):
        index.store.document("dogs")
    index.store.close()


def test_document_json_round_trip_keeps_every_field():
    document = Document(id="d", title="T", text="Body text.", authors=("A", "B"), year=2001, venue="V",
                        url="u", kind="pdf", path="d.pdf", sections=(Section(("S", "T"), 0, 4),),
                        pages=(Page(2, 0, 10),), extra=(("doi", "10.1/x"),))
    assert document_from_json(document_to_json(document)) == document


def test_every_stored_chunk_of_the_real_corpus_is_an_exact_slice(tmp_path, embedder):
    settings = Settings(corpus_dir=REPO_ROOT / "corpus", index_dir=tmp_path / "index",
                        model_name=embedder.name)
    build_index(settings, embedder)
    index = open_index(settings.index_dir, embedder.name, embedder.dimension)
    rows = []
    for document in index.store.documents():
        stored = index.store.chunks_of(document.id)
        assert len(stored) == index.manifest.documents[document.id].chunks > 0
        for row, chunk in stored:
            assert document.text[chunk.start:chunk.end] == chunk.text
            assert chunk.section == document.section_at(chunk.start)
            rows.append(row)
    assert sorted(rows) == list(range(len(rows)))
    assert len(rows) == index.manifest.chunk_count == index.vectors.ntotal == index.store.chunk_count()
    index.store.close()
