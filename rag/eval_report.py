"""The eval report: a JSON document, a Markdown summary with a chart, and the terminal table.

The JSON has a fixed shape (:data:`REPORT_SCHEMA`, JSON Schema draft 2020-12). Answer-level
metrics go in its ``answers`` section, ``null`` until an answer evaluation fills it with
:data:`ANSWER_METRICS`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.evaluation import METRICS, EvalQuestion, Failure, ModeResult
from rag.index_store import Index
from rag.reporting import section_label
from rag.settings import REPO_ROOT
from rag.types import Hit

REPORT_KIND = "rag-eval"
REPORT_VERSION = 1
REPORT_STEM = "retrieval"
# Answer-level metrics, each a share in [0, 1] (see the issue "retrieval eval suite"):
ANSWER_METRICS = (
    "abstained_when_unanswerable",  # abstentions among unanswerable questions
    "false_abstention",  # abstentions among answerable questions
    "gold_evidence_quoted",  # answers whose quotes overlap the gold evidence
    "verbatim_quotes",  # quotes found verbatim in their cited source
)

_SHARE = {"type": "number", "minimum": 0, "maximum": 1}
_SPAN = {
    "type": "object",
    "required": ["key", "source_id", "quote", "start", "end"],
    "properties": {
        "key": {"type": "string"},
        "source_id": {"type": "string"},
        "quote": {"type": "string"},
        "start": {"type": "integer", "minimum": 0},
        "end": {"type": "integer", "minimum": 0},
    },
}
_TOP = {
    "type": ["object", "null"],
    "required": ["rank", "score", "source_id", "section", "start", "end", "text"],
}
_METRIC_VALUES = {
    "type": "object",
    "required": list(METRICS),
    "additionalProperties": False,
    "properties": {name: _SHARE for name in METRICS},
}
REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": [
        "report",
        "version",
        "created_at",
        "questions_file",
        "questions",
        "index",
        "k",
        "metrics",
        "modes",
        "answers",
    ],
    "additionalProperties": False,
    "properties": {
        "report": {"const": REPORT_KIND},
        "version": {"const": REPORT_VERSION},
        "created_at": {"type": "string"},
        "questions_file": {"type": "string"},
        "questions": {
            "type": "object",
            "required": ["total", "answerable", "unanswerable"],
            "additionalProperties": {"type": "integer", "minimum": 0},
        },
        "index": {"type": "object", "required": ["generation", "model", "chunks"]},
        "k": {"type": "integer", "minimum": 1},
        "metrics": {"type": "array", "items": {"enum": list(METRICS)}},
        "modes": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"enum": ["dense", "bm25", "hybrid"]},
            "additionalProperties": {
                "type": "object",
                "required": ["metrics", "failures", "per_question"],
                "additionalProperties": False,
                "properties": {
                    "metrics": _METRIC_VALUES,
                    "per_question": {"type": "object", "additionalProperties": _METRIC_VALUES},
                    "failures": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["id", "question", "evidence", "first_relevant_rank", "top"],
                            "properties": {
                                "id": {"type": "string"},
                                "question": {"type": "string"},
                                "evidence": {"type": "array", "items": _SPAN},
                                "first_relevant_rank": {"type": ["integer", "null"], "minimum": 1},
                                "top": _TOP,
                            },
                        },
                    },
                },
            },
        },
        "answers": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["questions", "mode", "threshold", "metrics", "calibrated", "curve"],
                    "properties": {
                        "questions": {"type": "integer", "minimum": 0},
                        "mode": {"type": "string"},
                        "threshold": {"type": "number"},
                        "calibrated": {"type": "object", "required": ["threshold", "max_false_abstention"]},
                        "curve": {"type": "array", "items": {"type": "object",
                                                             "required": ["threshold", *ANSWER_METRICS[:3]]}},
                        "metrics": {
                            "type": "object",
                            "required": list(ANSWER_METRICS),
                            "properties": {name: _SHARE for name in ANSWER_METRICS},
                        },
                    },
                },
            ]
        },
    },
}


def display_path(path: Path) -> str:
    """A path as the report shows it: relative to the repository when inside it, so reports travel."""
    resolved = path.resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else str(path)


def index_facts(index: Index) -> dict[str, Any]:
    """What the report records about the index it measured."""
    manifest = index.manifest
    return {
        "generation": index.generation,
        "model": manifest.model_name,
        "chunks": manifest.chunk_count,
        "chunk_size": manifest.chunker.size,
        "chunk_overlap": manifest.chunker.overlap,
        "built_at": manifest.built_at,
    }


def _hit_row(hit: Hit) -> dict[str, Any]:
    chunk = hit.chunk
    return {
        "rank": hit.rank,
        "score": round(hit.score, 6),
        "source_id": chunk.doc_id,
        "section": section_label(chunk.section),
        "start": chunk.start,
        "end": chunk.end,
        "text": chunk.text,
    }


def _failure_row(failure: Failure) -> dict[str, Any]:
    return {
        "id": failure.question.id,
        "question": failure.question.question,
        "evidence": [
            {"key": s.key, "source_id": s.source_id, "quote": s.quote, "start": s.start, "end": s.end}
            for s in failure.spans
        ],
        "first_relevant_rank": failure.first_relevant_rank,
        "top": _hit_row(failure.top) if failure.top else None,
    }


def build_report(
    results: Sequence[ModeResult],
    questions: Sequence[EvalQuestion],
    questions_file: str,
    k: int,
    index: Mapping[str, Any],
    answers: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON report. ``answers`` is the answer-level section (``None`` until it is measured)."""
    answerable = sum(q.answerable for q in questions)
    return {
        "report": REPORT_KIND,
        "version": REPORT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "questions_file": questions_file,
        "questions": {
            "total": len(questions),
            "answerable": answerable,
            "unanswerable": len(questions) - answerable,
        },
        "index": dict(index),
        "k": k,
        "metrics": list(METRICS),
        "modes": {
            r.mode: {
                "metrics": {n: round(v, 4) for n, v in r.metrics.items()},
                "failures": [_failure_row(f) for f in r.failures],
                "per_question": {
                    q: {n: round(v, 4) for n, v in m.items()} for q, m in r.per_question.items()
                },
            }
            for r in results
        },
        "answers": dict(answers) if answers is not None else None,
    }


def format_table(report: Mapping[str, Any]) -> str:
    """The terminal view: one row per mode, one column per metric, then the failure count."""
    counts = report["questions"]
    lines = [
        f"retrieval over {counts['answerable']} answerable questions ({counts['unanswerable']} unanswerable "
        f"left out), k={report['k']}, index {report['index']['generation']}",
        f"{'mode':<8}" + "".join(f"{name:>10}" for name in METRICS) + f"{'failures':>10}",
    ]
    for mode, body in report["modes"].items():
        lines.append(
            f"{mode:<8}"
            + "".join(f"{body['metrics'][name]:>10.3f}" for name in METRICS)
            + f"{len(body['failures']):>10}"
        )
    lines.append("failures: answerable questions whose first hit holds none of the evidence")
    answers = report["answers"]
    if answers is not None:
        lines.append(f"answers ({answers['mode']}, abstain below support {answers['threshold']:.3f}, "
                     f"{answers['questions']} questions):")
        lines += [f"  {name:<28}{value:>8.3f}" for name, value in answers["metrics"].items()]
        best = answers["calibrated"]
        lines.append(f"  calibrated for <= {best['max_false_abstention']:.0%} false abstention: threshold "
                     f"{best['threshold']:.3f} abstains on {best['abstained_when_unanswerable']:.0%} of "
                     "unanswerable questions")
    return "\n".join(lines)


def _clip(text: str, limit: int = 90) -> str:
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def markdown_summary(report: Mapping[str, Any], chart_name: str) -> str:
    counts, index = report["questions"], report["index"]
    lines = [
        "# Retrieval eval",
        "",
        f"{report['created_at']} · `{report['questions_file']}` · {counts['answerable']} answerable "
        f"questions ({counts['unanswerable']} unanswerable left out) · k={report['k']} · index "
        f"`{index['generation']}` ({index['chunks']} chunks, {index['model']})",
        "",
        "| mode | " + " | ".join(METRICS) + " | failures |",
        "|---|" + "---:|" * (len(METRICS) + 1),
    ]
    for mode, body in report["modes"].items():
        lines.append(
            f"| {mode} | "
            + " | ".join(f"{body['metrics'][n]:.3f}" for n in METRICS)
            + f" | {len(body['failures'])} |"
        )
    lines += ["", f"![metrics per mode]({chart_name})", ""]
    for mode, body in report["modes"].items():
        lines += [
            f"## Failures: {mode} ({len(body['failures'])})",
            "",
            "First hit holds none of the evidence; *first relevant* is the rank of the first hit that does.",
            "",
            "| id | question | expected evidence | ranked first | first relevant |",
            "|---|---|---|---|---:|",
        ]
        for row in body["failures"]:
            expected = "<br>".join(f"`{e['source_id']}` “{_clip(e['quote'], 70)}”" for e in row["evidence"])
            top = row["top"]
            section = _clip(top["section"], 30) or "(no section)" if top else ""
            first = f"`{top['source_id']}` {section}: {_clip(top['text'], 70)}" if top else "(no hits)"
            rank = row["first_relevant_rank"] or f"> {report['k']}"
            lines.append(f"| {row['id']} | {_clip(row['question'])} | {expected} | {first} | {rank} |")
        lines.append("")
    answers = report["answers"]
    if answers is not None:
        best = answers["calibrated"]
        lines += [f"## Answers ({answers['mode']} mode, abstain below support {answers['threshold']:.3f})", "",
                  "| metric | value |", "|---|---:|"]
        lines += [f"| {n} | {v:.3f} |" for n, v in answers["metrics"].items()]
        lines += ["", f"Calibrated within {best['max_false_abstention']:.0%} false abstention: threshold "
                  f"{best['threshold']:.3f} abstains on {best['abstained_when_unanswerable']:.1%} of unanswerable "
                  f"questions and quotes gold evidence for {best['gold_evidence_quoted']:.1%} of answerable ones.",
                  "", "Trade-off curve (support threshold → abstention on unanswerable / false abstention):", "",
                  "| threshold | abstained when unanswerable | false abstention | gold evidence quoted |",
                  "|---:|---:|---:|---:|"]
        lines += [f"| {p['threshold']:.3f} | {p['abstained_when_unanswerable']:.3f} | {p['false_abstention']:.3f} "
                  f"| {p['gold_evidence_quoted']:.3f} |" for p in answers["curve"][::4]]
    return "\n".join(lines) + "\n"


def plot_modes(report: Mapping[str, Any], path: Path) -> None:
    """Grouped bars: one group per metric, one bar per mode. No pyplot, so no global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    modes = list(report["modes"])
    figure = Figure(figsize=(7, 3.6), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    width = 0.8 / len(modes)
    for offset, mode in enumerate(modes):
        values = [report["modes"][mode]["metrics"][n] for n in METRICS]
        positions = [i + (offset - (len(modes) - 1) / 2) * width for i in range(len(METRICS))]
        bars = axes.bar(positions, values, width, label=mode)
        axes.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
    axes.set_xticks(range(len(METRICS)), list(METRICS))
    axes.set_ylim(0, 1.2)  # headroom for the legend above bars that reach 1
    axes.set_yticks([i / 5 for i in range(6)])
    axes.set_ylabel("mean over answerable questions")
    axes.set_title(f"Retrieval by mode ({report['questions']['answerable']} questions, k={report['k']})")
    axes.legend(loc="upper center", ncols=len(modes), fontsize=8, frameon=False)
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; a report is meant to be read by others
    os.replace(tmp, path)


def write_report(report: Mapping[str, Any], folder: Path, stem: str = REPORT_STEM) -> dict[str, Path]:
    """Write ``<stem>.json``, ``<stem>.md`` and ``<stem>.png`` into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": folder / f"{stem}.json",
        "markdown": folder / f"{stem}.md",
        "chart": folder / f"{stem}.png",
    }
    plot_modes(report, paths["chart"])
    _atomic_write(paths["json"], json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    _atomic_write(paths["markdown"], markdown_summary(report, paths["chart"].name))
    return paths
