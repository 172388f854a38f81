"""Evaluation: run the retrieval eval suite on the served index and read its metrics and failures."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

import cards
import shared
from rag import evaluation
from rag.errors import RagError
from rag.eval_report import ANSWER_METRICS, display_path
from rag.eval_run import run_evaluation
from rag.settings import MODES

MODE_LABELS = {"hybrid": "Hybrid", "dense": "Dense", "bm25": "BM25"}
MODE_COLORS = {"dense": "#93b4f5", "bm25": "#b9bec8", "hybrid": "#3552c8"}

ready = shared.current()
assistant = ready.assistant


def run(modes: list[str], k: int) -> None:
    bar = st.progress(0.0, text="Evaluating…")

    def update(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Evaluating… {done} / {total} steps")

    try:
        questions = evaluation.load_questions(evaluation.DEFAULT_QUESTIONS)
        report, _ = run_evaluation(assistant, questions, display_path(evaluation.DEFAULT_QUESTIONS), modes, k,
                                   update)
    except RagError as exc:
        st.session_state.pop("eval_report", None)
        st.error(cards.md_escape(str(exc)), icon=":material/error:")
        return
    finally:
        bar.empty()
    st.session_state["eval_report"] = report


def gate(report: dict) -> None:
    try:
        thresholds = evaluation.load_thresholds(evaluation.DEFAULT_THRESHOLDS)
    except RagError as exc:
        st.caption(f"No quality gate: {cards.md_escape(str(exc))}")
        return
    measured = {mode: body["metrics"] for mode, body in report["modes"].items()}
    if thresholds.mode not in measured:
        st.info(f"The quality gate checks the {MODE_LABELS[thresholds.mode]} mode; include it to see "
                "whether it passes.", icon=":material/info:")
        return
    problems = evaluation.shortfalls(measured, thresholds)
    if problems:
        st.error("The quality gate fails: " + cards.md_escape("; ".join(problems)) + ".",
                 icon=":material/gpp_bad:")
    else:
        st.success(f"The quality gate passes: every {MODE_LABELS[thresholds.mode]} metric meets its minimum "
                   f"in {display_path(evaluation.DEFAULT_THRESHOLDS)}.", icon=":material/verified:")


def metrics(report: dict) -> None:
    rows = [{"mode": MODE_LABELS[mode], **body["metrics"], "failures": len(body["failures"])}
            for mode, body in report["modes"].items()]
    number = {name: st.column_config.NumberColumn(name, format="%.3f") for name in evaluation.METRICS}
    best = pd.DataFrame(rows).style.highlight_max(subset=list(evaluation.METRICS),
                                                  props="background-color: #e0e8ff; color: #1e3a8a")
    st.dataframe(best, hide_index=True,
                 column_config={"mode": st.column_config.TextColumn("Mode"), **number,
                                "failures": st.column_config.NumberColumn("Failures")})
    wide = pd.DataFrame({MODE_LABELS[mode]: body["metrics"] for mode, body in report["modes"].items()})
    st.bar_chart(wide, stack=False, horizontal=True, sort=False, height=320,
                 color=[MODE_COLORS[mode] for mode in report["modes"]],
                 x_label="", y_label="mean over answerable questions")  # horizontal: y is the value axis


ANSWER_LABELS = {
    "abstained_when_unanswerable": "Abstains when the sources are silent",
    "false_abstention": "Abstains on an answerable question",
    "gold_evidence_quoted": "Quotes the gold evidence",
    "verbatim_quotes": "Quotes verbatim",
}


def answers(report: dict) -> None:
    section = report["answers"]
    st.subheader("Answers")
    st.caption(f"{section['questions']} questions answered in {MODE_LABELS[section['mode']]} mode; an answer "
               f"abstains when its best evidence scores below {section['threshold']:.2f}.")
    columns = st.columns(len(ANSWER_METRICS))
    for column, name in zip(columns, ANSWER_METRICS, strict=True):
        column.metric(ANSWER_LABELS[name], f"{section['metrics'][name]:.0%}")
    curve = pd.DataFrame(section["curve"]).set_index("threshold")
    st.line_chart(curve.rename(columns=ANSWER_LABELS), height=260, x_label="abstention threshold",
                  y_label="share of questions")


def failure_rows(body: dict) -> list[dict]:
    rows = []
    for row in body["failures"]:
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


def failures(report: dict) -> None:
    st.subheader("Failures")
    st.caption("Answerable questions whose first hit holds none of the expected evidence. First relevant is "
               f"the rank of the first hit that does (empty: not in the top {report['k']}). "
               "Select a row to compare the expected evidence with what was ranked first.")
    modes = list(report["modes"])
    tabs = st.tabs([f"{MODE_LABELS[m]} ({len(report['modes'][m]['failures'])})" for m in modes])
    for tab, mode in zip(tabs, modes, strict=True):
        body = report["modes"][mode]
        with tab:
            if not body["failures"]:
                st.success("No failures in this mode.", icon=":material/check_circle:")
                continue
            event = st.dataframe(
                pd.DataFrame(failure_rows(body)), hide_index=True, key=f"failures-{mode}", height=320,
                on_select="rerun", selection_mode="single-row",
                column_config={
                    "id": st.column_config.TextColumn("Id", width=60),
                    "question": st.column_config.TextColumn("Question", width="large"),
                    "expected": st.column_config.TextColumn("Expected in", width="medium"),
                    "ranked first": st.column_config.TextColumn("Ranked first", width="medium"),
                    "first relevant": st.column_config.NumberColumn("First relevant", width=100),
                })
            chosen = event.selection.rows[0] if event.selection.rows else 0
            failure_detail(body["failures"][chosen])


st.set_page_config(layout="wide")
st.title("Evaluation")
st.caption(f"Retrieval quality on `{display_path(evaluation.DEFAULT_QUESTIONS)}`: each answerable question "
           "names verbatim evidence, and a hit counts when it overlaps that evidence.")
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

report = st.session_state.get("eval_report")
if report:
    counts = report["questions"]
    st.caption(f"{counts['answerable']} answerable questions ({counts['unanswerable']} unanswerable "
               f"left out) · k = {report['k']} · run {shared.when_label(report['created_at'])}")
    gate(report)
    metrics(report)
    answers(report)
    failures(report)
    st.download_button("Download the JSON report", json.dumps(report, indent=2, ensure_ascii=False),
                       file_name="retrieval.json", mime="application/json", icon=":material/download:")
