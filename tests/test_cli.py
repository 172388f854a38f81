"""The ``rag`` command on the tiny corpus with the keyword embedder: JSON shapes from DESIGN.md's
contracts, batch mode, adding sources with metadata, and one-line errors on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.cli import main

HIT_FIELDS = {"rank", "score", "source_id", "title", "section", "page", "text", "start", "end", "retrievers"}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_ok(capsys, *argv: str) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return out


def assert_one_line_error(capsys, argv: tuple[str, ...], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (1, "")
    assert err == f"rag: error: {message}\n"


@pytest.fixture
def built(cli_env, capsys) -> Path:
    run_ok(capsys, "build")
    return cli_env


# ---------------------------------------------------------------- build


def test_build_json_reports_what_changed(cli_env, capsys):
    report = json.loads(run_ok(capsys, "build", "--json"))
    assert {k: report[k] for k in ("added", "changed", "removed", "unchanged", "chunks_embedded",
                                   "chunk_count")} == {
        "added": ["cats", "rockets"], "changed": [], "removed": [], "unchanged": [],
        "chunks_embedded": 4, "chunk_count": 4}
    assert report["generation"] == (cli_env / "index" / "CURRENT").read_text(encoding="utf-8")
    assert run_ok(capsys, "build") == "index is up to date: 4 chunks from 2 sources\n"


def test_build_honours_corpus_and_index_flags(cli_env, capsys, tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.delenv("RAG_INDEX_DIR")
    out = run_ok(capsys, "build", "--corpus", str(tiny_corpus), "--index", str(tmp_path / "elsewhere"))
    assert out.startswith("added 2, changed 0, removed 0, unchanged 0 sources; embedded 4 chunks and 8 sentences; "
                          "index holds 4 chunks (")
    assert (tmp_path / "elsewhere" / "CURRENT").exists()


# ---------------------------------------------------------------- search


def test_search_json_hits_have_exactly_the_contract_fields(built, capsys):
    hits = json.loads(run_ok(capsys, "search", "How long does a house cat sleep?", "--json", "--k", "2"))
    assert len(hits) == 2
    assert all(set(h) == HIT_FIELDS for h in hits)
    assert hits[0] == {
        "rank": 1, "score": 1.0, "source_id": "cats", "title": "Notes on Cats", "section": "Sleeping",
        "page": None, "text": "Cats sleep for most of the day. A house cat sleeps about fifteen hours.",
        "start": 10, "end": 81, "retrievers": ["dense", "bm25"],
    }
    assert [h["rank"] for h in hits] == [1, 2]
    assert hits[1]["source_id"] == "cats" and hits[1]["section"] == "Hunting"


def test_search_section_paths_are_joined_and_offsets_exact(built, capsys, tiny_corpus):
    (hit,) = json.loads(run_ok(capsys, "search", "rocket stage heaviest", "--json", "--k", "1",
                               "--mode", "bm25"))
    assert hit["section"] == "Rocket Basics > Staging"
    assert hit["retrievers"] == ["bm25"]
    text = (tiny_corpus / "rockets.txt").read_text(encoding="utf-8")
    assert text[hit["start"]:hit["end"]] == hit["text"]


def test_search_source_filter_and_modes(built, capsys):
    hits = json.loads(run_ok(capsys, "search", "cats hunt", "--json", "--mode", "dense",
                             "--source", "rockets"))
    assert {h["source_id"] for h in hits} == {"rockets"}
    assert json.loads(run_ok(capsys, "search", "cats hunt", "--json", "--mode", "bm25",
                             "--source", "rockets")) == []


def test_search_prints_readable_text_without_json(built, capsys):
    out = run_ok(capsys, "search", "What do cats hunt at dawn?", "--k", "1")
    assert out == ("[1] 1.000  Notes on Cats — Hunting  (cats 92:171)\n"
                   "    Cats hunt small birds and mice at dawn. They stalk silently before they pounce.\n\n")


def test_search_builds_the_index_on_first_use(cli_env, capsys):
    code, out, err = run(capsys, "search", "cats", "--json", "--k", "1")
    assert code == 0
    assert len(json.loads(out)) == 1
    assert err.startswith("built the index first: 4 chunks from 2 sources in ")


def test_search_queries_batch_prints_one_json_line_per_query(built, capsys, tmp_path):
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"id": "q1", "question": "How long does a house cat sleep?"}\n\n'
                       '{"id": 7, "question": "Which rocket stage is the heaviest?", "extra": true}\n'
                       '{"id": "q3", "question": "engine thrust"}\n', encoding="utf-8")
    out = run_ok(capsys, "search", "--queries", str(queries), "--k", "2", "--mode", "hybrid", "--json")
    lines = out.splitlines()
    assert len(lines) == 3
    rows = [json.loads(line) for line in lines]
    assert [(r["id"], r["question"]) for r in rows] == [
        ("q1", "How long does a house cat sleep?"), (7, "Which rocket stage is the heaviest?"),
        ("q3", "engine thrust")]
    assert all(set(r) == {"id", "question", "hits"} for r in rows)
    assert all(len(r["hits"]) == 2 and all(set(h) == HIT_FIELDS for h in r["hits"]) for r in rows)
    assert [r["hits"][0]["source_id"] for r in rows] == ["cats", "rockets", "rockets"]
    assert rows[1]["hits"][0]["section"] == "Rocket Basics > Staging"


def test_search_queries_errors_name_the_file_and_line_before_any_output(cli_env, capsys, tmp_path):
    queries = tmp_path / "bad.jsonl"
    queries.write_text('{"id": "q1", "question": "cats"}\n{"question": "no id"}\n', encoding="utf-8")
    assert_one_line_error(capsys, ("search", "--queries", str(queries), "--json"),
                          f"{queries}:2: expected a JSON object with 'id' and 'question'")
    assert not (cli_env / "index").exists()  # refused before the model loaded or anything was built
    missing = tmp_path / "missing.jsonl"
    assert_one_line_error(capsys, ("search", "--queries", str(missing)),
                          f"cannot read queries file {str(missing)!r}: FileNotFoundError")


# ---------------------------------------------------------------- sources / add / remove


def test_sources_json_lists_metadata_and_chunk_counts(built, capsys):
    rows = json.loads(run_ok(capsys, "sources", "--json"))
    assert rows == [
        {"source_id": "cats", "title": "Notes on Cats", "authors": ["Ada Lovelace"], "year": 2020,
         "venue": "Journal of Feline Studies", "url": "https://example.org/cats", "kind": "md",
         "file": "cats.md", "chunks": 2},
        {"source_id": "rockets", "title": "Rocket Basics", "authors": ["Robert Goddard"], "year": 1926,
         "venue": "", "url": "", "kind": "txt", "file": "rockets.txt", "chunks": 2},
    ]
    text = run_ok(capsys, "sources")
    assert text.splitlines()[0].split() == ["cats", "2", "chunks", "2020", "Notes", "on", "Cats", "—",
                                            "Ada", "Lovelace"]


def test_add_with_metadata_flags_indexes_only_the_new_source(built, capsys, tmp_path, tiny_corpus):
    new = tmp_path / "owl notes.txt"
    new.write_text("Owl Notes\n\nBarn owls hunt voles by sound at night.\n", encoding="utf-8")
    out = run_ok(capsys, "add", str(new), "--id", "owls", "--title", "On Owls", "--authors",
                 "Ann Owl; Bo Hoot", "--year", "2024", "--venue", "Owl Review", "--url", "https://owls.example")
    assert out == "added 'owls' (On Owls); embedded 1 chunks, index holds 5\n"
    assert (tiny_corpus / "owl-notes.txt").exists()
    rows = {r["source_id"]: r for r in json.loads(run_ok(capsys, "sources", "--json"))}
    assert rows["owls"] == {"source_id": "owls", "title": "On Owls", "authors": ["Ann Owl", "Bo Hoot"],
                            "year": 2024, "venue": "Owl Review", "url": "https://owls.example", "kind": "txt",
                            "file": "owl-notes.txt", "chunks": 1}
    (hit,) = json.loads(run_ok(capsys, "search", "owls voles", "--json", "--k", "1"))
    assert (hit["source_id"], hit["title"], hit["text"]) == ("owls", "On Owls",
                                                             "Barn owls hunt voles by sound at night.")


def test_add_of_a_bad_file_changes_nothing(built, capsys, tmp_path, tiny_corpus):
    before = sorted(p.name for p in tiny_corpus.iterdir())
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert_one_line_error(capsys, ("add", str(empty)), "empty.txt: the file is empty")
    assert_one_line_error(capsys, ("add", str(tmp_path / "nope.md")),
                          f"{str(tmp_path / 'nope.md')!r} is not a file; check the path")
    assert sorted(p.name for p in tiny_corpus.iterdir()) == before


def test_add_splits_authors_typed_with_and_like_the_page_does(built, capsys, tmp_path):
    new = tmp_path / "owls.txt"
    new.write_text("Owl Notes\n\nBarn owls hunt voles by sound at night.\n", encoding="utf-8")
    row = json.loads(run_ok(capsys, "add", str(new), "--authors", "Ann Smith and Bob Jones", "--json"))
    assert (row["source_id"], row["authors"], row["chunk_count"]) == ("owls", ["Ann Smith", "Bob Jones"], 5)


def test_an_add_refused_by_the_build_lock_leaves_the_corpus_exactly_as_it_was(built, capsys, tmp_path,
                                                                              tiny_corpus):
    from rag.index_store import build_lock

    new = tmp_path / "owls.txt"
    new.write_text("Owl Notes\n\nBarn owls hunt voles by sound at night.\n", encoding="utf-8")
    before = {p.name: p.read_bytes() for p in tiny_corpus.iterdir()}
    with build_lock(built / "index"):
        code, out, err = run(capsys, "add", str(new), "--authors", "A; B")
    assert (code, out) == (1, "")
    assert err.startswith("rag: error: another build is running on ")
    assert {p.name: p.read_bytes() for p in tiny_corpus.iterdir()} == before


def test_ask_takes_k_per_request(built, capsys):
    answer = json.loads(run_ok(capsys, "ask", "How long does a house cat sleep?", "--k", "1", "--json"))
    assert [(c["source_id"], c["section"], c["quote"]) for c in answer["citations"]] == [
        ("cats", "Sleeping", "A house cat sleeps about fifteen hours."),  # a duration is asked: the figure leads
        ("cats", "Sleeping", "Cats sleep for most of the day.")]


def test_ask_with_history_rewrites_the_follow_up_and_keeps_to_the_previous_source(built, capsys, tmp_path):
    history = tmp_path / "history.jsonl"
    history.write_text('{"question": "How long does a house cat sleep?"}\n', encoding="utf-8")
    answer = json.loads(run_ok(capsys, "ask", "And what do they hunt?", "--history", str(history), "--json"))
    assert (answer["searched_as"], answer["rewritten_by"], answer["kept_to_sources"]) == (
        "And what do they hunt (long house cat sleep)?", "rule", ["cats"])
    # The carried source keeps every quote to the cats notes.
    assert {c["source_id"] for c in answer["citations"]} == {"cats"}
    assert "prose" not in answer  # no --generate: the answer stays extractive


def test_a_follow_up_is_answered_about_what_it_asks_not_what_it_carried(built, capsys, tmp_path):
    # The rule carries 'long house cat sleep' into the follow-up; its own word, 'hunt', still gets a
    # quote since the reader weighs the passage's rank less (0.4, refitted on the tuning split).
    history = tmp_path / "history.jsonl"
    history.write_text('{"question": "How long does a house cat sleep?"}\n', encoding="utf-8")
    answer = json.loads(run_ok(capsys, "ask", "And what do they hunt?", "--history", str(history), "--json"))
    assert "Cats hunt small birds and mice at dawn." in [c["quote"] for c in answer["citations"]]


def test_ask_with_history_accepts_its_own_json_lines_and_prints_the_rewrite(built, capsys, tmp_path, monkeypatch):
    earlier = json.loads(run_ok(capsys, "ask", "How long does a house cat sleep?", "--json"))
    history = tmp_path / "history.jsonl"
    history.write_text(json.dumps(earlier) + "\n", encoding="utf-8")
    out = run_ok(capsys, "ask", "And what do they hunt?", "--history", str(history))
    assert out.startswith("Searched as: And what do they hunt (long house cat sleep)?  (in cats)\n\n")
    monkeypatch.setenv("RAG_FOLLOWUP_SOURCES", "named")  # keep only to a source it names: this one names none
    out = run_ok(capsys, "ask", "And what do they hunt?", "--history", str(history))
    assert out.startswith("Searched as: And what do they hunt (long house cat sleep)?\n\n")


@pytest.mark.parametrize(("argv", "message"), [
    (("ask", "q", "--generate"), "--generate needs a language model: set RAG_LLM_URL to an OpenAI-compatible base "
                                 "URL (e.g. http://127.0.0.1:11434/v1 for Ollama) and RAG_LLM_MODEL to its model name"),
    (("ask", "q", "--history", "/nonexistent/h.jsonl"),
     "cannot read history file '/nonexistent/h.jsonl': FileNotFoundError"),
])
def test_ask_generate_and_history_errors_are_one_line(cli_env, capsys, monkeypatch, argv, message):
    monkeypatch.delenv("RAG_LLM_URL", raising=False)
    assert_one_line_error(capsys, argv, message)


def test_a_malformed_history_line_is_named(cli_env, capsys, tmp_path):
    history = tmp_path / "h.jsonl"
    history.write_text('{"question": "ok?"}\n{"q": 1}\n', encoding="utf-8")
    assert_one_line_error(capsys, ("ask", "and then?", "--history", str(history)),
                          f"{history}:2: expected a JSON object with a non-empty 'question' (and optional "
                          "'searched_as' and 'source_ids' list)")


@pytest.mark.slow
def test_ask_generate_json_adds_checked_prose_from_the_real_model(built, capsys, monkeypatch, llm_server):
    monkeypatch.setenv("RAG_LLM_URL", llm_server.url)
    monkeypatch.setenv("RAG_LLM_MODEL", "smollm2")
    answer = json.loads(run_ok(capsys, "ask", "How long does a house cat sleep?", "--generate", "--json"))
    assert answer["citations"][0]["source_id"] == "cats"  # the quotes are always there
    assert answer["generation_notice"] is None
    assert answer["sentences"], "the model wrote something, and each sentence was judged"
    for sentence in answer["sentences"]:
        assert set(sentence) == {"text", "markers", "supported", "support", "reason"}
        assert sentence["supported"] == (sentence["reason"] is None)
    kept = [s["text"] for s in answer["sentences"] if s["supported"]]
    assert answer["prose"] == (" ".join(kept) if kept else None)
    assert (answer["prose_withheld_because"] is None) == bool(kept)


@pytest.mark.slow
def test_ask_generate_with_the_server_down_prints_the_quotes_and_a_notice(built, capsys, monkeypatch):
    from rag.llm_server import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    monkeypatch.setenv("RAG_LLM_URL", url)
    out = run_ok(capsys, "ask", "How long does a house cat sleep?", "--generate")
    assert out.startswith(f"Prose unavailable: cannot reach the language model at {url} (is the server running?). "
                          "Showing the quoted answer.\n\nQuotes:\n“")
    assert "A house cat sleeps about fifteen hours." in out and "Notes on Cats" in out


def test_remove_drops_the_source_from_the_index(built, capsys):
    assert run_ok(capsys, "remove", "rockets") == "removed 'rockets'; index holds 2 chunks\n"
    assert [r["source_id"] for r in json.loads(run_ok(capsys, "sources", "--json"))] == ["cats"]
    assert_one_line_error(capsys, ("remove", "rockets"), "no source with id 'rockets'; see `rag sources`")


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(("argv", "message"), [
    (("search", "", "--json"), "the question is empty; type a question"),
    (("search", "   "), "the question is empty; type a question"),
    (("search", "cats", "--k", "0"), "k must be a positive integer, got 0"),
    (("search", "cats", "--k", "-2"), "k must be a positive integer, got -2"),
    (("ask", "cats", "--k", "0"), "k must be a positive integer, got 0"),
    (("search", "x" * 10_000),
     "the question is 10,000 characters long; the limit is 2,000. Ask something shorter"),
    (("search", "cats", "--source", "dogs"), "unknown source id(s) 'dogs'; see `rag sources`"),
    (("search",), "search needs a QUESTION or --queries FILE"),
])
def test_search_errors_are_one_line_on_stderr(built, capsys, argv, message):
    assert_one_line_error(capsys, argv, message)


def test_an_index_from_another_model_is_refused(built, capsys, monkeypatch):
    monkeypatch.setenv("RAG_MODEL_NAME", "sentence-transformers/all-MiniLM-L6-v2")
    assert_one_line_error(capsys, ("sources", "--json"),
                          "index was built with model 'fake-keyword', but the configured model is "
                          "'sentence-transformers/all-MiniLM-L6-v2'; run `rag build` to rebuild it")


@pytest.mark.parametrize(("name", "value", "message"), [
    ("RAG_K", "many", "setting k='many' is not a valid int"),
    ("RAG_MODE", "fuzzy", "mode 'fuzzy' is not one of dense, bm25, hybrid"),
    ("RAG_CHUNK_OVERLAP", "500", "chunk_overlap 500 must be at least 0 and smaller than chunk_size 200"),
])
def test_bad_settings_in_the_environment_are_one_line_errors(cli_env, capsys, monkeypatch, name, value,
                                                             message):
    monkeypatch.setenv(name, value)
    assert_one_line_error(capsys, ("build",), message)


def test_a_missing_corpus_is_a_one_line_error(cli_env, capsys, tmp_path):
    assert_one_line_error(capsys, ("build", "--corpus", str(tmp_path / "absent")),
                          f"corpus folder {str(tmp_path / 'absent')!r} does not exist; pass --corpus DIR")


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("build", "add", "remove", "sources", "search"):
        assert command in out
