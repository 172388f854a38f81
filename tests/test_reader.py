"""The reader's parts without a model: non-content sentences, the corpus lexicon (acronyms, source
names), question analysis and the reasons given for declining."""

from __future__ import annotations

import pytest

from rag.corpus import load_corpus
from rag.reader.abstain import absent_reason
from rag.reader.analyser import QuestionAnalyser
from rag.reader.content import announces, asked_kinds, non_content_reason
from rag.reader.english import is_english
from rag.reader.lexicon import Lexicon, acronym_key, mine_lexicon
from rag.reader.question import (
    counted_terms,
    gives_what_is_asked,
    has_new_number,
    is_frame_word,
    is_keyword_query,
    numbers_in,
    states_figure_for,
)
from rag.reader.scoring import type_match
from rag.settings import Settings


@pytest.fixture(scope="module")
def documents():
    settings = Settings()
    return {d.id: d for d in load_corpus(settings.corpus_dir, settings.max_upload_bytes)}


@pytest.fixture(scope="module")
def analyser(documents):
    return QuestionAnalyser(mine_lexicon(documents.values()))


def reason_in(document, sentence: str) -> str | None:
    start = document.text.index(sentence)
    return non_content_reason(document.text, start, start + len(sentence))


@pytest.mark.parametrize(("sentence", "reason"), [
    ("Training language models to follow instructions with human feedback (Ouyang et al., 2022)", "citation line"),
    ("A Survey on Bias and Fairness in Machine Learning. (Mehrabi et al., 2019)", "citation line"),
    ("Architecture of the MT-DNN model for representation learning.", "figure caption"),
    ("Examples of bias definitions placed in the data, algorithm, and user interaction feedback loop.",
     "figure caption"),
    ("Is bigger always better?", "heading"),
    ("Generality VS Efficiency", "heading"),
    ("Helpful.", "list stub"),
    ("The development of LLMs can be approached in two directions:", "lead-in"),
    ("The lower layers are shared across all tasks, while the top layers are task-specific.", None),
    ("3H standards are Helpful, Harmless and Honest.", None),
])
def test_non_content_sentences_of_the_faq_page_are_named(documents, sentence, reason):
    assert reason_in(documents["llm-faq-page"], sentence) == reason


def test_a_list_item_before_a_footnote_is_content_not_a_caption(documents):
    # The footnote after the 3H list is no figure credit: its last paragraph's first item is an answer.
    page = documents["llm-faq-page"]
    assert reason_in(page, "At its most basic level, the AI should give accurate information.") is None


@pytest.mark.parametrize(("question", "kinds"), [
    ("What does the bias feedback-loop figure on the page illustrate?", {"figure caption"}),
    ("Which paper is the human-preference figure on the page taken from?", {"citation line", "lead-in"}),
    ("Which publication is the figure credited to?", {"citation line", "lead-in"}),
    ("In what year was the MT-DNN paper published?", {"citation line", "lead-in"}),
    ("What name did OpenAI give to the models?", {"naming only"}),
    ("What learning rate was used for the PPO stage of InstructGPT?", set()),
    ("What TruthfulQA score did InstructGPT get in the Ouyang et al. paper?", set()),
])
def test_a_question_admits_the_non_content_kind_it_asks_about(question, kinds):
    assert asked_kinds(question) == kinds


def test_an_admitted_kind_is_content_for_that_question_only(documents):
    page = documents["llm-faq-page"]
    line = "Training language models to follow instructions with human feedback (Ouyang et al., 2022)"
    start = page.text.index(line)
    assert non_content_reason(page.text, start, start + len(line)) == "citation line"
    assert non_content_reason(page.text, start, start + len(line), asked_kinds("Which paper is it from?")) is None
    assert non_content_reason(page.text, start, start + len(line), asked_kinds("What does the chart show?")) \
        == "citation line"


def test_common_english_words_are_known_and_misspellings_are_not():
    assert is_english("accuracy") and is_english("Funded") and is_english("reward")
    assert not is_english("preferance") and not is_english("harmles") and not is_english("GPUs")


def test_real_words_the_corpus_lacks_are_not_corrected_into_corpus_words(analyser):
    # Before the English list: "accuracy" became "accurate", "funded" "founded", "reward" "regard".
    assert analyser.analyse("What accuracy did MT-DNN get on SNLI?").focus_words == ("accuracy", "SNLI")
    assert analyser.analyse("Who funded the MT-DNN research?").corrected == "Who funded the MT-DNN research?"
    assert "reward" in analyser.analyse("How large was the reward model?").corrected


def test_frame_words_are_frame_words_in_any_inflection(analyser):
    assert is_frame_word("kinds") and is_frame_word("Sorts") and is_frame_word("described")
    assert not is_frame_word("labelers")
    assert analyser.analyse("What kinds of things influence alignment?").focus_words == ("influence", "alignment")


def test_a_figure_the_question_states_is_not_an_answer_to_how_many():
    # The digits of a name ("GPT-3", "ChatGPT/GPT-3.5") count nothing; nor does "one", as often a pronoun.
    assert numbers_in("the 1.3B model beats the 175B GPT-3 on three tasks") == {"1.3b", "175b", "three"}
    assert numbers_in("ChatGPT/GPT-3.5 lags behind; one for each word") == set()
    question = "How many GPUs were used to train the 175B InstructGPT model?"
    assert not has_new_number("outputs from the 175B model are preferred", question)
    assert has_new_number("the 175B model was trained on 1024 GPUs", question)


@pytest.mark.parametrize(("question", "sentence", "answers"), [
    # A figure answers "how many X" only when it stands by X (within FIGURE_WINDOW words) ...
    ("How many GPUs were used to train the 175B InstructGPT model?",
     "outputs from the 1.3B parameter InstructGPT model are preferred to outputs from the 175B GPT-3", False),
    ("How many GPUs were used to train the 175B InstructGPT model?", "the 175B model was trained on 1024 GPUs", True),
    ("On how many NLU tasks did MT-DNN set a new state of the art?",
     "MT-DNN obtains new state-of-the-art results on ten NLU tasks, including SNLI", True),
    ("What value of the pretraining-mix coefficient was used for the PPO-ptx models?",
     "OpenAI InstructGPT models (PPO-ptx), as well as its variant trained without pretraining mix (PPO)", False),
    # ... without words after the question word, by the question's own lower-case words, not its names;
    ("hey, how much did it cost OpenAI to train InstructGPT?",
     "OpenAI trained the 1.3B parameter InstructGPT model", False),
    ("By how many points does ChatGPT trail the fine-tuned baselines?",
     "ChatGPT/GPT-3.5 often lags behind existing fine-tuned baseline models.", False),
    # ... and any new figure answers a comparison.
    ("How much smaller is the preferred 1.3B InstructGPT model than GPT-3?",
     "the 1.3B parameter InstructGPT model is preferred despite having 100x fewer parameters", True),
])
def test_a_number_question_needs_a_figure_for_what_it_counts(analyser, question, sentence, answers):
    assert states_figure_for(sentence, analyser.analyse(question)) is answers


def test_the_reader_prefers_the_sentence_with_the_figure_for_what_is_counted(analyser):
    focus = analyser.analyse("How many NLU tasks does MT-DNN set new records on?")
    assert type_match(focus, "MT-DNN obtains new state-of-the-art results on ten NLU tasks, including SNLI") == 1.0
    assert type_match(focus, "In this paper, we present a Multi-Task Deep Neural Network (MT-DNN) for learning "
                             "representations across multiple natural language understanding (NLU) tasks.") == 0.0
    assert type_match(analyser.analyse("Which three objectives were compared?"), "comparing a, b, and c") == 1.0
    assert type_match(analyser.analyse("What is MT-DNN?"), "MT-DNN has 24 layers") == 0.0  # no type asked


@pytest.mark.parametrize(("question", "names", "focus_words"), [
    # A lone word of a name is content; the name's key, and a run of its words, name the source.
    ("Which part of the MT-DNN network is common to every task?", {"mt-dnn", "network"}, ("common", "every", "task")),
    ("Which three training objectives were compared in the general language assistant paper?",
     {"general", "language", "assistant"}, ("training", "objectives", "compared")),
    ("What does Anthropic's core views post say about safety?", {"anthropic's", "core", "views"}, ("safety",)),
])
def test_only_a_names_key_or_a_run_of_its_words_names_a_source(analyser, question, names, focus_words):
    focus = analyser.analyse(question)
    assert names <= focus.name_words
    assert focus.focus_words == focus_words


def test_what_a_number_question_counts(analyser):
    assert counted_terms(analyser.analyse("How many GPUs were used to train MT-DNN?")) == {"gpus"}
    assert counted_terms(analyser.analyse("What value of the pretraining-mix coefficient was used?")) == {
        "pretrain", "mix", "coeffici"}
    assert counted_terms(analyser.analyse("How much smaller is the 1.3B model than GPT-3?")) is None
    # What follows "how many (of the)" is counted, names and frame words too: "tasks" though
    # "multi-task" names MT-DNN, "points" though "point" only frames other questions.
    assert counted_terms(analyser.analyse("how many of the GLUE tasks did the multi-task DNN win")) == {
        "glue", "task"}
    assert counted_terms(analyser.analyse("By how many points does ChatGPT trail the baselines?")) == {"point"}


@pytest.mark.parametrize(("sentence", "announcing"), [
    ("So in this post we will summarize why we believe all this: why we anticipate very rapid AI progress.", True),
    ("We’ll then briefly summarize our own approach to AI safety research.", True),
    ("In this paper, we present a Multi-Task Deep Neural Network (MT-DNN).", True),
    ("Rapid and continuing AI progress is a predictable consequence of the exponential increase in computation.",
     False),
    ("We then created a taxonomy for fairness definitions.", False),
])
def test_a_sentence_announcing_what_its_text_is_about_is_told_apart(sentence, announcing):
    assert announces(sentence) == announcing


def test_a_coined_name_is_not_content_but_the_sentence_that_answers_is(documents):
    instructgpt = documents["ouyang2022-instructgpt"]
    assert reason_in(instructgpt, "We call the resulting models InstructGPT.") == "naming only"
    assert reason_in(instructgpt, "We then collect a dataset of rankings of model outputs, which we use to "
                                  "further fine-tune this supervised model using reinforcement learning from "
                                  "human feedback.") is None


def test_acronyms_defined_in_the_corpus_and_spelled_out_ones_are_mined(documents):
    lexicon = mine_lexicon(documents.values())
    assert lexicon.acronyms["mtdnn"] == ("Multi-Task Deep Neural Network",)
    assert lexicon.spellings["mtdnn"] == "MT-DNN"
    assert lexicon.acronyms["nlu"] == ("natural language understanding",)
    # RLHF is never written in the corpus; its words are, and their initials spell it.
    assert lexicon.initialisms["rlhf"] == ("reinforcement learning from human feedback",)
    assert Lexicon.from_json(lexicon.to_json()) == lexicon
    assert [acronym_key(w) for w in ("MT-DNN", "LLMs", "Anthropic's", "RLHF")] == ["mtdnn", "llm", "anthropic",
                                                                                    "rlhf"]


def test_source_names_come_from_metadata_and_the_text(documents):
    lexicon = mine_lexicon(documents.values())
    assert {"InstructGPT", "Ouyang", "instructgpt"} <= set(lexicon.strong["ouyang2022-instructgpt"])
    assert "Anthropic" in lexicon.strong["anthropic2023-core-views"]
    assert "A General Language Assistant" in lexicon.aliases["askell2021-general-language-assistant"]
    assert lexicon.strong["llm-faq-page"] == ()  # "AI Alignment site team (...)" is not a surname


@pytest.mark.parametrize(("question", "named"), [
    ("What is RLHF and how was it used for InstructGPT?", ("ouyang2022-instructgpt",)),
    ("Which three training objectives were compared in the general language assistant paper?",
     ("askell2021-general-language-assistant",)),
    ("what does Anthropic's post say about scaling laws", ("anthropic2023-core-views",)),
    ("what sources of bias does the bias survey list", ("mehrabi2019-bias-fairness-survey",)),
    ("Which part of the MT-DNN network is common to every task?", ("liu2019-mtdnn",)),
    ("what do machine learning models learn", ()),  # words several titles share name no source
])
def test_questions_naming_a_work_are_recognised(analyser, question, named):
    assert analyser.analyse(question).named == named


def test_acronyms_expand_misspellings_are_corrected_and_answer_types_read(analyser):
    rlhf = analyser.analyse("What is RLHF and how was it used for InstructGPT?")
    assert rlhf.expansions == ("reinforcement learning from human feedback",)
    assert "reinforcement learning from human feedback" in rlhf.search_text
    spelled = analyser.analyse("how much did preferance model pretraining improve sample efficency")
    assert spelled.corrected == "how much did preference model pretraining improve sample efficiency"
    assert spelled.answer_type == "number"
    assert analyser.analyse("what does the AI do when more info is needed").corrected == \
        "what does the AI do when more info is needed"  # "info" is not corrected to "into"
    assert analyser.analyse("Which three objectives were compared?").answer_type == "list"
    assert analyser.analyse("Who funded it?").answer_type == "person"
    assert analyser.analyse("When was InstructGPT released?").answer_type == "date"
    assert analyser.analyse("What learning rate was used for PPO?").answer_type == "number"
    assert analyser.analyse("What maximum sequence length does MT-DNN use?").answer_type == "number"
    assert analyser.analyse("What values does Anthropic hold?").answer_type == ""
    assert analyser.analyse("In what year was MT-DNN published?").answer_type == "date"
    # A condition, not a time: "when" opening a clause or asking "when should ..." is not a date question.
    assert analyser.analyse("When more info is required, should the AI ask?").answer_type == ""
    assert analyser.analyse("When should the AI refuse?").answer_type == ""
    assert analyser.analyse("What is the context length of InstructGPT?").answer_type == "number"
    assert analyser.analyse("What are the two broad paths for developing LLMs?").answer_type == "list"


@pytest.mark.parametrize(("query", "keywords", "kind"), [
    ("mt-dnn training epochs", True, "number"),  # keywords naming a measure or a unit of work ask for a figure
    ("instructgpt reward model size", True, "number"),
    ("anthropic headcount", True, "number"),
    ("mt-dnn glue test set date", True, "date"),
    ("mtdnn shared layers", True, ""),
    ("explain the learning rate", False, ""),  # a request, not keywords: it asks for an explanation
])
def test_a_keyword_query_asks_for_a_figure_when_it_names_a_measure(analyser, query, keywords, kind):
    assert is_keyword_query(query) == keywords
    assert analyser.analyse(query).answer_type == kind


def test_a_date_question_needs_a_date_the_question_does_not_give(analyser):
    focus = analyser.analyse("When was the 2018 MT-DNN paper released?")
    assert gives_what_is_asked("It was released in February 2019.", focus)
    assert not gives_what_is_asked("The 2018 paper presents MT-DNN.", focus)
    assert not gives_what_is_asked("MT-DNN obtains new state-of-the-art results on ten NLU tasks.", focus)
    # Questions that ask for neither a number nor a date may be answered by any sentence.
    assert gives_what_is_asked("Anything at all.", analyser.analyse("What is MT-DNN?"))


def test_the_reason_quotes_the_missing_words_and_what_they_belong_to(analyser):
    focus = analyser.analyse("What learning rate was used for the PPO stage of InstructGPT?")
    assert absent_reason(focus, ["rate"]) == "The sources do not mention “learning rate” for PPO."
    focus = analyser.analyse("How many GPUs were used to train MT-DNN?")
    assert absent_reason(focus, ["gpus"]) == "The sources do not mention “GPUs” for MT-DNN."
    focus = analyser.analyse("How large was the reward model used in InstructGPT's RLHF training?")
    assert absent_reason(focus, ["reward"]) == "The sources do not mention “reward model” for InstructGPT."
    # A name next to the missing words is not said to be missing: the sources may well mention it.
    focus = analyser.analyse("When was ChatGPT first released to the public?")
    assert absent_reason(focus, ["releas"]) == "The sources do not mention “first released” for ChatGPT."
    # Nor is a frame word opening the question taken for a name, nor "year" for what is missing.
    focus = analyser.analyse("According to the InstructGPT paper by Ouyang et al., in what year was it published?")
    assert focus.focus_words == ("published",)
    assert absent_reason(focus, ["publish"]) == "The sources do not mention “published” for InstructGPT."


@pytest.mark.parametrize(("question", "asked_for"), [
    ("What learning rate was used for the PPO stage of InstructGPT?", ("learning", "rate")),
    ("How many GPUs were used to train MT-DNN?", ("GPUs",)),
    ("Who hired the InstructGPT labelers?", ("hired",)),
    ("What dropout rate and batch size were used when fine-tuning MT-DNN?", ("dropout", "rate", "batch", "size")),
    ("What value of the pretraining-mix coefficient was used?", ("value", "pretraining-mix", "coefficient")),
    ("Which three training objectives were compared?", ("training", "objectives")),
    ("What is the MT-DNN model designed to do?", ()),  # "what is X": the answer names no new thing
    ("hey, how much did it cost OpenAI to train InstructGPT?", ()),
    ("mt-dnn training epochs", ("training", "epochs")),  # a keyword query asks for all its words but names
    ("Can you explain chain-of-thought prompting?", ()),  # a request asks for no word in particular
])
def test_what_the_question_asks_for_is_the_words_after_its_question_word(analyser, question, asked_for):
    assert analyser.analyse(question).asked_for == asked_for
