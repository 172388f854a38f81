"""The corpus folder: metadata precedence, ids, adding and removing sources safely."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rag.corpus import (
    add_source,
    document_hash,
    load_corpus,
    load_document,
    read_manifest,
    remove_source,
    safe_file_name,
    source_files,
)
from rag.errors import SourceError
from rag.settings import REPO_ROOT

LIMIT = 1_000_000


def test_real_corpus_loads_six_documents_with_citation_metadata():
    documents = {d.id: d for d in load_corpus(REPO_ROOT / "corpus", LIMIT)}
    assert sorted(documents) == ["anthropic2023-core-views", "askell2021-general-language-assistant",
                                 "liu2019-mtdnn", "llm-faq-page", "mehrabi2019-bias-fairness-survey",
                                 "ouyang2022-instructgpt"]
    faq = documents["llm-faq-page"]
    assert (faq.title, faq.year, faq.kind, faq.path) == ("Large Language Models", None, "main-document",
                                                         "llm-faq-page.txt")
    assert faq.authors == ("AI Alignment site team (PKU Alignment group)",)
    assert faq.url == "https://alignmentsurvey.com/"
    liu = documents["liu2019-mtdnn"]
    assert liu.title == "Multi-Task Deep Neural Networks for Natural Language Understanding"
    assert liu.authors == ("Xiaodong Liu", "Pengcheng He", "Weizhu Chen", "Jianfeng Gao")
    assert liu.year == 2019
    assert liu.url == "https://aclanthology.org/P19-1441/"
    assert ("arxiv", "1901.11504") in liu.extra
    assert liu.text.startswith("In this paper, we present a Multi-Task Deep Neural Network (MT-DNN)")


def test_source_files_skip_the_manifest_readme_hidden_and_unknown_files(tmp_path):
    for name in ("a.txt", "b.md", "sources.yaml", "SOURCES.md", "README.md", ".hidden.txt", "notes.docx"):
        (tmp_path / name).write_text("Words.\n", encoding="utf-8")
    (tmp_path / "folder.txt").mkdir()
    assert [p.name for p in source_files(tmp_path)] == ["a.txt", "b.md"]


def test_missing_corpus_folder_is_refused(tmp_path):
    with pytest.raises(SourceError, match=r"^corpus folder '.*/nowhere' does not exist; pass --corpus DIR$"):
        load_corpus(tmp_path / "nowhere", LIMIT)


def test_manifest_wins_over_front_matter_which_wins_over_file_name_defaults(tmp_path):
    (tmp_path / "paper.md").write_text("---\nid: fm-id\ntitle: Front Title\nyear: 1999\n---\nBody.\n",
                                       encoding="utf-8")
    (tmp_path / "My_plain-notes.txt").write_text("Just words.\n", encoding="utf-8")
    (tmp_path / "sources.yaml").write_text("paper.md:\n  title: Manifest Title\n  authors: A One; B Two\n",
                                           encoding="utf-8")
    plain, paper = load_corpus(tmp_path, LIMIT)  # sorted by file name: "M" < "p"
    assert (paper.id, paper.title, paper.year, paper.authors, paper.kind) == (
        "fm-id", "Manifest Title", 1999, ("A One", "B Two"), "md")
    assert (plain.id, plain.title, plain.authors, plain.year, plain.kind, plain.path) == (
        "my-plain-notes", "My plain notes", (), None, "txt", "My_plain-notes.txt")


def test_authors_split_on_semicolons_and_and(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("Words.\n", encoding="utf-8")
    assert load_document(path, {"authors": "Ada Lovelace and Alan Turing; Grace Hopper"}, LIMIT).authors == (
        "Ada Lovelace", "Alan Turing", "Grace Hopper")
    assert load_document(path, {"authors": ["Sandy Anderson"]}, LIMIT).authors == ("Sandy Anderson",)


def test_duplicate_ids_are_refused_naming_both_files(tmp_path):
    for name in ("one.md", "two.md"):
        (tmp_path / name).write_text("---\nid: same\n---\nBody.\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"^two\.md and one\.md both have id 'same'; give one a new id$"):
        load_corpus(tmp_path, LIMIT)


def test_bad_year_and_bad_manifest_are_refused(tmp_path):
    (tmp_path / "a.txt").write_text("Words.\n", encoding="utf-8")
    (tmp_path / "sources.yaml").write_text("a.txt:\n  year: soon\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"^a\.txt: year 'soon' is not a year; write it as a whole number like 2020$"):
        load_corpus(tmp_path, LIMIT)
    (tmp_path / "sources.yaml").write_text("a.txt: [unclosed\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"\.yaml is not valid YAML \(ParserError\); fix or delete it$"):
        load_corpus(tmp_path, LIMIT)
    (tmp_path / "sources.yaml").write_text("- a.txt\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"\.yaml: expected a mapping of file name -> metadata mapping$"):
        load_corpus(tmp_path, LIMIT)


def test_document_hash_follows_text_and_metadata_but_not_the_load(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("Words here.\n", encoding="utf-8")
    first = document_hash(load_document(path, {"title": "T"}, LIMIT))
    assert first == document_hash(load_document(path, {"title": "T"}, LIMIT))
    assert first != document_hash(load_document(path, {"title": "Other"}, LIMIT))
    path.write_text("Words changed.\n", encoding="utf-8")
    assert first != document_hash(load_document(path, {"title": "T"}, LIMIT))


@pytest.mark.parametrize(("name", "safe"), [
    ("paper.PDF", "paper.pdf"),
    ("../../etc/passwd.txt", "passwd.txt"),
    ("C:\\Users\\me\\My Paper (final).md", "My-Paper-final.md"),
    (".hidden.txt", "hidden.txt"),
    ("???.txt", "source.txt"),
])
def test_safe_file_name(name, safe):
    assert safe_file_name(name) == safe


# ---------------------------------------------------------------- add / remove


@pytest.fixture
def upload(tmp_path: Path) -> Path:
    folder = tmp_path / "uploads"
    folder.mkdir()
    path = folder / "New Paper.txt"
    path.write_text("New Paper\n\nA brand new finding about owls.\n", encoding="utf-8")
    return path


def test_add_source_copies_the_file_and_records_its_metadata(tiny_corpus, upload):
    document = add_source(tiny_corpus, upload, {"title": "Owls", "authors": "Ann Owl; Bo Hoot", "year": 2024,
                                                "url": "https://owls.example", "venue": None}, LIMIT)
    assert (document.id, document.title, document.authors, document.year) == (
        "new-paper", "Owls", ("Ann Owl", "Bo Hoot"), 2024)
    assert (tiny_corpus / "New-Paper.txt").read_text(encoding="utf-8") == upload.read_text(encoding="utf-8")
    assert read_manifest(tiny_corpus)["New-Paper.txt"] == {
        "id": "new-paper", "title": "Owls", "authors": "Ann Owl; Bo Hoot", "year": 2024,
        "url": "https://owls.example"}
    manifest_text = (tiny_corpus / "sources.yaml").read_text(encoding="utf-8")
    assert manifest_text.startswith("# Metadata for sources")
    assert yaml.safe_load(manifest_text)["rockets.txt"]["id"] == "rockets"  # old entries kept
    assert [d.id for d in load_corpus(tiny_corpus, LIMIT)] == ["new-paper", "cats", "rockets"]
    assert not [p for p in tiny_corpus.iterdir() if p.name.startswith(".")]  # staging cleaned up


def test_add_source_refuses_existing_names_and_ids_without_changing_anything(tiny_corpus, upload, tmp_path):
    before = sorted((p.name, p.read_bytes()) for p in tiny_corpus.iterdir())
    clash = tmp_path / "uploads" / "cats.md"
    clash.write_text("Other cats.\n", encoding="utf-8")
    with pytest.raises(SourceError,
                       match=r"^cats\.md: a source with this file name already exists; rename the file$"):
        add_source(tiny_corpus, clash, {}, LIMIT)
    with pytest.raises(SourceError, match=r"^New-Paper\.txt: a source with id 'rockets' already exists; "
                                          r"pass another --id$"):
        add_source(tiny_corpus, upload, {"id": "rockets"}, LIMIT)
    assert sorted((p.name, p.read_bytes()) for p in tiny_corpus.iterdir()) == before


def test_add_source_refuses_an_unreadable_file_without_changing_anything(tiny_corpus, tmp_path):
    before = sorted((p.name, p.read_bytes()) for p in tiny_corpus.iterdir())
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4 garbage")
    with pytest.raises(SourceError, match=r"^bad\.pdf: not a readable PDF"):
        add_source(tiny_corpus, bad, {}, LIMIT)
    with pytest.raises(SourceError, match=r"^'.*/missing\.txt' is not a file; check the path$"):
        add_source(tiny_corpus, tmp_path / "missing.txt", {}, LIMIT)
    assert sorted((p.name, p.read_bytes()) for p in tiny_corpus.iterdir()) == before


def test_add_source_to_a_missing_corpus_is_refused(tmp_path, upload):
    with pytest.raises(SourceError, match=r"^corpus folder '.*/absent' does not exist; pass --corpus DIR$"):
        add_source(tmp_path / "absent", upload, {}, LIMIT)


def test_remove_source_deletes_file_and_manifest_entry(tiny_corpus):
    document = remove_source(tiny_corpus, "rockets", LIMIT)
    assert document.path == "rockets.txt"
    assert not (tiny_corpus / "rockets.txt").exists()
    assert "rockets.txt" not in read_manifest(tiny_corpus)
    assert [d.id for d in load_corpus(tiny_corpus, LIMIT)] == ["cats"]
    with pytest.raises(SourceError, match=r"^no source with id 'rockets'; see `rag sources`$"):
        remove_source(tiny_corpus, "rockets", LIMIT)
