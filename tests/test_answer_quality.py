"""The real packaged model over the project corpus: the five questions of issue 11 answered as a
reader wants, every quote over the eval set verbatim and content, every abstention with a reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.assistant import open_assistant
from rag.embedding import load_embedder
from rag.eval.answers import answer_metrics, record_answers
from rag.eval.questions import DEFAULT_QUESTIONS, load_questions, locate_evidence
from rag.settings import REPO_ROOT, Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        root = tmp_path_factory.mktemp("quality")
        corpus = Path(shutil.copytree(REPO_ROOT / "corpus", root / "corpus"))
        settings = Settings(corpus_dir=corpus, index_dir=root / "index", data_dir=root / "data")
        opened, _ = open_assistant(settings, load_embedder(settings))
        yield opened


def test_rlhf_is_linked_to_its_expansion_and_the_sentence_that_answers_leads(session):
    answer = session.ask("What is RLHF and how was it used for InstructGPT?")
    assert not answer.abstained
    assert answer.citations[0].quote == (
        "We then collect a dataset of rankings of model outputs, which we use to further fine-tune this "
        "supervised model using reinforcement learning from human feedback.")
    assert "We call the resulting models InstructGPT." not in [c.quote for c in answer.citations]


def test_a_learning_rate_the_sources_never_give_is_declined_with_the_reason(session):
    # The decline model: "learning rate", the words after the question word, is in no quoted sentence.
    answer = session.ask("What learning rate was used for the PPO stage of InstructGPT?")
    assert answer.abstained and answer.citations == ()
    assert answer.abstained_because == "The sources do not mention “learning rate” for PPO."
    assert answer.text.startswith(answer.abstained_because)


def test_how_many_is_answered_only_by_a_figure_for_the_thing_counted(session):
    # The passage that answers is found ("labeler-written prompts and prompts submitted through the
    # OpenAI API"), but its only figures (1.3B, 175B) count parameters, not prompts.
    answer = session.ask("How many prompts were submitted through the OpenAI API?")
    assert answer.abstained
    assert answer.abstained_because == "The sources give no figure for “prompts”."
    # The passages speak of these prompts but give no count of them: the reason names what was to be counted.
    answer = session.ask("How many labeler-written prompts did OpenAI collect for InstructGPT?")
    assert answer.abstained_because == "The sources give no figure for “labeler-written prompts”."
    answer = session.ask("How many GLUE tasks did MT-DNN improve on?")
    assert not answer.abstained
    assert "eight out of nine GLUE tasks" in answer.citations[0].quote


QUESTION_3 = "Which three training objectives were compared in the general language assistant paper?"


def test_a_question_naming_the_general_language_assistant_paper_gets_its_list_of_objectives(session):
    first = session.ask(QUESTION_3).citations[0]
    assert "comparing imitation learning, binary discrimination, and ranked preference modeling" in first.quote


def test_the_passage_of_the_named_paper_ranks_first(session):  # the second stage's named-source feature
    assert session.search(QUESTION_3)[0].hit.chunk.doc_id == "askell2021-general-language-assistant"


def test_what_the_ai_does_when_more_info_is_needed_is_the_follow_up_questions_line(session):
    question = "what does the AI do when more info is needed"
    assert session.search(question)[0].hit.chunk.doc_id == "llm-faq-page"
    assert session.ask(question).citations[0].quote == (
        "When more information is required, the AI should ask relevant follow-up questions and obtain "
        "necessary details.")


def test_a_question_about_a_figure_is_answered_by_its_caption_and_its_credit_by_the_citation(session):
    # Not eval questions: the rule (rag.reader.content.asked_kinds), not its tuning, is under test.
    assert session.ask("What does the MT-DNN architecture figure on the page show?").citations[0].quote == (
        "Architecture of the MT-DNN model for representation learning.")
    credit = session.ask("Which paper is the bias figure on the FAQ page credited to?")
    # The title's period does not split it from its credit: the quote carries the author-year.
    assert credit.citations[0].quote == "A Survey on Bias and Fairness in Machine Learning. (Mehrabi et al., 2019)"


def test_a_citation_line_never_answers_a_question_about_something_else(session):
    for question in ("Who wrote the InstructGPT paper?", "What did InstructGPT's labelers write?"):
        answer = session.ask(question)
        assert not any(c.quote.endswith("(Ouyang et al., 2022)") for c in answer.citations), question


@pytest.mark.xfail(strict=True, reason="not reached: the sentence now has the best cosine without the source's "
                   "name (0.50 against 0.33, since 'task' counts as content), but the FAQ passage that holds it "
                   "ranks second, below the MT-DNN abstract, whose sentences have the higher plain cosine (issue 11)")
def test_the_shared_part_of_mt_dnn_is_quoted_first(session):
    answer = session.ask("Which part of the MT-DNN network is common to every task?")
    assert answer.citations[0].quote == (
        "The lower layers are shared across all tasks, while the top layers are task-specific.")


def test_over_the_eval_set_quotes_are_verbatim_content_and_every_abstention_says_why(session):
    questions = load_questions(DEFAULT_QUESTIONS)
    store = session.index.store
    spans = {q.id: locate_evidence(q, lambda s: store.document(s).text) for q in questions if q.answerable}
    metrics = answer_metrics(record_answers(questions, session.ask, spans))
    assert metrics["verbatim_quotes"] == 1.0
    assert metrics["non_content_quotes"] == 0
    assert metrics["reasons_given"] == 1.0
    assert metrics["abstain_off_topic"] >= 0.9
