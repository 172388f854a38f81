"""The Milvus store on a real Milvus: Milvus Lite in this process (a ``*.db`` file) and a Milvus
Lite server in its own process on 127.0.0.1 (an ``http://`` URI), started and stopped here.

Same candidates as the local store for every mode and filter, a collection per generation with
the alias switched only after a complete build, and a dead or hung server failing a query with
one line instead of hanging."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.build import build_index
from rag.cli import main
from rag.errors import IndexStateError, StoreUnavailableError
from rag.index_store import current_generation, open_index
from rag.retrieve import Retriever, SearchRequest
from rag.stores import open_store
from rag.stores.local import LocalStore
from rag.stores.milvus import MilvusConnection, MilvusStore, collection_name
from rag.stores.milvus_publish import MilvusPublisher

pytestmark = pytest.mark.slow

QUESTIONS = ("when do cats hunt birds", "how long does a house cat sleep", "rocket engine fuel and thrust",
             "the first stage is heaviest")


@pytest.fixture
def milvus_settings(settings, tmp_path):
    return settings.replace(store="milvus", milvus_uri=str(tmp_path / "milvus.db"), milvus_timeout=5.0)


@contextlib.contextmanager
def opened(settings, embedder) -> Iterator[tuple[object, Retriever, Retriever]]:
    """The served generation with a local and a Milvus retriever over it."""
    index = open_index(settings.index_dir, embedder.name, embedder.dimension)
    milvus = MilvusStore.open(settings, index)
    try:
        yield index, Retriever(index, embedder, store=LocalStore(index)), Retriever(index, embedder, store=milvus)
    finally:
        milvus.close()
        index.store.close()


def tie_order(candidates: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Equal scores in row order (FAISS and Milvus may list exact ties either way)."""
    return sorted(((row, round(score, 5)) for row, score in candidates), key=lambda c: (-c[1], c[0]))


def score_groups(hits) -> list[tuple[float, set[str]]]:
    """Hits as (score, chunk ids) groups, best first: the ranking up to the order of exact ties."""
    groups: dict[float, set[str]] = {}
    for hit in hits:
        groups.setdefault(round(hit.score, 5), set()).add(hit.chunk.id)
    return sorted(groups.items(), key=lambda group: -group[0])


def served(settings) -> str | None:
    publisher = MilvusPublisher(settings)
    try:
        return publisher.served()
    finally:
        publisher.close()


def collections(settings) -> set[str]:
    publisher = MilvusPublisher(settings)
    try:
        return {n for n in publisher._names() if n.startswith(f"{settings.milvus_alias}_gen_")}
    finally:
        publisher.close()


@pytest.mark.parametrize("sources", [(), ("cats",), ("rockets",)])
def test_milvus_returns_the_local_candidates_for_every_mode(milvus_settings, embedder, sources):
    build_index(milvus_settings, embedder)
    with opened(milvus_settings, embedder) as (_, local, milvus):
        for question in QUESTIONS:
            request = SearchRequest(question, k=4, mode="hybrid", sources=sources)
            local_lists, milvus_lists = local.candidates(request), milvus.candidates(request)
            assert local_lists["bm25"] or sources, question  # unfiltered, each question matches some words
            for name in ("dense", "bm25"):
                assert tie_order(milvus_lists[name]) == tie_order(local_lists[name]), (question, name)
            for mode in ("dense", "bm25", "hybrid"):
                wanted = SearchRequest(question, k=4, mode=mode, sources=sources)
                assert score_groups(milvus.search(wanted)) == score_groups(local.search(wanted)), (question, mode)


def test_batched_searches_give_each_query_its_own_candidates(milvus_settings, embedder, monkeypatch):
    monkeypatch.setattr("rag.stores.milvus.SEARCH_BATCH", 2)  # three calls, the last one partial
    build_index(milvus_settings, embedder)
    questions = [*QUESTIONS, "the and of"]  # stop words only: no terms, no call, no hits
    vectors = embedder.encode(questions)
    with opened(milvus_settings, embedder) as (_, _, milvus):
        store = milvus.store
        for restriction in (None, store.restrict(["cats"])):
            lexical = store.lexical_many(questions, 4, restriction)
            assert lexical == [store.lexical(question, 4, restriction) for question in questions]
            assert lexical[-1] == [] and all(lexical[:2])
            dense = store.dense_many(vectors, 4, restriction)
            assert [tie_order(d) for d in dense] == [tie_order(store.dense(v, 4, restriction)) for v in vectors]
        assert {row for row, _ in store.dense_many(vectors, 4, store.restrict(["rockets"]))[0]} == {2, 3}


def test_milvus_hybrid_search_fuses_by_reciprocal_rank(milvus_settings, embedder):
    build_index(milvus_settings, embedder)
    with opened(milvus_settings, embedder) as (index, local, milvus):
        question = "when do cats hunt birds"
        fused = milvus.store.hybrid_rrf(embedder.encode([question])[0], question, 4, None)
        lists = local.candidates(SearchRequest(question, mode="hybrid", fusion="rrf"))
        dense, bm25 = ([row for row, _ in lists[n]] for n in ("dense", "bm25"))
        expected = {row: sum(1 / (60 + ranked.index(row) + 1) for ranked in (dense, bm25) if row in ranked)
                    for row in range(index.manifest.chunk_count)}
        # Hunting is first in both lists; sleeping second in both.
        assert [row for row, _ in fused][:2] == [1, 0]
        assert [round(score, 6) for _, score in fused[:2]] == [round(expected[1], 6), round(expected[0], 6)]


def test_each_build_is_a_collection_and_the_alias_moves_after_it(milvus_settings, embedder, tiny_corpus):
    first = build_index(milvus_settings, embedder)
    assert served(milvus_settings) == collection_name("rag", first.generation)
    assert build_index(milvus_settings, embedder).did_nothing  # nothing changed: no new collection
    (tiny_corpus / "owls.md").write_text("---\nid: owls\ntitle: Owls\n---\nOwls hunt mice at night.\n",
                                         encoding="utf-8")
    second = build_index(milvus_settings, embedder)
    assert second.added == ("owls",) and second.chunks_embedded == 1
    assert served(milvus_settings) == collection_name("rag", second.generation)
    # The previous generation's collection stays for readers that still hold it, as on disk.
    assert collections(milvus_settings) == {collection_name("rag", g) for g in (first.generation, second.generation)}
    (tiny_corpus / "owls.md").unlink()
    third = build_index(milvus_settings, embedder)
    assert collections(milvus_settings) == {collection_name("rag", g) for g in (second.generation, third.generation)}
    with opened(milvus_settings, embedder) as (_, _, milvus):
        assert {h.chunk.doc_id for h in milvus.search(SearchRequest("owls hunt at night", k=4))} == {"cats", "rockets"}


def test_switching_a_local_index_to_milvus_publishes_it_without_embedding(settings, milvus_settings, embedder):
    local = build_index(settings, embedder)
    calls = embedder.embedded
    report = build_index(milvus_settings, embedder)
    assert (report.chunks_embedded, embedder.embedded) == (0, calls)
    assert report.republished and not report.did_nothing and not local.republished
    assert report.generation != local.generation
    assert served(milvus_settings) == collection_name("rag", report.generation)
    index = open_index(settings.index_dir, embedder.name, embedder.dimension)
    try:
        assert isinstance(open_store(milvus_settings, index), MilvusStore)
    finally:
        index.store.close()


def test_a_build_that_fails_in_milvus_leaves_the_served_collection(milvus_settings, embedder, tiny_corpus,
                                                                  monkeypatch):
    first = build_index(milvus_settings, embedder)
    with opened(milvus_settings, embedder) as (_, _, milvus):
        before = [h.chunk.id for h in milvus.search(SearchRequest("cats hunt", k=4))]
    (tiny_corpus / "owls.md").write_text("---\nid: owls\ntitle: Owls\n---\nOwls hunt mice at night.\n",
                                         encoding="utf-8")
    monkeypatch.setattr("rag.stores.milvus_publish.INSERT_ROWS", 2)
    real_call = MilvusConnection.call
    inserts = []

    def failing_call(self, what, action):
        if what == "insert rows":
            inserts.append(what)
            if len(inserts) == 2:  # the second batch of the new collection: half of it is written
                raise StoreUnavailableError("Milvus at test failed to insert rows (injected)")
        return real_call(self, what, action)

    monkeypatch.setattr("rag.stores.milvus.MilvusConnection.call", failing_call)
    with pytest.raises(StoreUnavailableError, match="injected"):
        build_index(milvus_settings, embedder)
    monkeypatch.undo()
    assert current_generation(milvus_settings.index_dir).name == first.generation
    assert served(milvus_settings) == collection_name("rag", first.generation)
    with opened(milvus_settings, embedder) as (_, _, milvus):
        assert [h.chunk.id for h in milvus.search(SearchRequest("cats hunt", k=4))] == before
    retry = build_index(milvus_settings, embedder)
    assert retry.added == ("owls",)
    # The half-filled collection of the failed build is gone; the served and previous ones stay.
    assert collections(milvus_settings) == {collection_name("rag", g) for g in (first.generation, retry.generation)}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def milvus_server(tmp_path) -> Iterator[tuple[subprocess.Popen, str]]:
    """A Milvus Lite server in its own process on 127.0.0.1, stopped even when the test fails."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(tmp_path / "srv"),
                               "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            assert server.poll() is None, "the Milvus Lite server exited at start"
            assert time.monotonic() < deadline, "the Milvus Lite server did not listen within 120 s"
            time.sleep(0.2)
        yield server, f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, signal.SIGCONT)
        server.kill()
        server.wait()


def test_a_dead_or_hung_milvus_server_fails_the_query_in_one_line(settings, embedder, milvus_server, capfd):
    server, uri = milvus_server
    remote = settings.replace(store="milvus", milvus_uri=uri, milvus_timeout=3.0)
    build_index(remote, embedder)
    with opened(remote, embedder) as (_, _, milvus):
        request = SearchRequest("when do cats hunt birds", k=2, mode="dense")
        assert [h.chunk.doc_id for h in milvus.search(request)] == ["cats", "cats"]
        os.kill(server.pid, signal.SIGSTOP)  # hung mid-conversation: the deadline ends the call
        with pytest.raises(StoreUnavailableError) as hung:
            milvus.search(request)
        assert str(hung.value).startswith(f"Milvus at {uri} failed to search vectors within 3s (")
        server.kill()
        server.wait()
        with pytest.raises(StoreUnavailableError) as dead:
            milvus.search(SearchRequest("when do cats hunt birds", k=2, mode="bm25"))
        assert str(dead.value).startswith(f"Milvus at {uri} failed to run a full-text search within 3s (")
        for message in (str(hung.value), str(dead.value)):
            assert "\n" not in message and message.endswith("check that it is running and RAG_MILVUS_URI points at it")
    # pymilvus logs each failed call with its traceback: not on stderr, where only our line belongs.
    assert capfd.readouterr().err == ""


def test_a_milvus_uri_nobody_serves_is_one_line_at_open(settings, embedder):
    build_index(settings, embedder)
    nowhere = settings.replace(store="milvus", milvus_uri=f"http://127.0.0.1:{_free_port()}", milvus_timeout=2.0)
    index = open_index(settings.index_dir, embedder.name, embedder.dimension)
    try:
        with pytest.raises(StoreUnavailableError,
                           match=r"^Milvus at http://127\.0\.0\.1:\d+ failed to connect within 2s"):
            open_store(nowhere, index)
    finally:
        index.store.close()


def test_a_generation_missing_from_milvus_says_to_rebuild(settings, milvus_settings, embedder):
    build_index(settings, embedder)
    index = open_index(settings.index_dir, embedder.name, embedder.dimension)
    try:
        with pytest.raises(IndexStateError, match=r"has no collection for the served generation gen-[0-9a-f-]+; "
                                                  r"run `rag build` with RAG_STORE=milvus"):
            open_store(milvus_settings, index)
    finally:
        index.store.close()



def cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    """``rag ARGV`` in a fresh process (no test harness between the libraries' logs and stderr),
    embedding with the keyword fake, as ``cli_env`` does in this one."""
    script = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from conftest import KeywordEmbedder; "
              "import rag.embedding; rag.embedding.load_embedder = lambda settings: KeywordEmbedder(); "
              "from rag.cli import main; sys.exit(main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", script, *argv], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=300)


def test_a_milvus_lite_file_held_by_another_process_is_one_line_on_stderr(cli_env):
    """Milvus Lite logs the refused lock with two tracebacks before pymilvus raises: the user sees
    only the command's one line."""
    assert main(["build"]) == 0
    uri = str(cli_env / "held.db")
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pymilvus import MilvusClient; "
                               f"MilvusClient({uri!r}); print('held', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = cli({"RAG_STORE": "milvus", "RAG_MILVUS_URI": uri}, "search", "when do cats hunt")
    finally:
        holder.kill()
        holder.wait()
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"rag: error: Milvus Lite cannot open {uri}: another process may hold it (Milvus Lite serves one process "
        f"per file); stop that process, or serve the file with `milvus-lite server --data-dir {uri} --host "
        "127.0.0.1` and set RAG_MILVUS_URI=http://127.0.0.1:19530\n")


def test_a_milvus_lite_file_in_a_missing_folder_is_one_line_on_stderr(cli_env):
    assert main(["build"]) == 0
    uri = cli_env / "nowhere" / "milvus.db"
    result = cli({"RAG_STORE": "milvus", "RAG_MILVUS_URI": str(uri)}, "search", "when do cats hunt")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (f"rag: error: Milvus Lite cannot create {uri}: the folder {uri.parent} does not exist; "
                             "create it, or set RAG_MILVUS_URI to a file in an existing folder\n")
    assert not uri.parent.exists()
