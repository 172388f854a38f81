"""The sentence checker on hand-written replies: markers present, shown, and supported."""

from __future__ import annotations

import pytest

from rag.check import (
    SupportScorer,
    check_reply,
    claim_of,
    is_refusal,
    lexical_support,
    markers_of,
    split_reply,
)
from rag.prompt import NumberedPassage

SHOWN = (
    NumberedPassage(1, "Notes on Cats", "A house cat sleeps about fifteen hours.",
                    "Cats sleep for most of the day. A house cat sleeps about fifteen hours."),
    NumberedPassage(2, "Rocket Basics", "Multi-stage rockets drop empty tanks to save mass.",
                    "Multi-stage rockets drop empty tanks to save mass. The first stage is the heaviest."),
)
THRESHOLD = 0.5


@pytest.fixture
def scorer(embedder) -> SupportScorer:
    return SupportScorer(embedder)


def test_split_attaches_markers_written_after_the_full_stop():
    reply = "A house cat sleeps fifteen hours. [1] Rockets drop empty tanks.[2]\nThe first stage is heaviest [2]."
    assert split_reply(reply) == ["A house cat sleeps fifteen hours. [1]", "Rockets drop empty tanks.[2]",
                                  "The first stage is heaviest [2]."]


def test_split_keeps_abbreviations_and_decimals_inside_a_sentence():
    assert split_reply("The 1.3B model (e.g. InstructGPT) wins [1]. It is small [1].") == [
        "The 1.3B model (e.g. InstructGPT) wins [1].", "It is small [1]."]


def test_a_stray_marker_line_belongs_to_the_sentence_before():
    assert split_reply("Cats sleep a lot.\n[1]") == ["Cats sleep a lot. [1]"]


def test_markers_and_claim():
    assert markers_of("Cats sleep [1][2] and hunt [1, 3].") == (1, 2, 3)
    assert claim_of("Cats sleep [1][2] and hunt [1, 3].") == "Cats sleep and hunt ."


def test_valid_sentence_is_kept_with_its_support(scorer):
    checked = check_reply("A house cat sleeps about fifteen hours a day [1].", SHOWN, scorer, THRESHOLD)
    [sentence] = checked.sentences
    assert sentence.supported and sentence.markers == (1,) and sentence.reason is None
    assert sentence.support > 0.8
    assert checked.prose == "A house cat sleeps about fifteen hours a day [1]."
    assert checked.withheld_because is None


def test_wrong_marker_is_dropped(scorer):
    # True of passage 1, but it cites the rocket passage.
    checked = check_reply("A house cat sleeps about fifteen hours [2]. Rockets drop empty tanks to save mass [2].",
                          SHOWN, scorer, THRESHOLD)
    wrong, right = checked.sentences
    assert not wrong.supported and wrong.support < THRESHOLD
    assert wrong.reason.startswith("not supported by the sources: [2] do not say this")
    assert right.supported
    assert checked.prose == "Rockets drop empty tanks to save mass [2]."


def test_marker_to_a_passage_that_was_not_shown_is_dropped(scorer):
    checked = check_reply("A house cat sleeps about fifteen hours [1][4].", SHOWN, scorer, THRESHOLD)
    [sentence] = checked.sentences
    assert (sentence.supported, sentence.support, sentence.markers) == (False, 0.0, (1, 4))
    assert sentence.reason == "it cites [4], but the model was shown only [1], [2]"
    assert checked.prose is None
    assert checked.withheld_because == ("None of the model's 1 sentence(s) is supported by the passages it cites, "
                                        "so only the quotes are shown.")


def test_sentence_without_marker_is_dropped(scorer):
    checked = check_reply("Cats sleep for most of the day. A house cat sleeps about fifteen hours [1].",
                          SHOWN, scorer, THRESHOLD)
    bare, cited = checked.sentences
    assert (bare.supported, bare.markers, bare.reason) == (False, (), "it cites no source")
    assert cited.supported
    assert checked.prose == "A house cat sleeps about fifteen hours [1]."


def test_unsupported_claim_with_a_valid_marker_is_dropped(scorer):
    checked = check_reply("Dogs bark loudly at the postman every morning [1].", SHOWN, scorer, THRESHOLD)
    [sentence] = checked.sentences
    assert not sentence.supported and sentence.markers == (1,)
    assert sentence.support < 0.3
    assert checked.prose is None and checked.withheld_because.startswith("None of the model's 1 sentence(s)")


def test_the_models_refusal_withholds_the_prose(scorer):
    checked = check_reply("I cannot answer this from the sources.", SHOWN, scorer, THRESHOLD)
    assert checked.prose is None
    assert checked.withheld_because == "The model said the quoted passages do not answer the question."
    assert [s.reason for s in checked.sentences] == ["the model declined to answer"]


def test_refusal_needs_more_than_a_negation():
    assert is_refusal("The sources do not mention a learning rate [1].")
    assert is_refusal("I don't know.")
    assert not is_refusal("Liquid engines do not contain solid fuel [2].")  # a claim, cited, not about sources


def test_lexical_support_counts_stemmed_content_words():
    assert lexical_support("cats sleeping", ["Cats sleep for most of the day."]) == 1.0
    assert lexical_support("cats bark", ["Cats sleep for most of the day."]) == 0.5
    assert lexical_support("[1]", ["Cats sleep."]) == 0.0
