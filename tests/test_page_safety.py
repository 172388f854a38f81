"""The page's share of the boundary rule, driven headless by AppTest: links anywhere follow the
http(s)-only rule, errors show file names as text (never as Markdown), skipped files are listed."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import KeywordEmbedder
from streamlit.testing.v1 import AppTest

import rag.embedding

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app" / "streamlit_app.py"
HOSTILE_NAME = "[click](javascript:alert(1))![x](http:x).txt"


@pytest.fixture
def page(monkeypatch, tmp_path, tiny_corpus):
    monkeypatch.setattr(rag.embedding, "load_embedder", lambda settings: KeywordEmbedder())
    for name, value in {"CORPUS_DIR": str(tiny_corpus), "INDEX_DIR": str(tmp_path / "index"),
                        "DATA_DIR": str(tmp_path / "data"), "MODEL_NAME": KeywordEmbedder.name,
                        "CHUNK_SIZE": "200", "CHUNK_OVERLAP": "60"}.items():
        monkeypatch.setenv(f"RAG_{name}", value)
    monkeypatch.syspath_prepend(str(APP.parent))
    return tiny_corpus


def run_app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=120).run()


def test_the_sources_table_links_only_http_urls(page):
    cats = page / "cats.md"
    cats.write_text(cats.read_text().replace("https://example.org/cats", "javascript:alert(document.cookie)"))
    (page / "sources.yaml").write_text("rockets.txt:\n  id: rockets\n  url: https://example.org/rockets\n")
    at = run_app().switch_page("views/sources.py").run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    links = [url if isinstance(url, str) else None for url in table["url"]]  # pandas shows None as NaN
    assert dict(zip(table["source_id"], links, strict=True)) == {"cats": None,
                                                                  "rockets": "https://example.org/rockets"}


def test_a_first_load_error_shows_the_file_name_as_text(page):
    import cards

    for name in ("cats.md", "rockets.txt", "sources.yaml"):
        (page / name).unlink()
    (page / HOSTILE_NAME).write_bytes(b"")
    at = run_app()
    message = (f"corpus folder {str(page)!r} has no readable sources; skipped 1: "
               f"{HOSTILE_NAME}: the file is empty")
    assert [e.value for e in at.error] == [cards.md_escape(message)]


def test_the_sources_page_lists_skipped_files_escaped(page):
    import cards

    (page / HOSTILE_NAME).write_bytes(b"")
    at = run_app().switch_page("views/sources.py").run()
    assert [w.value for w in at.warning] == [
        "1 file(s) in the corpus folder are not indexed:\n\n- " + cards.md_escape(f"{HOSTILE_NAME}: the file is empty")]
