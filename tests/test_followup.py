"""Follow-up rewriting: the deterministic rule, and the LLM rewrite's fallbacks."""

from __future__ import annotations

import pytest

from rag.errors import RagError
from rag.followup import (
    Rewrite,
    Turn,
    focus_of,
    llm_rewrite,
    names_source,
    refers_back,
    rule_rewrite,
)
from rag.types import Document

DOCUMENTS = (
    Document(id="ouyang2022-instructgpt", title="Training language models to follow instructions with human feedback",
             text="", authors=("Long Ouyang", "Jeff Wu")),
    Document(id="liu2019-mtdnn", title="Multi-Task Deep Neural Networks for Natural Language Understanding", text="",
             authors=("Xiaodong Liu",)),
    Document(id="mehrabi2019-bias-fairness-survey", title="A Survey on Bias and Fairness in Machine Learning", text="",
             authors=("Ninareh Mehrabi",)),
)
INSTRUCTGPT = Turn("What is InstructGPT?", "What is InstructGPT?", ("ouyang2022-instructgpt", "llm-faq-page"))


@pytest.mark.parametrize("question", [
    "How was it trained?", "and did it become less toxic?", "What do the authors of that paper conclude?",
    "Tell me more about the second one.", "What about sensitive advice?", "And after that?", "Why?",
    "What can that lead to?",
])
def test_follow_ups_that_refer_back(question):
    assert refers_back(question)


@pytest.mark.parametrize("question", [
    "What is MT-DNN?", "Which training objectives did Askell et al. compare?",
    "Where does LLM training data usually come from?",
])
def test_standalone_questions(question):
    assert not refers_back(question)


def test_focus_prefers_names_over_content_words():
    assert focus_of("How does the 1.3B InstructGPT model compare with GPT-3?") == "1.3B InstructGPT GPT-3"
    assert focus_of("Where does LLM training data usually come from?") == "LLM"
    assert focus_of("why does fairness matter when building systems?") == "fairness matter building systems"


def test_rule_carries_focus_and_source():
    rewrite = rule_rewrite("How was it trained?", [INSTRUCTGPT], DOCUMENTS, "previous")
    assert rewrite == Rewrite("How was it trained (InstructGPT)?", ("ouyang2022-instructgpt",), "rule")


def test_rule_leaves_a_standalone_question_alone():
    assert rule_rewrite("What is MT-DNN?", [INSTRUCTGPT], DOCUMENTS, "previous") == Rewrite("What is MT-DNN?")
    assert rule_rewrite("How was it trained?", [], DOCUMENTS, "previous") == Rewrite("How was it trained?")


def test_rule_follows_a_named_source_instead_of_the_previous_one():
    rewrite = rule_rewrite("And what does the MT-DNN paper say about it?", [INSTRUCTGPT], DOCUMENTS, "previous")
    assert rewrite.sources == ("liu2019-mtdnn",)


def test_rule_resolves_an_ordinal_to_that_citation_source():
    rewrite = rule_rewrite("Tell me more about the second one.", [INSTRUCTGPT], DOCUMENTS, "previous")
    assert rewrite.sources == ("llm-faq-page",)


@pytest.mark.parametrize(("carry", "question", "sources"), [
    ("previous", "How was it trained?", ("ouyang2022-instructgpt",)),
    ("named", "How was it trained?", ()),
    ("named", "And what does the MT-DNN paper say about it?", ("liu2019-mtdnn",)),
    ("named", "Tell me more about the second one.", ("llm-faq-page",)),
    ("none", "How was it trained?", ()),
    ("none", "And what does the MT-DNN paper say about it?", ()),
])
def test_the_source_carried_follows_the_setting(carry, question, sources):
    rewrite = rule_rewrite(question, [INSTRUCTGPT], DOCUMENTS, carry)
    assert (rewrite.sources, rewrite.method) == (sources, "rule")
    # the text never changes, only the source kept to
    assert rewrite.question == rule_rewrite(question, [INSTRUCTGPT], DOCUMENTS, "none").question


def test_an_unknown_source_carry_is_refused():
    with pytest.raises(RagError, match=r"^followup_sources 'all' is not one of previous, named, none$"):
        rule_rewrite("How was it trained?", [INSTRUCTGPT], DOCUMENTS, "all")


def test_names_source_by_id_words_or_first_author():
    assert names_source("what does the bias survey say", DOCUMENTS) == "mehrabi2019-bias-fairness-survey"
    assert names_source("according to Ouyang et al.", DOCUMENTS) == "ouyang2022-instructgpt"
    assert names_source("what is alignment", DOCUMENTS) is None


def test_llm_rewrite_uses_the_models_question_and_the_rules_source():
    prompts = []

    def complete(prompt: str) -> str:
        prompts.append(prompt)
        return "How was InstructGPT trained?\n"

    rewrite = llm_rewrite("How was it trained?", [INSTRUCTGPT], complete, 200, DOCUMENTS, "previous")
    assert rewrite == Rewrite("How was InstructGPT trained?", ("ouyang2022-instructgpt",), "llm")
    assert "Question: What is InstructGPT? (answered from: Training language models" in prompts[0]
    assert prompts[0].endswith("Last question: How was it trained?\nRewritten question:")


def test_llm_rewrite_falls_back_to_the_rule_when_the_model_fails():
    def down(prompt: str) -> str:
        raise RagError("cannot reach the language model at http://127.0.0.1:9 (is the server running?)")

    rewrite = llm_rewrite("How was it trained?", [INSTRUCTGPT], down, 200, DOCUMENTS, "previous")
    assert (rewrite.question, rewrite.method) == ("How was it trained (InstructGPT)?", "rule")
    assert rewrite.note.startswith("the model could not rewrite it (cannot reach the language model")


def test_llm_rewrite_rejects_an_empty_or_rambling_reply():
    for reply in ("  \n", "x" * 300):
        assert llm_rewrite("How was it trained?", [INSTRUCTGPT], lambda p, r=reply: r, 200, DOCUMENTS,
                           "previous").method == "rule"


def test_llm_is_not_asked_about_a_standalone_question():
    def never(prompt: str) -> str:
        raise AssertionError("the model was asked to rewrite a standalone question")

    rewrite = llm_rewrite("What is MT-DNN?", [INSTRUCTGPT], never, 200, DOCUMENTS, "previous")
    assert rewrite == Rewrite("What is MT-DNN?")
