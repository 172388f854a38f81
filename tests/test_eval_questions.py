"""The eval set's schema: eval/questions.jsonl against the project corpus, and the loader's checks."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from rag.corpus import load_corpus
from rag.eval.questions import DEFAULT_QUESTIONS, EvalDataError, load_questions
from rag.eval.split import assign_splits, cross_folds
from rag.settings import Settings

RAW = [json.loads(line) for line in DEFAULT_QUESTIONS.read_text(encoding="utf-8").splitlines()
       if line.strip()]


@pytest.fixture(scope="module")
def documents():
    settings = Settings()
    return {d.id: d for d in load_corpus(settings.corpus_dir, settings.max_upload_bytes)}


def test_the_eval_set_loads_with_unique_ids_and_the_expected_shape():
    questions = load_questions(DEFAULT_QUESTIONS)
    assert len(questions) == len(RAW) == 306
    assert [q.id for q in questions] == [item["id"] for item in RAW]
    assert not [qid for qid, n in Counter(item["id"] for item in RAW).items() if n > 1]
    assert all({"id", "question", "answerable", "evidence", "split"} <= set(item) for item in RAW)
    assert sum(q.answerable for q in questions) == 224
    assert Counter(q.unanswerable for q in questions if not q.answerable) == {"on-topic": 69, "off-topic": 13}


def test_the_split_is_stored_holds_out_over_40_percent_and_is_stable():
    questions = load_questions(DEFAULT_QUESTIONS)
    assert {q.split for q in questions} == {"tune", "test"}
    test = [q for q in questions if q.split == "test"]
    assert len(test) / len(questions) >= 0.40
    for group in {q.group for q in questions}:  # every stratum is held out in proportion
        members = [q for q in questions if q.group == group]
        assert sum(q.split == "test" for q in members) >= 0.40 * len(members) - 1, group
    assert assign_splits(questions) == {q.id: q.split for q in questions}  # re-running moves nothing


def test_assign_splits_is_seeded_stratified_and_keeps_existing_splits():
    from rag.eval.questions import EvalQuestion, Evidence

    evidence = (Evidence("s", "q"),)
    questions = [EvalQuestion(f"a{i}", "?", True, evidence, style="terse") for i in range(10)]
    questions += [EvalQuestion(f"u{i}", "?", False, unanswerable="off-topic") for i in range(5)]
    first = assign_splits(questions)
    assert first == assign_splits(questions)
    assert sum(first[f"a{i}"] == "test" for i in range(10)) == 5  # ceil(10 * 0.45)
    assert sum(first[f"u{i}"] == "test" for i in range(5)) == 3  # ceil(5 * 0.45)
    kept = [EvalQuestion("a0", "?", True, evidence, style="terse", split="tune"), *questions[1:]]
    assert assign_splits(kept)["a0"] == "tune"


IDS = [f"q{i:02d}" for i in range(10)]


def test_cross_folds_hold_each_question_out_once_whatever_order_it_came_in():
    pairs = cross_folds(IDS, 3, key=str)
    held = [fold for _, fold in pairs]
    assert held == [["q08", "q04", "q09", "q05"], ["q03", "q07", "q06"], ["q01", "q00", "q02"]]
    assert [sorted(train) for train, _ in pairs] == [sorted(set(IDS) - set(fold)) for fold in held]
    assert cross_folds(list(reversed(IDS)), 3, key=str) == pairs  # sorted by id before the shuffle
    assert [fold for _, fold in cross_folds(IDS, 3, key=str, seed=8)][0] == ["q08", "q04", "q01", "q03"]


@pytest.mark.parametrize("k", [1, 11])
def test_cross_folds_refuse_a_fold_count_they_cannot_deal(k):
    with pytest.raises(ValueError, match=rf"cannot cross-validate 10 items in {k} folds: use 2 to 10 folds"):
        cross_folds(IDS, k, key=str)


def test_answerable_questions_have_evidence_and_unanswerable_ones_none():
    for question in load_questions(DEFAULT_QUESTIONS):
        assert bool(question.evidence) == question.answerable, question.id


def test_every_quote_is_verbatim_and_unambiguous_in_its_source(documents):
    problems = []
    for question in load_questions(DEFAULT_QUESTIONS):
        for position, evidence in enumerate(question.evidence):
            document = documents.get(evidence.source_id)
            if document is None:
                problems.append(f"{question.id}#{position}: unknown source {evidence.source_id!r}")
            elif evidence.quote not in document.text:
                problems.append(f"{question.id}#{position}: not verbatim in {evidence.source_id}")
            elif document.text.count(evidence.quote) > 1:  # its span would be a guess
                problems.append(f"{question.id}#{position}: occurs more than once; quote more of it")
    assert problems == []


def test_every_source_is_used_by_some_question(documents):
    used = {e.source_id for q in load_questions(DEFAULT_QUESTIONS) for e in q.evidence}
    assert used == set(documents)


def _write(tmp_path: Path, *items: object) -> Path:
    path = tmp_path / "questions.jsonl"
    path.write_text("".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in items),
                    encoding="utf-8")
    return path


GOOD = {"id": "a", "question": "Why?", "answerable": True, "evidence": [{"source_id": "s", "quote": "q"}]}


@pytest.mark.parametrize(("items", "message"), [
    ((GOOD, GOOD), r"questions.jsonl:2: duplicate question id 'a'"),
    (({**GOOD, "evidence": []},), r":1: question 'a' is answerable=True and needs at least one evidence"),
    (({**GOOD, "answerable": False},), r"is answerable=False and must not list evidence"),
    (({**GOOD, "extra": 1},), r"fields are .*'extra'.*; expected .* and optionally"),
    (({**GOOD, "split": "train"},), r"'split' is 'train'; expected one of tune, test"),
    (({**GOOD, "answerable": False, "evidence": [], "unanswerable": "maybe"},),
     r"'unanswerable' is 'maybe'; expected one of on-topic, off-topic"),
    (({**GOOD, "answerable": "yes"},), r"'answerable' should be a bool, got 'yes'"),
    (({**GOOD, "evidence": [{"source_id": "s", "quote": "  "}]},),
     r"evidence #0 should be \{source_id, quote\}"),
    (("{not json",), r"questions.jsonl:1: not valid JSON"),
    (({**GOOD, "answerable": False, "evidence": []},), r"no answerable questions"),
])
def test_malformed_questions_are_refused_with_file_line_and_reason(tmp_path, items, message):
    with pytest.raises(EvalDataError, match=message):
        load_questions(_write(tmp_path, *items))
