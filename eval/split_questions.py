"""Give every question in eval/questions.jsonl a fixed tuning / held-out ``split`` (seeded, stratified).

    python eval/split_questions.py [FILE]

Questions that already have a split keep it; run it after adding questions. Tune only on ``tune``.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(REPO))
    from rag.errors import RagError
    from rag.eval.questions import DEFAULT_QUESTIONS
    from rag.eval.split import write_splits

    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DEFAULT_QUESTIONS
    try:
        splits = write_splits(path)
    except RagError as exc:
        print(f"split_questions: error: {exc}", file=sys.stderr)
        return 1
    counts = Counter(splits.values())
    print(f"{path}: {counts['tune']} tune, {counts['test']} test ({counts['test'] / len(splits):.0%} held out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
