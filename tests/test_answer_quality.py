"""The real packaged model over the whole eval set: every quote verbatim, gold evidence quoted,
the 3H definition cited, an off-topic question refused. Figures are measured, then pinned with
a small margin (eval/reports/retrieval.md)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from rag.answer_eval import answer_metrics, record_answers
from rag.evaluation import DEFAULT_QUESTIONS, load_questions

import rag.embedding
from rag.assistant import open_assistant
from rag.settings import REPO_ROOT, Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        root = tmp_path_factory.mktemp("quality")
        corpus = Path(shutil.copytree(REPO_ROOT / "corpus", root / "corpus"))
        settings = Settings(corpus_dir=corpus, index_dir=root / "index", data_dir=root / "data")
        opened, _ = open_assistant(settings, rag.embedding.load_embedder(settings))
        yield opened


@pytest.fixture(scope="module")
def records(session):
    never_abstain = dataclasses.replace(session.answer_settings, abstain_below=float("-inf"))
    return record_answers(load_questions(DEFAULT_QUESTIONS),
                          lambda q: session.ask(q, answer_settings=never_abstain),
                          lambda source_id: session.index.store.document(source_id).text)


def test_every_quote_over_the_eval_set_is_verbatim(records):
    assert sum(r.quotes for r in records) > len(records)  # most answers quote more than once
    assert [r.question.id for r in records if r.verbatim != r.quotes] == []


def test_gold_evidence_is_quoted_and_abstention_stays_within_budget(records, session):
    metrics = answer_metrics(records, session.settings.abstain_below)
    assert metrics["verbatim_quotes"] == 1.0
    assert metrics["false_abstention"] <= 0.05  # the calibration budget
    assert metrics["gold_evidence_quoted"] >= 0.80  # measured 0.825
    assert answer_metrics(records, float("-inf"))["gold_evidence_quoted"] >= 0.82  # measured 0.842
    assert metrics["abstained_when_unanswerable"] >= 0.20  # measured 0.263; see README "Known limits"


def test_what_3h_stands_for_is_quoted_from_the_source_page(session):
    answer = session.ask("What does 3H stand for?")
    assert not answer.abstained
    first = answer.citations[0]
    assert (first.document.id, first.quote) == ("llm-faq-page", "3H standards are Helpful, Harmless and Honest.")
    assert first.document.text[first.start:first.end] == first.quote
    assert first.section[-1] == "What are the 3H alignment standards for LLMs?"


def test_the_world_cup_is_not_in_the_sources(session):
    answer = session.ask("Who won the 2018 World Cup?")
    assert answer.abstained and not answer.citations and answer.nearest
