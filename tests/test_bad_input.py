"""Bad input through the paths users take: `rag add` (add_source), a file dropped into the
corpus folder before `rag build`, and questions to `search` / `ask`.

Each case must be refused with the project's own error naming the problem, and must leave the
corpus folder and the served index exactly as they were. (Loader-level messages are pinned in
test_loaders.py; these tests pin the end-to-end behaviour.)
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from helpers import search_hits
from test_loaders import make_pdf

from rag.assistant import open_assistant
from rag.build import build_index
from rag.corpus import add_source, safe_file_name
from rag.errors import QuestionError, SourceError
from rag.index_store import current_generation, open_index

MB = 2**20

BAD_FILES = {
    "empty file": ("notes.txt", b"", r"^notes\.txt: the file is empty$"),
    "binary file with a text extension": (
        "photo.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8,
        r"^photo\.md: looks like a binary file, not text; check its format$"),
    "non-UTF-8 text": ("latin.txt", "Über die Katzen.\n".encode("cp1252"),
                       r"^latin\.txt: not UTF-8 text \(bad byte at position 0\); re-save it as UTF-8$"),
    "encrypted PDF": ("locked.pdf", make_pdf([["Secret cat facts."]], password="hunter2"),
                      r"^locked\.pdf: the PDF is encrypted; save an unprotected copy and add that$"),
    "PDF with no text layer": ("scan.pdf", make_pdf([[], []]),
                               r"^scan\.pdf: the PDF has no text layer \(scanned images\?\); run OCR on it first$"),
    "HTML with scripts only": (
        "app.html", b"<html><head><script>var a = 1;</script><style>p {}</style></head>"
                    b"<body><script src='x.js'></script><noscript>Enable JS</noscript></body></html>",
        r"^app\.html: no readable text \(only scripts, styles or navigation\?\)$"),
}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def served(settings, embedder):
    """A built tiny index, and a function telling whether corpus and index are untouched."""
    build_index(settings, embedder)
    corpus_before = snapshot(settings.corpus_dir)
    generation = current_generation(settings.index_dir)
    index_before = snapshot(generation)

    def unchanged() -> bool:
        return (snapshot(settings.corpus_dir) == corpus_before
                and current_generation(settings.index_dir) == generation
                and snapshot(generation) == index_before)

    return unchanged


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_adding_a_bad_file_is_refused_and_changes_nothing(settings, served, tmp_path, case):
    name, data, message = BAD_FILES[case]
    upload = tmp_path / "uploads" / name
    upload.parent.mkdir()
    upload.write_bytes(data)
    with pytest.raises(SourceError, match=message):
        add_source(settings.corpus_dir, upload, {}, settings.max_upload_bytes)
    assert served()


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_in_the_corpus_folder_is_skipped_with_its_reason_and_the_rest_indexed(settings, embedder,
                                                                                         served, case):
    name, data, message = BAD_FILES[case]
    (settings.corpus_dir / name).write_bytes(data)
    report = build_index(settings, embedder)
    assert [s.file for s in report.skipped] == [name]
    assert re.fullmatch(message.strip("^$"), report.skipped[0].reason)
    assert report.unchanged == ("cats", "rockets") and report.chunks_embedded == 0
    index = open_index(settings.index_dir, embedder.name, embedder.dimension)
    assert index.manifest.skipped == {name: report.skipped[0].reason}
    assert sorted(index.manifest.documents) == ["cats", "rockets"]
    (settings.corpus_dir / name).unlink()
    assert build_index(settings, embedder).skipped == ()  # fixed: the list empties on the next build
    assert open_index(settings.index_dir, embedder.name, embedder.dimension).manifest.skipped == {}


def test_a_50_mb_file_is_refused_by_size_without_being_read(settings, served, tmp_path):
    upload = tmp_path / "huge.txt"
    with open(upload, "wb") as handle:
        handle.truncate(50 * MB)  # sparse: the test itself stays cheap
    began = time.perf_counter()
    with pytest.raises(SourceError, match=r"^huge\.txt: 50\.0 MB is over the 20\.0 MB limit for a source"):
        add_source(settings.corpus_dir, upload, {}, settings.max_upload_bytes)
    assert time.perf_counter() - began < 5
    assert served()


@pytest.mark.parametrize(("hostile", "stored"), [
    ("../../outside.md", "outside.md"),
    ("..\\..\\outside.md", "outside.md"),
    ("/etc/outside.md", "outside.md"),
    ("corpus/../../outside.md", "outside.md"),
    (".bashrc.md", "bashrc.md"),
    ("outside.m\x00d", "outside.md"),
    ("outside.MD\n", "outside.md"),
    ("o" * 300 + ".md", "o" * 120 + ".md"),
])
def test_a_file_name_that_tries_path_traversal_stays_inside_the_corpus(settings, served, tmp_path, hostile,
                                                                      stored):
    upload = tmp_path / "upload.md"
    upload.write_text("---\nid: traversal\ntitle: Traversal\n---\nOwls hunt at night.\n", encoding="utf-8")
    outside_before = sorted(p.name for p in tmp_path.iterdir())
    document = add_source(settings.corpus_dir, upload, {}, settings.max_upload_bytes, file_name=hostile)
    assert document.path == stored
    assert (settings.corpus_dir / stored).read_bytes() == upload.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == outside_before  # nothing written next to corpus/
    assert not Path("/etc/outside.md").exists()


@pytest.mark.parametrize("name", ["", ".", "..", "../..", "/", "\\", "..\\..\\", "???", "\x00"])
def test_a_file_name_with_nothing_safe_left_becomes_source(name):
    assert safe_file_name(name) == "source"


# ---------------------------------------------------------------- questions


@pytest.fixture
def session(settings, embedder):
    return open_assistant(settings, embedder)[0]


@pytest.mark.parametrize("question", ["", "   ", "\n\t "])
def test_an_empty_question_is_refused_by_search_and_ask(session, question):
    with pytest.raises(QuestionError, match=r"^the question is empty; type a question$"):
        search_hits(session, question)
    if hasattr(session, "ask"):
        with pytest.raises(QuestionError, match=r"^the question is empty; type a question$"):
            session.ask(question)


def test_a_10000_character_question_is_refused_by_search_and_ask(session):
    question = ("Why do cats sleep so much? " * 400)[:10_000]
    message = r"^the question is 10,000 characters long; the limit is 2,000\. Ask something shorter$"
    with pytest.raises(QuestionError, match=message):
        search_hits(session, question)
    if hasattr(session, "ask"):
        with pytest.raises(QuestionError, match=message):
            session.ask(question)


def test_a_question_at_the_limit_is_answered(session):
    question = ("cats sleep " * 200)[:2000]
    assert search_hits(session, question)[0].chunk.doc_id == "cats"
