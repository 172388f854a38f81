"""The chunker: exact slices, whole words, one section per chunk, captions kept with their
citation line, content-hash ids. Checked on the six real sources and on random texts."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.chunking import ChunkerSettings, chunk_document, chunk_id
from rag.corpus import load_corpus
from rag.settings import REPO_ROOT
from rag.types import Document, Page, Section

CORPUS = REPO_ROOT / "corpus"
SOURCE_IDS = ["anthropic2023-core-views", "askell2021-general-language-assistant", "liu2019-mtdnn",
              "llm-faq-page", "mehrabi2019-bias-fairness-survey", "ouyang2022-instructgpt"]
CHUNKERS = [ChunkerSettings(), ChunkerSettings(size=300, overlap=60), ChunkerSettings(size=150, overlap=0)]


@pytest.fixture(scope="module")
def documents() -> dict[str, Document]:
    return {d.id: d for d in load_corpus(CORPUS, 10_000_000)}


def is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def splits_word(text: str, offset: int) -> bool:
    return 0 < offset < len(text) and is_word_char(text[offset - 1]) and is_word_char(text[offset])


def assert_chunk_invariants(document: Document, chunks, chunker: ChunkerSettings) -> None:
    text = document.text
    boundaries = {b for s in document.sections for b in (s.start, s.end)}
    for chunk in chunks:
        assert text[chunk.start:chunk.end] == chunk.text
        assert chunk.doc_id == document.id
        assert chunk.text and chunk.text == chunk.text.strip()
        # whole words at both ends
        assert not splits_word(text, chunk.start)
        assert not splits_word(text, chunk.end)
        # one section per chunk, and it is the one the chunk is labelled with
        assert not [b for b in boundaries if chunk.start < b < chunk.end], chunk
        assert chunk.section == document.section_at(chunk.start)
        assert chunk.page == document.page_at(chunk.start)
    assert len({c.id for c in chunks}) == len(chunks)
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)


def covered(chunks) -> set[int]:
    return {i for c in chunks for i in range(c.start, c.end)}


# ---------------------------------------------------------------- the real sources


def test_corpus_has_the_six_sources(documents):
    assert sorted(documents) == SOURCE_IDS


@pytest.mark.parametrize("chunker", CHUNKERS, ids=lambda c: f"{c.size}-{c.overlap}")
@pytest.mark.parametrize("source_id", SOURCE_IDS)
def test_real_source_chunks_are_exact_whole_word_single_section_slices(documents, source_id, chunker):
    document = documents[source_id]
    chunks = chunk_document(document, chunker)
    assert chunks
    assert_chunk_invariants(document, chunks, chunker)


@pytest.mark.parametrize("source_id", SOURCE_IDS)
def test_every_word_outside_headings_is_in_some_chunk(documents, source_id):
    document = documents[source_id]
    heading_lines = {i for s in document.sections
                     for i in range(s.start, document.text.find("\n", s.start) % (len(document.text) + 1))}
    seen = covered(chunk_document(document, ChunkerSettings()))
    missing = [i for i, ch in enumerate(document.text)
               if not ch.isspace() and i not in seen and i not in heading_lines]
    assert missing == []


def test_headings_are_not_repeated_inside_faq_chunks(documents):
    document = documents["llm-faq-page"]
    for chunk in chunk_document(document, ChunkerSettings()):
        assert not chunk.text.startswith(chunk.section[-1]), chunk


def test_faq_chunks_carry_their_question_as_section(documents):
    chunks = chunk_document(documents["llm-faq-page"], ChunkerSettings())
    by_phrase = {
        "Simply making language models larger": "Is bigger always better?",
        "The development of LLMs can be approached": "Generality VS Efficiency",
        "The data used to train LLMs is generally scraped": "Does the training data matter alignment?",
        "3H standards are Helpful, Harmless and Honest.": "What are the 3H alignment standards for LLMs?",
        "• This Q&A section merely utilizes": None,
    }
    for phrase, question in by_phrase.items():
        (chunk,) = [c for c in chunks if c.text.startswith(phrase)]
        expected = ("Large Language Models",) + ((question,) if question else ())
        assert chunk.section == expected


FAQ_CAPTIONS = [
    ("Human evaluations of various models on OpenAI API prompt distribution",
     "Error bars throughout the paper are 95% confidence intervals.",
     "Training language models to follow instructions with human feedback (Ouyang et al., 2022)"),
    ("Architecture of the MT-DNN model for representation learning. "
     "The lower layers are shared across all tasks",
     "followed by operations necessary for classification, similarity scoring, or relevance ranking.",
     "Multi-Task Deep Neural Networks for Natural Language Understanding (Liu et al., 2018)"),
    ("Examples of bias definitions placed in the data, algorithm, and user interaction feedback loop.",
     "feedback loop.",
     "A Survey on Bias and Fairness in Machine Learning. (Mehrabi et al., 2019)"),
]


@pytest.mark.parametrize("chunker", CHUNKERS[:2], ids=lambda c: f"{c.size}-{c.overlap}")
@pytest.mark.parametrize(("opening", "closing", "citation"), FAQ_CAPTIONS, ids=["ouyang", "liu", "mehrabi"])
def test_each_faq_caption_shares_a_chunk_with_its_citation_line(documents, chunker, opening, closing,
                                                                  citation):
    chunks = chunk_document(documents["llm-faq-page"], chunker)
    holding = [c for c in chunks if opening in c.text]
    assert holding, "caption not found"
    for chunk in holding:
        # the whole caption, then the citation line right after it
        caption_end = chunk.text.index(closing, chunk.text.index(opening)) + len(closing)
        assert chunk.text[caption_end:].lstrip().startswith(citation), chunk.text


def test_the_mt_dnn_caption_chunk_contains_its_citation(documents):
    chunks = chunk_document(documents["llm-faq-page"], ChunkerSettings())
    (chunk,) = [c for c in chunks if "The lower layers are shared across all tasks" in c.text]
    assert "(Liu et al., 2018)" in chunk.text
    assert chunk.section == ("Large Language Models", "Generality VS Efficiency")


def test_a_caption_pair_longer_than_three_chunk_sizes_is_split_at_sentences():
    caption = " ".join(f"Sentence number {i} of a long caption." for i in range(30))
    text = f"{caption}\n\nSome Paper Title (Doe et al., 2020)\n"
    document = Document(id="d", title="D", text=text)
    chunks = chunk_document(document, ChunkerSettings(size=100, overlap=0))
    assert len(chunks) > 3
    assert all(len(c.text) <= 100 for c in chunks)
    assert_chunk_invariants(document, chunks, ChunkerSettings(size=100, overlap=0))


# ---------------------------------------------------------------- small exact cases


def test_exact_chunks_of_a_small_sectioned_document():
    text = "Title\n\nFirst para. Second sentence here.\n\nHeading Two\nDirect body line.\n"
    sections = (Section(("Title",), 0, len(text)), Section(("Title", "Heading Two"), 42, len(text)))
    document = Document(id="doc", title="Title", text=text, sections=sections)
    chunks = chunk_document(document, ChunkerSettings(size=100, overlap=20))
    assert [(c.start, c.end, c.text, c.section) for c in chunks] == [
        (7, 40, "First para. Second sentence here.", ("Title",)),
        (54, 71, "Direct body line.", ("Title", "Heading Two")),
    ]


def test_markdown_text_right_under_its_heading_is_chunked(tmp_path):
    (tmp_path / "n.md").write_text("# Intro\nText right under the heading.\n\n## Sub\nMore text.\n",
                                   encoding="utf-8")
    (document,) = load_corpus(tmp_path, 10_000)
    chunks = chunk_document(document, ChunkerSettings(size=100, overlap=0))
    assert [(c.text, c.section) for c in chunks] == [
        ("Text right under the heading.", ("Intro",)),
        ("More text.", ("Intro", "Sub")),
    ]


def test_overlap_repeats_whole_trailing_sentences_of_the_previous_chunk():
    text = "Alpha one is here. Beta two is here. Gamma three is here. Delta four is here."
    document = Document(id="o", title="O", text=text)
    chunks = chunk_document(document, ChunkerSettings(size=40, overlap=20))
    # Groups are packed up to the size; the overlap is added in front of the next one.
    assert [(c.start, c.text) for c in chunks] == [
        (0, "Alpha one is here. Beta two is here."),
        (19, "Beta two is here. Gamma three is here. Delta four is here."),
    ]


def test_long_sentence_without_punctuation_is_cut_between_words():
    text = " ".join(["word"] * 60)
    chunks = chunk_document(Document(id="w", title="W", text=text), ChunkerSettings(size=50, overlap=0))
    assert [(c.start, c.end) for c in chunks] == [(i * 50, i * 50 + 49) for i in range(6)]
    assert all(c.text.split() == ["word"] * len(c.text.split()) for c in chunks)


def test_pdf_chunks_carry_the_page_they_start_on():
    text = "Page one text.\n\nPage two text.\n"
    document = Document(id="p", title="P", text=text, pages=(Page(1, 0, 14), Page(2, 16, 30)))
    chunks = chunk_document(document, ChunkerSettings(size=16, overlap=0))
    assert [(c.text, c.page) for c in chunks] == [("Page one text.", 1), ("Page two text.", 2)]


# ---------------------------------------------------------------- ids


def test_chunk_ids_are_content_hashes_stable_across_runs():
    document = Document(id="stable", title="S", text="A fixed sentence for hashing.")
    (chunk,) = chunk_document(document, ChunkerSettings())
    # A literal, so a change to the hash recipe (which would orphan every stored id) fails here.
    assert chunk.id == "e6cf227078047b7c"
    assert chunk.id == chunk_id("stable", 0, "A fixed sentence for hashing.")
    assert [c.id for c in chunk_document(document, ChunkerSettings())] == [chunk.id]


def test_chunk_ids_change_with_text_and_document_but_not_with_neighbours(documents):
    base = Document(id="a", title="A", text="First paragraph stays.\n\nSecond paragraph here.")
    edited = Document(id="a", title="A", text="First paragraph stays.\n\nSecond paragraph changed.")
    renamed = Document(id="b", title="A", text=base.text)
    chunker = ChunkerSettings(size=30, overlap=0)
    ids, edited_ids, renamed_ids = ([c.id for c in chunk_document(d, chunker)]
                                    for d in (base, edited, renamed))
    assert ids[0] == edited_ids[0]  # untouched paragraph keeps its id
    assert ids[1] != edited_ids[1]  # changed text, new id
    assert not set(ids) & set(renamed_ids)  # same text in another source is another chunk
    all_ids = [c.id for d in documents.values() for c in chunk_document(d, ChunkerSettings())]
    assert len(all_ids) == len(set(all_ids))
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in all_ids)


# ---------------------------------------------------------------- random texts

WORD_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789éüßçøΩжд中文字"
words = st.text(alphabet=WORD_CHARS, min_size=1, max_size=12)
spaces = st.sampled_from([" ", " ", " ", "  ", "\t", "\u00a0", " \n"])
enders = st.sampled_from([".", ".", "?", "!", "", ".”", ")"])
sentences = st.builds(
    lambda ws, seps, end: "".join(w + s for w, s in zip(ws, seps, strict=False)).rstrip() + end,
    st.lists(words, min_size=1, max_size=25),
    st.lists(spaces, min_size=25, max_size=25),
    enders,
)
paragraphs = st.builds(lambda ss, sep: sep.join(ss), st.lists(sentences, min_size=1, max_size=6),
                       st.sampled_from([" ", "  ", "\n"]))
citations = st.builds(lambda w, y: f"{w.title()} Paper (Doe et al., {y})", words, st.integers(1900, 2030))
headings = st.builds(lambda ws: " ".join(ws), st.lists(words, min_size=1, max_size=5))
blocks = st.lists(
    st.one_of(st.tuples(st.just("p"), paragraphs), st.tuples(st.just("h"), headings),
              st.tuples(st.just("c"), citations)),
    min_size=1, max_size=12,
)
gaps = st.sampled_from(["\n\n", "\n\n", "\n \n", "\n\n\n", "\r\n\r\n"])


def build_document(parts: list[tuple[str, str]], gap_choices: list[str], lead: str) -> Document:
    """Join blocks into one text; headings become sections up to the next heading.

    A heading may be followed by its body after a single newline, as Markdown allows.
    """
    text, starts = lead, []
    for i, (kind, content) in enumerate(parts):
        if kind == "h":
            starts.append((len(text), content))
            text += content + ("\n" if i % 2 else gap_choices[i % len(gap_choices)])
        else:
            text += content + gap_choices[i % len(gap_choices)]
    sections = tuple(Section((title,), start, next_start)
                     for (start, title), next_start in zip(starts, [s for s, _ in starts[1:]] + [len(text)],
                                                           strict=False))
    return Document(id="rand", title="Random", text=text, sections=sections)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=blocks, gap_choices=st.lists(gaps, min_size=1, max_size=4),
       lead=st.sampled_from(["", " ", "\n\n"]),
       size=st.integers(40, 400), overlap_share=st.floats(0, 0.5))
def test_random_texts_keep_every_chunk_invariant(parts, gap_choices, lead, size, overlap_share):
    document = build_document(parts, gap_choices, lead)
    chunker = ChunkerSettings(size=size, overlap=int(size * overlap_share))
    chunks = chunk_document(document, chunker)
    assert_chunk_invariants(document, chunks, chunker)
    # Nothing but heading lines is left out.
    text = document.text
    heading_chars = {i for s in document.sections for i in range(s.start, text.index("\n", s.start))}
    seen = covered(chunks)
    left_out = [i for i, ch in enumerate(text) if not ch.isspace() and i not in seen | heading_chars]
    assert left_out == []
    # A chunk is at most the target size plus the sentences it repeats from the chunk before
    # (and the paragraph break between them), unless a caption is kept whole with its citation.
    longest = 3 * size if any(kind == "c" for kind, _ in parts) else size
    for chunk in chunks:
        assert len(chunk.text) <= longest + chunker.overlap + len("\r\n\r\n")
