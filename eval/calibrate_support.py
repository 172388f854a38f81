"""Calibrate the sentence checker's support threshold on the tuning split; report the test split.

    python eval/calibrate_support.py

For every answerable question, the gold evidence quote is a claim, scored (``rag.check``) against
- the retrieved passage that holds it (a correct citation), and
- the best-ranked retrieved passage that does not (a wrong citation: on topic, but it does not
  say this).
On the ``tune`` questions only, the threshold is the lowest one that rejects 95% of the wrong
citations, so the checker is no stricter than it must be to catch them (a model paraphrasing its
source scores below a verbatim quote, so needless strictness would drop honest sentences). The
held-out ``test`` questions are then scored at that same threshold, never used to choose it.
Writes eval/reports/support-calibration.json with both splits for each lexical weight.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "eval" / "reports" / "support-calibration.json"
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
REJECT_WRONG = 0.95
TUNE, TEST = "tune", "test"


def claim_pairs(assistant, questions):
    """(claim, right passage, wrong passage) per answerable question with both in its top 10."""
    from rag.assistant import RequestOptions
    from rag.eval.questions import locate_evidence
    from rag.eval.retrieval import covers

    def text_of(source_id):
        document = assistant.document(source_id)
        return document.text if document else None

    pairs = []
    for question in (q for q in questions if q.answerable):
        spans = locate_evidence(question, text_of)
        hits = [passage.hit for passage in assistant.search(question.question, RequestOptions(k=10))]
        right = [h for h in hits if any(covers(h.chunk, s) for s in spans)]
        wrong = [h for h in hits if not any(covers(h.chunk, s) for s in spans)]
        if right and wrong:
            pairs.append((spans[0].quote, right[0].chunk.text, wrong[0].chunk.text))
    return pairs


def auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """Probability that a right citation outscores a wrong one (Mann-Whitney U / n1 n2)."""
    greater = (positives[:, None] > negatives[None, :]).sum() + 0.5 * (positives[:, None] == negatives[None, :]).sum()
    return float(greater / (len(positives) * len(negatives)))


def scores(scorer, pairs) -> tuple[np.ndarray, np.ndarray]:
    """Support of each claim from its right passage, and from its wrong one."""
    right = np.array([scorer.score(claim, [passage]) for claim, passage, _ in pairs])
    wrong = np.array([scorer.score(claim, [passage]) for claim, _, passage in pairs])
    return right, wrong


def at_threshold(right: np.ndarray, wrong: np.ndarray, threshold: float) -> dict[str, float]:
    return {"pairs": len(right), "auc": round(auc(right, wrong), 4),
            "right_kept": round(float((right >= threshold).mean()), 4),
            "wrong_rejected": round(float((wrong < threshold).mean()), 4),
            "right_p05": round(float(np.quantile(right, 0.05)), 3), "wrong_p50": round(float(np.median(wrong)), 3)}


def lowest_rejecting(wrong: np.ndarray, share: float) -> float:
    """The lowest two-decimal threshold that scores at least ``share`` of the wrong citations below it."""
    must_reject = int(np.ceil(share * len(wrong)))
    highest_rejected = float(np.sort(wrong)[must_reject - 1])
    return round(np.floor(highest_rejected * 100) / 100 + 0.01, 2)


def calibrate(scorer, pairs_by_split) -> dict:
    """The threshold from the tuning split's wrong citations, and how it does on both splits."""
    right, wrong = scores(scorer, pairs_by_split[TUNE])
    threshold = lowest_rejecting(wrong, REJECT_WRONG)
    test_right, test_wrong = scores(scorer, pairs_by_split[TEST])
    return {"threshold": threshold, TUNE: at_threshold(right, wrong, threshold),
            TEST: at_threshold(test_right, test_wrong, threshold)}


def main() -> int:
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(name, "1")
    sys.path.insert(0, str(REPO))
    from rag.assistant import open_assistant
    from rag.check import LEXICAL_WEIGHT, SupportScorer
    from rag.eval.questions import DEFAULT_QUESTIONS, load_questions
    from rag.settings import Settings

    assistant, _ = open_assistant(Settings.from_env())
    questions = load_questions(DEFAULT_QUESTIONS)
    pairs = {split: claim_pairs(assistant, [q for q in questions if q.split == split]) for split in (TUNE, TEST)}
    rows = {}
    print(f"{'weight':>6} {'threshold':>9} | {'tune AUC':>8} {'right kept':>10} {'wrong rej.':>10} | "
          f"{'test AUC':>8} {'right kept':>10} {'wrong rej.':>10}")
    for weight in WEIGHTS:
        row = rows[weight] = calibrate(SupportScorer(assistant.embedder, weight), pairs)
        tune, test = row[TUNE], row[TEST]
        print(f"{weight:>6.2f} {row['threshold']:>9.2f} | {tune['auc']:>8.3f} {tune['right_kept']:>10.1%} "
              f"{tune['wrong_rejected']:>10.1%} | {test['auc']:>8.3f} {test['right_kept']:>10.1%} "
              f"{test['wrong_rejected']:>10.1%}")
    chosen = rows[LEXICAL_WEIGHT]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps({
        "command": "python eval/calibrate_support.py", "chosen_on": TUNE, "reject_wrong": REJECT_WRONG,
        "pairs": {split: len(p) for split, p in pairs.items()}, "chosen_weight": LEXICAL_WEIGHT,
        "chosen_threshold": chosen["threshold"], "by_lexical_weight": {str(w): r for w, r in rows.items()},
    }, indent=2) + "\n", encoding="utf-8")
    print(f"claims: {len(pairs[TUNE])} tune, {len(pairs[TEST])} test; chosen on tune: weight {LEXICAL_WEIGHT}, "
          f"threshold {chosen['threshold']:.2f}")
    print(f"report: {REPORT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
