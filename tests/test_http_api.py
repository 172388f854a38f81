"""The HTTP API served by uvicorn on 127.0.0.1, called with httpx: the CLI's JSON shapes, the write
token, one-line errors with the right status, and a rebuild swapped in under a running server."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import KeywordEmbedder
from helpers import free_port, serving

import rag.embedding
from rag.assistant import Assistant, open_assistant
from rag.cli import main
from rag.http_api import create_app
from rag.llm_server import MODEL_ALIAS

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PENGUINS = b"Penguin Notes\n\nEmperor penguins huddle together to survive the Antarctic winter.\n"


@pytest.fixture
def assistant(settings, embedder) -> Assistant:
    return open_assistant(settings.replace(max_upload_bytes=4000), embedder)[0]


@pytest.fixture
def client(assistant) -> Iterator[httpx.Client]:
    with serving(create_app(assistant, token=TOKEN)) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield http


@pytest.fixture
def cli_json(assistant, monkeypatch, capsys):
    """``rag ... --json`` over the same folders the server serves, parsed."""
    settings = assistant.settings
    for name, value in {"RAG_CORPUS_DIR": settings.corpus_dir, "RAG_INDEX_DIR": settings.index_dir,
                        "RAG_MODEL_NAME": KeywordEmbedder.name, "RAG_CHUNK_SIZE": settings.chunk_size,
                        "RAG_CHUNK_OVERLAP": settings.chunk_overlap}.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.setattr(rag.embedding, "load_embedder", lambda _settings: KeywordEmbedder())

    def run(*argv: str):
        capsys.readouterr()
        assert main([*argv, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    return run


def corpus_state(corpus: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(corpus.iterdir()) if p.is_file()}


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert (response.status_code, response.json()) == (status, {"error": message})


# ---------------------------------------------------------------- reads, in the CLI's shapes


def test_healthz_names_the_served_generation(client, assistant):
    body = client.get("/healthz").json()
    assert body == {"status": "ok", "generation": assistant.status().generation, "model": "fake-keyword",
                    "sources": 2, "chunks": 4, "built_at": assistant.status().built_at}


def test_search_ask_and_sources_answer_exactly_what_the_cli_prints(client, cli_json):
    question = "How long does a house cat sleep?"
    search = client.post("/v1/search", json={"question": question, "k": 3, "mode": "bm25"})
    assert search.status_code == 200
    assert search.json() == cli_json("search", question, "--k", "3", "--mode", "bm25")
    assert [hit["source_id"] for hit in search.json()][:1] == ["cats"]
    ask = client.post("/v1/ask", json={"question": question})
    assert ask.json() == cli_json("ask", question)
    # a duration is asked: the reader leads with the figure
    assert ask.json()["citations"][0]["quote"] == "A house cat sleeps about fifteen hours."
    assert client.get("/v1/sources").json() == cli_json("sources")


def test_per_request_options_reach_the_search(client):
    hits = client.post("/v1/search", json={"question": "cats sleep", "k": 4, "mode": "dense",
                                           "sources": ["rockets"]}).json()
    assert {hit["source_id"] for hit in hits} == {"rockets"} and len(hits) == 2
    assert len(client.post("/v1/search", json={"question": "cats", "k": 1}).json()) == 1


def test_openapi_docs_are_served(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/search", "/v1/ask", "/v1/sources", "/v1/sources/{source_id}", "/healthz",
            "/v1/chat/completions", "/v1/models"} <= set(paths)
    assert "swagger" in client.get("/docs").text.lower()


# ---------------------------------------------------------------- bad requests: one line, right status


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"question": "cats", "k": 0}, 422, "k must be a positive integer, got 0"),
    ({"question": "cats", "k": -1}, 422, "k must be a positive integer, got -1"),
    ({"question": "cats", "mode": "fuzzy"}, 422, "mode 'fuzzy' is not one of dense, bm25, hybrid"),
    ({"question": "x" * 2001}, 422, "the question is 2,001 characters long; the limit is 2,000. Ask something shorter"),
    ({"question": "  "}, 422, "the question is empty; type a question"),
    ({}, 422, "question: Field required"),
    ({"question": "cats", "colour": "red"}, 422, "colour: Extra inputs are not permitted"),
    ({"question": "cats", "sources": ["dogs"]}, 404, "unknown source id(s) 'dogs'; see `rag sources`"),
])
def test_bad_questions_are_refused_in_one_line(client, body, status, message):
    for path in ("/v1/search", "/v1/ask"):
        assert_error(client.post(path, json=body), status, message)


def test_malformed_json_is_a_400(client):
    response = client.post("/v1/ask", content=b'{"question": "cats"', headers={"Content-Type": "application/json"})
    assert_error(response, 400, "the request body is not valid JSON")


def test_an_unknown_path_is_a_json_404(client):
    assert_error(client.get("/v1/nothing"), 404, "Not Found")


def test_an_unexpected_failure_is_a_500_without_a_traceback(client, assistant, monkeypatch):
    def explode(*_args):
        raise ZeroDivisionError("secret internals")

    monkeypatch.setattr(assistant, "search", explode)
    response = client.post("/v1/search", json={"question": "cats"})
    assert_error(response, 500, "internal error; the server log has the details")
    assert "secret" not in response.text and "Traceback" not in response.text


# ---------------------------------------------------------------- checked prose ("generate": true)


@contextlib.contextmanager
def prose_client(assistant: Assistant, llm_url: str, monkeypatch) -> Iterator[httpx.Client]:
    """The API over the same index with a language model at ``llm_url`` (also set for the CLI)."""
    llm = {"llm_url": llm_url, "llm_model": MODEL_ALIAS, "llm_max_tokens": 48, "llm_timeout": 300.0}
    for name, value in llm.items():
        monkeypatch.setenv(f"RAG_{name.upper()}", str(value))
    with_model = open_assistant(assistant.settings.replace(**llm), KeywordEmbedder())[0]
    with serving(create_app(with_model)) as url, httpx.Client(base_url=url, timeout=600) as http:
        yield http


PROSE_FIELDS = {"prose", "sentences", "prose_withheld_because", "generation_notice"}


@pytest.mark.slow
def test_ask_with_generate_returns_the_checked_prose_the_cli_prints(assistant, cli_json, llm_server, monkeypatch):
    question = "How long does a house cat sleep?"
    with prose_client(assistant, llm_server.url, monkeypatch) as client:
        response = client.post("/v1/ask", json={"question": question, "generate": True})
        plain = client.post("/v1/ask", json={"question": question}).json()
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == cli_json("ask", question, "--generate")  # temperature 0: the same reply, checked the same
    assert set(body) - set(plain) == PROSE_FIELDS and PROSE_FIELDS.isdisjoint(plain)
    assert {k: v for k, v in body.items() if k not in PROSE_FIELDS} == plain
    assert body["generation_notice"] is None and body["sentences"], "the real model wrote a reply"
    kept = [s["text"] for s in body["sentences"] if s["supported"]]
    assert body["prose"] == (" ".join(kept) if kept else None)
    assert (body["prose_withheld_because"] is None) == bool(kept)


def test_ask_with_generate_and_the_model_server_down_keeps_the_answer_with_a_notice(assistant, cli_json,
                                                                                    monkeypatch):
    url = f"http://127.0.0.1:{free_port()}/v1"
    question = "How long does a house cat sleep?"
    with prose_client(assistant, url, monkeypatch) as client:
        response = client.post("/v1/ask", json={"question": question, "generate": True})
    assert response.status_code == 200
    body = response.json()
    assert body["generation_notice"] == (f"Prose unavailable: cannot reach the language model at {url} (is the "
                                         "server running?). Showing the quoted answer.")
    assert (body["prose"], body["sentences"], body["abstained"]) == (None, [], False)
    assert body["citations"][0]["quote"] == "A house cat sleeps about fifteen hours."
    assert body == cli_json("ask", question, "--generate")


def test_ask_with_generate_and_no_model_configured_is_a_503(client):
    assert_error(client.post("/v1/ask", json={"question": "cats", "generate": True}), 503,
                 '"generate": true needs a language model: start the server with RAG_LLM_URL set to an '
                 "OpenAI-compatible base URL (e.g. http://127.0.0.1:11434/v1 for Ollama) and RAG_LLM_MODEL to "
                 "its model name")
    assert_error(client.post("/v1/ask", json={"question": "cats", "generate": "maybe"}), 422,
                 "generate: Input should be a valid boolean, unable to interpret input")


# ---------------------------------------------------------------- writes


def test_writes_need_the_token_and_change_nothing_without_it(client, assistant):
    before = corpus_state(assistant.settings.corpus_dir)
    files = {"file": ("penguins.txt", PENGUINS, "text/plain")}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        assert_error(client.post("/v1/sources", files=files, headers=headers), 401,
                     "this needs the header 'Authorization: Bearer <RAG_API_TOKEN>'")
        assert_error(client.delete("/v1/sources/cats", headers=headers), 401,
                     "this needs the header 'Authorization: Bearer <RAG_API_TOKEN>'")
    assert corpus_state(assistant.settings.corpus_dir) == before


def test_without_a_configured_token_every_write_is_refused(assistant):
    with serving(create_app(assistant, token="")) as url, httpx.Client(base_url=url) as http:
        response = http.delete("/v1/sources/cats", headers={"Authorization": "Bearer anything"})
        assert_error(response, 403, "writes are disabled: start the server with RAG_API_TOKEN set to enable them")
        assert http.get("/v1/sources").status_code == 200  # reads still work


def test_an_upload_is_indexed_and_served_by_the_next_request(client, assistant):
    generation = client.get("/healthz").json()["generation"]
    response = client.post("/v1/sources", headers=AUTH, files={"file": ("penguins.txt", PENGUINS, "text/plain")},
                           data={"title": "Penguin Notes", "authors": "Ann Smith and Bob Jones", "year": "2021"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["source_id"], body["authors"], body["chunks_embedded"], body["chunk_count"]) == (
        "penguins", ["Ann Smith", "Bob Jones"], 1, 5)
    assert client.get("/healthz").json()["generation"] == body["generation"] != generation
    (hit,) = client.post("/v1/search", json={"question": "emperor penguins huddle", "k": 1}).json()
    assert (hit["source_id"], hit["title"]) == ("penguins", "Penguin Notes")
    assert client.delete("/v1/sources/penguins", headers=AUTH).json()["chunk_count"] == 4


def test_refused_uploads_leave_the_corpus_as_it_was(client, assistant):
    before = corpus_state(assistant.settings.corpus_dir)
    over_cap = {"file": ("big.txt", b"Penguins. " * 500, "text/plain")}  # 5,000 bytes over a 4,000 cap
    assert_error(client.post("/v1/sources", headers=AUTH, files=over_cap), 413,
                 "the request body is larger than the 4,000 bytes this endpoint accepts")
    bad = client.post("/v1/sources", headers=AUTH, files={"file": ("empty.txt", b"", "text/plain")})
    assert_error(bad, 422, "empty.txt: the file is empty")
    taken = client.post("/v1/sources", headers=AUTH, files={"file": ("cats.md", PENGUINS, "text/markdown")})
    assert_error(taken, 422, "cats.md: a source with this file name already exists; rename the file")
    year = client.post("/v1/sources", headers=AUTH, files={"file": ("p.txt", PENGUINS, "text/plain")},
                       data={"year": "soon"})
    assert_error(year, 422, "year 'soon' is not a number; type a year like 2024")
    assert corpus_state(assistant.settings.corpus_dir) == before


def test_a_body_over_the_cap_without_a_length_is_cut_off_with_413(client):
    def chunks():
        for _ in range(40):
            yield b"x" * 32_768  # 1.3 MB in all, over the 1 MB cap of JSON bodies

    response = client.post("/v1/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(response, 413, "the request body is larger than the 1,048,576 bytes this endpoint accepts")


def test_removing_an_unknown_source_is_a_404(client):
    assert_error(client.delete("/v1/sources/eels", headers=AUTH), 404, "no source with id 'eels'; see `rag sources`")


def test_an_add_while_another_build_runs_is_a_409_and_changes_nothing(client, assistant):
    from rag.index_store import build_lock

    before = corpus_state(assistant.settings.corpus_dir)
    with build_lock(assistant.settings.index_dir):
        response = client.post("/v1/sources", headers=AUTH, files={"file": ("p.txt", PENGUINS, "text/plain")})
    assert response.status_code == 409 and response.json()["error"].startswith("another build is running on ")
    assert corpus_state(assistant.settings.corpus_dir) == before


def test_queries_during_a_rebuild_all_succeed(client, assistant):
    statuses: list[int] = []

    def ask_repeatedly() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=60) as http:
            for _ in range(15):
                statuses.append(http.post("/v1/ask", json={"question": "How long does a house cat sleep?"})
                                .status_code)

    askers = [threading.Thread(target=ask_repeatedly) for _ in range(4)]
    for thread in askers:
        thread.start()
    for n in range(3):  # three generations swapped in while the askers run
        name = f"notes{n}.txt"
        added = client.post("/v1/sources", headers=AUTH, files={"file": (name, PENGUINS, "text/plain")})
        assert added.status_code == 201, added.text
    for thread in askers:
        thread.join()
    assert statuses == [200] * 60
    assert client.get("/healthz").json()["sources"] == 5


def test_the_default_query_path_imports_no_server_code(assistant):
    """``rag search`` / ``rag ask`` (and the page, through the same modules) never load FastAPI or MCP."""
    settings = assistant.settings
    script = ("import sys; sys.argv = ['rag', 'ask', 'cats', '--json']; import keyword_rag; from rag.cli import main; "
              "main(sys.argv[1:]); print(sorted({m.split('.')[0] for m in sys.modules} & "
              "{'fastapi', 'uvicorn', 'mcp', 'openai', 'httpx'}), file=sys.stderr)")
    env = {**os.environ, "RAG_CORPUS_DIR": str(settings.corpus_dir), "RAG_INDEX_DIR": str(settings.index_dir),
           "RAG_MODEL_NAME": KeywordEmbedder.name, "RAG_CHUNK_SIZE": str(settings.chunk_size),
           "RAG_CHUNK_OVERLAP": str(settings.chunk_overlap), "PYTHONPATH": str(Path(__file__).parent)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert json.loads(done.stdout)["question"] == "cats"
    assert done.stderr.strip().splitlines()[-1] == "[]"
