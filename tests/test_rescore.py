"""The second stage of hybrid ranking (rag.rescore): its features on hand-made passages, and the
order it gives, with the keyword embedder (texts sharing words are close)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import KeywordEmbedder

from rag.lexical import LexicalIndex
from rag.memo_embedder import MemoEmbedder
from rag.reader.question import Focus
from rag.rescore import (
    QuestionTerms,
    RescoreWeights,
    best_sentence_cosines,
    bigram_set,
    content_tokens,
    rescore,
    whole_sentences,
)
from rag.types import Chunk

STOP = frozenset({"the", "of", "on", "in", "did", "how", "mani", "a"})
TEXT = ("MT-DNN is a multi-task network. MT-DNN builds on BERT and MT-DNN is trained on GLUE. "
        "MT-DNN obtains new state-of-the-art results on ten NLU tasks.")
SPLIT = TEXT.index("MT-DNN obtains")
ABSTRACT = Chunk(id="abstract", doc_id="mtdnn", start=0, end=SPLIT - 1, text=TEXT[:SPLIT - 1], section=())
RESULTS = Chunk(id="results", doc_id="mtdnn", start=SPLIT, end=len(TEXT), text=TEXT[SPLIT:], section=())
CHUNKS = [ABSTRACT, RESULTS]


def focus(question: str, name_terms: frozenset[str] = frozenset()) -> Focus:
    return Focus(question=question, corrected=question, expansions=(), terms=(), named=("mtdnn",) if name_terms
                 else (), name_terms=name_terms, answer_type="", focus_words=(),
                 name_words=frozenset({"mt-dnn"}) if name_terms else frozenset())


def test_content_text_drops_the_words_that_only_name_a_source():
    asked = focus("On how many NLU tasks did MT-DNN set a new state of the art?", frozenset({"mtdnn"}))
    assert asked.content_text == "On how many NLU tasks did set a new state of the art"
    assert focus("MT-DNN").content_text == "MT-DNN"  # nothing else to search with: keep the name


def test_bigrams_keep_the_order_of_terms():
    tokens = content_tokens("state of the art results", STOP)
    assert tokens == ["state", "art", "result"]
    assert bigram_set(tokens) == {("state", "art"), ("art", "result")}


def test_question_terms_weigh_coverage_by_idf_and_count_shared_pairs():
    lexical = LexicalIndex.build([c.text for c in CHUNKS])
    terms = QuestionTerms.of(focus("state of the art NLU tasks", frozenset()), lexical, STOP)
    assert terms.terms == {"state", "art", "nlu", "task"}
    assert terms.coverage(content_tokens(RESULTS.text, STOP)) == pytest.approx(1.0)
    # "multi-task" holds the commonest term only
    assert terms.coverage(content_tokens(ABSTRACT.text, STOP)) == pytest.approx(
        terms.weights["task"] / sum(terms.weights.values()))
    assert terms.weights["task"] < terms.weights["nlu"]
    assert terms.shared_bigrams(content_tokens(RESULTS.text, STOP)) == 2  # state-art, nlu-task


def test_best_sentence_cosine_is_the_best_single_sentence_of_each_passage():
    embedder = KeywordEmbedder()
    queries = embedder.encode(["BERT GLUE"])
    best = best_sentence_cosines(CHUNKS, lambda _: TEXT, [whole_sentences(TEXT, c) for c in CHUNKS], embedder, queries)
    sentence = embedder.encode(["MT-DNN builds on BERT and MT-DNN is trained on GLUE."])[0]
    assert best[0, 0] == pytest.approx(float(sentence @ queries[0]))
    assert best[1, 0] == 0.0  # the results passage shares no word with the query


def test_the_passage_whose_sentence_answers_overtakes_the_one_that_names_the_paper_most():
    lexical = LexicalIndex.build([c.text for c in CHUNKS])
    asked = focus("On how many NLU tasks did MT-DNN set a new state of the art?", frozenset({"mtdnn"}))
    head = [(0, 1.0), (1, 0.6)]  # fusion put the abstract first: it says MT-DNN three times
    lists = {"dense": [(0, 0.8), (1, 0.7)], "bm25": [(0, 5.0), (1, 4.0)]}
    order = rescore(head, lists, CHUNKS, asked, lambda _: TEXT, KeywordEmbedder(), lexical, STOP)
    assert [row for row, _ in order] == [1, 0]
    # Lowest of the two in dense and bm25, best in the other four; the scores are scaled to [0, 1].
    w = RescoreWeights()
    total = w.dense + w.bm25 + w.sentence + w.content_sentence + w.coverage + w.bigrams + w.named + w.asked_kind
    # named: both passages come from the named paper, and asked_kind: the question asks about no
    # figure or citation, so both columns are flat and scale to 1 for both passages
    flat = w.named + w.asked_kind
    assert order[0][1] == pytest.approx((w.sentence + w.content_sentence + w.coverage + w.bigrams + flat) / total)
    assert order[1][1] == pytest.approx((w.dense + w.bm25 + flat) / total)
    only_first_stage = RescoreWeights(dense=1, bm25=1, sentence=0, content_sentence=0, coverage=0, bigrams=0,
                                      named=0, asked_kind=0)
    kept = rescore(head, lists, CHUNKS, asked, lambda _: TEXT, KeywordEmbedder(), lexical, STOP, only_first_stage)
    assert [row for row, _ in kept] == [0, 1]


def test_the_memo_encodes_each_text_once_and_keeps_the_order_asked():
    inner = KeywordEmbedder()
    memo = MemoEmbedder(inner, capacity=2)
    first = memo.encode(["cats sleep", "rockets fly", "cats sleep"])
    assert inner.calls == [2]  # the repeated text is encoded once
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_array_equal(memo.encode(["rockets fly"])[0], inner.encode(["rockets fly"])[0])
    assert inner.calls == [2, 1]  # the second call is the direct one above, not the memo's
    memo.encode(["moons orbit"])  # capacity 2: the least recently used ("cats sleep") goes
    memo.encode(["cats sleep"])
    assert inner.calls == [2, 1, 1, 1]
    assert memo.encode([]).shape == (0, inner.dimension)
