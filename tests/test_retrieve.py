"""Retrieval on the tiny corpus (dense, BM25, hybrid), fusion math on hand-made lists,
duplicate collapsing, source filters and question validation."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import KeywordEmbedder
from helpers import search_hits

from rag.assistant import open_assistant
from rag.build import build_index, embedding_text
from rag.errors import QuestionError, SettingsError
from rag.retrieve import (
    Retriever,
    SearchRequest,
    collapse_duplicates,
    convex_fusion,
    min_max,
    overlaps,
    validate_question,
)
from rag.types import Chunk, Hit

# The tiny corpus's four chunks, by row.
SLEEPING, HUNTING, PROPULSION, STAGING = 0, 1, 2, 3


@pytest.fixture
def session(settings, embedder):
    build_index(settings, embedder)
    opened, _ = open_assistant(settings, embedder)
    yield opened
    opened.index.store.close()


def retriever_of(assistant) -> Retriever:
    """The retriever under the assistant, for tests of the ranking math itself."""
    return Retriever(assistant.index, assistant.embedder)


@pytest.fixture
def ids(session) -> dict[int, str]:
    return {row: chunk.id for row, chunk in enumerate(session.index.store.chunks([0, 1, 2, 3]))}


def ranked(hits: list[Hit], ids: dict[int, str]) -> list[int]:
    rows = {chunk_id: row for row, chunk_id in ids.items()}
    return [rows[h.chunk.id] for h in hits]


def test_the_tiny_index_holds_four_chunks_in_corpus_order(session, ids):
    chunks = session.index.store.chunks([0, 1, 2, 3])
    assert [(c.doc_id, c.section, c.text.split(".")[0]) for c in chunks] == [
        ("cats", ("Sleeping",), "Cats sleep for most of the day"),
        ("cats", ("Hunting",), "Cats hunt small birds and mice at dawn"),
        ("rockets", ("Rocket Basics", "Propulsion"),
         "A rocket engine burns fuel and oxidizer to produce thrust"),
        ("rockets", ("Rocket Basics", "Staging"), "Multi-stage rockets drop empty tanks to save mass"),
    ]
    assert ids == {0: "82b8bc20bc913c49", 1: "8ac48e5b5cb28dbf", 2: "52913eb1cc5de4ff", 3: "23fa21b9a651c576"}


@pytest.mark.parametrize(("question", "mode", "expected"), [
    ("How long does a house cat sleep?", "dense", [SLEEPING, HUNTING, PROPULSION, STAGING]),
    ("How long does a house cat sleep?", "bm25", [SLEEPING, HUNTING]),
    ("How long does a house cat sleep?", "hybrid", [SLEEPING, HUNTING, PROPULSION, STAGING]),
    ("What do cats hunt at dawn?", "dense", [HUNTING, SLEEPING, STAGING, PROPULSION]),
    ("What do cats hunt at dawn?", "bm25", [HUNTING, SLEEPING]),
    ("What do cats hunt at dawn?", "hybrid", [HUNTING, SLEEPING, PROPULSION, STAGING]),
    ("Which rocket stage is the heaviest?", "dense", [STAGING, PROPULSION, SLEEPING, HUNTING]),
    ("Which rocket stage is the heaviest?", "bm25", [STAGING, PROPULSION]),
    ("Which rocket stage is the heaviest?", "hybrid", [STAGING, PROPULSION, SLEEPING, HUNTING]),
    ("engine thrust throttled", "bm25", [PROPULSION]),
    ("zebra", "bm25", []),  # BM25 leaves out chunks that share no term
])
def test_each_mode_ranks_the_expected_chunks(session, ids, question, mode, expected):
    hits = search_hits(session, question, k=4, mode=mode)
    assert ranked(hits, ids) == expected
    assert [h.rank for h in hits] == list(range(1, len(expected) + 1))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    if mode == "hybrid":
        assert hits[0].retrievers == ("dense", "bm25")
    else:
        assert {h.retrievers for h in hits} <= {(mode,)}


def test_dense_scores_are_the_cosines_of_what_was_embedded(session, ids):
    question = "What do cats hunt at dawn?"
    fake = KeywordEmbedder()
    query = fake.encode([question])[0]
    for hit in search_hits(session, question, k=4, mode="dense"):
        expected = float(query @ fake.encode([embedding_text(hit.chunk)])[0])
        assert hit.score == pytest.approx(expected, abs=1e-6)


def test_hybrid_first_stage_scores_are_the_convex_fusion_of_both_lists(session, ids):
    request = SearchRequest("How long does a house cat sleep?", k=4, mode="hybrid", rescore_depth=0)
    lists = retriever_of(session).candidates(request)
    assert sorted(lists) == ["bm25", "dense"]
    fused = dict(convex_fusion(lists["dense"], lists["bm25"], 0.5))
    hits = retriever_of(session).search(request)
    rows = {chunk_id: row for row, chunk_id in ids.items()}
    assert {rows[h.chunk.id]: h.score for h in hits} == pytest.approx(fused)
    assert hits[0].score == pytest.approx(1.0)  # best in both lists
    assert [h.retrievers for h in hits] == [("dense", "bm25"), ("dense", "bm25"), ("dense",), ("dense",)]


def test_k_limits_the_hits(session):
    assert len(search_hits(session, "cats rockets", k=1, mode="dense")) == 1
    assert len(search_hits(session, "cats rockets", k=10, mode="dense")) == 4  # only four chunks exist


def test_source_filter_restricts_every_mode(session, ids):
    question = "What do cats hunt at dawn?"
    assert ranked(search_hits(session, question, k=4, mode="bm25", sources=("rockets",)), ids) == []
    dense = search_hits(session, question, k=4, mode="dense", sources=("rockets",))
    assert ranked(dense, ids) == [STAGING, PROPULSION]
    assert {h.chunk.doc_id for h in search_hits(session, question, k=4, mode="hybrid", sources=("rockets",))} == {
        "rockets"}
    assert ranked(search_hits(session, "rocket engine", k=4, mode="bm25", sources=("cats",)), ids) == []
    both = search_hits(session, question, k=4, mode="bm25", sources=("cats", "rockets"))
    assert ranked(both, ids) == [HUNTING, SLEEPING]


@pytest.mark.parametrize(("field", "value"), [("k", 0), ("k", -1), ("candidates", 0)])
def test_non_positive_k_and_candidates_are_refused(field, value):
    with pytest.raises(SettingsError, match=rf"^{field} must be a positive integer, got {value}$"):
        SearchRequest("cats", **{field: value})


def test_unknown_source_and_mode_are_refused(session):
    with pytest.raises(SettingsError, match=r"^unknown source id\(s\) 'dogs', 'eels'; see `rag sources`$"):
        retriever_of(session).search(SearchRequest("cats", sources=("eels", "dogs", "cats")))
    with pytest.raises(SettingsError, match=r"^mode 'fuzzy' is not one of dense, bm25, hybrid$"):
        retriever_of(session).search(SearchRequest("cats", mode="fuzzy"))


def test_dense_weight_moves_the_hybrid_ranking(session, ids):
    question = "What do cats hunt at dawn?"
    request = SearchRequest(question, k=4, mode="hybrid")
    first_stage = {"k": 4, "mode": "hybrid", "rescore_depth": 0}
    only_bm25 = retriever_of(session).search(SearchRequest(question, dense_weight=0.0, **first_stage))
    only_dense = retriever_of(session).search(SearchRequest(question, dense_weight=1.0, **first_stage))
    assert request.dense_weight == 0.5
    dense = dict(retriever_of(session).candidates(request)["dense"])
    assert [round(h.score, 6) for h in only_bm25] == [1.0, 0.0, 0.0, 0.0]
    assert [h.score for h in only_dense] == pytest.approx(
        [1.0, dense[SLEEPING] / dense[HUNTING], 0.0, 0.0])  # the lowest dense cosine is 0 here
    assert ranked(only_dense, ids)[:2] == [HUNTING, SLEEPING]


# ---------------------------------------------------------------- questions


def test_empty_questions_are_refused(session):
    for question in ("", "   ", "\n\t"):
        with pytest.raises(QuestionError, match=r"^the question is empty; type a question$"):
            search_hits(session, question)


def test_a_10000_character_question_is_refused_with_both_lengths(session):
    with pytest.raises(QuestionError, match=(r"^the question is 10,000 characters long; the limit is 2,000\. "
                                             r"Ask something shorter$")):
        search_hits(session, "x" * 10_000)


def test_question_limit_counts_the_stripped_text():
    assert validate_question("  " + "a" * 20 + "  ", 20) == "a" * 20
    with pytest.raises(QuestionError, match=r"^the question is 21 characters long; the limit is 20\."):
        validate_question("a" * 21, 20)


# ---------------------------------------------------------------- fusion math


def test_min_max_scales_each_list_to_the_unit_interval():
    assert min_max([(7, 3.0), (8, 2.0), (9, 1.0)]) == {7: 1.0, 8: 0.5, 9: 0.0}
    assert min_max([(4, 0.3)]) == {4: 1.0}  # a lone candidate
    assert min_max([(1, 2.0), (2, 2.0)]) == {1: 1.0, 2: 1.0}  # a tie
    assert min_max([]) == {}


def test_convex_fusion_exact_numbers():
    dense = [(1, 0.9), (2, 0.5), (3, 0.1)]
    lexical = [(2, 12.0), (4, 4.0), (5, 8.0)]
    # dense -> {1: 1.0, 2: 0.5, 3: 0.0}; bm25 -> {2: 1.0, 5: 0.5, 4: 0.0}
    fused = convex_fusion(dense, lexical, 0.5)
    assert [row for row, _ in fused] == [2, 1, 5, 3, 4]
    assert [score for _, score in fused] == pytest.approx([0.75, 0.5, 0.25, 0.0, 0.0])
    weighted = dict(convex_fusion(dense, lexical, 0.8))
    assert weighted == pytest.approx({1: 0.8, 2: 0.8 * 0.5 + 0.2 * 1.0, 3: 0.0, 4: 0.0, 5: 0.2 * 0.5})


def test_convex_fusion_with_one_empty_list_is_that_list_scaled():
    assert convex_fusion([(3, 0.8), (1, 0.2)], [], 0.25) == [(3, 0.25), (1, 0.0)]
    assert convex_fusion([], [(6, 2.0), (2, 1.0)], 0.25) == [(6, 0.75), (2, 0.0)]
    assert convex_fusion([], [], 0.5) == []


def test_convex_fusion_breaks_ties_by_row():
    assert [row for row, _ in convex_fusion([(9, 1.0), (4, 0.0)], [(4, 5.0), (9, 1.0)], 0.5)] == [4, 9]


# ---------------------------------------------------------------- duplicates


def chunk(doc_id: str, start: int, end: int, text: str | None = None) -> Chunk:
    return Chunk(id=f"{doc_id}-{start}", doc_id=doc_id, text=text or f"text {doc_id} {start}", start=start,
                 end=end)


def hit(c: Chunk, score: float) -> Hit:
    return Hit(chunk=c, score=score, rank=0)


def test_overlaps_needs_half_of_the_shorter_span_or_identical_words():
    assert overlaps(chunk("a", 0, 100), chunk("a", 50, 150))  # 50 of 100 shared
    assert not overlaps(chunk("a", 0, 100), chunk("a", 51, 151))  # 49 shared
    assert overlaps(chunk("a", 0, 100), chunk("a", 40, 60))  # contained
    assert not overlaps(chunk("a", 0, 100), chunk("b", 0, 100))
    assert overlaps(chunk("a", 0, 10, "Same  words\nhere"), chunk("b", 70, 80, "Same words here"))
    assert not overlaps(chunk("a", 0, 10), chunk("a", 10, 20))  # touching is not sharing


def test_collapse_duplicates_keeps_the_first_of_each_group_in_order():
    a = hit(chunk("a", 0, 100), 0.9)
    a_overlap = hit(chunk("a", 30, 130), 0.8)
    b = hit(chunk("b", 0, 100), 0.7)
    b_copy = hit(chunk("c", 500, 600, b.chunk.text), 0.6)
    a_far = hit(chunk("a", 400, 500), 0.5)
    assert collapse_duplicates([a, a_overlap, b, b_copy, a_far]) == [a, b, a_far]
    assert collapse_duplicates([]) == []


def test_search_returns_a_passage_repeated_in_two_sections_once(settings, embedder):
    passage = "Comets have icy tails that point away from the sun."
    (settings.corpus_dir / "comets.txt").write_text(
        f"Comets\n\nFirst Look\n\n{passage}\n\nSecond Look\n\n{passage}\n", encoding="utf-8")
    build_index(settings, embedder)
    session, _ = open_assistant(settings, embedder)
    request = SearchRequest("comets icy tails", k=3, mode="bm25")
    assert len(retriever_of(session).candidates(request)["bm25"]) == 2  # both copies match
    hits = retriever_of(session).search(request)
    assert [(h.rank, h.chunk.text, h.chunk.section) for h in hits] == [
        (1, passage, ("Comets", "First Look"))]
    session.index.store.close()


def test_ranks_are_renumbered_after_collapsing(session):
    hits = search_hits(session, "cats", k=2, mode="dense")
    assert [h.rank for h in hits] == [1, 2]
    assert np.all(np.diff([h.score for h in hits]) <= 0)
