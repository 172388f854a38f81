"""Loaders: one per format, each returning text with exact section and page offsets, and a
one-line, named refusal for every kind of bad file."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pypdf import PdfWriter
from pypdf.generic import DictionaryObject, NameObject, StreamObject

from rag.errors import SourceError
from rag.loaders import LOADERS, parse_source
from rag.settings import REPO_ROOT
from rag.types import Page, Section

CORPUS = REPO_ROOT / "corpus"
LIMIT = 1_000_000


def parse(path: Path, max_bytes: int = LIMIT):
    return parse_source(path, max_bytes)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def make_pdf(pages: list[list[str]], password: str | None = None, title: str | None = None,
             author: str | None = None, image: bool = False) -> bytes:
    """A real PDF whose pages hold the given lines as Helvetica text (an empty list: no text).

    ``image`` paints a small grey inline image on every page, like a scan. Built with pypdf's
    object model, so the tests need no PDF-writing dependency.
    """
    writer = PdfWriter()
    font = writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Font"),
        NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica"),
    }))
    for lines in pages:
        page = writer.add_blank_page(612, 792)
        if image:
            scan = StreamObject()
            scan.set_data(b"q 200 0 0 200 72 500 cm BI /W 2 /H 2 /CS /G /BPC 8 ID \x10\x80\xf0\x40 EI Q")
            page[NameObject("/Contents")] = writer._add_object(scan)
        if not lines:
            continue
        ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({escaped}) Tj T*")
        ops.append("ET")
        stream = StreamObject()
        stream.set_data("\n".join(ops).encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(stream)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
    info = {k: v for k, v in (("/Title", title), ("/Author", author)) if v}
    if info:
        writer.add_metadata(info)
    if password:
        writer.encrypt(password)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


# ---------------------------------------------------------------- plain text


FAQ_HEADINGS = [
    ("Is bigger always better?", 602, 1602),
    ("Generality VS Efficiency", 1602, 2880),
    ("Does the training data matter alignment?", 2880, 3433),
    ("What are the 3H alignment standards for LLMs?", 3433, 4961),
]


def test_faq_page_has_its_title_and_exactly_its_four_question_headings():
    parsed = parse(CORPUS / "llm-faq-page.txt")
    assert len(parsed.text) == 4961
    assert parsed.sections == (
        Section(("Large Language Models",), 0, 4961),
        *(Section(("Large Language Models", title), start, end) for title, start, end in FAQ_HEADINGS),
    )
    for section in parsed.sections:
        assert parsed.text[section.start:].startswith(section.path[-1] + "\n")


def test_faq_page_list_items_citation_lines_and_captions_are_not_headings():
    parsed = parse(CORPUS / "llm-faq-page.txt")
    titles = {s.path[-1] for s in parsed.sections}
    for line in ("Helpful.", "Harmless.", "Honest.",
                 "Training language models to follow instructions with human feedback (Ouyang et al., 2022)",
                 "Multi-Task Deep Neural Networks for Natural Language Understanding (Liu et al., 2018)",
                 "A Survey on Bias and Fairness in Machine Learning. (Mehrabi et al., 2019)"):
        assert line in parsed.text
        assert line not in titles


def test_text_headings_need_blank_lines_around_them_and_no_sentence_ending(tmp_path):
    text = ("Title Line\n\nIntro sentence one.\n\nA Short Heading\n\nBody of the section.\n"
            "Not a heading because it continues\nthe paragraph.\n\nEnds with a colon:\n\n"
            "  • bullet item\n\nSecond Heading\n\nMore body.\n")
    parsed = parse(write(tmp_path, "notes.txt", text))
    assert parsed.text == text
    assert [(s.path, s.start, s.end) for s in parsed.sections] == [
        (("Title Line",), 0, len(text)),
        (("Title Line", "A Short Heading"), text.index("A Short Heading"), text.index("Second Heading")),
        (("Title Line", "Second Heading"), text.index("Second Heading"), len(text)),
    ]


def test_text_without_a_leading_title_gives_second_level_sections(tmp_path):
    text = "Some opening words without a title.\n\nHeading\n\nBody.\n"
    parsed = parse(write(tmp_path, "plain.txt", text))
    assert parsed.sections == (Section(("Heading",), 37, len(text)),)


def test_text_keeps_crlf_offsets_and_drops_a_bom(tmp_path):
    raw = "\ufeffTitle\r\n\r\nBody line.\r\n"
    parsed = parse(write(tmp_path, "crlf.txt", raw.encode("utf-8")))
    assert parsed.text == "Title\r\n\r\nBody line.\r\n"
    assert parsed.sections == (Section(("Title",), 0, len(parsed.text)),)


# ---------------------------------------------------------------- markdown


MARKDOWN = """---
id: demo
title: "A Demo: With Colon"
authors: [Ada Lovelace, Alan Turing]
year: 2021
---

# Overview
Intro with **bold**, __strong__, *italic*, `code`, a [link](https://example.org) and ![alt text](img.png).

## Details

Detail paragraph.

```python
# a comment, not a heading
x = 1
```

# Closing ##

Last words.
"""


def test_markdown_front_matter_becomes_metadata_and_is_not_text(tmp_path):
    parsed = parse(write(tmp_path, "demo.md", MARKDOWN))
    assert parsed.metadata == {"id": "demo", "title": "A Demo: With Colon",
                               "authors": ["Ada Lovelace", "Alan Turing"], "year": 2021}
    assert "---" not in parsed.text
    assert "authors" not in parsed.text


def test_markdown_inline_markup_and_fences_are_removed_from_the_text(tmp_path):
    parsed = parse(write(tmp_path, "demo.md", MARKDOWN))
    assert parsed.text == (
        "Overview\n"
        "Intro with bold, strong, italic, code, a link and alt text.\n"
        "\n"
        "Details\n"
        "\n"
        "Detail paragraph.\n"
        "\n"
        "\n"
        "# a comment, not a heading\n"
        "x = 1\n"
        "\n"
        "\n"
        "Closing\n"
        "\n"
        "Last words.\n"
    )


def test_markdown_headings_nest_and_code_comments_are_not_headings(tmp_path):
    parsed = parse(write(tmp_path, "demo.md", MARKDOWN))
    text = parsed.text
    closing = text.index("Closing")
    assert parsed.sections == (
        Section(("Overview",), 0, closing),
        Section(("Overview", "Details"), text.index("Details"), closing),
        Section(("Closing",), closing, len(text)),
    )


def test_markdown_heading_titles_lose_their_markup(tmp_path):
    parsed = parse(write(tmp_path, "h.md", "## The **Bold** [Claim](u)\n\nBody.\n"))
    assert parsed.text == "The Bold Claim\n\nBody.\n"
    assert parsed.sections == (Section(("The Bold Claim",), 0, len(parsed.text)),)


def test_markdown_corpus_sources_carry_their_ids_in_front_matter():
    for path in sorted(CORPUS.glob("*.md")):
        if path.name == "SOURCES.md":
            continue
        parsed = parse(path)
        assert parsed.metadata["id"] == path.stem
        assert not parsed.text.startswith("---")


def test_markdown_bad_front_matter_is_refused(tmp_path):
    with pytest.raises(SourceError, match=r"^bad\.md: front matter is not valid YAML \(ParserError\)$"):
        parse(write(tmp_path, "bad.md", "---\ntitle: [unclosed\nkey: @oops\n---\nBody.\n"))
    with pytest.raises(SourceError, match=r"^list\.md: front matter must be a YAML mapping of field: value$"):
        parse(write(tmp_path, "list.md", "---\n- a\n- b\n---\nBody.\n"))
    with pytest.raises(SourceError, match=r"^only\.md: has front matter but no text$"):
        parse(write(tmp_path, "only.md", "---\ntitle: T\n---\n\n   \n"))


# ---------------------------------------------------------------- HTML


HTML = """<!doctype html>
<html><head><title>Page &amp; Title</title>
<style>body { color: red }</style>
<script>var markup = "<p>not text</p>";</script></head>
<body>
<nav><ul><li><a href="/">Home</a></li><li>About us</li></ul></nav>
<header><h1>Site banner</h1></header>
<main>
<h1>Main Heading</h1>
<p>First paragraph with <b>bold</b> and &amp; an entity.</p>
<h2>Sub heading</h2>
<p>Second   paragraph
spans lines.</p>
<ul><li>Item one</li><li>Item two</li></ul>
</main>
<footer>Copyright footer</footer>
<script>alert("hidden")</script>
</body></html>
"""


def test_html_keeps_main_text_as_paragraphs_with_headings(tmp_path):
    parsed = parse(write(tmp_path, "page.html", HTML))
    assert parsed.text == (
        "Main Heading\n\n"
        "First paragraph with bold and & an entity.\n\n"
        "Sub heading\n\n"
        "Second paragraph spans lines.\n\n"
        "• Item one\n\n"
        "• Item two\n"
    )
    sub = parsed.text.index("Sub heading")
    assert parsed.sections == (
        Section(("Main Heading",), 0, len(parsed.text)),
        Section(("Main Heading", "Sub heading"), sub, len(parsed.text)),
    )
    assert parsed.metadata == {"title": "Page & Title"}


def test_html_drops_scripts_styles_navigation_header_and_footer(tmp_path):
    text = parse(write(tmp_path, "page.htm", HTML)).text
    for hidden in ("not text", "color", "Home", "About us", "Site banner", "Copyright", "hidden", "alert"):
        assert hidden not in text


def test_html_with_only_scripts_is_refused(tmp_path):
    page = ("<html><head><title>Empty</title><script>var a = 1;</script><style>p {}</style></head>"
            "<body><script>run()</script><nav>Menu</nav></body></html>")
    with pytest.raises(SourceError,
                       match=r"^app\.html: no readable text \(only scripts, styles or navigation\?\)$"):
        parse(write(tmp_path, "app.html", page))


# ---------------------------------------------------------------- PDF


def test_pdf_text_is_joined_by_page_with_page_numbers_and_info_metadata(tmp_path):
    data = make_pdf([["Attention is all you need.", "Second line (with parens)."], [],
                     ["Page three text."]],
                    title="A Paper", author="Ada Lovelace; Alan Turing")
    parsed = parse(write(tmp_path, "paper.pdf", data))
    assert parsed.text == "Attention is all you need.\nSecond line (with parens).\n\nPage three text.\n"
    assert parsed.pages == (Page(1, 0, 53), Page(3, 55, 71))
    assert parsed.text[55:71] == "Page three text."
    assert parsed.metadata == {"title": "A Paper", "authors": ["Ada Lovelace", "Alan Turing"]}


def test_encrypted_pdf_is_refused(tmp_path):
    path = write(tmp_path, "locked.pdf", make_pdf([["Secret words."]], password="hunter2"))
    with pytest.raises(SourceError,
                       match=r"^locked\.pdf: the PDF is encrypted; save an unprotected copy and add that$"):
        parse(path)


def test_pdf_with_an_empty_user_password_is_read(tmp_path):
    path = write(tmp_path, "open.pdf", make_pdf([["Readable words."]], password=""))
    assert parse(path).text == "Readable words.\n"


@pytest.mark.parametrize("data", [
    make_pdf([["Some text."]])[:200],  # truncated
    b"%PDF-1.4\nthis is not a pdf body\n%%EOF\n",
    b"GIF89a not a pdf at all",
])
def test_corrupt_pdf_is_refused(tmp_path, data):
    with pytest.raises(SourceError,
                       match=r"^broken\.pdf: not a readable PDF \(\w+\); the file may be corrupt$"):
        parse(write(tmp_path, "broken.pdf", data))


@pytest.mark.parametrize("image", [True, False], ids=["image-only", "blank"])
def test_pdf_without_a_text_layer_is_refused(tmp_path, image):
    path = write(tmp_path, "scan.pdf", make_pdf([[], []], image=image))
    with pytest.raises(SourceError,
                       match=(r"^scan\.pdf: the PDF has no text layer \(scanned images\?\); "
                              r"run OCR on it first$")):
        parse(path)


# ---------------------------------------------------------------- files no loader reads


@pytest.mark.parametrize("name", ["empty.txt", "empty.md", "empty.html"])
def test_empty_and_whitespace_only_files_are_refused(tmp_path, name):
    with pytest.raises(SourceError, match=rf"^{name.replace('.', '[.]')}: the file is empty$"):
        parse(write(tmp_path, name, b""))
    with pytest.raises(SourceError, match=r": the file is empty$"):
        parse(write(tmp_path, name, b" \n\t\n"))


def test_binary_file_with_a_text_extension_is_refused(tmp_path):
    path = write(tmp_path, "photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(SourceError,
                       match=r"^photo\.txt: looks like a binary file, not text; check its format$"):
        parse(path)


def test_non_utf8_text_is_refused_with_the_byte_position(tmp_path):
    path = write(tmp_path, "latin.txt", "Café au lait\n".encode("latin-1"))
    with pytest.raises(SourceError,
                       match=r"^latin\.txt: not UTF-8 text \(bad byte at position 3\); re-save it as UTF-8$"):
        parse(path)


@pytest.mark.parametrize(("name", "shown"), [("report.docx", "'.docx'"), ("README", "'(no suffix)'")])
def test_unknown_format_is_refused_listing_the_supported_ones(tmp_path, name, shown):
    path = write(tmp_path, name, "Some words.\n")
    supported = ", ".join(sorted(LOADERS))
    assert supported == ".htm, .html, .markdown, .md, .pdf, .txt"
    with pytest.raises(SourceError) as info:
        parse(path)
    assert str(info.value) == f"{name}: unknown format {shown}; supported: {supported}"


def test_suffix_match_ignores_case(tmp_path):
    assert parse(write(tmp_path, "LOUD.TXT", "Quiet words.\n")).text == "Quiet words.\n"


def test_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    path = write(tmp_path, "big.txt", "word " * 40)  # 200 bytes
    with pytest.raises(SourceError, match=(r"^big\.txt: 200 bytes is over the 100 bytes limit for a source; "
                                           r"split the file or raise RAG_MAX_UPLOAD_BYTES$")):
        parse(path, max_bytes=100)
    assert parse(path, max_bytes=200).text == "word " * 40


def test_size_limit_message_uses_readable_units(tmp_path):
    path = write(tmp_path, "big.md", "x" * 3000)
    with pytest.raises(SourceError, match=r"^big\.md: 2\.9 KB is over the 2\.0 KB limit"):
        parse(path, max_bytes=2048)
