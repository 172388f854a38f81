"""Sentence spans and word-safe cuts, as exact character offsets."""

from __future__ import annotations

import pytest

from rag.sentences import is_citation_line, sentence_spans, word_cut


def texts(text: str, start: int = 0, end: int | None = None) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text, start, end)]


def test_abbreviations_initials_and_citations_do_not_end_a_sentence():
    text = "See e.g. the results of Liu et al. in Fig. 3. J. Smith agreed! Did he? Yes."
    assert texts(text) == ["See e.g. the results of Liu et al. in Fig. 3.", "J. Smith agreed!", "Did he?",
                           "Yes."]
    assert sentence_spans(text) == [(0, 45), (46, 62), (63, 70), (71, 75)]


def test_a_title_keeps_its_credit_and_a_citation_line_is_recognised():
    text = "A Survey on Bias and Fairness in Machine Learning. (Mehrabi et al., 2019)\n\nNext one. (It works.)"
    assert texts(text) == ["A Survey on Bias and Fairness in Machine Learning. (Mehrabi et al., 2019)", "Next one.",
                           "(It works.)"]
    assert is_citation_line("A Survey on Bias and Fairness in Machine Learning. (Mehrabi et al., 2019)")
    assert is_citation_line("Multi-Task Deep Neural Networks for Natural Language Understanding (Liu et al., 2018)")
    assert not is_citation_line("(Liu et al., 2018)")  # a credit without a title
    assert not is_citation_line("MT-DNN (Liu et al., 2018) sets a new state of the art on ten tasks.")


def test_blank_lines_and_list_items_end_a_sentence_without_a_period():
    text = "A run-in heading\n\nNew paragraph here.\n  • item one\n  • item two\n1. numbered"
    assert texts(text) == ["A run-in heading", "New paragraph here.", "• item one", "• item two",
                           "1. numbered"]


def test_a_quoted_question_followed_by_lowercase_continues_the_sentence():
    text = "Asked ‘How can I build a website in assembly language?’ it might suggest another way. Next."
    assert texts(text) == [
        "Asked ‘How can I build a website in assembly language?’ it might suggest another way.", "Next."]


def test_closing_quotes_and_brackets_stay_with_their_sentence():
    text = 'He said "stop." (It worked.) Then left.'
    assert texts(text) == ['He said "stop."', "(It worked.)", "Then left."]


def test_indented_capitalised_line_starts_a_new_sentence():
    assert texts("Done\n    Indented continuation") == ["Done", "Indented continuation"]


def test_spans_are_stripped_and_respect_the_window():
    assert sentence_spans("  lead and trail  ") == [(2, 16)]
    assert sentence_spans("abc. Def. Ghi", 5, 13) == [(5, 9), (10, 13)]
    assert sentence_spans("   \n\n  ") == []
    assert sentence_spans("") == []


@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("alpha beta gamma", 8, 5),  # inside "beta": back off to the space after "alpha"
    ("alpha beta gamma", 10, 10),  # right before a space: already a word boundary
    ("alpha beta gamma", 11, 11),  # right after a space
    ("alpha\tbeta\tgamma", 8, 5),  # a tab separates words too
    ("alpha\u00a0beta", 8, 5),  # so does a no-break space
    ("alpha\nbeta gamma", 8, 5),
    ("unbreakableword", 6, 6),  # no space at all: cut at the limit
    ("short", 10, 10),  # limit past the end
])
def test_word_cut_never_splits_a_word_when_it_can_avoid_it(text, limit, expected):
    assert word_cut(text, 0, limit) == expected


def test_word_cut_does_not_back_off_to_or_before_start():
    text = "aa bbbbbbbbbb"
    assert word_cut(text, 2, 8) == 8  # the only space is at the start: nothing better than the limit
    assert word_cut(text, 0, 8) == 2
