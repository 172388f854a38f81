"""What every page shares: settings, the application layer loaded once per process, the index status.

The embedder and the :class:`~rag.assistant.Assistant` are cached for the life of the server. The
assistant reopens the index when ``CURRENT`` names another generation, so a rebuild (from this
page or from ``rag build``) is picked up on the next rerun without restarting, and an unchanged
index is never reopened.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import streamlit as st

import cards
from rag import embedding
from rag.assistant import Assistant
from rag.build import BuildReport
from rag.embedding import Embedder
from rag.errors import IndexBusyError, IndexStateError, RagError
from rag.reporting import source_rows as rows_of
from rag.settings import Settings
from rag.types import Answer

if TYPE_CHECKING:  # the default page never imports the generator
    from rag.generate import Prose


@dataclass(frozen=True)
class Ready:
    settings: Settings
    assistant: Assistant


@dataclass(frozen=True)
class Turn:
    """One question in the conversation and what came back (an answer, or a refusal's reason)."""

    id: int
    question: str
    mode: str
    k: int
    sources: tuple[str, ...]
    answer: Answer | None = None
    error: str = ""
    seconds: float = 0.0
    searched_as: str = ""  # the follow-up made standalone (empty when it needed no rewrite)
    kept_to: tuple[str, ...] = ()  # the source the rewrite carried over from the previous turn
    prose: Prose | None = None  # checked prose from the language model, when the toggle asked for it


def current() -> Ready:
    """What :func:`ready` found for this run (the main script stores it before a page runs)."""
    state = st.session_state.get("_ready") or ready()
    if state is None:
        st.stop()
    return state


def settings() -> Settings:
    """Settings from ``RAG_*`` variables, read at the app's edge on every run (it is cheap)."""
    return Settings.from_env()


@st.cache_resource(show_spinner=False)  # loaded by warm_up; a question that comes first waits in its spinner
def _embedder(model_name: str, model_path: str, batch_size: int, _settings: Settings) -> Embedder:
    return embedding.load_embedder(_settings)


def embedder(config: Settings) -> Embedder:
    return _embedder(config.model_name, config.model_path, config.batch_size, config)


@st.cache_resource(show_spinner=False, max_entries=4)
def _assistant(settings_key: str, _settings: Settings) -> Assistant:
    return Assistant(_settings, load_model=functools.partial(embedder, _settings))


def served_assistant(config: Settings) -> Assistant:
    """The application layer for ``config``, cached under the key the page and the warm-up share.

    It loads the model on its first query, through the process-wide cache above, so a page can be
    drawn (the index status, the question box) while the warm-up is still loading the model.
    """
    return _assistant(repr(config), config)


def warm_up(config: Settings) -> None:
    """Load the model and open the served index into the caches above, before anyone asks.

    Runs once at server start (``app/server.py``), so the first reader does not wait for the
    model. With the ONNX encoder (the default) this takes about a second and imports no torch; the
    first start after a fresh install also makes the export (``rag.onnx_cache``), once. A missing
    or broken index is left to the first page load, which builds or explains it where the reader
    can see it.

    It does not import pandas for the tables of the other pages: that import (0.7 s) ran while
    the browser drew the first page and, on 2 cores, delayed it by a few tenths of a second. The
    Ask page imports pandas only to show ranked passages.
    """
    embedder(config).encode(["warm-up"])  # the first forward pass allocates the runtime's buffers
    assistant = served_assistant(config)
    if assistant.has_index():
        with contextlib.suppress(RagError):
            assistant.status()  # opens the served generation


def progress_reporter(label: str):
    """A ``progress(done, total)`` callback drawing a Streamlit progress bar, and the bar itself."""
    bar = st.progress(0.0, text=label)

    def update(done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"{label} {done} / {total} passages and sentences")

    return update, bar


def rebuild(assistant: Assistant, label: str = "Indexing…") -> BuildReport:
    """Bring the index in line with the corpus folder, with a progress bar. Raises RagError."""
    update, bar = progress_reporter(label)
    try:
        return assistant.build(update)
    finally:
        bar.empty()


def ready() -> Ready | None:
    """The loaded model and the served index, building it first on a fresh clone.

    Shows the reason and returns ``None`` when there is no index that can be served.
    """
    config = settings()
    assistant = served_assistant(config)
    try:
        if not assistant.has_index():
            notice = st.empty()
            notice.info("Building the search index for the first time; this happens once.",
                        icon=":material/construction:")
            rebuild(assistant, "Embedding the sources…")
            notice.empty()
        assistant.status()  # opens the served generation, or says why it cannot be served
        state = Ready(config, assistant)
        st.session_state["_ready"] = state
        return state
    except IndexBusyError as exc:
        st.info(cards.md_escape(str(exc)), icon=":material/hourglass_top:")
        st.button("Try again", type="primary")
    except IndexStateError as exc:
        st.error(cards.md_escape(str(exc)), icon=":material/error:")
        if st.button("Rebuild the index", type="primary"):
            _rebuild_and_rerun(assistant)
    except RagError as exc:  # escaped: a file name must not render as Markdown (links, images)
        st.error(cards.md_escape(str(exc)), icon=":material/error:")
    return None


def _rebuild_and_rerun(assistant: Assistant) -> None:
    try:
        rebuild(assistant)
    except RagError as exc:
        st.error(cards.md_escape(str(exc)), icon=":material/error:")
    else:
        st.rerun()


def source_rows(assistant: Assistant) -> list[dict]:
    """The indexed sources with their chunk counts, in title order."""
    return sorted(rows_of(assistant.sources()), key=lambda row: row["title"].lower())


def when_label(built_at: str) -> str:
    try:
        when = datetime.fromisoformat(built_at)
    except ValueError:
        return built_at
    return when.strftime("%d %b %Y, %H:%M %Z").lstrip("0")


def sidebar_status(assistant: Assistant) -> None:
    """The index at a glance: how many sources and passages, which model, when it was built."""
    status = assistant.status()
    model = status.model.rsplit("/", 1)[-1]
    with st.sidebar:
        st.caption("INDEX")
        first, second = st.columns(2)
        first.metric("Sources", status.sources)
        second.metric("Passages", status.chunks)
        st.caption(f":material/memory: {model}  \n:material/schedule: Built {when_label(status.built_at)}")


def flash(kind: str, message: str) -> None:
    """Keep a message for the next run (after ``st.rerun``)."""
    st.session_state["_flash"] = (kind, message)


def show_flash() -> None:
    kind, message = st.session_state.pop("_flash", (None, None))
    if kind == "success":
        st.success(message, icon=":material/check_circle:")
    elif kind == "error":
        st.error(message, icon=":material/error:")
