"""Calibrate the sentence checker's support threshold on the eval questions.

    python eval/calibrate_support.py

For every answerable question, the gold evidence quote is a claim, scored (``rag.check``) against
- the retrieved passage that holds it (a correct citation), and
- the best-ranked retrieved passage that does not (a wrong citation: on topic, but it does not
  say this).
The threshold is the lowest one that rejects 95% of the wrong citations, so the checker is no
stricter than it must be to catch them (a model paraphrasing its source scores below a verbatim
quote, so needless strictness would drop honest sentences). Writes
eval/reports/support-calibration.json with the distributions for each lexical weight.
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


def main() -> int:
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(name, "1")
    sys.path.insert(0, str(REPO))
    from rag.assistant import open_assistant
    from rag.check import LEXICAL_WEIGHT, SupportScorer
    from rag.eval.questions import DEFAULT_QUESTIONS, load_questions
    from rag.settings import Settings

    assistant, _ = open_assistant(Settings.from_env())
    pairs = claim_pairs(assistant, load_questions(DEFAULT_QUESTIONS))
    rows = {}
    for weight in WEIGHTS:
        scorer = SupportScorer(assistant.embedder, weight)
        right = np.array([scorer.score(claim, [passage]) for claim, passage, _ in pairs])
        wrong = np.array([scorer.score(claim, [passage]) for claim, _, passage in pairs])
        threshold = float(np.quantile(wrong, REJECT_WRONG))
        rows[weight] = {"auc": round(auc(right, wrong), 4), "threshold": round(threshold, 3),
                        "right_kept": round(float((right >= threshold).mean()), 4),
                        "wrong_rejected": round(float((wrong < threshold).mean()), 4),
                        "right_p05": round(float(np.quantile(right, 0.05)), 3),
                        "wrong_p50": round(float(np.median(wrong)), 3)}
        print(f"lexical weight {weight:.2f}: AUC {rows[weight]['auc']:.3f}, threshold {threshold:.3f} keeps "
              f"{rows[weight]['right_kept']:.1%} of right citations, rejects {rows[weight]['wrong_rejected']:.1%} "
              "of wrong ones")
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps({"pairs": len(pairs), "reject_wrong": REJECT_WRONG, "chosen_weight": LEXICAL_WEIGHT,
                                  "chosen_threshold": rows[LEXICAL_WEIGHT]["threshold"],
                                  "by_lexical_weight": {str(w): r for w, r in rows.items()}}, indent=2) + "\n",
                      encoding="utf-8")
    print(f"{len(pairs)} claims; chosen: weight {LEXICAL_WEIGHT}, threshold {rows[LEXICAL_WEIGHT]['threshold']:.3f}")
    print(f"report: {REPORT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
