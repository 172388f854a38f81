"""The Ask page's optional parts: prose from a language model (streamed, then checked) and follow-ups."""

from __future__ import annotations

import streamlit as st

import cards
from rag.assistant import Assistant
from rag.followup import Turn as FollowupTurn
from rag.followup import turn_of
from rag.settings import Settings
from rag.types import Answer

TOGGLE_HELP = ("A language model rewrites the quotes below as prose. Every sentence must cite a quote that "
               "supports it; sentences that do not are removed. The quotes are always shown.")
NO_MODEL_HELP = "Set RAG_LLM_URL (and RAG_LLM_MODEL) to an OpenAI-compatible server, e.g. Ollama, to enable."


def toggle(config: Settings) -> bool:
    """The sidebar switch; disabled, with the variables to set, when no model is configured."""
    return st.toggle("Write prose (language model)", key="generate", disabled=not config.llm_url,
                     help=TOGGLE_HELP if config.llm_url else NO_MODEL_HELP)


def followup_history(turns) -> list[FollowupTurn]:
    """The page's answered turns, as the follow-up rewrite needs them."""
    return [turn_of(t.question, t.searched_as or t.question, t.answer) for t in turns if t.answer is not None]


def stream(assistant: Assistant, answer: Answer):
    """Show the model's tokens as they arrive, then clear them; the caller shows the checked prose."""
    run = assistant.prose(answer)
    live = st.empty()
    with live.container():
        st.write_stream(run.tokens())
    live.empty()
    return run.result()


def show_rewrite(assistant: Assistant, searched_as: str, kept_to: tuple[str, ...]) -> None:
    """The standalone question a follow-up was searched as, and the source it kept to."""
    if searched_as:
        titles = [document.title if (document := assistant.document(s)) else s for s in kept_to]
        within = f" — within {', '.join(titles)}" if titles else ""
        st.caption(f"Searched as: “{searched_as}”{within}")


def show(prose) -> None:
    """The checked prose, or the one line saying why there is none; removed sentences on request."""
    if prose.notice:
        st.warning(cards.md_escape(prose.notice), icon=":material/cloud_off:")
        return
    if prose.text is None:
        st.info(cards.md_escape(f"Prose withheld: {prose.withheld_because}"), icon=":material/block:")
    else:
        st.html(cards.answer_text(prose.text))
    dropped = [s for s in prose.sentences if not s.supported]
    if dropped and prose.text is not None:
        with st.expander(f"{len(dropped)} sentence(s) removed: not supported by the sources"):
            for sentence in dropped:
                st.markdown(f"- {cards.md_escape(sentence.text)} — *{cards.md_escape(sentence.reason or '')}*")
    st.html('<div class="rag-label">Quotes</div>')
