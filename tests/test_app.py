"""The Streamlit page driven headless by AppTest, over a temporary corpus and index.

The fast tests use the keyword embedder on the tiny corpus (the page loads the model through
``rag.embedding.load_embedder``, patched here); the slow ones run the real packaged model over a
copy of the project corpus. Either way the environment points the page at temporary folders,
so nothing here touches the repository's corpus, index or data.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import streamlit as st
from conftest import KeywordEmbedder
from streamlit.testing.v1 import AppTest
from test_loaders import make_pdf

import rag.assistant
import rag.embedding
from rag.index_store import current_generation
from rag.settings import Settings

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app" / "streamlit_app.py"
SOURCES_PAGE, EVAL_PAGE = "views/sources.py", "views/evaluation.py"
OFF_TOPIC = "Who won the 2018 World Cup?"
PENGUINS = ["Emperor penguins huddle together in tight groups to survive the Antarctic winter.",
            "Huddling penguins take turns at the cold outer edge of the group."]


@dataclass(frozen=True)
class Folders:
    corpus: Path
    index: Path
    data: Path

    def corpus_files(self) -> list[str]:
        return sorted(p.name for p in self.corpus.iterdir() if not p.name.startswith("."))

    def generation(self) -> str:
        folder = current_generation(self.index)
        return folder.name if folder else ""


def point_app_at(monkeypatch, tmp_path: Path, corpus: Path, **settings: str) -> Folders:
    folders = Folders(corpus, tmp_path / "index", tmp_path / "data")
    monkeypatch.setenv("RAG_CORPUS_DIR", str(folders.corpus))
    monkeypatch.setenv("RAG_INDEX_DIR", str(folders.index))
    monkeypatch.setenv("RAG_DATA_DIR", str(folders.data))
    for name, value in settings.items():
        monkeypatch.setenv(f"RAG_{name.upper()}", value)
    monkeypatch.syspath_prepend(str(APP.parent))  # `streamlit run` puts the script's folder first too
    return folders


@pytest.fixture
def tiny(monkeypatch, tmp_path, tiny_corpus) -> Folders:
    monkeypatch.setattr(rag.embedding, "load_embedder", lambda settings: KeywordEmbedder())
    return point_app_at(monkeypatch, tmp_path, tiny_corpus, model_name=KeywordEmbedder.name,
                        chunk_size="200", chunk_overlap="60")


@pytest.fixture
def real(monkeypatch, tmp_path) -> Folders:
    shutil.copytree(REPO / "corpus", tmp_path / "corpus")
    return point_app_at(monkeypatch, tmp_path, tmp_path / "corpus")


def start(timeout: float = 120) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=timeout).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def html(at: AppTest) -> str:
    """Every st.html body on the page but the style sheet."""
    return "\n".join(e.value for e in at.html if not e.value.lstrip().startswith("<style>"))


def upload(at: AppTest, name: str, data: bytes, mime: str = "application/octet-stream",
           **fields: str) -> AppTest:
    at.file_uploader(key="add-file").upload(name, data, mime)
    for field, value in fields.items():
        at.text_input(key=f"add-{field}").set_value(value)
    next(b for b in at.button if b.label == "Add and index").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def warm_up() -> None:
    """What ``app/server.py`` runs at server start."""
    import shared  # app/ is on the path once point_app_at ran, as under ``streamlit run``

    shared.warm_up(Settings.from_env())


def unescape(markdown: str) -> str:
    """An alert's text as the reader sees it (the page backslash-escapes Markdown syntax)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def source_count(at: AppTest) -> int:
    return len(at.dataframe[0].value)


# ---------------------------------------------------------------- ask


def test_a_fresh_clone_builds_the_index_on_first_load_and_offers_starters(tiny):
    assert tiny.generation() == ""
    at = start()
    assert tiny.generation().startswith("gen-")
    assert len([b for b in at.button if b.key and b.key.startswith("starter-")]) == 4
    assert [m.value for m in at.sidebar.metric] == ["2", "4"]  # sources, passages
    assert not at.chat_message  # nothing asked yet


def test_the_warm_up_at_server_start_is_what_the_first_page_load_uses(tiny, monkeypatch):
    start()  # build the index the way a first load does; then start over with empty caches
    st.cache_resource.clear()
    loads, opens = [], []
    monkeypatch.setattr(rag.embedding, "load_embedder", lambda settings: loads.append(1) or KeywordEmbedder())
    real_open = rag.assistant.open_index
    monkeypatch.setattr(rag.assistant, "open_index", lambda *a, **kw: opens.append(1) or real_open(*a, **kw))

    warm_up()
    assert (len(loads), len(opens)) == (1, 1)
    at = ask(start(), "How long does a house cat sleep?")
    assert "<mark>A house cat sleeps about fifteen hours.</mark>" in html(at)
    assert (len(loads), len(opens)) == (1, 1)  # the page found both already loaded


def test_the_warm_up_leaves_a_missing_index_to_the_first_page_load(tiny):
    st.cache_resource.clear()
    warm_up()
    assert tiny.generation() == ""  # built by the page, under its progress bar
    start()
    assert tiny.generation().startswith("gen-")


def test_an_answer_shows_its_quote_highlighted_in_the_passage_with_the_reference(tiny):
    at = ask(start(), "How long does a house cat sleep?")
    page = html(at)
    assert '<span class="rag-cite">[1]</span>' in page
    assert "<mark>A house cat sleeps about fifteen hours.</mark>" in page
    assert ('Ada Lovelace (2020). <em>Notes on Cats</em>. Journal of Feline Studies. <a href="https://example.org/cats"'
            in page)
    assert '<div class="rag-loc">Sleeping</div>' in page
    assert not at.warning


def test_an_off_topic_question_abstains_and_shows_the_nearest_material(tiny):
    at = ask(start(), OFF_TOPIC)
    assert "The sources do not mention “2018 World Cup”" in at.warning[0].value  # the reason, then the material
    page = html(at)
    assert "Nearest material" in page and "rag-near" in page
    assert "<mark>" not in page and "rag-cite" not in page


def test_a_starter_button_asks_its_question(tiny):
    at = start()
    at.button(key="starter-0").click().run()
    assert at.chat_message[0].children  # the question and its reply were drawn
    assert "Is bigger always better for language models?" in html(at)


def test_history_is_kept_across_questions_and_cleared_by_the_button(tiny):
    at = ask(ask(start(), "How long does a house cat sleep?"), "How do rockets stage?")
    assert len(at.chat_message) == 4
    next(b for b in at.button if b.label == "Clear").click().run()
    assert not at.chat_message
    assert at.session_state["history"] == []


def test_a_follow_up_is_searched_as_a_standalone_question_within_the_previous_source(tiny):
    at = ask(ask(start(), "How long does a house cat sleep?"), "And what do they hunt?")
    captions = [c.value for c in at.caption]
    assert "Searched as: “And what do they hunt (long house cat sleep)?” — within Notes on Cats" in captions
    assert "Notes on Cats" in html(at)  # kept to the previous source (the answer's content: test_cli.py)
    first, second = at.session_state["history"]
    assert (first.searched_as, second.searched_as, second.kept_to) == (
        "", "And what do they hunt (long house cat sleep)?", ("cats",))


def test_the_prose_toggle_is_off_and_says_what_to_set_without_a_model(tiny, monkeypatch):
    monkeypatch.delenv("RAG_LLM_URL", raising=False)
    at = start()
    switch = at.toggle(key="generate")
    assert switch.disabled and not switch.value
    assert switch.help.startswith("Set RAG_LLM_URL (and RAG_LLM_MODEL)")


@pytest.mark.slow
def test_the_prose_toggle_streams_checked_prose_above_the_quotes(tiny, monkeypatch, llm_server):
    monkeypatch.setenv("RAG_LLM_URL", llm_server.url)
    at = start()
    at.toggle(key="generate").set_value(True).run()
    at = ask(at, "How long does a house cat sleep?")
    [turn] = at.session_state["history"]
    assert turn.prose is not None and turn.prose.notice is None and turn.prose.sentences
    page = html(at)
    assert '<div class="rag-label">Quotes</div>' in page and "A house cat sleeps about fifteen hours." in page
    if turn.prose.text is not None:
        assert turn.prose.text.split("[")[0].strip() in unescape(page)
    else:
        assert unescape(at.info[0].value) == f"Prose withheld: {turn.prose.withheld_because}"


def test_with_the_model_down_the_page_shows_the_quotes_and_a_notice(tiny, monkeypatch):
    from rag.llm_server import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    monkeypatch.setenv("RAG_LLM_URL", url)
    at = start()
    at.toggle(key="generate").set_value(True).run()
    at = ask(at, "How long does a house cat sleep?")
    assert unescape(at.warning[0].value) == (f"Prose unavailable: cannot reach the language model at {url} "
                                             "(is the server running?). Showing the quoted answer.")
    assert "A house cat sleeps about fifteen hours." in html(at)


def test_the_ranked_passages_toggle_lists_scores(tiny):
    at = start()
    at.toggle(key="show_passages").set_value(True).run()
    at = ask(at, "How long does a house cat sleep?")
    ranked = at.dataframe[0].value
    assert list(ranked["title"])[0] == "Notes on Cats"
    assert ranked["score"].is_monotonic_decreasing


def test_mode_passages_and_source_filter_reach_the_answer(tiny):
    at = start()
    at.segmented_control(key="mode").set_value("bm25")
    at.slider(key="k").set_value(2)
    at.multiselect(key="sources").set_value(["rockets"])
    at = ask(at.run(), "How long do cats sleep, and which rocket stage is the heaviest?")
    turn = at.session_state["history"][-1]
    assert (turn.mode, turn.k, turn.sources) == ("bm25", 2, ("rockets",))
    hits = turn.answer.hits
    assert len(hits) == 2 and {h.chunk.doc_id for h in hits} == {"rockets"}


def test_thumbs_append_the_question_answer_and_citations_to_the_data_folder(tiny):
    at = ask(start(), "How long does a house cat sleep?")
    at.feedback[0].set_value(1).run()
    lines = (tiny.data / "feedback.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[-1])
    answer = at.session_state["history"][-1].answer
    assert len(lines) == 1
    assert record["rating"] == "up"
    assert record["question"] == "How long does a house cat sleep?"
    assert record["answer"] == answer.text
    assert [(c["n"], c["source_id"], c["quote"], c["start"], c["end"]) for c in record["citations"]] == [
        (c.n, c.document.id, c.quote, c.start, c.end) for c in answer.citations]
    assert "A house cat sleeps about fifteen hours." in [c["quote"] for c in record["citations"]]
    assert (record["mode"], record["k"]) == ("hybrid", 5)
    at.feedback[0].set_value(0).run()  # changing one's mind adds a line
    assert [json.loads(line)["rating"] for line in
            (tiny.data / "feedback.jsonl").read_text(encoding="utf-8").splitlines()] == ["up", "down"]


def test_a_question_the_library_refuses_shows_its_reason_in_the_chat(tiny, monkeypatch):
    monkeypatch.setenv("RAG_MAX_QUESTION_CHARS", "20")
    at = start()
    assert at.chat_input[0].proto.max_chars == 20  # the browser stops typing at the library's limit
    at = ask(at, "   ")
    assert [unescape(e.value) for e in at.error] == ["the question is empty; type a question"]
    assert len(at.chat_message) == 2 and not at.feedback  # nothing to rate


def test_text_from_sources_and_users_is_escaped_and_only_http_links_are_made(tiny):
    (tiny.corpus / "owls.txt").write_text(
        "Owls hunt small rodents at night. <img src=x onerror=alert(1)> Owls <script>alert(2)</script> "
        "see well in the dark.\n", encoding="utf-8")
    with open(tiny.corpus / "sources.yaml", "a", encoding="utf-8") as manifest:
        manifest.write("owls.txt:\n  id: owls\n  title: <b>Owl</b> [notes](https://evil.example)\n"
                       "  url: javascript:alert(3)\n")
    at = ask(start(), "<i>When</i> do owls hunt small rodents at night?")
    page = html(at)
    assert "&lt;i&gt;When&lt;/i&gt; do owls" in page  # the question, shown as typed
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;script&gt;" in page
    assert "&lt;b&gt;Owl&lt;/b&gt; [notes](https://evil.example)" in page
    assert "<img" not in page and "<script" not in page and "<b>" not in page and "<i>" not in page
    assert "javascript:alert(3)" in page and 'href="javascript' not in page


# ---------------------------------------------------------------- sources


def test_the_sources_page_lists_and_reads_the_indexed_sources(tiny):
    at = start().switch_page(SOURCES_PAGE).run()
    table = at.dataframe[0].value
    assert list(table["source_id"]) == ["cats", "rockets"]
    assert list(table["chunks"]) == [2, 2]
    assert "Cats sleep for most of the day." in html(at)  # the reader shows the first source's text
    at.selectbox(key="read").set_value("rockets").run()
    assert "Multi-stage rockets drop empty tanks to save mass." in html(at)


def test_an_uploaded_file_is_added_under_a_safe_name_and_indexed(tiny):
    at = start().switch_page(SOURCES_PAGE).run()
    before = tiny.generation()
    at = upload(at, "../../Penguin notes!.txt", "\n\n".join(PENGUINS).encode(), "text/plain",
                title="Penguin Notes", authors="Ann Author; Bob Writer", year="2021", url="https://example.org/p")
    assert not at.error
    assert "Added Penguin Notes" in at.success[0].value
    assert "Penguin-notes.txt" in tiny.corpus_files()
    assert not (tiny.corpus.parent.parent / "Penguin notes!.txt").exists()
    assert tiny.generation() != before
    assert source_count(at) == 3


def test_authors_typed_with_and_become_two_authors_as_from_the_cli(tiny):
    at = start().switch_page(SOURCES_PAGE).run()
    at = upload(at, "penguins.txt", "\n\n".join(PENGUINS).encode(), "text/plain", title="Penguin Notes",
                authors="Ann Smith and Bob Jones")
    assert not at.error
    row = next(r for r in at.dataframe[0].value.to_dict("records") if r["title"] == "Penguin Notes")
    assert row["authors"] == "Ann Smith and Bob Jones"  # format_authors joins two names with "and"
    assert "- Ann Smith\n  - Bob Jones\n" in (tiny.corpus / "sources.yaml").read_text(encoding="utf-8")


def test_an_upload_refused_by_the_build_lock_leaves_the_corpus_exactly_as_it_was(tiny):
    from rag.index_store import build_lock

    at = start().switch_page(SOURCES_PAGE).run()
    before = {p.name: p.read_bytes() for p in tiny.corpus.iterdir()}
    generation = tiny.generation()
    with build_lock(tiny.index):  # another process is building
        at = upload(at, "penguins.txt", "\n\n".join(PENGUINS).encode(), "text/plain", title="Penguin Notes")
    assert unescape(at.error[0].value).startswith("another build is running on ")
    assert {p.name: p.read_bytes() for p in tiny.corpus.iterdir()} == before
    assert tiny.generation() == generation and source_count(at) == 2


def test_a_corrupt_upload_is_refused_in_one_sentence_and_nothing_changes(tiny):
    at = start().switch_page(SOURCES_PAGE).run()
    files, generation = tiny.corpus_files(), tiny.generation()
    at = upload(at, "broken.pdf", b"%PDF-1.4\nthis is not a pdf body\n%%EOF\n", "application/pdf",
                title="Broken")
    assert [unescape(e.value) for e in at.error] == [
        "broken.pdf: not a readable PDF (PdfReadError); the file may be corrupt"]
    assert tiny.corpus_files() == files and tiny.generation() == generation
    assert source_count(at) == 2


def test_an_upload_over_the_size_limit_is_refused(tiny, monkeypatch):
    monkeypatch.setenv("RAG_MAX_UPLOAD_BYTES", "1000")  # above the tiny sources' sizes
    at = start().switch_page(SOURCES_PAGE).run()
    files = tiny.corpus_files()
    at = upload(at, "big.txt", b"Long text about penguins. " * 50, "text/plain")
    assert unescape(at.error[0].value) == ("big.txt: 1.3 KB is over the 1000 bytes limit for a source; "
                                           "split the file or raise RAG_MAX_UPLOAD_BYTES")
    assert tiny.corpus_files() == files and source_count(at) == 2


def test_an_upload_may_not_overwrite_another_source(tiny):
    at = start().switch_page(SOURCES_PAGE).run()
    original = (tiny.corpus / "cats.md").read_bytes()
    at = upload(at, "cats.md", b"# Dogs\n\nDogs bark.\n", "text/markdown")
    assert "already exists" in at.error[0].value
    assert (tiny.corpus / "cats.md").read_bytes() == original


def test_submitting_without_a_file_asks_for_one(tiny):
    at = start().switch_page(SOURCES_PAGE).run()
    next(b for b in at.button if b.label == "Add and index").click().run()
    assert at.error[0].value == "Choose a file to upload first."


def test_a_source_can_be_removed_and_the_index_follows(tiny):
    at = start().switch_page(SOURCES_PAGE).run()
    at.selectbox(key="remove").set_value("rockets").run()
    at.checkbox(key="remove-sure").check().run()
    next(b for b in at.button if b.label == "Remove").click().run()
    assert not at.exception and not at.error
    assert "rockets.txt" not in tiny.corpus_files()
    assert list(at.dataframe[0].value["source_id"]) == ["cats"]


# ---------------------------------------------------------------- evaluation


def test_the_eval_page_explains_questions_whose_evidence_is_not_indexed(tiny):
    at = start().switch_page(EVAL_PAGE).run()
    next(b for b in at.button if b.label == "Run evaluation").click().run()
    assert len(at.error) == 1 and "is not indexed" in at.error[0].value
    assert not at.dataframe


# ---------------------------------------------------------------- the real model, end to end


@pytest.mark.slow
def test_real_model_answers_with_a_verbatim_quote_and_its_reference(real):
    at = ask(start(), "How does InstructGPT compare with GPT-3?")
    answer = at.session_state["history"][-1].answer
    assert not answer.abstained and answer.citations
    first = answer.citations[0]
    assert first.document.text[first.start:first.end] == first.quote
    page = html(at)
    assert "[1]</span>" in page
    assert f"<mark>{first.quote}</mark>" in page  # the corpus quotes carry no HTML-special characters
    assert "Training language models to follow instructions with human feedback</em>" in page
    assert 'href="https://arxiv.org/abs/2203.02155"' in page


@pytest.mark.slow
def test_real_model_abstains_on_an_off_topic_question(real):
    at = ask(start(), OFF_TOPIC)
    answer = at.session_state["history"][-1].answer
    assert answer.abstained and answer.abstained_because.rstrip(".") in at.warning[0].value
    assert "Nearest material" in html(at)


@pytest.mark.slow
def test_real_model_cites_an_uploaded_pdf_in_the_next_answer(real):
    at = start().switch_page(SOURCES_PAGE).run()
    at = upload(at, "penguins.pdf", make_pdf([PENGUINS]), "application/pdf", title="Penguin Winters",
                authors="Ann Author", year="2021", venue="Polar Notes")
    assert not at.error and source_count(at) == 7
    at = ask(at.switch_page("views/ask.py").run(), "How do emperor penguins survive the Antarctic winter?")
    answer = at.session_state["history"][-1].answer
    assert not answer.abstained
    assert answer.citations[0].document.title == "Penguin Winters"
    assert answer.citations[0].page == 1
    assert "Ann Author (2021). <em>Penguin Winters</em>. Polar Notes." in html(at)
    assert '<div class="rag-loc">' in html(at) and "p. 1" in html(at)


@pytest.mark.slow
def test_real_model_eval_page_shows_metrics_per_mode_a_chart_and_failures(real):
    at = start().switch_page(EVAL_PAGE).run()
    next(b for b in at.button if b.label == "Run evaluation").click().run(timeout=1200)
    assert not at.error, [e.value for e in at.error]
    table = at.dataframe[0].value
    assert list(table["system"]) == ["Dense", "BM25", "Hybrid", "Recipe: MiniLM, 1000 chars",
                                     "Recipe: bm25s, 1000 chars"]
    assert set(table.columns) >= {"hit@1", "recall@5", "mrr@10", "ndcg@10", "passage chars", "failures"}
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
    assert at.session_state["eval_report"].splits == ["tune", "test"]
    shown = {metric.label: metric.value for metric in at.metric}
    assert shown["Quotes verbatim"] == "100%"
    assert shown["Non-content quotes"] == "0"
    assert set(shown) >= {"First quote is the answer", "Declines: detail not in the sources"}
