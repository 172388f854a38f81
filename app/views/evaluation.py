"""Evaluation: run the eval suite on the served index and read its metrics, answers and failures."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

import cards
import shared
from rag.errors import RagError
from rag.eval.answers import ANSWER_METRICS
from rag.eval.gate import DEFAULT_THRESHOLDS, load_thresholds, shortfalls
from rag.eval.metrics import RETRIEVAL_METRICS
from rag.eval.questions import DEFAULT_QUESTIONS, load_questions
from rag.eval.report import EvalReport, display_path, failure_row
from rag.eval.run import run_evaluation
from rag.modes import MODES

MODE_LABELS = {"hybrid": "Hybrid", "dense": "Dense", "bm25": "BM25",
               "recipe:minilm-1000": "Recipe: MiniLM, 1000 chars", "recipe:bm25s-1000": "Recipe: bm25s, 1000 chars"}

ready = shared.current()
assistant = ready.assistant


def run(modes: list[str], k: int) -> None:
    bar = st.progress(0.0, text="Evaluating…")

    def update(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Evaluating… {done} / {total} steps")

    try:
        questions = load_questions(DEFAULT_QUESTIONS)
        report = run_evaluation(assistant, questions, display_path(DEFAULT_QUESTIONS), modes, k, progress=update)
    except RagError as exc:
        st.session_state.pop("eval_report", None)
        st.error(cards.md_escape(str(exc)), icon=":material/error:")
        return
    finally:
        bar.empty()
    st.session_state["eval_report"] = report


def gate(report: EvalReport) -> None:
    try:
        thresholds = load_thresholds(DEFAULT_THRESHOLDS)
    except RagError as exc:
        st.caption(f"No quality gate: {cards.md_escape(str(exc))}")
        return
    split = thresholds.split if thresholds.split in report.splits else report.splits[-1]
    measured = report.measured(split)
    if thresholds.mode not in measured:
        st.info(f"The quality gate checks the {MODE_LABELS[thresholds.mode]} mode; include it to see "
                "whether it passes.", icon=":material/info:")
        return
    try:
        problems = shortfalls(measured, thresholds)
    except RagError as exc:
        st.caption(f"No quality gate: {cards.md_escape(str(exc))}")
        return
    if problems:
        st.error("The quality gate fails: " + cards.md_escape("; ".join(problems)) + ".", icon=":material/gpp_bad:")
    else:
        st.success(f"The quality gate passes on the {split} split: every {MODE_LABELS[thresholds.mode]} metric meets "
                   f"its bound in {display_path(DEFAULT_THRESHOLDS)}.", icon=":material/verified:")


def metrics(report: EvalReport, split: str) -> None:
    rows = [{"system": MODE_LABELS.get(r.system, r.system), "passage chars": round(r.mean_passage_chars),
             **r.metrics, "failures": len(r.failures)} for r in report.retrieval if r.split == split]
    number = {name: st.column_config.NumberColumn(name, format="%.3f") for name in RETRIEVAL_METRICS}
    best = pd.DataFrame(rows).style.highlight_max(subset=list(RETRIEVAL_METRICS),
                                                  props="background-color: #e0e8ff; color: #1e3a8a")
    st.dataframe(best, hide_index=True,
                 column_config={"system": st.column_config.TextColumn("System"), **number,
                                "passage chars": st.column_config.NumberColumn("Passage chars"),
                                "failures": st.column_config.NumberColumn("Failures")})
    wide = pd.DataFrame({MODE_LABELS.get(r.system, r.system): r.metrics for r in report.retrieval if r.split == split})
    st.bar_chart(wide, stack=False, horizontal=True, sort=False, height=320,
                 x_label="", y_label="mean over answerable questions")  # horizontal: y is the value axis


ANSWER_LABELS = {
    "answer@1": "First quote is the answer",
    "evidence@any": "Quotes the gold evidence",
    "abstain_on_topic": "Declines: detail not in the sources",
    "abstain_off_topic": "Declines: off-topic",
    "false_abstention": "Declines an answerable question",
    "reasons_given": "Declines with a reason",
    "verbatim_quotes": "Quotes verbatim",
    "non_content_quotes": "Non-content quotes",
}


def answers(report: EvalReport, split: str) -> None:
    scores = report.answers_of(split)
    if scores is None:
        return
    st.subheader("Answers")
    st.caption(f"{scores.questions} questions answered in {MODE_LABELS[report.answer_mode]} mode.")
    for row in (ANSWER_METRICS[:4], ANSWER_METRICS[4:]):
        for column, name in zip(st.columns(len(row)), row, strict=True):
            value = scores.metrics[name]
            column.metric(ANSWER_LABELS[name], f"{value:.0f}" if name == "non_content_quotes" else f"{value:.0%}")
    declined = [{"id": r.question.id, "question": r.question.question, "reason": r.reason}
                for r in scores.records if r.abstained]
    if declined:
        with st.expander(f"Declined questions and the reasons given ({len(declined)})"):
            st.dataframe(pd.DataFrame(declined), hide_index=True)


def failure_rows(body: list[dict]) -> list[dict]:
    rows = []
    for row in body:
        top = row["top"] or {}
        rows.append({
            "id": row["id"],
            "question": row["question"],
            "expected": ", ".join(dict.fromkeys(e["source_id"] for e in row["evidence"])),
            "ranked first": " › ".join(part for part in (top.get("source_id"), top.get("section")) if part),
            "first relevant": row["first_relevant_rank"],
        })
    return rows


def failure_detail(row: dict) -> None:
    """The evidence the question expected beside the passage that was ranked first instead."""
    rank = row["first_relevant_rank"]
    found = f"the evidence first appears at rank {rank}." if rank else "the evidence is not in the hits."
    st.caption(f"{row['id']}: {cards.md_escape(row['question'])} — {found}")
    expected, ranked = st.columns(2)
    with expected:
        for item in row["evidence"]:
            st.html(cards.snippet("Expected evidence", item["source_id"], "", item["quote"]))
    with ranked:
        top = row["top"]
        if top:
            st.html(cards.snippet("Ranked first", top["source_id"], top["section"], top["text"]))
        else:
            st.caption("Nothing was retrieved.")


def failures(report: EvalReport, split: str) -> None:
    st.subheader("Failures")
    st.caption("Answerable questions whose first hit holds none of the expected evidence. First relevant is "
               f"the rank of the first hit that does (empty: not in the top {report.k}). "
               "Select a row to compare the expected evidence with what was ranked first.")
    modes = [m for m in report.systems() if m in MODES]
    tabs = st.tabs([f"{MODE_LABELS[m]} ({len(report.retrieval_of(m, split).failures)})" for m in modes])
    for tab, mode in zip(tabs, modes, strict=True):
        body = [failure_row(f) for f in report.retrieval_of(mode, split).failures]
        with tab:
            if not body:
                st.success("No failures in this mode.", icon=":material/check_circle:")
                continue
            event = st.dataframe(
                pd.DataFrame(failure_rows(body)), hide_index=True, key=f"failures-{split}-{mode}", height=320,
                on_select="rerun", selection_mode="single-row",
                column_config={
                    "id": st.column_config.TextColumn("Id", width=60),
                    "question": st.column_config.TextColumn("Question", width="large"),
                    "expected": st.column_config.TextColumn("Expected in", width="medium"),
                    "ranked first": st.column_config.TextColumn("Ranked first", width="medium"),
                    "first relevant": st.column_config.NumberColumn("First relevant", width=100),
                })
            chosen = event.selection.rows[0] if event.selection.rows else 0
            failure_detail(body[chosen])


st.set_page_config(layout="wide")
st.title("Evaluation")
st.caption(f"Retrieval and answer quality on `{display_path(DEFAULT_QUESTIONS)}`: each answerable question names "
           "verbatim evidence, and a hit counts when it overlaps that evidence. Reference recipes (1000-character "
           "chunks) are scored beside the modes.")
with st.form("eval"):
    left, right = st.columns([3, 2])
    modes = left.multiselect("Modes", MODES, default=list(MODES), format_func=MODE_LABELS.get)
    k = right.slider("Hits scored per question", 1, 20, value=10)
    submitted = st.form_submit_button("Run evaluation", type="primary", icon=":material/play_arrow:")
if submitted:
    if modes:
        run(modes, k)
    else:
        st.error("Choose at least one mode to evaluate.", icon=":material/error:")

report: EvalReport | None = st.session_state.get("eval_report")
if report:
    st.caption(f"k = {report.k} · run {shared.when_label(report.created_at)}")
    gate(report)
    for split, tab in zip(report.splits, st.tabs([f"{s} split" for s in report.splits]), strict=True):
        with tab:
            counts = report.counts[split]
            st.caption(f"{counts['answerable']} answerable, {counts['on-topic']} on-topic and {counts['off-topic']} "
                       "off-topic unanswerable questions")
            metrics(report, split)
            answers(report, split)
            failures(report, split)
    st.download_button("Download the JSON report", json.dumps(report.to_dict(), indent=2, ensure_ascii=False),
                       file_name="retrieval.json", mime="application/json", icon=":material/download:")
