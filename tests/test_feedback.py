"""Feedback lines: exact fields, appended (never rewritten), a bad rating refused."""

import json
from datetime import UTC, datetime

import pytest

from rag.feedback import FEEDBACK_FILE, FeedbackError, append_feedback, feedback_record, read_feedback
from rag.types import Answer, Chunk, Citation, Document, Hit

DOC = Document(id="cats", title="Notes on Cats", text="Cats sleep. A cat sleeps fifteen hours.",
               authors=("Ada Lovelace",), year=2020, url="https://example.org/cats")
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def answer() -> Answer:
    citation = Citation(n=1, document=DOC, quote="A cat sleeps fifteen hours.", start=12, end=39,
                        section=("Sleeping",))
    return Answer(question="How long do cats sleep?", text="“A cat sleeps fifteen hours.” [1]",
                  citations=(citation,), abstained=False, support=0.71234)


def abstention() -> Answer:
    near = Hit(chunk=Chunk(id="c1", doc_id="cats", text="Cats sleep.", start=0, end=11), score=0.2, rank=1)
    return Answer(question="Who won the 2018 World Cup?", text="The sources do not answer this question.",
                  citations=(), abstained=True, nearest=(near,), support=0.1)


def test_a_record_holds_the_question_answer_citations_and_how_it_was_asked():
    record = feedback_record(answer(), "up", mode="hybrid", k=5, sources=["cats"], generation="gen-1",
                             created_at=WHEN)
    assert record == {
        "created_at": "2026-01-02T03:04:05+00:00",
        "rating": "up",
        "question": "How long do cats sleep?",
        "answer": "“A cat sleeps fifteen hours.” [1]",
        "abstained": False,
        "abstained_because": None,
        "support": 0.7123,
        "citations": [{"n": 1, "source_id": "cats", "title": "Notes on Cats", "authors": ["Ada Lovelace"],
                       "year": 2020, "url": "https://example.org/cats", "section": "Sleeping", "page": None,
                       "quote": "A cat sleeps fifteen hours.", "start": 12, "end": 39}],
        "nearest": [],
        "mode": "hybrid",
        "k": 5,
        "sources": ["cats"],
        "index": "gen-1",
    }


def test_an_abstention_records_the_nearest_passages_it_showed():
    record = feedback_record(abstention(), "down", mode="bm25", k=3)
    assert record["abstained"] is True
    assert record["nearest"] == [{"source_id": "cats", "start": 0, "end": 11}]


def test_ratings_are_appended_as_lines_in_the_data_folder(tmp_path):
    data = tmp_path / "data" / "nested"  # created on first use
    first = feedback_record(answer(), "up", mode="hybrid", k=5, created_at=WHEN)
    second = feedback_record(answer(), "down", mode="hybrid", k=5, created_at=WHEN)
    assert append_feedback(data, first) == data / FEEDBACK_FILE
    append_feedback(data, second)
    lines = (data / FEEDBACK_FILE).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["rating"] for line in lines] == ["up", "down"]
    assert read_feedback(data) == [first, second]


def test_no_file_means_no_feedback(tmp_path):
    assert read_feedback(tmp_path) == []


def test_an_unknown_rating_is_refused():
    with pytest.raises(FeedbackError, match=r"^rating 'meh' is not one of down, up$"):
        feedback_record(answer(), "meh", mode="hybrid", k=5)
