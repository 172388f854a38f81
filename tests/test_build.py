"""Incremental builds with the keyword embedder: only new or changed documents are embedded,
and a failed build leaves the served generation untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import KeywordEmbedder

from rag.build import build_index, embedding_text
from rag.errors import IndexBusyError, SourceError
from rag.index_store import CURRENT, build_lock, current_generation, load_vectors, open_index

OWLS = "Owls\n\nOwls hunt at night. Barn owls eat voles.\n\nHearing\n\nOwls locate prey by sound alone.\n"


def current_name(index_dir: Path) -> str:
    return (index_dir / CURRENT).read_text(encoding="utf-8")


def index_chunks(settings) -> list:
    index = open_index(settings.index_dir, KeywordEmbedder.name, KeywordEmbedder().dimension)
    try:
        return [c for d in sorted(index.manifest.documents) for _, c in index.store.chunks_of(d)]
    finally:
        index.store.close()


def test_first_build_embeds_every_chunk_once(settings, embedder):
    report = build_index(settings, embedder)
    assert (report.added, report.changed, report.removed, report.unchanged) == (
        ("cats", "rockets"), (), (), ())
    assert report.chunks_embedded == report.chunk_count == 4
    assert report.sentences_embedded == 8  # the passages' sentences are stored with the generation
    assert embedder.embedded == 4 + 8
    assert report.generation == current_name(settings.index_dir)
    assert [(c.doc_id, c.section) for c in index_chunks(settings)] == [
        ("cats", ("Sleeping",)), ("cats", ("Hunting",)),
        ("rockets", ("Rocket Basics", "Propulsion")), ("rockets", ("Rocket Basics", "Staging")),
    ]


def test_a_no_op_build_embeds_nothing_and_keeps_the_generation(settings, embedder):
    first = build_index(settings, embedder)
    embedder.calls.clear()
    again = build_index(settings, embedder)
    assert again.did_nothing
    assert (again.unchanged, again.chunks_embedded, again.chunk_count) == (("cats", "rockets"), 0, 4)
    assert embedder.calls == []
    assert again.generation == first.generation == current_name(settings.index_dir)


def test_add_change_remove_one_file_embeds_only_that_file(settings, embedder):
    build_index(settings, embedder)
    owls = settings.corpus_dir / "owls.txt"

    embedder.calls.clear()
    owls.write_text(OWLS, encoding="utf-8")
    added = build_index(settings, embedder)
    assert (added.added, added.changed, added.removed, added.unchanged) == (
        ("owls",), (), (), ("cats", "rockets"))
    assert (added.chunks_embedded, added.sentences_embedded, embedder.embedded) == (2, 3, 2 + 3)
    assert added.chunk_count == 6
    owl_chunks = [c for c in index_chunks(settings) if c.doc_id == "owls"]
    assert [c.text for c in owl_chunks] == ["Owls hunt at night. Barn owls eat voles.",
                                            "Owls locate prey by sound alone."]

    embedder.calls.clear()
    owls.write_text(OWLS.replace("voles", "mice"), encoding="utf-8")
    changed = build_index(settings, embedder)
    assert (changed.added, changed.changed, changed.removed) == ((), ("owls",), ())
    # Both passages are re-embedded, but of the sentences only the one that changed.
    assert (changed.chunks_embedded, changed.sentences_embedded, embedder.embedded) == (2, 1, 2 + 1)
    assert [c.text for c in index_chunks(settings) if c.doc_id == "owls"][0] == \
        "Owls hunt at night. Barn owls eat mice."

    embedder.calls.clear()
    owls.unlink()
    removed = build_index(settings, embedder)
    assert (removed.added, removed.changed, removed.removed, removed.unchanged) == (
        (), (), ("owls",), ("cats", "rockets"))
    assert removed.chunks_embedded == embedder.embedded == 0
    assert removed.chunk_count == 4
    assert {c.doc_id for c in index_chunks(settings)} == {"cats", "rockets"}


def test_reused_vectors_stay_aligned_with_their_chunks(settings, embedder):
    build_index(settings, embedder)
    (settings.corpus_dir / "aardvark.txt").write_text("Aardvarks dig burrows for ants.\n", encoding="utf-8")
    build_index(settings, embedder)  # the new file sorts first, shifting every reused row
    index = open_index(settings.index_dir, embedder.name, embedder.dimension)
    vectors = load_vectors(index.folder)
    rows, texts = [], []
    for doc_id in ("aardvark", "cats", "rockets"):
        for row, chunk in index.store.chunks_of(doc_id):
            rows.append(row)
            texts.append(embedding_text(chunk))
    assert rows == list(range(5))
    np.testing.assert_allclose(vectors[rows], KeywordEmbedder().encode(texts), atol=1e-6)


def test_metadata_change_reembeds_the_document(settings, embedder):
    build_index(settings, embedder)
    manifest = settings.corpus_dir / "sources.yaml"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace("Rocket Basics", "Rocketry"),
                        encoding="utf-8")
    embedder.calls.clear()
    report = build_index(settings, embedder)
    assert report.changed == ("rockets",)
    assert (report.sentences_embedded, embedder.embedded) == (0, 2)  # same text, same sentence vectors


def test_force_and_new_chunker_settings_reembed_everything(settings, embedder):
    build_index(settings, embedder)
    embedder.calls.clear()
    forced = build_index(settings, embedder, force=True)
    assert (forced.chunks_embedded, forced.sentences_embedded) == (4, 8)
    embedder.calls.clear()
    report = build_index(settings.replace(chunk_size=100, chunk_overlap=20), embedder)
    assert report.added == ("cats", "rockets")  # nothing reusable
    assert embedder.embedded == report.chunk_count + report.sentences_embedded


def test_another_model_rebuilds_from_scratch(settings, embedder):
    build_index(settings, embedder)
    other = KeywordEmbedder(dimension=64)
    other.name = "fake-keyword-64"
    report = build_index(settings.replace(model_name=other.name), other)
    assert report.added == ("cats", "rockets")
    assert (report.sentences_embedded, other.embedded) == (8, 4 + 8)  # no vector of the old model is kept
    index = open_index(settings.index_dir, "fake-keyword-64", 64)
    assert index.sentences.vectors.shape == (8, 64)
    index.store.close()


def test_progress_is_reported_per_batch(settings, embedder):
    seen: list[tuple[int, int]] = []
    build_index(settings.replace(batch_size=3), embedder,
                progress=lambda done, total: seen.append((done, total)))
    assert seen == [(3, 12), (6, 12), (9, 12), (12, 12)]  # 4 passages, then their 8 sentences
    assert embedder.calls == [3, 3, 3, 3]


def test_a_failed_build_leaves_the_previous_generation_serving(settings, embedder):
    first = build_index(settings, embedder)
    (settings.corpus_dir / "sources.yaml").write_text("rockets.txt: [unclosed\n", encoding="utf-8")
    embedder.calls.clear()
    with pytest.raises(SourceError, match=r"sources\.yaml is not valid YAML \(ParserError\); fix or delete it$"):
        build_index(settings, embedder)
    assert embedder.calls == []
    assert current_name(settings.index_dir) == first.generation
    assert [p.name for p in settings.index_dir.glob("gen-*")] == [first.generation]
    index = open_index(settings.index_dir, embedder.name, embedder.dimension)
    assert sorted(index.manifest.documents) == ["cats", "rockets"]
    assert index.store.chunk_count() == 4


def test_a_build_that_dies_while_embedding_leaves_the_previous_generation(settings, embedder):
    first = build_index(settings, embedder)
    (settings.corpus_dir / "owls.txt").write_text(OWLS, encoding="utf-8")

    class Crashing(KeywordEmbedder):
        def encode(self, texts):
            raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        build_index(settings, Crashing())
    assert current_name(settings.index_dir) == first.generation
    assert current_generation(settings.index_dir).name == first.generation
    open_index(settings.index_dir, embedder.name, embedder.dimension).store.close()
    # and the lock was released: the next build goes through
    assert build_index(settings, embedder).added == ("owls",)


def test_a_second_build_while_one_holds_the_lock_is_refused(settings, embedder):
    with build_lock(settings.index_dir), pytest.raises(
            IndexBusyError, match=r"^another build is running on .*/index \(pid \d+\); "
                                  r"wait for it to finish and try again$"):
        build_index(settings, embedder)
    assert embedder.calls == []


def test_an_empty_corpus_is_refused_and_the_old_index_kept(settings, embedder):
    first = build_index(settings, embedder)
    for path in settings.corpus_dir.iterdir():
        if path.name != "sources.yaml":
            path.unlink()
    with pytest.raises(SourceError, match=(r"^corpus folder '.*/corpus' has no sources "
                                           r"\(\.htm, \.html, \.markdown, \.md, \.pdf, \.txt\); "
                                           r"add one with `rag add FILE`$")):
        build_index(settings, embedder)
    assert current_name(settings.index_dir) == first.generation


def test_only_the_current_and_previous_generations_are_kept(settings, embedder):
    generations = []
    for text in ("One.\n", "Two.\n", "Three.\n"):
        (settings.corpus_dir / "n.txt").write_text(text, encoding="utf-8")
        generations.append(build_index(settings, embedder).generation)
    assert len(set(generations)) == 3
    assert sorted(p.name for p in settings.index_dir.glob("gen-*")) == sorted(generations[1:])
