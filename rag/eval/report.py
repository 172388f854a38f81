"""The eval report: a typed value that writes its own JSON, Markdown (with a chart) and terminal table."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.eval.answers import ANSWER_METRICS, AnswerScores
from rag.eval.metrics import RETRIEVAL_METRICS
from rag.eval.questions import DEFAULT_QUESTIONS
from rag.eval.retrieval import Failure, RetrievalScores
from rag.settings import REPO_ROOT

REPORT_KIND = "rag-eval"
REPORT_VERSION = 2
REPORT_STEM = "retrieval"


def report_stem(modes: str, recipes: bool, questions: Path = DEFAULT_QUESTIONS) -> str:
    """The file name of a run's report. The full run (every mode, the reference recipes, the
    project's questions) owns ``retrieval.*``, the report the page shows and the repository keeps;
    a narrower run is named by its scope, so a quick ``rag eval --mode hybrid`` never replaces it."""
    scope = [*([] if modes == "all" else [modes]), *([] if recipes else ["no-recipes"]),
             *([] if questions.resolve() == DEFAULT_QUESTIONS.resolve() else [questions.stem])]
    return "-".join([REPORT_STEM, *scope])


def display_path(path: Path) -> str:
    """A path as the report shows it: relative to the repository when inside it, so reports travel."""
    resolved = path.resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else str(path)


def _clip(text: str, limit: int = 90) -> str:
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def failure_row(failure: Failure) -> dict[str, Any]:
    top = failure.top
    return {
        "id": failure.question.id,
        "question": failure.question.question,
        "evidence": [{"source_id": s.source_id, "quote": s.quote, "start": s.start, "end": s.end}
                     for s in failure.spans],
        "first_relevant_rank": failure.first_relevant_rank,
        "top": None if top is None else {"source_id": top.chunk.doc_id, "section": " > ".join(top.chunk.section),
                                         "start": top.chunk.start, "end": top.chunk.end, "text": top.chunk.text},
    }


def _answers_row(scores: AnswerScores, mode: str) -> dict[str, Any]:
    return {
        "mode": mode,
        "questions": scores.questions,
        "metrics": {n: round(v, 4) for n, v in scores.metrics.items()},
        "abstentions": [{"id": r.question.id, "question": r.question.question, "answerable": r.question.answerable,
                         "reason": r.reason} for r in scores.records if r.abstained],
        "first_quote_missed": [r.question.id for r in scores.records
                               if r.question.answerable and not r.abstained and not r.first_is_gold],
        "non_content_quotes": [{"id": r.question.id, "quote": q} for r in scores.records for q in r.non_content],
    }


@dataclass(frozen=True)
class EvalReport:
    created_at: str
    questions_file: str
    counts: Mapping[str, Mapping[str, int]]  # split -> {answerable, on-topic, off-topic}
    index: Mapping[str, Any]
    k: int
    answer_mode: str
    retrieval: tuple[RetrievalScores, ...]
    answers: tuple[AnswerScores, ...]

    @property
    def splits(self) -> list[str]:
        return list(self.counts)

    def systems(self) -> list[str]:
        return list(dict.fromkeys(r.system for r in self.retrieval))

    def retrieval_of(self, system: str, split: str) -> RetrievalScores:
        return next(r for r in self.retrieval if (r.system, r.split) == (system, split))

    def answers_of(self, split: str) -> AnswerScores | None:
        return next((a for a in self.answers if a.split == split), None)

    def measured(self, split: str) -> dict[str, dict[str, float]]:
        """Every metric per mode on ``split`` (answer metrics for the mode answers were composed in)."""
        values = {r.system: dict(r.metrics) for r in self.retrieval if r.split == split}
        answers = self.answers_of(split)
        if answers is not None and self.answer_mode in values:
            values[self.answer_mode].update(answers.metrics)
        return values

    def to_dict(self) -> dict[str, Any]:
        splits = {}
        for split in self.splits:
            answers = self.answers_of(split)
            splits[split] = {
                "questions": dict(self.counts[split]),
                "retrieval": {r.system: {"metrics": {n: round(v, 4) for n, v in r.metrics.items()},
                                         "mean_passage_chars": round(r.mean_passage_chars, 1),
                                         "failures": [failure_row(f) for f in r.failures]}
                              for r in self.retrieval if r.split == split},
                "answers": None if answers is None else _answers_row(answers, self.answer_mode),
            }
        return {"report": REPORT_KIND, "version": REPORT_VERSION, "created_at": self.created_at,
                "questions_file": self.questions_file, "index": dict(self.index), "k": self.k,
                "metrics": list(RETRIEVAL_METRICS), "answer_metrics": list(ANSWER_METRICS), "splits": splits}

    def table(self) -> str:
        """The terminal view: per split, one row per system, then the answer metrics."""
        lines = []
        for split in self.splits:
            counts = self.counts[split]
            lines += [f"{split}: {counts['answerable']} answerable, {counts['on-topic']} on-topic and "
                      f"{counts['off-topic']} off-topic unanswerable questions (k={self.k})",
                      f"  {'system':<20}{'chars':>7}" + "".join(f"{n:>10}" for n in RETRIEVAL_METRICS)]
            for system in self.systems():
                r = self.retrieval_of(system, split)
                lines.append(f"  {system:<20}{r.mean_passage_chars:>7.0f}"
                             + "".join(f"{r.metrics[n]:>10.3f}" for n in RETRIEVAL_METRICS))
            answers = self.answers_of(split)
            if answers is not None:
                lines.append(f"  answers ({self.answer_mode}): " + "  ".join(
                    f"{n} {answers.metrics[n]:.3f}" if n != "non_content_quotes" else f"{n} {answers.metrics[n]:.0f}"
                    for n in ANSWER_METRICS))
        return "\n".join(lines)

    def markdown(self, chart_name: str) -> str:
        lines = ["# Retrieval and answer eval", "",
                 f"{self.created_at} · `{self.questions_file}` · k={self.k} · index `{self.index.get('generation')}` "
                 f"({self.index.get('chunks')} chunks, {self.index.get('model')}) · answers in {self.answer_mode} mode",
                 "", f"![metrics per system]({chart_name})", ""]
        for split in self.splits:
            counts = self.counts[split]
            lines += [f"## {split} split ({counts['answerable']} answerable, {counts['on-topic']} on-topic / "
                      f"{counts['off-topic']} off-topic unanswerable)", "",
                      "| system | mean passage chars | " + " | ".join(RETRIEVAL_METRICS) + " | failures |",
                      "|---|---:|" + "---:|" * (len(RETRIEVAL_METRICS) + 1)]
            for system in self.systems():
                r = self.retrieval_of(system, split)
                lines.append(f"| {system} | {r.mean_passage_chars:.0f} | "
                             + " | ".join(f"{r.metrics[n]:.3f}" for n in RETRIEVAL_METRICS) + f" | {len(r.failures)} |")
            lines += ["", *self._answer_lines(split), *self._failure_lines(split)]
        return "\n".join(lines) + "\n"

    def _answer_lines(self, split: str) -> list[str]:
        answers = self.answers_of(split)
        if answers is None:
            return []
        lines = ["| answer metric | value |", "|---|---:|"]
        lines += [f"| {n} | {answers.metrics[n]:.3f} |" for n in ANSWER_METRICS]
        lines += ["", "Abstentions and their stated reasons:", ""]
        lines += [f"- {r.question.id} ({'answerable' if r.question.answerable else r.question.unanswerable}) "
                  f"{_clip(r.question.question, 70)} — {_clip(r.reason, 100)}" for r in answers.records if r.abstained]
        return [*lines, ""]

    def _failure_lines(self, split: str) -> list[str]:
        if self.answer_mode not in self.systems():
            return []
        failures = self.retrieval_of(self.answer_mode, split).failures
        lines = [f"Retrieval failures ({self.answer_mode}, first hit holds no evidence): {len(failures)}", "",
                 "| id | question | ranked first | first relevant |", "|---|---|---|---:|"]
        for f in failures:
            top = f"`{f.top.chunk.doc_id}` {_clip(f.top.chunk.text, 70)}" if f.top else "(no hits)"
            lines.append(f"| {f.question.id} | {_clip(f.question.question)} | {top} | "
                         f"{f.first_relevant_rank or f'> {self.k}'} |")
        return [*lines, ""]

    def write(self, folder: Path, stem: str = REPORT_STEM) -> dict[str, Path]:
        """Write ``<stem>.json``, ``<stem>.md`` and ``<stem>.png`` into ``folder``; returns their paths."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"json": folder / f"{stem}.json", "markdown": folder / f"{stem}.md", "chart": folder / f"{stem}.png"}
        plot_systems(self, paths["chart"])
        _atomic_write(paths["json"], json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        _atomic_write(paths["markdown"], self.markdown(paths["chart"].name))
        return paths


def plot_systems(report: EvalReport, path: Path) -> None:
    """Grouped bars on the last split (the held-out one): one group per metric, one bar per system.
    No pyplot, so no global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    split, systems = report.splits[-1], report.systems()
    figure = Figure(figsize=(8, 3.8), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    width = 0.8 / len(systems)
    for offset, system in enumerate(systems):
        values = [report.retrieval_of(system, split).metrics[n] for n in RETRIEVAL_METRICS]
        positions = [i + (offset - (len(systems) - 1) / 2) * width for i in range(len(RETRIEVAL_METRICS))]
        bars = axes.bar(positions, values, width, label=system)
        axes.bar_label(bars, fmt="%.2f", fontsize=6, padding=2)
    axes.set_xticks(range(len(RETRIEVAL_METRICS)), list(RETRIEVAL_METRICS))
    axes.set_ylim(0, 1.25)  # headroom for the legend above bars that reach 1
    axes.set_ylabel("mean over answerable questions")
    axes.set_title(f"Retrieval by system ({split} split, k={report.k})")
    axes.legend(loc="upper center", ncols=min(len(systems), 5), fontsize=7, frameon=False)
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; a report is meant to be read by others
    os.replace(tmp, path)


def split_counts(questions: Sequence[Any]) -> dict[str, int]:
    return {"answerable": sum(q.answerable for q in questions),
            "on-topic": sum(q.unanswerable == "on-topic" for q in questions),
            "off-topic": sum(q.unanswerable == "off-topic" for q in questions)}
