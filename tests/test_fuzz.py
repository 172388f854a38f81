"""Property tests (hypothesis) over the loaders and the chunker.

Whatever the bytes, a loader either returns text with in-bounds structure or raises the
project's own error (a RagError subclass), never anything else. The same holds for PDFs with
compressed streams damaged the ways pypdf finds hardest (tests/pdf_seeds.py) and for Markdown
front matter of any shape: a source comes back with typed, bounded metadata, or a SourceError. Whatever the document and
chunker settings, every chunk is an exact slice of its document, stays inside one section, and
together the chunks lose no text outside heading lines.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pdf_seeds import KEYS, REPLACEMENTS, TOKENS, mutate, seeds
from test_loaders import make_pdf

from rag.chunking import KEEP_WHOLE_FACTOR, ChunkerSettings, chunk_document
from rag.corpus import load_document, safe_file_name
from rag.errors import RagError, SourceError
from rag.loaders import LOADERS, ParsedSource, parse_source
from rag.metadata import MAX_AUTHOR_CHARS, MAX_FIELD_CHARS, YEARS
from rag.types import Document

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIMIT = 1_000_000

# ---------------------------------------------------------------- document-shaped inputs

word = st.one_of(
    st.sampled_from(("cats", "sleep", "the", "a", "of", "in", "rocket", "e.g.", "i.e.", "Fig.", "Dr.", "al.", "3.5",
                     "U.S.", "(Smith,", "2020).", "“quoted”", "‘x’", "—", "•", "-", "1.", "2)", "*", "?", "!", ";", ":",
                     "é", "猫", "🙂", "https://x.org/a?b=c")),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12),
)
sentence = st.lists(word, min_size=1, max_size=25).map(" ".join).map(lambda s: s + st_end(s))
newline = st.sampled_from(["\n", "\r\n", "\n\n", "\n\n\n", "\n \n", "\n\t\n"])


def st_end(text: str) -> str:
    return "" if text[-1:] in ".!?" else "."


def _blocks(heading: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    block = st.one_of(
        heading,
        st.lists(sentence, min_size=1, max_size=6).map(" ".join),  # paragraph
        st.lists(sentence, min_size=1, max_size=4).map(lambda items: "\n".join(f"- {i}" for i in items)),
        sentence.map(lambda s: f"Figure 2: {s}\n{s[:40]} (Lovelace et al., 1843)"),  # caption + citation line
        st.text(min_size=0, max_size=80),  # anything at all
    )
    return st.lists(st.tuples(block, newline), min_size=1, max_size=14).map(
        lambda parts: "".join(b + n for b, n in parts))


markdown = st.tuples(
    st.sampled_from(["", "---\ntitle: Fuzz\nyear: 2020\n---\n", "---\n: [\n---\n", "---\n- a list\n---\n"]),
    _blocks(st.tuples(st.integers(1, 6), sentence).map(lambda h: "#" * h[0] + " " + h[1]).map(
        lambda h: h + st_end(h) * 0)),
).map("".join)
plain_text = _blocks(st.lists(word, min_size=1, max_size=6).map(" ".join))
tags = st.sampled_from(["p", "div", "h1", "h2", "h3", "li", "ul", "script", "style", "nav", "span", "b", "br",
                        "title", "pre", "table", "td", "svg", "template"])
html_node = st.recursive(
    st.one_of(sentence, st.sampled_from(["&amp;", "&lt;b&gt;", "&#x1F600;", "&bogus;", "<!-- c -->", "<", "</p"])),
    lambda inner: st.tuples(tags, st.lists(inner, max_size=4)).map(
        lambda node: f"<{node[0]}>" + "".join(node[1]) + f"</{node[0]}>"),
    max_leaves=20,
)
html = st.lists(html_node, min_size=1, max_size=6).map(lambda nodes: "<html><body>" + "".join(nodes))


def parse_bytes(suffix: str, data: bytes) -> ParsedSource | None:
    """Parse ``data`` as a file with ``suffix``; ``None`` when refused with the project's error."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            return parse_source(path, LIMIT)
        except RagError:
            return None


def assert_well_formed(parsed: ParsedSource) -> None:
    assert parsed.text.strip()
    for section in parsed.sections:
        assert 0 <= section.start <= section.end <= len(parsed.text)
        assert section.path and all(isinstance(p, str) for p in section.path)
    for page in parsed.pages:
        assert 0 <= page.start < page.end <= len(parsed.text)


# ---------------------------------------------------------------- loaders never crash


@FUZZ
@given(suffix=st.sampled_from(sorted(LOADERS)), data=st.binary(max_size=3000))
def test_any_bytes_give_text_or_the_projects_error(suffix, data):
    parsed = parse_bytes(suffix, data)
    if parsed is not None:
        assert_well_formed(parsed)


@FUZZ
@given(suffix=st.sampled_from([".txt", ".md", ".html"]), text=st.text(max_size=2000))
def test_any_unicode_text_gives_text_or_the_projects_error(suffix, text):
    parsed = parse_bytes(suffix, text.encode("utf-8", "surrogatepass"))
    if parsed is not None:
        assert_well_formed(parsed)


SEED_PDF = make_pdf([["Cats sleep for most of the day.", "They hunt (at dawn)."], [], ["Page three."]],
                    title="Cats", author="Ada Lovelace; Alan Turing")


@FUZZ
@given(cuts=st.lists(st.tuples(st.integers(0, len(SEED_PDF) - 1), st.binary(min_size=0, max_size=8)),
                     min_size=1, max_size=6),
       truncate=st.one_of(st.none(), st.integers(0, len(SEED_PDF))))
def test_a_damaged_pdf_gives_text_or_the_projects_error(cuts, truncate):
    data = bytearray(SEED_PDF)
    for offset, replacement in cuts:
        data[offset : offset + len(replacement)] = replacement
    parsed = parse_bytes(".pdf", bytes(data[:truncate]))
    if parsed is not None:
        assert_well_formed(parsed)


# ---------------------------------------------------------------- compressed PDFs and front matter

COMPRESSED_SEEDS = seeds()
# Enough to reach every mutation kind on every seed while `make test` stays fast (~10 s here);
# bench/fuzz_pdfs.py runs thousands of the same mutations and reports the counts.
PDF_FUZZ = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
edit = st.tuples(st.sampled_from(["token", "value", "object", "overwrite", "insert", "flip", "truncate"]),
                 st.integers(0, 1 << 20), st.binary(min_size=1, max_size=8))


def load_bytes(suffix: str, data: bytes) -> Document | None:
    """Load ``data`` as a corpus file would be (metadata checked); ``None`` when refused."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            return load_document(path, {}, LIMIT)
        except SourceError as refusal:
            assert "\n" not in str(refusal)  # the project's one-line error
            return None


def assert_bounded_metadata(document: Document) -> None:
    assert isinstance(document.title, str) and len(document.title) <= MAX_FIELD_CHARS["title"]
    assert all(isinstance(a, str) and len(a) <= MAX_AUTHOR_CHARS for a in document.authors)
    assert document.year is None or (type(document.year) is int and document.year in YEARS)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in document.extra)


def test_the_pdf_seeds_are_readable_and_compressed():
    for seed in COMPRESSED_SEEDS:
        assert b"/FlateDecode" in seed and load_bytes(".pdf", seed) is not None
    assert {b"/FlateDe@ode", b"/Fl"} <= set(REPLACEMENTS) and b"/FlateDecode" in TOKENS and b"/Length" in KEYS


@PDF_FUZZ
@given(seed=st.sampled_from(COMPRESSED_SEEDS), edits=st.lists(edit, min_size=1, max_size=4))
def test_a_damaged_compressed_pdf_gives_a_source_or_the_projects_error(seed, edits, capfd):
    document = load_bytes(".pdf", mutate(seed, edits))
    if document is not None:
        assert_bounded_metadata(document)
        assert_well_formed(ParsedSource(document.text, document.sections, document.pages))
    assert capfd.readouterr().err == ""  # pypdf's repair notes stay off the terminal


yaml_scalar = st.one_of(
    st.sampled_from([".inf", "-.inf", ".nan", "~", "null", "true", "no", "2020", "2020.0", "20200", "-5", "0x7E4",
                     "1e400", "2020-01-01", "'quoted'", '"dq"', "[a, b]", "{a: 1}", "&a x", "*a", "!!binary aGk=",
                     "!!python/object:os.system", "|\n  block", "- item", "", ":", "#", "Ada; Alan", "?"]),
    st.text(max_size=40),
    st.integers().map(str),
)
yaml_value = st.recursive(yaml_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
    st.lists(inner, max_size=3).map(lambda items: "".join(f"\n  - {i}" for i in items))), max_leaves=8)
field_name = st.sampled_from(["title", "authors", "year", "venue", "url", "id", "kind", "doi", "x" * 200, "<<"])
front_matter = st.lists(st.tuples(field_name, yaml_value), max_size=8).map(
    lambda pairs: "---\n" + "".join(f"{k}: {v}\n" for k, v in pairs) + "---\n")
anchored = st.integers(1, 9).map(lambda depth: "---\na: &a [x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}]\n" for p, c in list(zip("abcdefghi", "bcdefghij", strict=True))[: depth - 1])
    + "title: *a\n---\n")


@PDF_FUZZ
@given(head=st.one_of(front_matter, anchored), body=st.sampled_from(["Cats sleep.\n", "", "\u200b\ufeff\n"]))
def test_any_front_matter_gives_a_source_with_bounded_metadata_or_the_projects_error(head, body):
    document = load_bytes(".md", (head + body).encode("utf-8", "surrogatepass"))
    if document is not None:
        assert_bounded_metadata(document)


@given(name=st.text(max_size=300))
def test_safe_file_name_is_always_one_plain_short_name(name):
    safe = safe_file_name(name)
    assert safe and len(safe.encode()) <= 140
    assert safe.replace("-", "a").replace("_", "a").replace(".", "a").isascii()
    assert all(c.isalnum() or c in "._-" for c in safe)
    assert not safe.startswith(".") and "/" not in safe and safe not in (".", "..")


# ---------------------------------------------------------------- chunker invariants


def heading_lines(document: Document) -> list[tuple[int, int]]:
    """Spans of the heading line at each section start (the chunker drops these on purpose)."""
    spans = []
    for section in document.sections:
        end = document.text.find("\n", section.start)
        spans.append((section.start, len(document.text) if end < 0 else end))
    return spans


def check_chunks(parsed: ParsedSource, chunker: ChunkerSettings) -> None:
    document = Document(id="fuzz", title="Fuzz", text=parsed.text, sections=parsed.sections, pages=parsed.pages)
    chunks = chunk_document(document, chunker)
    cuts = sorted({0, len(document.text), *(s.start for s in document.sections)})
    covered = bytearray(len(document.text))
    for chunk in chunks:
        assert 0 <= chunk.start < chunk.end <= len(document.text)
        assert document.text[chunk.start : chunk.end] == chunk.text  # the offsets invariant
        assert chunk.text == chunk.text.strip()
        assert not any(chunk.start < cut < chunk.end for cut in cuts), "a chunk crosses a section boundary"
        assert chunk.section == document.section_at(chunk.start)
        assert chunk.page == document.page_at(chunk.start)
        assert len(chunk.text) <= chunker.size * KEEP_WHOLE_FACTOR + chunker.overlap
        covered[chunk.start : chunk.end] = b"\x01" * (chunk.end - chunk.start)
    for start, end in heading_lines(document):
        covered[start:end] = b"\x01" * (end - start)
    lost = [i for i, c in enumerate(document.text) if not covered[i] and not c.isspace()]
    assert not lost, f"text lost by the chunker: {document.text[lost[0]:lost[0] + 30]!r}"
    assert len({c.id for c in chunks}) == len(chunks)


chunker_settings = st.integers(10, 900).flatmap(
    lambda size: st.builds(ChunkerSettings, size=st.just(size), overlap=st.integers(0, size - 1)))


@FUZZ
@given(source=st.one_of(st.tuples(st.just(".md"), markdown), st.tuples(st.just(".txt"), plain_text),
                        st.tuples(st.just(".html"), html)),
       chunker=chunker_settings)
def test_chunks_of_any_loaded_document_keep_the_offsets_invariant(source, chunker):
    suffix, text = source
    parsed = parse_bytes(suffix, text.encode("utf-8", "surrogatepass"))
    if parsed is not None:
        check_chunks(parsed, chunker)


@FUZZ
@given(text=st.text(min_size=1, max_size=3000), chunker=chunker_settings)
def test_chunks_of_any_plain_text_keep_the_offsets_invariant(text, chunker):
    parsed = parse_bytes(".txt", text.encode("utf-8", "surrogatepass"))
    if parsed is not None:
        check_chunks(parsed, chunker)


@settings(max_examples=40, deadline=None,  # ASCII-only sentences: a filter that may reject many
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(pages=st.lists(st.lists(sentence.filter(lambda s: s.isascii()), max_size=4), min_size=1, max_size=4),
       chunker=chunker_settings)
def test_chunks_of_pdfs_carry_their_page_and_keep_the_offsets_invariant(pages, chunker):
    parsed = parse_bytes(".pdf", make_pdf(pages))
    if parsed is not None:
        check_chunks(parsed, chunker)
