"""Which sentences carry content: a quote must never be a caption, a citation line, a heading, a
list stub, a lead-in or a sentence that only names a thing, unless the question asks about that
very text.

Each rule looks at the sentence in its document, since the same words are a heading on a line of
their own and a claim inside a paragraph. Some questions are about the text the rules keep out:
"What does the MT-DNN diagram show?" is answered by the figure's caption, "Which paper is the
figure taken from?" by its citation line, "What name did they give the models?" by the naming
sentence. :func:`asked_kinds` says which kinds a question admits. :func:`non_content_reason` is
shared by the reader (which never quotes such text unless admitted) and the eval (which counts
any that slip through, by the same rule).
"""

from __future__ import annotations

import re

from rag.sentences import is_citation_line

_FOOTNOTE = re.compile(r"↩")
# "We call the resulting models InstructGPT.": the sentence only gives a name.
_NAMING = re.compile(r"^(?:we|they|it|this|these)\s+(?:call|name|term|dub|refer to)\b[^,;]{0,60}\.$", re.I)
_MIN_CONTENT_WORDS = 4  # "Helpful." and "Being large and general" are labels, not evidence
_WORD = re.compile(r"[A-Za-z0-9][\w'’-]*")

# Which non-content kinds a question asks about (see the module's docstring).
_ABOUT_A_FIGURE = re.compile(r"\b(?:fig(?:ure)?s?|charts?|diagrams?|graphs?|plots?|images?|pictures?|illustrat\w*|"
                             r"captions?)\b", re.I)
# "Which paper is ... taken from?", "credited to", "in what year was ... published": answered by a
# citation line, or by the lead-in that attributes what follows ("In <title>, they are defined as:").
_ABOUT_A_SOURCE = re.compile(r"\b(?:which|what) (?:paper|work|publication|article|study|source|reference)s?\b|"
                             r"\b(?:credit(?:ed|s)?|cited|citations?|attributed|footnotes?|published)\b", re.I)
_ABOUT_A_NAME = re.compile(r"\b(?:what|which) (?:name|names|term)\b|\b(?:called|named|dubbed)\b", re.I)


def asked_kinds(question: str) -> frozenset[str]:
    """The non-content kinds that may answer ``question``, by what it asks about. Asked where a
    figure comes from, the credit answers, not the caption."""
    kinds: set[str] = set()
    if _ABOUT_A_SOURCE.search(question):
        kinds |= {"citation line", "lead-in"}
    elif _ABOUT_A_FIGURE.search(question):
        kinds.add("figure caption")
    if _ABOUT_A_NAME.search(question):
        kinds.add("naming only")
    return frozenset(kinds)


def paragraph_span(text: str, start: int, end: int) -> tuple[int, int]:
    """The blank-line-delimited paragraph holding ``text[start:end]``."""
    before = text.rfind("\n\n", 0, start)
    after = text.find("\n\n", end)
    s = 0 if before < 0 else before + 2
    e = len(text) if after < 0 else after
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


def _next_paragraph(text: str, end: int) -> str:
    after = text.find("\n\n", end)
    if after < 0:
        return ""
    s, e = paragraph_span(text, after + 2, after + 2)
    return text[s:e]


def _is_author_year_line(paragraph: str) -> bool:
    """"Title words (Liu et al., 2018)": a title and its credit, with no claim of its own."""
    return is_citation_line(" ".join(paragraph.split()))


def _is_reference(paragraph: str) -> bool:
    """A citation line or a short footnote (marked "↩")."""
    flat = " ".join(paragraph.split())
    return is_citation_line(flat) or bool(_FOOTNOTE.search(flat) and len(flat) < 200)


def _is_heading(text: str, start: int, end: int, paragraph: tuple[int, int]) -> bool:
    """A line standing alone without closing punctuation, or a question standing alone (FAQ headings),
    or a bold run-in heading (``**...**`` at the head of a list item)."""
    sentence = text[start:end].strip()
    if sentence.startswith("**") and sentence.endswith("**"):
        return True
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line = text[line_start:len(text) if line_end < 0 else line_end].strip()
    alone = paragraph == (start, end) and line == sentence
    return alone and (sentence.endswith("?") or not sentence.endswith((".", "!", ":", "”", '"')))


def _is_caption_title(text: str, start: int, paragraph: tuple[int, int]) -> bool:
    """The first sentence of a paragraph followed by a figure's credit (an author-year line) is the
    figure's label (a footnote after a list is no credit)."""
    return start == paragraph[0] and _is_author_year_line(_next_paragraph(text, paragraph[1]))


# "So in this post we will summarize why ...", "In this paper, we present ...": the text announcing
# what it is about. Content, and quotable, but seldom the answer: it names the topic the question
# shares and says nothing of it, so the second stage does not take it for the sentence that makes
# its passage answer (rag.rescore.stating).
_ANNOUNCING = re.compile(r"\b(?:we will|we['’]ll|in this (?:paper|post|survey|section|work)|this (?:paper|post|survey)"
                         r"|here we|we (?:present|describe|summarize|discuss|review|hope))\b", re.I)


def announces(sentence: str) -> bool:
    """``sentence`` announces what its text will do or is about (see ``_ANNOUNCING``)."""
    return bool(_ANNOUNCING.search(sentence))


def non_content_reason(text: str, start: int, end: int, admitted: frozenset[str] = frozenset()) -> str | None:
    """Why ``text[start:end]`` must not be quoted as an answer, or ``None`` when it is content or
    of a kind the question asks about (``admitted``, from :func:`asked_kinds`)."""
    reason = _kind(text, start, end)
    return None if reason in admitted else reason


def is_asked_kind(text: str, start: int, end: int, admitted: frozenset[str]) -> bool:
    """``text[start:end]`` is non-content of a kind the question asks about: then the likeliest answer."""
    return bool(admitted) and _kind(text, start, end) in admitted


def _kind(text: str, start: int, end: int) -> str | None:
    sentence = text[start:end].strip()
    paragraph = paragraph_span(text, start, end)
    if _is_reference(text[paragraph[0]:paragraph[1]]):
        return "citation line"
    if _is_heading(text, start, end, paragraph):
        return "heading"
    if len(_WORD.findall(sentence)) < _MIN_CONTENT_WORDS:
        return "list stub"
    if _is_caption_title(text, start, paragraph):
        return "figure caption"
    if sentence.endswith(":"):
        return "lead-in"
    if _NAMING.match(sentence):
        return "naming only"
    return None
