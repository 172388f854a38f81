"""Fit the reader's decline model by cross-validation on the tuning split.

    python eval/tune_decline.py [--folds 5]

The held-out test split is never read. Each tuning question is answered once by the real
pipeline (hybrid search with its second stage, the tuned reader), and its
:class:`rag.reader.abstain.DeclineSignals` recorded. A logistic regression then predicts "the
sources do not answer" (on-topic and off-topic unanswerable questions against answerable ones).
Its threshold is the lowest that keeps false abstention within a budget on the questions it was
fitted on, after the rule that still runs before it (the support floor ``abstain_below``). The
budget, the floor and the regularisation C are chosen by 5-fold cross-validation, repeated over five
shuffles of the folds: the most unanswerable questions declined on held-out folds, at most 4% of
answerable ones (5% is the product's limit), taking the lowest floor among the settings within one
question of the best (:func:`choose`).

Writes eval/reports/decline-tuning.json; the chosen model goes into rag/reader/abstain.py
(``DECLINE``) by hand.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REPORTS = REPO / "eval" / "reports"
C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)
FLOOR_GRID = (0.0, 0.3, 0.35, 0.4, 0.42)  # AnswerSettings.abstain_below under the model
# False abstention allowed on the questions a model is fitted on: at 5% it overshoots the 5% limit
# on held-out folds, so a stricter budget is part of the grid.
BUDGET_GRID = (0.02, 0.03, 0.04, 0.05)
# Cross-validated false abstention allowed: a point under the product's 5%, because the choice sits
# at the budget's edge and a held-out split of ~100 answerable questions moves it a point either way.
MAX_FALSE_ABSTENTION = 0.04
# With ~30 unanswerable questions, which fold a question falls in moves a choice's held-out rates by
# more than the choices differ; averaging over several shuffles of the folds steadies the choice.
REPEATS = 5


@dataclasses.dataclass(frozen=True)
class Record:
    qid: str
    kind: str  # "answerable", "on-topic" or "off-topic"
    signals: np.ndarray  # DeclineSignals, as a vector
    support: float
    floor_applies: bool  # rag.reader.abstain.floor_applies

    def under(self, floor: float) -> bool:
        return self.floor_applies and self.support < floor

    @property
    def unanswerable(self) -> bool:
        return self.kind != "answerable"


def collect(session, questions) -> list[Record]:
    """Each question through the served pipeline, stopped where the reader decides to decline."""
    from dataclasses import astuple

    from rag.assistant import RequestOptions
    from rag.reader.abstain import DeclineSignals, floor_applies
    from rag.reader.scoring import score_candidates
    from rag.retrieve import Retriever

    index = session.index
    retriever = Retriever(index, index.sentences.over(session.embedder))
    settings = session.answer_settings
    records = []
    for question in questions:
        hits = retriever.search(session.request(question.question, RequestOptions(), index))
        focus = retriever.analyser.analyse(question.question)
        candidates, _ = score_candidates(focus, hits, index.store.document, retriever.embedder, index.lexical,
                                         settings)
        if not candidates:  # declined by the first rule whatever the model says
            continue
        signals = DeclineSignals.of(focus, candidates, hits, index.lexical, settings)
        records.append(Record(question.id, question.unanswerable or "answerable",
                              np.asarray(astuple(signals), dtype=np.float64),
                              signals.support, floor_applies(candidates[0])))
    return records


@dataclasses.dataclass(frozen=True)
class Fitted:
    weights: np.ndarray
    bias: float
    threshold: float
    floor: float

    def declines(self, record: Record) -> bool:
        if record.under(self.floor):
            return True
        z = self.bias + float(self.weights @ record.signals)
        return 1.0 / (1.0 + np.exp(-z)) >= self.threshold


def fit(records: list[Record], c: float, floor: float, budget: float) -> Fitted:
    from sklearn.linear_model import LogisticRegression

    x = np.stack([r.signals for r in records])
    y = np.array([r.unanswerable for r in records])
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(x, y)
    weights, bias = model.coef_[0], float(model.intercept_[0])
    # The lowest threshold whose false abstention (after the floor) stays within budget.
    answerable = [r for r in records if not r.unanswerable]
    floored = sum(r.under(floor) for r in answerable)
    room = int(budget * len(answerable)) - floored
    scores = sorted((float(1 / (1 + np.exp(-(bias + weights @ r.signals)))) for r in answerable
                     if not r.under(floor)), reverse=True)
    threshold = 1.0 if room < 0 else (scores[room] + 1e-9 if room < len(scores) else 0.0)
    return Fitted(weights, bias, threshold, floor)


def rates(records: list[Record], fitted: Fitted) -> dict[str, float]:
    def share(kind: str) -> float:
        group = [r for r in records if r.kind == kind]
        return sum(fitted.declines(r) for r in group) / len(group) if group else 0.0
    return {"false_abstention": share("answerable"), "on_topic": share("on-topic"), "off_topic": share("off-topic")}


def cross_validate(records: list[Record], c: float, floor: float, budget: float, k: int,
                   repeats: int = REPEATS) -> dict[str, float]:
    """Held-out rates averaged over ``repeats`` shuffles of ``k`` folds."""
    from rag.eval.split import FOLD_SEED, cross_folds

    held_out = []
    for repeat in range(repeats):
        for train, fold in cross_folds(records, k, key=lambda r: r.qid, seed=FOLD_SEED + repeat):
            held_out.append(rates(fold, fit(train, c, floor, budget)))
    return {name: round(float(np.mean([h[name] for h in held_out])), 4) for name in held_out[0]}


def choose(grid: list[dict], on_topic_questions: int) -> dict:
    """The lowest floor among the settings within one on-topic question of the most unanswerable
    questions declined, inside the false-abstention limit; then the least false abstention.

    The floor declines on one signal alone, so a higher one is the riskier choice: settings this
    close differ by noise (the reader's tuner picks from its plateau for the same reason), and a
    floor of 0.40 that won by under a question declined 5.8% of the held-out answerable questions,
    against 3.8% at 0.35."""
    within = [g for g in grid if g["false_abstention"] <= MAX_FALSE_ABSTENTION] or grid
    top = max(g["on_topic"] + g["off_topic"] for g in within)
    plateau = [g for g in within if g["on_topic"] + g["off_topic"] >= top - 1 / max(1, on_topic_questions)]
    return min(plateau, key=lambda g: (g["abstain_below"], g["false_abstention"],
                                       -(g["on_topic"] + g["off_topic"]), g["C"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--index", type=Path, default=REPO / ".cache" / "tune-index")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(REPO))
    from rag.answer import AnswerSettings
    from rag.assistant import open_assistant
    from rag.embedding import load_embedder
    from rag.eval.questions import DEFAULT_QUESTIONS, load_questions
    from rag.reader.abstain import DeclineSignals
    from rag.settings import Settings

    settings = Settings.from_env(index_dir=args.index)
    session, _ = open_assistant(settings, load_embedder(settings))
    questions = [q for q in load_questions(DEFAULT_QUESTIONS) if q.split == "tune"]
    records = collect(session, questions)
    grid = []
    for c, floor, budget in itertools.product(C_GRID, FLOOR_GRID, BUDGET_GRID):
        cv = cross_validate(records, c, floor, budget, args.folds)
        grid.append({"C": c, "abstain_below": floor, "budget": budget, **cv})
    best = choose(grid, sum(r.kind == "on-topic" for r in records))
    final = fit(records, best["C"], best["abstain_below"], best["budget"])
    report = {
        "signals": [f.name for f in dataclasses.fields(DeclineSignals)],
        "weights": [round(float(w), 4) for w in final.weights],
        "bias": round(final.bias, 4),
        "threshold": round(final.threshold, 4),
        "abstain_below": best["abstain_below"],
        "C": best["C"],
        "fitting_budget": best["budget"],
        "tuning_questions": len(records),
        "cross_validated": {k: best[k] for k in ("false_abstention", "on_topic", "off_topic")},
        "fit_on_all_tuning": {k: round(v, 4) for k, v in rates(records, final).items()},
        "rules_before (AnswerSettings defaults without the model)": {
            "abstain_below": AnswerSettings.abstain_below},
        "grid": grid,
    }
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "decline-tuning.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "grid"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
