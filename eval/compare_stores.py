"""The project eval on both stores in one run: the local files and Milvus Lite, side by side.

    python eval/compare_stores.py

Builds the corpus once into a throw-away index whose generation is also published to a Milvus
Lite file beside it (``store=milvus``: one embedding pass, the same chunk rows in both), then runs
what ``rag eval --mode all`` runs (every mode, the reference recipes, the answers) over each store
with one loaded model, local first. Writes eval/reports/milvus-vs-local.json and .md: the metrics
of both, their largest difference, and per run the wall time and the time its store searches
took (calls, ms per call), which is what the backend itself costs the eval.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPORTS = REPO / "eval" / "reports"
STEM = "milvus-vs-local"
STORES = ("local", "milvus")


@dataclass
class StoreClock:
    """Calls and seconds per search kind, summed over a run."""

    calls: Counter = field(default_factory=Counter)
    seconds: Counter = field(default_factory=Counter)


class TimedStore:
    """A store whose dense and lexical searches are timed; results pass through untouched."""

    def __init__(self, store, clock: StoreClock) -> None:
        self.store, self.clock = store, clock

    def restrict(self, sources):
        return self.store.restrict(sources)

    def _timed(self, kind: str, search: Callable, *args):
        began = time.perf_counter()
        try:
            return search(*args)
        finally:
            self.clock.calls[kind] += 1
            self.clock.seconds[kind] += time.perf_counter() - began

    def dense(self, query, depth, restriction):
        return self._timed("dense", self.store.dense, query, depth, restriction)

    def lexical(self, question, depth, restriction):
        return self._timed("lexical", self.store.lexical, question, depth, restriction)


def timed_assistant(settings, embedder, clock: StoreClock):
    """The application layer the eval drives, with its store's searches timed."""
    from rag.assistant import Assistant

    class TimedAssistant(Assistant):
        def _store_of(self, index):
            return TimedStore(super()._store_of(index), clock)

    return TimedAssistant(settings, embedder)


def evaluate(settings, embedder) -> tuple[dict, dict]:
    """(``rag eval --mode all``'s report as a dict, its timing)."""
    from rag.eval.questions import DEFAULT_QUESTIONS, load_questions
    from rag.eval.report import display_path
    from rag.eval.run import run_evaluation
    from rag.modes import MODES

    clock = StoreClock()
    session = timed_assistant(settings, embedder, clock)
    began = time.perf_counter()
    report = run_evaluation(session, load_questions(DEFAULT_QUESTIONS), display_path(DEFAULT_QUESTIONS), MODES)
    wall = time.perf_counter() - began
    calls, seconds = sum(clock.calls.values()), sum(clock.seconds.values())
    timing = {"eval_s": round(wall, 1), "store_calls": calls, "store_s": round(seconds, 2),
              "store_ms_per_call": round(1000 * seconds / max(1, calls), 2),
              "store_share_of_eval": round(seconds / wall, 4),
              **{f"{kind}_ms_per_call": round(1000 * clock.seconds[kind] / clock.calls[kind], 2)
                 for kind in sorted(clock.calls)}}
    print(report.table(), file=sys.stderr)
    return report.to_dict(), timing


def summary(report: dict) -> dict:
    """The report's metrics without its per-question lists (``rag eval`` writes those)."""
    splits = {split: {"questions": measured["questions"],
                      "retrieval": {system: {"metrics": row["metrics"], "mean_passage_chars": row["mean_passage_chars"],
                                             "failures": len(row["failures"])}
                                    for system, row in measured["retrieval"].items()},
                      "answers": {"mode": measured["answers"]["mode"], "metrics": measured["answers"]["metrics"]}}
              for split, measured in report["splits"].items()}
    return {key: report[key] for key in ("index", "k", "metrics", "answer_metrics")} | {"splits": splits}


def differences(local: dict, milvus: dict) -> dict[str, float]:
    """The largest |milvus - local| of each retrieval metric (over systems and splits) and answer metric."""
    largest: dict[str, float] = {}
    for split, measured in local["splits"].items():
        other = milvus["splits"][split]
        pairs = [(name, value, other["retrieval"][system]["metrics"][name])
                 for system, row in measured["retrieval"].items() for name, value in row["metrics"].items()]
        pairs += [(f"answer {name}", value, other["answers"]["metrics"][name])
                  for name, value in measured["answers"]["metrics"].items()]
        for name, mine, theirs in pairs:
            largest[name] = round(max(largest.get(name, 0.0), abs(theirs - mine)), 4)
    return largest


def markdown(result: dict) -> str:
    runs, metrics = result["runs"], result["runs"]["local"]["report"]["metrics"]
    index = runs["local"]["report"]["index"]
    lines = ["# The project eval on the local store and on Milvus Lite", "",
             f"{result['created_at']} · `python eval/compare_stores.py` · the same generation `{index['generation']}` "
             f"({index['chunks']} chunks, {index['model']}) searched through each store in one run, local first · "
             f"k={runs['local']['report']['k']} · load average at start {result['load_average_at_start']}", ""]
    for split, measured in runs["local"]["report"]["splits"].items():
        other = runs["milvus"]["report"]["splits"][split]
        header = " | ".join(f"{m} local | {m} milvus" for m in metrics)
        lines += [f"## {split} split", "", f"| system | {header} |", "|---|" + "---:|" * (2 * len(metrics))]
        for system, row in measured["retrieval"].items():
            theirs = other["retrieval"][system]["metrics"]
            lines.append(f"| {system} | " + " | ".join(f"{row['metrics'][m]:.4f} | {theirs[m]:.4f}" for m in metrics)
                         + " |")
        lines += ["", "| answer metric (hybrid) | local | milvus |", "|---|---:|---:|"]
        lines += [f"| {name} | {value:.3f} | {other['answers']['metrics'][name]:.3f} |"
                  for name, value in measured["answers"]["metrics"].items()]
        lines.append("")
    lines += ["## Largest difference, Milvus minus local (all systems and splits)", "",
              "| metric | max abs difference |", "|---|---:|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in result["largest_difference"].items()]
    lines += ["", "## Time", "", "| store | eval s | store calls | store s | ms per call | dense ms | lexical ms "
              "| store share of the eval |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for store in STORES:
        t = runs[store]["timing"]
        lines.append(f"| {store} | {t['eval_s']:.1f} | {t['store_calls']} | {t['store_s']:.2f} | "
                     f"{t['store_ms_per_call']:.2f} | {t['dense_ms_per_call']:.2f} | {t['lexical_ms_per_call']:.2f} | "
                     f"{100 * t['store_share_of_eval']:.1f}% |")
    lines += ["", "The rest of each run is the same for both stores: encoding questions and the reader's "
              "candidate sentences, the reference recipes, scoring.", ""]
    return "\n".join(lines)


def main() -> None:
    from rag.build import build_index
    from rag.embedding import load_embedder
    from rag.settings import Settings

    load = [round(x, 2) for x in os.getloadavg()]  # 2 shared cores: the wall times depend on it
    with tempfile.TemporaryDirectory(prefix="rag-stores-") as work:
        milvus = Settings(index_dir=Path(work) / "index", store="milvus", milvus_uri=str(Path(work) / "milvus.db"))
        embedder = load_embedder(milvus)
        build_index(milvus, embedder)
        runs = {}
        for store in STORES:
            report, timing = evaluate(milvus.replace(store=store), embedder)
            runs[store] = {"timing": timing, "report": summary(report)}
    result = {"created_at": datetime.now(UTC).isoformat(timespec="seconds"), "load_average_at_start": load,
              "largest_difference": differences(runs["local"]["report"], runs["milvus"]["report"]), "runs": runs}
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"{STEM}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (REPORTS / f"{STEM}.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
