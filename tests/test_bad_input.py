"""Bad input through the paths users take: `rag add` (add_source), a file dropped into the
corpus folder before `rag build`, and questions to `search` / `ask`.

Each case must be refused with the project's own error naming the problem, and must leave the
corpus folder and the served index exactly as they were. (Loader-level messages are pinned in
test_loaders.py; these tests pin the end-to-end behaviour.)
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pypdf
import pytest
from conftest import KeywordEmbedder
from helpers import search_hits
from pdf_seeds import mutate, seeds
from test_loaders import make_pdf

from rag.assistant import Assistant, SourceMetadata, open_assistant
from rag.build import build_index
from rag.cli import main
from rag.corpus import add_source, remove_source, safe_file_name
from rag.errors import QuestionError, SourceError
from rag.index_store import current_generation, open_index

MB = 2**20
REPO = Path(__file__).resolve().parent.parent

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


# ---------------------------------------------------------------- the cases of issue 16

BILLION_LAUGHS = ("---\n" + 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
                  + "".join(f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
                            for p, c in zip("abcdefgh", "bcdefghi", strict=True))
                  + "title: *i\n---\nA short text.\n")
# Three ways a PDF with compressed streams broke load_pdf, each with the exception pypdf raises.
DAMAGED_PDFS = {
    "unknown filter": (lambda pdf: pdf.replace(b"/FlateDecode", b"/FlateDe@ode"), NotImplementedError),
    "/Fl abbreviation": (lambda pdf: pdf.replace(b"/FlateDecode", b"/Fl"), pypdf.errors.DeprecationError),
    "object that is only a reference": (lambda pdf: mutate(pdf, [("object", 0, bytes([15]))]), AttributeError),
}


def damaged_pdf(case: str) -> bytes:
    damage, _ = DAMAGED_PDFS[case]
    return damage(seeds()[0])


@pytest.mark.parametrize("case", sorted(DAMAGED_PDFS))
def test_case_1_a_damaged_compressed_pdf_is_refused_in_one_line_and_skipped_by_builds(settings, embedder, served,
                                                                                     tmp_path, case):
    data, raised = damaged_pdf(case), DAMAGED_PDFS[case][1]
    with pytest.raises(raised):  # what escaped the loader before
        [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages]
    upload = tmp_path / "damaged.pdf"
    upload.write_bytes(data)
    message = rf"^damaged\.pdf: not a readable PDF \({raised.__name__}\); the file may be corrupt$"
    with pytest.raises(SourceError, match=message):
        add_source(settings.corpus_dir, upload, {}, settings.max_upload_bytes)
    assert served()
    (settings.corpus_dir / "damaged.pdf").write_bytes(data)  # dropped into corpus/ by hand
    report = build_index(settings, embedder)
    assert [(s.file, bool(re.fullmatch(message.strip("^$"), s.reason))) for s in report.skipped] == [
        ("damaged.pdf", True)]


def test_case_1_the_pages_upload_refuses_a_damaged_pdf_and_keeps_the_corpus(settings, embedder, served):
    with pytest.raises(SourceError, match=r"^paper\.pdf: not a readable PDF \(AttributeError\)"):
        Assistant(settings, embedder).add_upload("paper.pdf", damaged_pdf("object that is only a reference"))
    assert served()


def test_case_9_pypdfs_own_notes_do_not_print_before_the_one_line_refusal(cli_env, tmp_path):
    data = damaged_pdf("unknown filter")[:-40]  # also cut: pypdf notes "EOF marker not found"
    notes = logging.getLogger("pypdf")
    heard = []
    handler = logging.Handler()
    handler.emit = heard.append
    notes.addHandler(handler)
    try:
        with contextlib.suppress(Exception):
            pypdf.PdfReader(io.BytesIO(data)).pages[0].extract_text()
    finally:
        notes.removeHandler(handler)
    assert heard, "the file must make pypdf write notes, or this test proves nothing"
    (tmp_path / "cut.pdf").write_bytes(data)
    run = subprocess.run([sys.executable, "-m", "rag.cli", "add", str(tmp_path / "cut.pdf")], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert (run.returncode, run.stdout) == (1, "")
    assert re.fullmatch(r"rag: error: cut\.pdf: not a readable PDF \(\w+\); the file may be corrupt\n", run.stderr)


def test_case_2_a_yaml_alias_tree_in_front_matter_is_refused_unexpanded(settings, served, tmp_path):
    upload = tmp_path / "laughs.md"
    upload.write_text(BILLION_LAUGHS, encoding="utf-8")
    assert len(BILLION_LAUGHS.encode()) < 600  # 9**9 "lol"s if expanded
    with pytest.raises(SourceError, match=r"^laughs\.md: front matter uses a YAML alias \(\*name\); "
                                          r"write the value out instead$"):
        add_source(settings.corpus_dir, upload, {}, settings.max_upload_bytes)
    assert served()
    (settings.corpus_dir / "sources.yaml").write_text("x.txt: &a {title: T}\ny.txt: *a\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"sources\.yaml uses a YAML alias"):
        build_index(settings, KeywordEmbedder())


@pytest.mark.parametrize(("front", "message"), [
    ("year: .inf", r"year inf is not a year; write it as a whole number like 2020"),
    ("year: -.inf", r"year -inf is not a year; write it as a whole number like 2020"),
    ("year: .nan", r"year nan is not a year; write it as a whole number like 2020"),
    ("year: 20200", r"year 20200 is outside 1000-2100; check it"),
    ("year: true", r"year True is not a year; write it as a whole number like 2020"),
    ("year: 2020-01-01", r"year datetime\.date\(2020, 1, 1\) is not a year; write it as a whole number like 2020"),
    ("title: [a, b]", r"metadata field 'title' must be text, not a list"),
    ("title: {a: 1}", r"metadata field 'title' must be text, not a mapping"),
    ("title: " + "t" * 1001, r"metadata field 'title' is 1,001 characters; the limit is 1,000"),
    ("authors: {a: 1}", r"metadata field 'authors' must be a list of names, not a mapping"),
    ("authors: [[Ada]]", r"metadata field 'authors' must be text, not a list"),
    ("venue: 1.5", r"metadata field 'venue' must be text, not float"),
    ("doi: " + "9" * 1001, r"metadata field 'doi' is 1,001 characters; the limit is 1,000"),
])
def test_case_3_front_matter_fields_are_typed_and_bounded(settings, served, tmp_path, front, message):
    upload = tmp_path / "meta.md"
    upload.write_text(f"---\n{front}\n---\nA short text.\n", encoding="utf-8")
    with pytest.raises(SourceError, match=rf"^meta\.md: {message}$"):
        add_source(settings.corpus_dir, upload, {}, settings.max_upload_bytes)
    assert served()


def test_case_3_year_inf_is_one_line_on_the_cli_and_the_page(cli_env, capsys, tmp_path, settings, embedder):
    upload = tmp_path / "inf.md"
    upload.write_text("---\ntitle: Infinite\nyear: .inf\n---\nA short text.\n", encoding="utf-8")
    assert main(["add", str(upload)]) == 1
    assert capsys.readouterr() == ("", "rag: error: inf.md: year inf is not a year; write it as a whole number "
                                       "like 2020\n")
    with pytest.raises(SourceError, match=r"^inf\.md: year inf is not a year"):  # the page's upload
        Assistant(settings, embedder).add_upload("inf.md", upload.read_bytes())
    with pytest.raises(SourceError, match=r"^year '\.inf' is not a number; type a year like 2024$"):  # its form
        SourceMetadata.from_fields(year=".inf")


QUERY_LINES = {
    "a number": ('{"id": "q2", "question": 42}', "'question' must be a string, not int"),
    "null": ('{"id": "q2", "question": null}', "'question' must be a string, not NoneType"),
    "a list": ('{"id": "q2", "question": ["cats"]}', "'question' must be a string, not list"),
    "empty": ('{"id": "q2", "question": "  "}', "the question is empty; type a question"),
    "over-long": ('{"id": "q2", "question": "' + "x" * 2001 + '"}',
                  "the question is 2,001 characters long; the limit is 2,000. Ask something shorter"),
    "an id that is a list": ('{"id": [1], "question": "cats"}', "'id' must be a string or an integer, not [1]"),
}


@pytest.mark.parametrize("command", ["search", "ask"])
@pytest.mark.parametrize("case", sorted(QUERY_LINES))
def test_case_4_a_bad_batch_line_stops_the_batch_before_any_result(cli_env, capsys, tmp_path, command, case):
    line, reason = QUERY_LINES[case]
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"id": "q1", "question": "cats"}\n' + line + "\n", encoding="utf-8")
    assert main([command, "--queries", str(queries), "--json"]) == 1
    assert capsys.readouterr() == ("", f"rag: error: {queries}:2: {reason}\n")


def test_case_5_a_flipped_digit_in_the_manifest_is_refused_and_rag_build_repairs_it(cli_env, capsys):
    assert main(["build"]) == 0
    folder = current_generation(cli_env / "index")
    manifest = folder / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"chunk_count": 4', '"chunk_count": 5'))
    damaged = (f"index file manifest.json in {folder.name} is damaged (checksum mismatch); "
               "run `rag build` to rebuild it")
    capsys.readouterr()
    assert main(["search", "cats", "--json"]) == 1
    assert capsys.readouterr() == ("", f"rag: error: {damaged}\n")
    assert main(["build"]) == 0  # no --force
    assert capsys.readouterr().out.startswith("added 2, changed 0, removed 0, unchanged 0 sources; embedded 4 ")
    assert main(["search", "cats", "--json", "--k", "1"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["source_id"] == "cats"


@pytest.mark.parametrize(("name", "data", "message"), [
    ("blank.txt", "\ufeff\u200b\u00a0\u200c\u200d\u2060\u3164\n",
     "the file is empty (only blank or invisible characters)"),
    ("blank.md", "---\ntitle: Blank\n---\n\u200b\u00a0\ufeff\n", "has front matter but no text"),
    ("blank.html", "<p>&nbsp;&#x200B;&#xFEFF;</p>", r"no readable text (only scripts, styles or navigation?)"),
])
def test_case_7_text_of_only_invisible_characters_is_refused(settings, embedder, served, tmp_path, name, data,
                                                             message):
    upload = tmp_path / name
    upload.write_text(data, encoding="utf-8")
    with pytest.raises(SourceError) as refused:
        add_source(settings.corpus_dir, upload, {}, settings.max_upload_bytes)
    assert str(refused.value) == f"{name}: {message}"
    assert served()


# ---------------------------------------------------------------- the other findings


def test_an_unreadable_file_in_the_corpus_is_skipped_naming_the_reason(settings, embedder, monkeypatch):
    (settings.corpus_dir / "locked.txt").write_text("Secret.\n", encoding="utf-8")
    read_bytes = Path.read_bytes

    def refuse(path: Path) -> bytes:  # root reads any mode, so the refusal is simulated
        if path.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    report = build_index(settings, embedder)
    assert [(s.file, s.reason) for s in report.skipped] == [
        ("locked.txt", "locked.txt: cannot be read (Permission denied); check the file and its permissions")]
    assert sorted(report.added) == ["cats", "rockets"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o664])
def test_add_and_remove_keep_the_mode_of_sources_yaml(settings, tmp_path, mode):
    manifest = settings.corpus_dir / "sources.yaml"
    manifest.chmod(mode)
    upload = tmp_path / "owls.txt"
    upload.write_text("Owls hunt at night.\n", encoding="utf-8")
    add_source(settings.corpus_dir, upload, {"id": "owls"}, settings.max_upload_bytes)
    assert stat.S_IMODE(manifest.stat().st_mode) == mode
    remove_source(settings.corpus_dir, "owls", settings.max_upload_bytes)
    assert stat.S_IMODE(manifest.stat().st_mode) == mode


def test_a_new_sources_yaml_gets_the_mode_of_a_plain_new_file(settings, tmp_path):
    (settings.corpus_dir / "sources.yaml").unlink()
    upload = tmp_path / "owls.txt"
    upload.write_text("Owls hunt at night.\n", encoding="utf-8")
    umask = os.umask(0o022)
    try:
        add_source(settings.corpus_dir, upload, {}, settings.max_upload_bytes)
    finally:
        os.umask(umask)
    assert stat.S_IMODE((settings.corpus_dir / "sources.yaml").stat().st_mode) == 0o644
