"""Sources: what is indexed, each source's full text, and adding or removing a source."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import pandas as pd
import streamlit as st

import cards
import shared
from rag.assistant import SourceMetadata
from rag.errors import RagError
from rag.loaders import LOADERS
from rag.reporting import format_authors

T = TypeVar("T")
READER_LIMIT = 300_000  # characters drawn at once; longer texts are cut with a note
READER_HEIGHT, SHORT_TEXT = 480, 2_500  # longer texts scroll inside a box of this many pixels
UPLOAD_TYPES = sorted(suffix.lstrip(".") for suffix in LOADERS)

ready = shared.current()
config, assistant = ready.settings, ready.assistant
rows = shared.source_rows(assistant)
by_id = {row["source_id"]: row for row in rows}


def with_progress(label: str, action: Callable[[Callable[[int, int], None]], T]) -> T | None:
    """Run ``action(progress)`` under a progress bar; a RagError becomes one error line (``None``)."""
    update, bar = shared.progress_reporter(label)
    try:
        return action(update)
    except RagError as exc:
        bar.empty()
        st.error(cards.md_escape(str(exc)), icon=":material/error:")
        return None


def table() -> None:
    frame = pd.DataFrame(
        [{**row, "authors": format_authors(tuple(row["authors"])) if row["authors"] else "",
          "year": str(row["year"] or ""), "url": cards.http_url(row["url"])} for row in rows],
        columns=["title", "authors", "year", "chunks", "venue", "url", "source_id", "kind", "file"],
    )
    st.dataframe(
        frame,
        hide_index=True,
        column_config={
            "title": st.column_config.TextColumn("Title", width="large"),
            "authors": st.column_config.TextColumn("Authors", width="medium"),
            "year": st.column_config.TextColumn("Year", width=60),
            "venue": st.column_config.TextColumn("Venue", width="medium"),
            "url": st.column_config.LinkColumn("Link", width="small", display_text=r"https?://(?:www\.)?([^/]+)"),
            "kind": st.column_config.TextColumn("Kind", width="small"),
            "chunks": st.column_config.NumberColumn("Passages", width=80),
            "source_id": st.column_config.TextColumn("Source id", width="medium"),
            "file": st.column_config.TextColumn("File", width="medium"),
        },
    )


def skipped() -> None:
    """Files in the corpus folder the index leaves out, each with the reason and what to do."""
    reasons = assistant.skipped()
    if reasons:
        st.warning(f"{len(reasons)} file(s) in the corpus folder are not indexed:\n\n"
                   + "\n".join(f"- {cards.md_escape(reason)}" for reason in reasons.values()),
                   icon=":material/warning:")


def reader() -> None:
    st.subheader("Read a source")
    chosen = st.selectbox("Source", list(by_id), format_func=lambda i: by_id[i]["title"], key="read",
                          label_visibility="collapsed")
    if chosen is None:
        return
    document = assistant.document(chosen)
    if document is None:  # removed by another curator since this page was drawn
        st.info("This source is no longer indexed.", icon=":material/info:")
        return
    st.html(cards.document_meta(document))
    shown = min(len(document.text), READER_LIMIT)
    with st.container(height=READER_HEIGHT if shown > SHORT_TEXT else "content", border=True):
        st.html(cards.document_text(document.text[:shown]))
    facts = [f"{len(document.text):,} characters", f"{by_id[chosen]['chunks']} passages"]
    facts += [f"{len(document.sections)} sections"] if document.sections else []
    facts += [f"{len(document.pages)} pages"] if document.pages else []
    facts += [f"first {shown:,} characters shown"] if shown < len(document.text) else []
    st.caption(" · ".join(facts))


def add_form() -> None:
    st.subheader("Add a source")
    limit_mb = max(1, math.ceil(config.max_upload_bytes / (1024 * 1024)))
    with st.form("add-source", clear_on_submit=True, border=True):
        upload = st.file_uploader("File", type=UPLOAD_TYPES, max_upload_size=limit_mb, key="add-file",
                                  help=f"PDF, HTML, Markdown or plain text, up to {limit_mb} MB.")
        title_col, year_col = st.columns([4, 1])
        title = title_col.text_input("Title", placeholder="Defaults to the file's own title or name",
                                     key="add-title")
        year = year_col.text_input("Year", placeholder="2024", key="add-year")
        authors = st.text_input("Authors", placeholder="Separate names with semicolons or “and”", key="add-authors")
        venue_col, url_col = st.columns(2)
        venue = venue_col.text_input("Venue", placeholder="Journal, conference or site", key="add-venue")
        url = url_col.text_input("URL", placeholder="https://…", key="add-url")
        submitted = st.form_submit_button("Add and index", type="primary", icon=":material/upload_file:")
    if not submitted:
        return
    if upload is None:
        st.error("Choose a file to upload first.", icon=":material/error:")
        return
    done = with_progress("Indexing the new source…", lambda update: assistant.add_upload(
        upload.name, upload.getvalue(),
        SourceMetadata.from_fields(title=title, authors=authors, year=year, venue=venue, url=url), update))
    if done is None:
        return
    document, report = done.document, done.report
    shared.flash("success", f"Added {cards.md_escape(document.title)}: {report.chunks_embedded} new "
                            f"passages; the index now holds {report.chunk_count}.")
    st.rerun()


def remove_form() -> None:
    st.subheader("Remove a source")
    chosen = st.selectbox("Source to remove", list(by_id), format_func=lambda i: by_id[i]["title"],
                          index=None, placeholder="Choose a source", key="remove")
    last = len(by_id) <= 1
    sure = st.checkbox("Remove its file from the corpus folder and re-index", key="remove-sure",
                       disabled=chosen is None or last)
    if last:
        st.caption("The only source cannot be removed: an index needs at least one.")
    if not st.button("Remove", icon=":material/delete:", disabled=not (chosen and sure) or last):
        return
    done = with_progress("Re-indexing…", lambda update: assistant.remove(chosen, update))
    if done is None:
        return
    document, report = done.document, done.report
    shared.flash("success", f"Removed {cards.md_escape(document.title)}; the index now holds "
                            f"{report.chunk_count} passages.")
    st.rerun()


def maintenance() -> None:
    st.subheader("Re-index")
    st.caption("Files changed in the corpus folder outside this page are picked up by a rebuild; "
               "only new or changed sources are embedded again.")
    if not st.button("Rebuild the index", icon=":material/refresh:"):
        return
    try:
        report = shared.rebuild(assistant)
    except RagError as exc:
        st.error(cards.md_escape(str(exc)), icon=":material/error:")
        return
    shared.flash("success", "The index is up to date." if report.did_nothing else
                 f"Re-indexed: {len(report.added)} added, {len(report.changed)} changed, "
                 f"{len(report.removed)} removed; {report.chunk_count} passages.")
    st.rerun()


st.set_page_config(layout="wide")
st.title("Sources")
st.caption(f"{len(rows)} sources · {assistant.status().chunks} passages indexed")
shared.show_flash()
skipped()
table()
reader()
st.divider()
add_form()
st.divider()
remove_form()
st.divider()
maintenance()
