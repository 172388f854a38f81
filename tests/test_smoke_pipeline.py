"""The whole pipeline on the tiny corpus with the keyword embedder: build, open, search."""

from helpers import search_hits

from rag.assistant import open_assistant
from rag.build import build_index


def test_build_then_search_finds_the_passage_with_exact_offsets(settings, embedder):
    report = build_index(settings, embedder)
    assert report.added == ("cats", "rockets")
    session, built = open_assistant(settings, embedder)
    assert built is None  # already built above
    hits = search_hits(session, "How long does a house cat sleep?", k=3, mode="hybrid")
    top = hits[0].chunk
    assert top.doc_id == "cats"
    assert top.section == ("Sleeping",)
    document = session.index.store.document("cats")
    assert document.text[top.start:top.end] == top.text
    assert top.text.startswith("Cats sleep for most of the day.")
