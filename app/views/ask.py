"""Ask: a conversation whose answers are quoted passages with numbered citation cards."""

from __future__ import annotations

import dataclasses
import time

import streamlit as st

import cards
import prose_view
import shared
from rag.assistant import RequestOptions
from rag.errors import RagError
from rag.feedback import RATINGS, append_feedback, feedback_record
from rag.modes import MODES
from rag.reporting import hit_row
from rag.types import Document, Hit

STARTERS = (
    "Is bigger always better for language models?",
    "How does InstructGPT compare with GPT-3?",
    "What does MT-DNN learn across tasks?",
    "Why does Anthropic think AI safety research is urgent?",
)
NEAREST_SHOWN = 3  # an abstention's first nearest passages; the rest wait in an expander
MODE_LABELS = {"hybrid": "Hybrid", "dense": "Dense", "bm25": "BM25"}
MODE_HELP = ("Hybrid fuses meaning (dense embeddings) and keywords (BM25); dense matches meaning only; "
             "BM25 matches words only.")

ready = shared.current()
config, assistant = ready.settings, ready.assistant
history: list[shared.Turn] = st.session_state.setdefault("history", [])


def document_or_none(doc_id: str) -> Document | None:
    return assistant.document(doc_id)  # None once removed from the index since this answer was given


def sidebar_controls() -> tuple[str, int, tuple[str, ...], bool, bool]:
    titles = {row["source_id"]: row["title"] for row in shared.source_rows(assistant)}
    with st.sidebar:
        st.caption("RETRIEVAL")
        mode = st.segmented_control("Mode", MODES, default=config.mode, required=True, key="mode",
                                    format_func=MODE_LABELS.get, help=MODE_HELP)
        k = st.slider("Passages", 1, 20, value=config.k, key="k",
                      help="How many ranked passages each answer draws its quotes from.")
        sources = st.multiselect("Sources", list(titles), format_func=lambda i: titles.get(i, i),
                                 placeholder="All sources", key="sources",
                                 help="Answer only from these sources.")
        show = st.toggle("Show ranked passages", key="show_passages",
                         help="List the retrieved passages with their scores under each answer.")
        generate = prose_view.toggle(config)
        st.divider()
    return mode or config.mode, k, tuple(sources), show, generate


def clear() -> None:
    history.clear()


def rate(turn: shared.Turn) -> None:
    value = st.session_state.get(f"feedback-{turn.id}")
    if value is None or turn.answer is None:
        return
    record = feedback_record(turn.answer, RATINGS[value], mode=turn.mode, k=turn.k, sources=turn.sources,
                             generation=assistant.status().generation)
    try:
        append_feedback(config.data_dir, record)
    except OSError as exc:
        st.toast(f"Feedback could not be saved ({exc.strerror or exc.__class__.__name__}).",
                 icon=":material/error:")
    else:
        st.toast("Thanks, your feedback was saved.", icon=":material/check_circle:")


def ranked_passages(hits: tuple[Hit, ...]) -> None:
    import pandas as pd  # here, not at the top: the page's first run would wait for its import

    rows = []
    for hit in hits:
        document = document_or_none(hit.chunk.doc_id)
        if document is not None:
            row = hit_row(hit, document)
            rows.append({**row, "retrievers": ", ".join(row["retrievers"])})
    with st.expander(f"Ranked passages ({len(rows)})", icon=":material/format_list_numbered:"):
        st.dataframe(
            pd.DataFrame(rows, columns=["rank", "score", "title", "section", "page", "retrievers", "text"]),
            hide_index=True,
            column_config={
                "rank": st.column_config.NumberColumn("#", width=40),
                "score": st.column_config.NumberColumn("Score", format="%.3f", width=70),
                "title": st.column_config.TextColumn("Source", width="medium"),
                "section": st.column_config.TextColumn("Section", width="small"),
                "page": st.column_config.NumberColumn("Page", width=50),
                "retrievers": st.column_config.TextColumn("Found by", width="small"),
                "text": st.column_config.TextColumn("Passage", width="large"),
            },
        )


def show_answer(turn: shared.Turn, show_passages: bool) -> None:
    answer = turn.answer
    if answer is None:
        st.error(cards.md_escape(turn.error), icon=":material/error:")
        return
    prose_view.show_rewrite(assistant, turn.searched_as, turn.kept_to)
    if turn.prose is not None and not answer.abstained:
        prose_view.show(turn.prose)
    if answer.abstained:  # the reason first, in one sentence, then the nearest material
        st.warning(f"**{cards.md_escape(answer.abstained_because or '')}** "
                   "The nearest passages are listed for reference, not as an answer.", icon=":material/search_off:")
        pairs = [(h, d) for h in answer.nearest if (d := document_or_none(h.chunk.doc_id)) is not None]
        if pairs:
            st.html(cards.nearest(pairs[:NEAREST_SHOWN]))
        if len(pairs) > NEAREST_SHOWN:
            with st.expander(f"{len(pairs) - NEAREST_SHOWN} more passages"):
                st.html(cards.nearest(pairs[NEAREST_SHOWN:], label=False))
    else:
        st.html(cards.answer_text(answer.text))
        st.html(cards.evidence(answer))
    left, right = st.columns([1, 3], vertical_alignment="center")
    with left:
        st.feedback("thumbs", key=f"feedback-{turn.id}", on_change=rate, args=(turn,))
    filtered = f" · {len(turn.sources)} sources" if turn.sources else ""
    right.caption(f"{MODE_LABELS[turn.mode]} · {turn.k} passages{filtered} · {turn.seconds:.2f} s · "
                  f"support {answer.support:.2f}", text_alignment="right")
    if show_passages and answer.hits:
        ranked_passages(answer.hits)


def show_turn(turn: shared.Turn, show_passages: bool) -> None:
    with st.chat_message("user", avatar=":material/person:"):
        st.html(cards.user_text(turn.question))
    with st.chat_message("assistant", avatar=":material/menu_book:"):
        show_answer(turn, show_passages)


def ask(question: str, mode: str, k: int, sources: tuple[str, ...]) -> shared.Turn:
    turn_id = st.session_state.get("next_turn", 0)
    st.session_state["next_turn"] = turn_id + 1
    began = time.perf_counter()
    try:  # a follow-up leaning on earlier turns is searched as a standalone question
        rewrite, answer = assistant.ask_followup(question, prose_view.followup_history(history),
                                                 RequestOptions(k=k, mode=mode, sources=sources))
    except RagError as exc:
        return shared.Turn(turn_id, question, mode, k, sources, error=str(exc))
    rewritten = rewrite.question if rewrite.method != "none" else ""
    return shared.Turn(turn_id, question, mode, k, sources, answer=answer, seconds=time.perf_counter() - began,
                       searched_as=rewritten, kept_to=rewrite.sources if rewritten else ())


def choose(question: str) -> None:
    st.session_state["pending"] = question


def starters() -> None:
    st.markdown("##### Try a question")
    columns = st.columns(2)
    for i, question in enumerate(STARTERS):
        columns[i % 2].button(question, key=f"starter-{i}", on_click=choose, args=(question,),
                              icon=":material/lightbulb:", width="stretch")


mode, k, sources, show_passages, generate = sidebar_controls()
head, action = st.columns([4, 1], vertical_alignment="bottom")
head.title("Ask the sources")
if history:
    action.button("Clear", icon=":material/delete_sweep:", on_click=clear, width="stretch",
                  help="Start a new conversation.")
st.caption("Every answer is quoted word for word from the indexed sources, with numbered citations. "
           "When the sources do not answer, it says so and shows the nearest material instead.")

typed = st.chat_input("Ask a question about the sources", max_chars=config.max_question_chars)
question = typed or st.session_state.pop("pending", None)
if not history and not question:
    starters()
for past in history:
    show_turn(past, show_passages)
if question:
    with st.chat_message("user", avatar=":material/person:"):
        st.html(cards.user_text(question))
    with st.chat_message("assistant", avatar=":material/menu_book:"):
        with st.spinner("Searching the sources…"):
            turn = ask(question, mode, k, sources)
        if generate and turn.answer is not None and not turn.answer.abstained:
            turn = dataclasses.replace(turn, prose=prose_view.stream(assistant, turn.answer))
        history.append(turn)
        show_answer(turn, show_passages)
