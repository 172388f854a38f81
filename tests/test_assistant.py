"""The application layer every front end calls: options, the author rule, rollback, generation swaps."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from rag.assistant import Assistant, RequestOptions, SourceMetadata, open_assistant
from rag.corpus import parse_authors
from rag.errors import IndexBusyError, SettingsError, SourceError, UnknownSourceError
from rag.index_store import build_lock
from rag.retrieve import Retriever, SearchRequest

REPO = Path(__file__).resolve().parent.parent
NEW_SOURCE = "# Comets\n\nComets have icy tails that point away from the sun.\n"


def corpus_state(corpus: Path) -> dict[str, bytes]:
    """Every file of the corpus folder with its bytes, hidden ones included."""
    return {str(p.relative_to(corpus)): p.read_bytes() for p in sorted(corpus.rglob("*")) if p.is_file()}


@pytest.fixture
def assistant(settings, embedder) -> Assistant:
    return open_assistant(settings, embedder)[0]


@pytest.fixture
def comet_file(tmp_path) -> Path:
    path = tmp_path / "comets.md"
    path.write_text(NEW_SOURCE, encoding="utf-8")
    return path


# ---------------------------------------------------------------- per-request options


@pytest.mark.parametrize("k", [0, -3, True, 2.5])
def test_k_that_is_not_a_positive_integer_is_refused_not_replaced_by_the_default(k):
    with pytest.raises(SettingsError, match=rf"^k must be a positive integer, got {re.escape(repr(k))}$"):
        RequestOptions(k=k)


def test_an_unknown_mode_is_refused():
    with pytest.raises(SettingsError, match=r"^mode 'fuzzy' is not one of dense, bm25, hybrid$"):
        RequestOptions(mode="fuzzy")


def test_k_mode_and_sources_apply_per_request_to_search_and_ask(assistant):
    assert len(assistant.search("cats rockets", RequestOptions(k=1, mode="dense"))) == 1
    assert len(assistant.search("cats rockets", RequestOptions(k=3, mode="dense"))) == 3
    assert len(assistant.ask("How long does a house cat sleep?", RequestOptions(k=1)).hits) == 1
    assert len(assistant.ask("How long does a house cat sleep?", RequestOptions(k=3)).hits) == 3
    only_rockets = assistant.search("cats sleep", RequestOptions(k=4, mode="dense", sources=("rockets",)))
    assert {p.hit.chunk.doc_id for p in only_rockets} == {"rockets"}
    assert assistant.settings.k == 5  # nothing was rebuilt or replaced to change k


def test_search_returns_each_hit_with_its_document(assistant):
    passages = assistant.search("How long does a house cat sleep?", RequestOptions(k=2))
    first = passages[0]
    assert (first.hit.rank, first.hit.chunk.doc_id, first.document.id, first.document.title) == (
        1, "cats", "cats", "Notes on Cats")
    assert first.document.text[first.hit.chunk.start:first.hit.chunk.end] == first.hit.chunk.text


def test_an_unknown_source_filter_names_the_ids(assistant):
    with pytest.raises(UnknownSourceError, match=r"^unknown source id\(s\) 'dogs', 'eels'; see `rag sources`$"):
        assistant.search("cats", RequestOptions(sources=("eels", "dogs", "cats")))


def test_sources_and_status_describe_the_served_index(assistant):
    assert [(s.document.id, s.chunks) for s in assistant.sources()] == [("cats", 2), ("rockets", 2)]
    status = assistant.status()
    assert (status.sources, status.chunks, status.model) == (2, 4, "fake-keyword")
    assert assistant.document("rockets").title == "Rocket Basics"
    assert assistant.document("eels") is None


def test_listing_sources_of_a_built_index_loads_no_model(settings, embedder):
    open_assistant(settings, embedder)
    loads = []

    def load(_settings):  # pragma: no cover - failing here is the point of the test
        loads.append(1)
        raise AssertionError("the model was loaded")

    import rag.embedding

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rag.embedding, "load_embedder", load)
        assert [s.document.id for s in Assistant(settings).sources()] == ["cats", "rockets"]
    assert loads == []


# ---------------------------------------------------------------- one author rule


@pytest.mark.parametrize("typed, expected", [
    ("Ann Smith and Bob Jones", ("Ann Smith", "Bob Jones")),
    ("Ann Smith; Bob Jones", ("Ann Smith", "Bob Jones")),
    ("Ann Smith\nBob Jones & Cy Young", ("Ann Smith", "Bob Jones", "Cy Young")),
    ("Smith, Ann", ("Smith, Ann",)),
    ("Alexander Sandberg", ("Alexander Sandberg",)),  # "and" inside a name is not a separator
    (["Ann Smith", " Bob Jones "], ("Ann Smith", "Bob Jones")),
    ("", ()),
])
def test_authors_are_split_by_one_rule(typed, expected):
    assert parse_authors(typed) == expected
    assert SourceMetadata.from_fields(authors=typed).authors == expected


def test_an_added_source_keeps_two_authors_typed_with_and(assistant, comet_file, settings):
    metadata = SourceMetadata.from_fields(title="Comets", authors="Ann Smith and Bob Jones", year="2021")
    change = assistant.add(comet_file, metadata)
    assert change.document.authors == ("Ann Smith", "Bob Jones")
    assert assistant.document("comets").authors == ("Ann Smith", "Bob Jones")
    assert assistant.document("comets").year == 2021
    manifest = (settings.corpus_dir / "sources.yaml").read_text(encoding="utf-8")
    assert "- Ann Smith\n  - Bob Jones\n" in manifest


def test_a_year_that_is_not_a_number_is_refused():
    with pytest.raises(SourceError, match=r"^year 'soon' is not a number; type a year like 2024$"):
        SourceMetadata.from_fields(year="soon")


# ---------------------------------------------------------------- one rollback rule


def test_an_add_refused_by_the_build_lock_leaves_the_corpus_exactly_as_it_was(assistant, comet_file, settings):
    before = corpus_state(settings.corpus_dir)
    with build_lock(settings.index_dir), pytest.raises(IndexBusyError, match="another build is running"):
        assistant.add(comet_file, SourceMetadata.from_fields(title="Comets", authors="A; B"))
    assert corpus_state(settings.corpus_dir) == before
    assert [s.document.id for s in assistant.sources()] == ["cats", "rockets"]


def test_an_add_whose_build_fails_leaves_the_corpus_exactly_as_it_was(settings, embedder, comet_file):
    assistant = open_assistant(settings, embedder)[0]
    before = corpus_state(settings.corpus_dir)

    class Broken:
        name, dimension = embedder.name, embedder.dimension

        def encode(self, texts):
            raise SourceError("the model failed")

    failing = Assistant(settings, Broken())
    with pytest.raises(SourceError, match="^the model failed$"):
        failing.add(comet_file)
    assert corpus_state(settings.corpus_dir) == before
    assert assistant.document("comets") is None


def test_a_refused_file_leaves_the_corpus_exactly_as_it_was(assistant, tmp_path, settings):
    before = corpus_state(settings.corpus_dir)
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(SourceError):
        assistant.add(empty)
    with pytest.raises(SourceError, match="already exists"):
        assistant.add_upload("cats.md", NEW_SOURCE.encode())
    assert corpus_state(settings.corpus_dir) == before


def test_a_remove_refused_by_the_build_lock_puts_the_source_back(assistant, settings):
    before = corpus_state(settings.corpus_dir)
    with build_lock(settings.index_dir), pytest.raises(IndexBusyError):
        assistant.remove("rockets")
    assert corpus_state(settings.corpus_dir) == before
    assert assistant.remove("rockets").document.id == "rockets"
    assert [s.document.id for s in assistant.sources()] == ["cats"]


def test_removing_an_unknown_source_is_an_unknown_source_error(assistant):
    with pytest.raises(UnknownSourceError, match=r"^no source with id 'eels'; see `rag sources`$"):
        assistant.remove("eels")


# ---------------------------------------------------------------- generations


def test_a_build_is_served_by_the_next_request_and_the_old_generation_keeps_answering(
        assistant, comet_file, tmp_path, embedder):
    old = assistant.index
    assistant.add(comet_file, SourceMetadata.from_fields(title="Comets"))
    assert assistant.search("icy tails comets", RequestOptions(k=1))[0].hit.chunk.doc_id == "comets"
    second = tmp_path / "moons.txt"
    second.write_text("Moons\n\nMoons circle planets and raise tides on their seas.\n", encoding="utf-8")
    assistant.add(second)
    assert not old.folder.exists()  # two builds later its folder is gone...
    hits = Retriever(old, embedder).search(SearchRequest("How long does a house cat sleep?", k=1))
    assert hits[0].chunk.doc_id == "cats"  # ...and a reader still holding it is served to the end
    assert old.store.document("rockets").title == "Rocket Basics"
    assert assistant.status().sources == 4


def test_a_build_by_another_process_is_picked_up(assistant, settings, embedder, comet_file):
    assert assistant.document("comets") is None
    other = Assistant(settings, embedder)  # stands for `rag add` run in another process
    other.add(comet_file)
    assert assistant.document("comets").path == "comets.md"


# ---------------------------------------------------------------- thin front ends

# The CLI's handlers, the page and every server module.
FRONT_ENDS = sorted(str(p.relative_to(REPO)) for pattern in ("rag/cli.py", "rag/http_*.py", "rag/mcp_*.py",
                                                            "rag/openai_*.py", "app/**/*.py")
                    for p in REPO.glob(pattern))
INTERNALS = {"rag.index_store", "rag.store", "rag.corpus", "rag.vector_index", "rag.lexical", "rag.retrieve"}


@pytest.mark.parametrize("path", FRONT_ENDS)
def test_no_front_end_reaches_into_the_index_or_the_corpus(path):
    source = (REPO / path).read_text(encoding="utf-8")
    imported = {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)}
    assert not imported & INTERNALS, f"{path} imports {sorted(imported & INTERNALS)}; call rag.assistant instead"
    for reach in (r"\.index\.", r"\.store\.", r"\.manifest\.", r"\bbuild_index\(", r"\bopen_index\("):
        assert not re.search(reach, source), f"{path} reaches into the index ({reach}); call rag.assistant instead"
