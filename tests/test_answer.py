"""Answer composition on the tiny corpus with the keyword embedder: exact quotes and offsets,
the abstention rule, quote trimming and the reference format."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from conftest import KeywordEmbedder
from helpers import search_hits

import rag.embedding
from rag.answer import compose_answer, extractive_text, trim_quote, verified
from rag.assistant import open_assistant
from rag.cli import main
from rag.errors import QuestionError
from rag.reporting import answer_row, format_reference


@pytest.fixture
def session(settings, embedder):
    opened, _ = open_assistant(settings, embedder)
    return opened


def test_the_sentence_that_answers_leads_and_its_support_follows_with_exact_offsets(session):
    answer = session.ask("How long does a house cat sleep?")
    assert not answer.abstained
    assert [(c.n, c.document.id, c.start, c.end, c.quote) for c in answer.citations] == [
        (1, "cats", 42, 81, "A house cat sleeps about fifteen hours."),  # a duration is asked: the figure leads
        (2, "cats", 10, 41, "Cats sleep for most of the day."),
    ]
    for citation in answer.citations:
        assert citation.document.text[citation.start:citation.end] == citation.quote
        assert citation.section == ("Sleeping",)
    assert answer.text == "“A house cat sleeps about fifteen hours.” [1]\n\n“Cats sleep for most of the day.” [2]"


def test_a_single_strong_sentence_is_quoted_alone(session):
    answer = session.ask("What do cats hunt at dawn?")
    assert [(c.start, c.end) for c in answer.citations] == [(92, 131)]
    assert answer.text == "“Cats hunt small birds and mice at dawn.” [1]"


def test_each_quote_is_verbatim_and_numbered_in_order(session):
    answer = session.ask("Why do rockets drop empty tanks?")
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    assert answer.citations[0].quote == "Multi-stage rockets drop empty tanks to save mass."
    assert (answer.citations[0].start, answer.citations[0].end) == (129, 179)
    assert all(verified(c) for c in answer.citations)
    for citation in answer.citations:
        assert f"[{citation.n}]" in answer.text


def test_off_topic_question_abstains_and_offers_nearest_material(session):
    answer = session.ask("Who won the 2018 World Cup?")
    assert answer.abstained
    assert answer.citations == ()
    assert answer.abstained_because == "The sources do not mention “2018 World Cup”."
    assert answer.text.startswith(answer.abstained_because)
    assert answer.nearest  # shown as material, not as an answer
    assert answer.support < session.settings.abstain_below


def test_abstention_rule_is_support_strictly_below_the_threshold(session):
    question = "What do cats hunt at dawn?"
    hits = search_hits(session, question)
    support = session.ask(question).support

    def compose(threshold: float):
        settings = dataclasses.replace(session.answer_settings, abstain_below=threshold)
        return compose_answer(question, hits, session.index.store.document, session.embedder,
                              session.index.lexical, settings)

    assert not compose(support).abstained
    assert compose(support + 1e-6).abstained


def test_a_long_sentence_is_cut_at_a_word_and_marked_with_an_ellipsis():
    text = "Alpha beta, gamma delta epsilon zeta eta theta."
    start, end, cut = trim_quote(text, 0, len(text), limit=14)
    assert (start, end, cut) == (0, 10, True)  # "Alpha beta" — no trailing comma, no half word
    assert trim_quote(text, 0, len(text), limit=100) == (0, len(text), False)


def test_extractive_text_adds_the_ellipsis_outside_the_verbatim_quote(session):
    citation = session.ask("How long does a house cat sleep?").citations[0]
    assert extractive_text([(citation, True)]) == f"“{citation.quote}…” [1]"


def test_a_tampered_quote_fails_verification(session):
    citation = session.ask("How long does a house cat sleep?").citations[0]
    assert verified(citation)
    assert not verified(dataclasses.replace(citation, quote=citation.quote.replace("cat", "dog")))
    assert not verified(dataclasses.replace(citation, start=citation.start + 1))


def test_reference_line_names_authors_year_title_venue_link_and_section(session):
    citation = session.ask("How long does a house cat sleep?").citations[0]
    assert format_reference(citation) == (
        "[1] Ada Lovelace (2020). Notes on Cats. Journal of Feline Studies. https://example.org/cats — Sleeping")


def test_answer_row_has_the_contract_fields(session):
    row = answer_row(session.ask("How long does a house cat sleep?"))
    assert set(row) == {"question", "answer", "abstained", "abstained_because", "support", "citations"}
    assert row["abstained_because"] is None
    assert set(row["citations"][0]) == {"n", "source_id", "title", "authors", "year", "url", "section",
                                        "page", "quote", "start", "end"}
    assert row["citations"][0]["source_id"] == "cats"


def test_questions_over_the_limit_are_refused(session):
    with pytest.raises(QuestionError, match=r"the question is 10,000 characters long; the limit is 2,000"):
        session.ask("x" * 10_000)


def test_quote_length_is_capped(session, settings):
    capped = dataclasses.replace(session.answer_settings, max_quote_chars=20)
    answer = session.ask("How long does a house cat sleep?", answer_settings=capped)
    assert all(len(c.quote) <= 20 for c in answer.citations)
    assert "…”" in answer.text


# ---------------------------------------------------------------- rag ask


@pytest.fixture
def cli_env(tiny_corpus: Path, tmp_path: Path, monkeypatch) -> Path:
    for name, value in {"RAG_CORPUS_DIR": str(tiny_corpus), "RAG_INDEX_DIR": str(tmp_path / "index"),
                        "RAG_MODEL_NAME": KeywordEmbedder.name, "RAG_CHUNK_SIZE": "200",
                        "RAG_CHUNK_OVERLAP": "60"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(rag.embedding, "load_embedder", lambda settings: KeywordEmbedder())
    return tmp_path


def test_rag_ask_json(cli_env, capsys):
    assert main(["ask", "How long does a house cat sleep?", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["abstained"] is False
    assert [(c["quote"], c["start"], c["end"]) for c in row["citations"]] == [
        ("A house cat sleeps about fifteen hours.", 42, 81), ("Cats sleep for most of the day.", 10, 41)]


def test_rag_ask_prints_answer_then_references(cli_env, capsys):
    assert main(["ask", "How long does a house cat sleep?"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("“A house cat sleeps about fifteen hours.” [1]\n\n“Cats sleep for most of the day.” [2]")
    assert out.endswith("References:\n  [1, 2] Ada Lovelace (2020). Notes on Cats. Journal of Feline Studies. "
                        "https://example.org/cats — Sleeping\n")


def test_rag_ask_abstention_lists_nearest_material(cli_env, capsys):
    assert main(["ask", "Who won the 2018 World Cup?"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("The sources do not mention “2018 World Cup”. The nearest material is listed below")
    assert "Nearest material:" in out


def test_rag_ask_batch_prints_one_answer_per_line_with_its_id(cli_env, capsys, tmp_path):
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "a", "question": "What do cats hunt at dawn?"}\n'
                       '{"id": "b", "question": "Who won the 2018 World Cup?"}\n', encoding="utf-8")
    assert main(["ask", "--queries", str(queries), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["id"], r["abstained"], r["abstained_because"]) for r in lines] == [
        ("a", False, None), ("b", True, "The sources do not mention “2018 World Cup”.")]


def test_rag_ask_refuses_a_long_question_in_one_line(cli_env, capsys):
    assert main(["ask", "y" * 2001]) == 1
    err = capsys.readouterr().err
    assert err == "rag: error: the question is 2,001 characters long; the limit is 2,000. Ask something shorter\n"
