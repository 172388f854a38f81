"""The sentence table a build stores: every passage's sentences, so a question encodes only itself."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import KeywordEmbedder

from rag.assistant import Assistant, RequestOptions
from rag.build import build_index
from rag.errors import IndexStateError
from rag.index_store import open_index
from rag.sentence_table import SENTENCE_VECTORS, SentenceTable

TINY_SENTENCES = [
    "Cats sleep for most of the day.",
    "A house cat sleeps about fifteen hours.",
    "Cats hunt small birds and mice at dawn.",
    "They stalk silently before they pounce.",
    "A rocket engine burns fuel and oxidizer to produce thrust.",
    "Liquid engines can be throttled.",
    "Multi-stage rockets drop empty tanks to save mass.",
    "The first stage is the heaviest.",
]


class RecordingEmbedder(KeywordEmbedder):
    """The keyword fake, remembering every text it was asked to encode."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def encode(self, texts):
        self.texts.extend(texts)
        return super().encode(texts)


def test_a_build_stores_each_passage_sentence_with_its_vector(settings, embedder):
    build_index(settings, embedder)
    index = open_index(settings.index_dir, embedder.name, embedder.dimension)
    try:
        assert len(index.sentences) == len(TINY_SENTENCES) == 8
        np.testing.assert_allclose(np.stack([index.sentences.vector(s) for s in TINY_SENTENCES]),
                                   KeywordEmbedder().encode(TINY_SENTENCES), atol=1e-6)
        assert "Cats purr." not in index.sentences and index.sentences.vector("Cats purr.") is None
    finally:
        index.store.close()


def test_a_question_encodes_only_its_own_texts(settings):
    model = RecordingEmbedder()
    build_index(settings, model)
    model.texts.clear()
    answer = Assistant(settings, model).ask("How long does a house cat sleep?", RequestOptions(k=3))
    assert answer.citations[0].quote == "A house cat sleeps about fifteen hours."
    # The question as typed (dense search) and as analysed (the reader's focus): no passage sentence.
    assert set(model.texts) == {"How long does a house cat sleep?", "How long does a house cat sleep"}


def test_a_sentence_the_table_lacks_is_encoded():
    table = SentenceTable.of(["Cats sleep."], np.asarray([[1.0, 0.0]], dtype=np.float32))
    inner = RecordingEmbedder()
    inner.dimension = 2
    inner.encode = lambda texts: (inner.texts.extend(texts), np.asarray([[0.0, 1.0]] * len(texts)))[1]
    vectors = table.over(inner).encode(["Dogs bark.", "Cats sleep.", "Owls hoot."])
    np.testing.assert_array_equal(vectors, [[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert inner.texts == ["Dogs bark.", "Owls hoot."]
    assert SentenceTable.empty().over(inner) is inner  # nothing stored: the model itself


def test_a_table_finds_each_text_in_any_order_and_keeps_rows_with_their_texts():
    texts = [f"Sentence number {i}." for i in range(50)]
    vectors = np.arange(100, dtype=np.float32).reshape(50, 2)
    table = SentenceTable.of(texts, vectors)
    assert list(table.rows(["Sentence number 7.", "absent", "Sentence number 0."]) >= 0) == [True, False, True]
    for i in (0, 7, 49):
        np.testing.assert_array_equal(table.vector(texts[i]), vectors[i])
    grown = table.extended(["new one", texts[3]], {"new one": np.asarray([9.0, 9.0], dtype=np.float32)})
    assert len(grown) == 2
    np.testing.assert_array_equal(grown.vector(texts[3]), [6.0, 7.0])
    np.testing.assert_array_equal(grown.vector("new one"), [9.0, 9.0])


def test_a_damaged_sentence_table_is_refused_like_any_index_file(settings, embedder):
    build_index(settings, embedder)
    served = next(settings.index_dir.glob("gen-*"))
    vectors = served / SENTENCE_VECTORS
    vectors.write_bytes(vectors.read_bytes()[:-4] + b"\0\0\0\1")
    with pytest.raises(IndexStateError, match=rf"^index file {SENTENCE_VECTORS} in {served.name} is damaged "
                                              r"\(checksum mismatch\); run `rag build` to rebuild it$"):
        open_index(settings.index_dir, embedder.name, embedder.dimension)


def test_a_generation_from_before_sentence_tables_gets_one_on_the_next_build(settings, embedder, monkeypatch):
    monkeypatch.setattr("rag.build.passage_sentences", lambda chunks, documents: [])  # as builds did before
    old = build_index(settings, embedder)
    monkeypatch.undo()
    embedder.calls.clear()
    report = build_index(settings, embedder)
    assert (report.republished, report.chunks_embedded, report.sentences_embedded, embedder.embedded) == (
        True, 0, 8, 8)
    assert report.generation != old.generation
    assert build_index(settings, embedder).did_nothing
